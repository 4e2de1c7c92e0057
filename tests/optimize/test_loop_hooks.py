"""Hooks of the optimiser that the composition polish uses: ``freeze`` and ``values_at``."""

from __future__ import annotations

import torch

from conftest import ToyPredictor
from smoacs.design import DesignSpace
from smoacs.objectives import Window
from smoacs.optimize import OptimizerSettings
from smoacs.optimize.loop import DesignOptimizer
from smoacs.templates import perovskite_templates


def _space(n: int) -> DesignSpace:
    return DesignSpace(perovskite_templates(n, seed=3, length_range=(5.5, 6.5)), seed=0)


def test_freeze_keeps_a_crystal_out_of_every_step() -> None:
    space = _space(4)
    logits = space.element_logits.detach().clone()
    optimizer = DesignOptimizer(space, [ToyPredictor()], [Window("band_gap", 0.0, 0.0, 0.01)],
                                OptimizerSettings(steps=5, copy_mutate_steps=()))  # fmt: skip
    optimizer.freeze(torch.tensor([True, False, False, False]))
    optimizer.run()
    rows = space.site_rows(torch.tensor([0]))
    assert torch.equal(space.element_logits.detach()[rows], logits[rows])
    assert not torch.equal(space.element_logits.detach(), logits)
    assert optimizer.quarantine == {}


def test_values_at_a_low_temperature_are_the_discrete_compositions_values() -> None:
    space = _space(3)
    optimizer = DesignOptimizer(space, [ToyPredictor()], [Window("band_gap", 0.0, 0.0, 0.01)], OptimizerSettings(steps=1))
    values = optimizer.values_at(1e-6)
    expected = ToyPredictor()(space.discretize().crystals)
    assert torch.allclose(values["band_gap"].double(), expected, atol=1e-5)
    assert not values["band_gap"].requires_grad and "min_distance" in values
