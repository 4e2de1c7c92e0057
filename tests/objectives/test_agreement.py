"""Disagreement-aware objectives: every member inside the window, a loss that pushes every member, spread tolerance."""

from __future__ import annotations

import pytest
import torch

from smoacs.config import objective_from_dict
from smoacs.errors import ConfigError
from smoacs.objectives.terms import Above, Below, Maximize, Minimize, Range, Window, member_values, objective_to_dict


def _values(*members: list[float], spread: str = "range") -> dict[str, torch.Tensor]:
    """Values as an ensemble reports them: mean, spread and members ``band_gap_m<i>``."""
    stacked = torch.tensor(members, dtype=torch.float64, requires_grad=True)
    out = {"band_gap": stacked.mean(0), "band_gap_spread": stacked.amax(0) - stacked.amin(0)}
    out.update({f"band_gap_m{i}": stacked[i] for i in range(len(members))})
    out["_stacked"] = stacked
    return out


def test_window_is_met_only_if_every_member_is_inside() -> None:
    # candidate 0: both inside; 1: mean inside (2.5) but members 1.9 and 3.1 outside; 2: one member outside
    values = _values([2.45, 1.9, 2.5], [2.55, 3.1, 2.9])
    window = Window("band_gap", 2.5, 0.04, 0.2)
    assert window.satisfied(values).tolist() == [True, False, False]
    combined = Window("band_gap", 2.5, 0.04, 0.2, agreement="value")
    assert combined.satisfied(values).tolist() == [True, True, False]  # the mean of candidate 2 is 2.7


def test_loss_is_the_mean_member_hinge_and_pushes_every_member() -> None:
    values = _values([2.45, 1.9, 2.5], [2.55, 3.1, 2.9])
    window = Window("band_gap", 2.5, 0.04, 0.2, weight=2.0)
    loss = window.loss(values)
    stacked = values["_stacked"].detach()
    expected = 2.0 * torch.relu((stacked - 2.5).abs() - 0.04).mean(0)
    torch.testing.assert_close(loss, expected)
    (grad,) = torch.autograd.grad(loss.sum(), values["_stacked"])
    # candidate 1: both members outside → both pushed towards the target (1.9 up, 3.1 down), with weight / n_members
    assert grad[0, 1] == pytest.approx(-1.0) and grad[1, 1] == pytest.approx(1.0)
    # candidate 2: only the member outside the training window receives a gradient
    assert grad[0, 2] == 0.0 and grad[1, 2] == pytest.approx(1.0)
    # the combined-value loss gives candidate 1 (mean 2.5) no gradient at all
    combined = Window("band_gap", 2.5, 0.04, 0.2, agreement="value").loss(values)
    assert combined[1] == 0.0


def test_spread_tolerance_adds_a_criterion_and_a_hinge() -> None:
    values = _values([2.45, 2.3, 2.6], [2.55, 2.7, 2.62])
    window = Window("band_gap", 2.5, 0.04, 0.2, agreement="value", spread_tolerance=0.15)
    assert window.satisfied(values).tolist() == [True, False, True]  # spreads 0.1, 0.4, 0.02
    spread_part = window.loss(values) - Window("band_gap", 2.5, 0.04, 0.2, agreement="value").loss(values)
    torch.testing.assert_close(spread_part, torch.relu(values["band_gap_spread"] - 0.15))


def test_without_an_ensemble_every_term_is_unchanged() -> None:
    y = torch.tensor([-1.0, 0.2, 0.75])
    values = {"band_gap": y}
    torch.testing.assert_close(member_values(values, "band_gap"), y[None])
    window = Window("band_gap", 0.5, 0.1, 0.3)
    torch.testing.assert_close(window.loss(values), torch.relu((y - 0.5).abs() - 0.1))
    assert window.satisfied(values).tolist() == [False, True, True]
    assert Below("band_gap", 0.0).satisfied(values).tolist() == [True, False, False]
    torch.testing.assert_close(Maximize("band_gap").loss(values), -y)
    # a spread tolerance without an ensemble: spread 0, always met
    assert Window("band_gap", 0.5, 0.1, 0.3, spread_tolerance=0.0).satisfied(values).tolist() == [False, True, True]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        (Range("band_gap", 2.0, 3.0), [True, False]),
        (Below("band_gap", 3.0), [True, False]),
        (Above("band_gap", 2.0), [True, False]),
        (Maximize("band_gap", threshold=2.0), [True, False]),
        (Minimize("band_gap", threshold=3.0), [True, False]),
    ],
)
def test_every_kind_requires_every_member(term: object, expected: list[bool]) -> None:
    values = _values([2.5, 1.5], [2.8, 3.5])  # candidate 1: one member below 2, the other above 3
    assert term.satisfied(values).tolist() == expected  # type: ignore[attr-defined]
    (grad,) = torch.autograd.grad(term.loss(values).sum(), values["_stacked"])  # type: ignore[attr-defined]
    assert grad.shape == (2, 2)


def test_config_form_round_trip_and_defaults_omitted() -> None:
    plain = Window("band_gap", 2.5, 0.04, 0.2)
    assert "agreement" not in objective_to_dict(plain) and "spread_tolerance" not in objective_to_dict(plain)
    tuned = Window("band_gap", 2.5, 0.04, 0.2, agreement="value", spread_tolerance=0.3)
    data = objective_to_dict(tuned)
    assert data["agreement"] == "value" and data["spread_tolerance"] == 0.3
    assert objective_from_dict(data) == tuned
    assert objective_from_dict({"kind": "below", "property": "e", "threshold": 0, "agreement": "value"}).agreement == "value"
    assert "combined value only, spread ≤ 0.3" in tuned.describe()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "window", "property": "band_gap", "target": 1, "agreement": "any"}, "must be one of all, value"),
        ({"kind": "window", "property": "band_gap", "target": 1, "spread_tolerance": -1}, "must be ≥ 0"),
    ],
)
def test_bad_agreement_settings(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        objective_from_dict(data)
