"""Composition polish: relax, then composition-only steps at the relaxed geometry for those that miss an objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ToyPredictor
from smoacs.crystal import CrystalBatch, lattice_from_parameters, lattice_to_parameters
from smoacs.design import DesignSpace, Provenance
from smoacs.errors import ConfigError
from smoacs.objectives import Window
from smoacs.optimize import OptimizerSettings
from smoacs.physics.polish import (
    PolishSettings, beyond_bounds, escape_donors, mutated_copies, polish, polish_settings, satisfied_now,
)
from smoacs.physics.relax import RelaxSettings, perturb_positions
from smoacs.physics.settings import PhysicsSettings
from smoacs.physics.toy import LennardJonesPotential
from smoacs.templates import perovskite_templates

POTENTIAL = LennardJonesPotential(sigma=2.6, epsilon=0.05)
QUICK = PolishSettings(rounds=1, steps=20, relax=RelaxSettings(fmax=0.05, max_steps=200))


def _space(n: int = 6) -> DesignSpace:
    return DesignSpace(perovskite_templates(n, seed=3, length_range=(5.5, 6.5)), seed=0)


def _hard_value(space: DesignSpace) -> torch.Tensor:
    return ToyPredictor()(space.discretize().crystals)


WIDE = Window("band_gap", 5.0, 5.0, 5.0)  # every toy value in [0, 10] passes: nothing is polished


def _relaxed(n: int = 6) -> DesignSpace:
    """The design space with its geometry at the relaxed cells and its composition unchanged (a polish that has
    nothing to polish)."""
    space = _space(n)
    polish(space, [ToyPredictor()], [WIDE], POTENTIAL, QUICK, seed=0)
    return space


def test_polish_moves_the_geometry_to_the_relaxed_cell_and_the_composition_towards_the_target() -> None:
    space, relaxed = _space(), _relaxed()
    target = float(_hard_value(relaxed).min()) - 0.15  # every candidate misses it at its relaxed geometry
    objective = Window("band_gap", target, 0.01, 0.05)
    report = polish(space, [ToyPredictor()], [objective], POTENTIAL, QUICK, seed=0)
    assert torch.allclose(space.lengths(), relaxed.lengths())  # same relaxed cell: the geometry did not move
    assert not torch.allclose(space.lengths(), _space().lengths())  # and it is not the design's starting cell
    before, after = _hard_value(relaxed), _hard_value(space)  # the same geometry, old and polished compositions
    assert bool(((after - target).abs() < (before - target).abs()).all()), (before, after, target)
    assert report.polished == [space.n_crystals] and report.changed[0] > 0
    assert report.relax_s > 0 and set(report.timings()) == {"polish_relax_s", "polish_optimize_s", "polished", "polish_changed", "polish_replaced"}


def test_candidates_meeting_the_objectives_at_the_relaxed_geometry_are_left_alone() -> None:
    space = _space()
    species = space.discretize().crystals.species_probs.argmax(-1)
    report = polish(space, [ToyPredictor()], [WIDE], POTENTIAL, QUICK, seed=0)
    assert report.polished == [0] and report.changed == [0]
    assert torch.equal(space.discretize().crystals.species_probs.argmax(-1), species)


def test_rounds_are_counted_and_zero_steps_is_refused_by_the_settings() -> None:
    space = _space(3)
    report = polish(space, [ToyPredictor()], [Window("band_gap", 0.0, 0.0, 0.01)], POTENTIAL,
                    PolishSettings(rounds=2, steps=2, relax=RelaxSettings(max_steps=20)), seed=1)  # fmt: skip
    assert len(report.polished) == 2 and len(report.changed) == 2
    with pytest.raises(ConfigError, match="polish_steps"):
        PhysicsSettings(polish_steps=0)
    with pytest.raises(ConfigError, match="polish_rounds"):
        PhysicsSettings(polish_rounds=-1)


def test_polish_settings_follow_the_physics_section() -> None:
    assert polish_settings(PhysicsSettings(potential="none"), None) is None
    assert polish_settings(PhysicsSettings(polish_rounds=0), None) is None
    settings = polish_settings(PhysicsSettings(polish_rounds=2, polish_steps=7, fmax=0.1, max_steps=50, perturb=0.01), None)
    assert settings is not None
    assert (settings.rounds, settings.steps, settings.perturb) == (2, 7, 0.01)
    assert (settings.relax.fmax, settings.relax.max_steps) == (0.1, 50)
    assert polish_settings(PhysicsSettings(polish_replace=True), None).replace_escaped


def test_satisfied_now_scores_the_discrete_composition() -> None:
    space = _space(4)
    value = _hard_value(space)
    objective = Window("band_gap", float(value[0]), 0.0, 1e-5)  # candidate 0 sits on the target
    ok = satisfied_now(space, [ToyPredictor()], [objective], OptimizerSettings())
    assert bool(ok[0])
    assert torch.equal(ok, (value - value[0]).abs() <= 1e-5)


def test_perturb_positions_moves_every_atom_by_the_distance_reproducibly() -> None:
    crystals = _space(3).discretize().crystals
    moved = perturb_positions(crystals, 0.02, seed=5)
    again = perturb_positions(crystals, 0.02, seed=5)
    delta = torch.einsum("ni,nij->nj", moved.frac_coords - crystals.frac_coords, crystals.lattice[crystals.crystal_idx])
    assert torch.allclose(delta.norm(dim=-1), torch.full((len(delta),), 0.02, dtype=delta.dtype), atol=1e-9)
    assert torch.equal(moved.frac_coords, again.frac_coords)
    assert not torch.equal(moved.frac_coords, perturb_positions(crystals, 0.02, seed=6).frac_coords)


# ---- candidates whose relaxed structure leaves the template's bounds (physics.polish_replace) ----------------------


def test_beyond_bounds_flags_only_crystals_with_a_site_past_its_bound() -> None:
    space = _space(4)
    crystals = space.discretize().crystals
    assert not bool(beyond_bounds(space, crystals).any())
    frac = crystals.frac_coords.clone()
    site = int(space.site_rows(torch.tensor([2]))[1])
    frac[site, 0] = space.frac0[site, 0] + float(space.coord_bound[site]) + 0.01
    moved = CrystalBatch(crystals.lattice, frac, crystals.species_probs, crystals.crystal_idx, crystals.n_atoms)
    assert beyond_bounds(space, moved).tolist() == [False, False, True, False]


def test_escaped_candidates_get_a_donor_composition_with_one_site_mutated() -> None:
    space = _space(6)
    design = space.discretize()
    species = design.crystals.species_probs.argmax(dim=-1)
    receivers = torch.tensor([True, True, False, False, False, False])
    donors = torch.tensor([False, False, True, True, False, False])
    generator = torch.Generator().manual_seed(0)
    pairs = escape_donors(space, receivers, donors, generator)
    assert pairs[:, 1].tolist() == [0, 1] and set(pairs[:, 0].tolist()) <= {2, 3}
    combo, mutated = mutated_copies(space, pairs, design.combo, species, generator)
    for donor, receiver in pairs.tolist():
        assert combo[receiver] == combo[donor]
        differs = mutated[space.site_rows(torch.tensor([receiver]))] != species[space.site_rows(torch.tensor([donor]))]
        assert int(differs.sum()) == 1  # the donor's elements, one site changed
    others = space.site_rows(torch.tensor([2, 3, 4, 5]))
    assert torch.equal(mutated[others], species[others])
    space.set_composition(combo, mutated)  # admissible: same pattern, an allowed element at the changed site
    assert escape_donors(space, receivers, torch.zeros(6, dtype=torch.bool), generator).shape == (0, 2)


def test_polish_replaces_escaped_candidates_on_their_donors_geometry(monkeypatch: pytest.MonkeyPatch) -> None:
    import smoacs.physics.polish as module

    escaped = torch.tensor([True, False, False, False, False, False])
    monkeypatch.setattr(module, "beyond_bounds", lambda space, crystals: escaped.clone())
    space = _space(6)
    report = polish(space, [ToyPredictor()], [WIDE], POTENTIAL,
                    PolishSettings(rounds=1, steps=2, relax=QUICK.relax, replace_escaped=True), seed=0)  # fmt: skip
    assert report.replaced == [1] and report.polished == [1]
    assert report.timings()["polish_replaced"] == 1
    ((donor, receiver),) = report.donors
    assert receiver == 0 and 1 <= donor < 6
    assert torch.allclose(space.lengths()[0], space.lengths()[donor])  # the donor's relaxed cell
    provenance = Provenance(history={}, quarantine={}, template_index=np.array([0, 1, 1, 1, 2, 2]), copied_from=np.full(6, -1))
    report.record_copies(provenance)  # result.csv's copied_from and template name the donor
    assert provenance.copied_from.tolist() == [donor, -1, -1, -1, -1, -1]
    assert provenance.template_index[0] == provenance.template_index[donor]
    off = polish(_space(6), [ToyPredictor()], [WIDE], POTENTIAL, PolishSettings(rounds=1, steps=2, relax=QUICK.relax), seed=0)
    assert off.replaced == [] and off.polished == [0]


def test_left_template_adds_the_verdicts_angle_test_for_perovskites() -> None:
    from smoacs.physics.polish import left_template

    space = _space(4)
    crystals = space.discretize().crystals
    lattice = crystals.lattice.clone()
    lengths, angles = lattice_to_parameters(lattice.double())
    angles[1, 2] = 80.0  # sheared: the sites stay where they were, in fractional units
    lattice[1] = lattice_from_parameters(lengths[1:2], angles[1:2]).to(lattice)[0]
    sheared = CrystalBatch(lattice, crystals.frac_coords, crystals.species_probs, crystals.crystal_idx, crystals.n_atoms)
    assert not bool(beyond_bounds(space, sheared).any())  # coordinates alone do not see it
    assert left_template(space, sheared, (85.0, 95.0)).tolist() == [False, True, False, False]
    assert not bool(left_template(space, sheared, None).any())
    assert polish_settings(PhysicsSettings(), (85.0, 95.0)).angle_range == (85.0, 95.0)  # the verdict's, from the runner
