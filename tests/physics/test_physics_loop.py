"""Physics in the loop: the geometry follows a potential's energy, the composition follows the objectives."""

from __future__ import annotations

import torch
from torch import Tensor

from conftest import ToyPredictor
from smoacs.crystal.batch import CrystalBatch
from smoacs.design import DesignSpace
from smoacs.objectives import Window
from smoacs.optimize import OptimizerSettings
from smoacs.optimize.loop import DesignOptimizer
from smoacs.physics.loop import PotentialGeometry
from smoacs.physics.toy import LennardJonesPotential
from smoacs.templates import perovskite_templates

SETTINGS = OptimizerSettings(steps=30, copy_mutate_steps=(), rebuild_every=5)


class FlatEnergy:
    """A driver whose energy does not depend on the geometry (zero gradient)."""

    every = 1

    def energy(self, crystals: CrystalBatch) -> Tensor:
        return 0.0 * crystals.lattice.sum(dim=(1, 2))

    def rebuild(self, crystals: CrystalBatch) -> None:
        pass


def _space() -> DesignSpace:
    return DesignSpace(perovskite_templates(4, seed=3, length_range=(5.5, 6.5)), seed=0)


def test_with_a_driver_the_objectives_move_only_the_composition() -> None:
    space = _space()
    lengths, logits = space.lengths().detach().clone(), space.element_logits.detach().clone()
    DesignOptimizer(space, [ToyPredictor()], [Window("band_gap", 1.0, 0.01, 0.1)], SETTINGS, geometry=FlatEnergy()).run()
    assert torch.equal(space.lengths().detach(), lengths)  # the toy value depends on the volume, yet no move
    assert not torch.equal(space.element_logits.detach(), logits)


def test_without_a_driver_the_same_objective_strains_the_cell() -> None:
    space = _space()
    lengths = space.lengths().detach().clone()
    DesignOptimizer(space, [ToyPredictor()], [Window("band_gap", 1.0, 0.01, 0.1)], SETTINGS).run()
    assert not torch.allclose(space.lengths().detach(), lengths)


def test_the_geometry_descends_the_potential_energy() -> None:
    space = _space()
    potential = LennardJonesPotential(sigma=2.6, epsilon=0.05)
    driver = PotentialGeometry(potential, every=1)

    def energy() -> Tensor:
        crystals = space.realize(1e-2).crystals.detach()
        potential.rebuild(crystals)
        return potential.compute(crystals, forces=False, stress=False).energy

    before = energy()
    result = DesignOptimizer(space, [ToyPredictor()], [Window("band_gap", 1.0, 0.01, 0.1)], SETTINGS, geometry=driver).run()
    after = energy()
    assert bool((after < before).all()), (before, after)
    assert result.geometry_time_s > 0


def test_driver_applied_every_k_steps_only() -> None:
    calls = []

    class Counting(FlatEnergy):
        every = 10

        def energy(self, crystals: CrystalBatch) -> Tensor:
            calls.append(1)
            return super().energy(crystals)

    DesignOptimizer(_space(), [ToyPredictor()], [Window("band_gap", 1.0, 0.01, 0.1)], SETTINGS, geometry=Counting()).run()
    assert len(calls) == 3  # steps 0, 10, 20 of 30


def test_with_a_driver_receivers_copy_the_donors_composition() -> None:
    space = DesignSpace(perovskite_templates(8, seed=3, length_range=(5.5, 6.5)), seed=0)
    settings = OptimizerSettings(steps=11, copy_mutate_steps=(10,), rebuild_every=5, keep_probability=0.0)
    optimizer = DesignOptimizer(space, [ToyPredictor()], [Window("band_gap", 1.0, 0.01, 0.1)], settings, geometry=FlatEnergy())
    optimizer.run()
    logits = space.element_logits.detach().view(8, 5, -1)
    copied = [(int(d), r) for r, d in enumerate(optimizer.copied_from) if d >= 0]
    assert copied, "copy-and-mutate replaced no candidate"
    for donor, receiver in copied:  # the donor's logits plus the small mutation noise (σ = logit_noise)
        assert float((logits[receiver] - logits[donor]).abs().max()) < 0.01
        assert float(logits[donor].abs().max()) > 0.01  # the donor's logits have grown: a copy, not a restart


def test_restart_mode_reinitialises_the_receivers_composition() -> None:
    space = DesignSpace(perovskite_templates(8, seed=3, length_range=(5.5, 6.5)), seed=0)
    settings = OptimizerSettings(steps=11, copy_mutate_steps=(10,), rebuild_every=5, keep_probability=0.0,
                                 mutate_composition="restart")  # fmt: skip
    optimizer = DesignOptimizer(space, [ToyPredictor()], [Window("band_gap", 1.0, 0.01, 0.1)], settings, geometry=FlatEnergy())
    optimizer.run()
    receivers = [r for r, d in enumerate(optimizer.copied_from) if d >= 0]
    start = [int(space.n_atoms[:r].sum()) for r in receivers]
    assert all(float(space.element_logits[s : s + 5].abs().max()) < 0.1 for s in start)  # fresh (tiny) logits
