"""Objective terms: hinge losses with training margins, satisfied flags with evaluation margins, validation."""

from __future__ import annotations

import pickle

import pytest
import torch

from smoacs.errors import ConfigError
from smoacs.objectives import Above, Below, Range, Window, objective_to_dict, total_loss


def _values(key: str, *ys: float) -> dict[str, torch.Tensor]:
    return {key: torch.tensor(ys, dtype=torch.float64)}


def test_window_loss_zero_inside_margin_linear_outside() -> None:
    term = Window("band_gap", 2.0, margin=0.04, eval_margin=0.2, weight=3.0)
    inside = term.loss(_values("band_gap", 2.0, 2.03, 1.97, 2.0399, 1.9601))
    assert torch.all(inside == 0)
    outside = term.loss(_values("band_gap", 2.5, 1.5, 3.04, 0.0))
    torch.testing.assert_close(outside, 3.0 * torch.tensor([0.46, 0.46, 1.0, 1.96], dtype=torch.float64))
    # Linear: equal steps outside the margin give equal loss increments.
    ys = torch.tensor([2.1, 2.2, 2.3], dtype=torch.float64)
    diffs = term.loss({"band_gap": ys}).diff()
    torch.testing.assert_close(diffs, torch.full((2,), 0.3, dtype=torch.float64))


def test_window_satisfied_uses_eval_margin() -> None:
    term = Window("band_gap", 2.0, margin=0.04, eval_margin=0.2)
    values = _values("band_gap", 2.1, 1.81, 2.199, 2.25, 1.7)
    assert term.satisfied(values).tolist() == [True, True, True, False, False]
    assert term.loss(values)[0] > 0, "2.1 is outside the training margin but inside the evaluation margin"


def test_below_and_above() -> None:
    below = Below("formation_energy", -0.5, margin=0.2)
    values = _values("formation_energy", -1.0, -0.7, -0.6, -0.4)
    torch.testing.assert_close(below.loss(values), torch.tensor([0.0, 0.0, 0.1, 0.3], dtype=torch.float64))
    assert below.satisfied(values).tolist() == [True, True, True, False]
    above = Above("min_distance", 0.5, margin=0.3, weight=2.0)
    values = _values("min_distance", 1.0, 0.8, 0.6, 0.4)
    torch.testing.assert_close(above.loss(values), torch.tensor([0.0, 0.0, 0.4, 0.8], dtype=torch.float64))
    assert above.satisfied(values).tolist() == [True, True, True, False]


def test_range() -> None:
    term = Range("tolerance", 0.8, 1.0, margin=0.02, weight=5.0)
    values = _values("tolerance", 0.9, 0.82, 0.81, 0.75, 1.0, 1.1)
    torch.testing.assert_close(
        term.loss(values), 5.0 * torch.tensor([0.0, 0.0, 0.01, 0.07, 0.02, 0.12], dtype=torch.float64)
    )
    assert term.satisfied(values).tolist() == [True, True, True, False, True, False]
    # NaN (no tolerance factor) is never satisfied.
    assert not term.satisfied(_values("tolerance", float("nan"))).item()


def test_validation() -> None:
    with pytest.raises(ConfigError, match="range on tolerance"):
        Range("tolerance", 0.8, 1.0, margin=0.15)
    with pytest.raises(ConfigError):
        Range("tolerance", 1.0, 0.8)
    Range("tolerance", 0.8, 1.0, margin=0.1)  # exactly low + 2·margin == high is allowed
    with pytest.raises(ConfigError, match="margins must be ≥ 0"):
        Window("band_gap", 1.0, margin=-0.1)
    with pytest.raises(ValueError):  # ConfigError is also a ValueError
        Window("band_gap", 1.0, eval_margin=-1.0)


def test_missing_key_names_available() -> None:
    with pytest.raises(ConfigError, match="needs 'band_gap'.*formation_energy"):
        Window("band_gap", 1.0).loss(_values("formation_energy", 0.0))


def test_total_loss_sums_terms_and_has_gradient() -> None:
    y = torch.tensor([0.0, 3.0], dtype=torch.float64, requires_grad=True)
    terms = [Window("band_gap", 1.0, margin=0.0), Below("band_gap", 2.0)]
    loss = total_loss(terms, {"band_gap": y})
    torch.testing.assert_close(loss.detach(), torch.tensor([1.0, 2.0 + 1.0], dtype=torch.float64))
    loss.sum().backward()
    torch.testing.assert_close(y.grad, torch.tensor([-1.0, 2.0], dtype=torch.float64))


def test_serialisation() -> None:
    term = Range("tolerance", 0.8, 1.0, margin=0.02, weight=5.0)
    assert objective_to_dict(term) == {"kind": "range", "property": "tolerance", "range": [0.8, 1.0], "margin": 0.02,
                                       "weight": 5.0}  # fmt: skip
    assert pickle.loads(pickle.dumps(term)) == term
    assert Window("band_gap", 2.5, 0.04, 0.2).describe() == "band_gap = 2.5 ± 0.2"
