"""Maximize / Minimize: linear (optionally capped) losses, threshold criteria, validation, serialisation."""

from __future__ import annotations

import pickle

import pytest
import torch

from smoacs.errors import ConfigError
from smoacs.objectives import OBJECTIVE_KINDS, Maximize, Minimize, objective_to_dict, total_loss


def _y(*ys: float) -> dict[str, torch.Tensor]:
    return {"bulk_modulus": torch.tensor(ys, dtype=torch.float64)}


def test_maximize_uncapped_is_linear_with_constant_gradient() -> None:
    term = Maximize("bulk_modulus", weight=0.5)
    y = torch.tensor([10.0, 100.0, 1000.0], dtype=torch.float64, requires_grad=True)
    loss = term.loss({"bulk_modulus": y})
    torch.testing.assert_close(loss.detach(), torch.tensor([-5.0, -50.0, -500.0], dtype=torch.float64))
    loss.sum().backward()
    torch.testing.assert_close(y.grad, torch.full((3,), -0.5, dtype=torch.float64))


def test_maximize_cap_stops_rewarding() -> None:
    term = Maximize("bulk_modulus", threshold=100.0, cap=150.0, weight=2.0)
    y = torch.tensor([50.0, 149.0, 150.0, 300.0], dtype=torch.float64, requires_grad=True)
    loss = term.loss({"bulk_modulus": y})
    torch.testing.assert_close(loss.detach(), torch.tensor([200.0, 2.0, 0.0, 0.0], dtype=torch.float64))
    loss.sum().backward()
    torch.testing.assert_close(y.grad, torch.tensor([-2.0, -2.0, 0.0, 0.0], dtype=torch.float64))


def test_minimize_mirrors_maximize() -> None:
    free = Minimize("bulk_modulus", weight=3.0)
    torch.testing.assert_close(free.loss(_y(1.0, -2.0)), torch.tensor([3.0, -6.0], dtype=torch.float64))
    capped = Minimize("bulk_modulus", threshold=-0.5, cap=-1.0)
    torch.testing.assert_close(capped.loss(_y(0.0, -1.0, -2.0)), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    assert capped.satisfied(_y(-0.4, -0.6, -3.0)).tolist() == [False, True, True]


def test_satisfied_uses_threshold_or_finiteness() -> None:
    assert Maximize("bulk_modulus", threshold=100.0).satisfied(_y(100.0, 100.1, 50.0)).tolist() == [False, True, False]
    nan = float("nan")
    assert Maximize("bulk_modulus").satisfied(_y(-1e9, 5.0, nan)).tolist() == [True, True, False]
    assert Minimize("bulk_modulus").satisfied(_y(1e9, nan)).tolist() == [True, False]


def test_validation() -> None:
    with pytest.raises(ConfigError, match="cap must be ≥ threshold"):
        Maximize("bulk_modulus", threshold=100.0, cap=50.0)
    with pytest.raises(ConfigError, match="cap must be ≤ threshold"):
        Minimize("formation_energy", threshold=-0.5, cap=0.0)
    with pytest.raises(ConfigError, match="use minimize"):
        Maximize("bulk_modulus", weight=-1.0)
    Maximize("bulk_modulus", threshold=100.0, cap=100.0)  # equal is allowed


def test_describe_serialise_and_sum() -> None:
    assert Maximize("bulk_modulus").describe() == "maximize bulk_modulus"
    assert Minimize("formation_energy", threshold=-0.5).describe() == "minimize formation_energy (< -0.5)"
    term = Maximize("bulk_modulus", threshold=100.0, cap=200.0, weight=0.01)
    assert objective_to_dict(term) == {"kind": "maximize", "property": "bulk_modulus", "threshold": 100.0,
                                       "cap": 200.0, "weight": 0.01}  # fmt: skip
    assert pickle.loads(pickle.dumps(term)) == term
    assert OBJECTIVE_KINDS["maximize"] is Maximize and OBJECTIVE_KINDS["minimize"] is Minimize
    assert list(OBJECTIVE_KINDS) == ["window", "range", "below", "above", "maximize", "minimize"]
    loss = total_loss([Maximize("bulk_modulus"), Minimize("bulk_modulus", weight=0.5)], _y(4.0))
    torch.testing.assert_close(loss, torch.tensor([-2.0], dtype=torch.float64))


def test_history_plot_draws_open_ended_terms(tmp_path) -> None:  # noqa: ANN001
    import numpy as np

    from smoacs.io.plots import plot_history

    history = {"bulk_modulus": np.linspace(50, 150, 12).reshape(4, 3), "efermi": np.zeros((4, 3))}
    terms = [Maximize("bulk_modulus", threshold=100.0, cap=140.0), Minimize("efermi")]
    plot_history(tmp_path / "history.png", history, terms, np.zeros(3))
    assert (tmp_path / "history.png").stat().st_size > 0
