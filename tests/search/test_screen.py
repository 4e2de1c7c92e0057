"""search.screen: the single-anion screen at equilibrium, placing its starts, and keeping them out of the search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ToyPredictor
from smoacs.chem.elements import element_index
from smoacs.chem.radii import ox_index, radius_table
from smoacs.config import RunConfig
from smoacs.design import DesignSpace, SpaceSettings
from smoacs.errors import ConfigError
from smoacs.objectives import Window
from smoacs.physics.toy import LennardJonesPotential
from smoacs.search.enumerate import candidate_templates, set_template_compositions
from smoacs.search.gradient import search as gradient_search
from smoacs.search.screen import (
    PREFIX, ScreenSettings, apply_screened, equilibrium_lattice_constant, ideal_lattice_constant, place, screen,
)  # fmt: skip
from smoacs.optimize.loop import OptimizerSettings
from smoacs.templates import perovskite_templates
from smoacs.templates.base import Template

SPACE = SpaceSettings()


def _pool(step: int = 211) -> DesignSpace:
    templates = candidate_templates(perovskite_templates(1, seed=3), SPACE, "single")[::step]
    space = DesignSpace(templates, SPACE)
    set_template_compositions(space)
    return space


def test_ideal_lattice_constant_is_twice_the_b_x_radius_sum() -> None:
    space = _pool()
    radii = radius_table()
    expected = []
    for template, combo in zip(space.templates, space.templates, strict=True):
        b, x = template.species[1], template.species[2]
        b_ox, x_ox = int(combo.ox_combos[0, 1]), int(combo.ox_combos[0, 2])
        expected.append(2 * (radii[element_index(b), ox_index(b_ox)] + radii[element_index(x), ox_index(x_ox)]))
    assert torch.allclose(ideal_lattice_constant(space), torch.tensor(expected, dtype=torch.float64), atol=1e-5)


def test_equilibrium_lattice_constant_finds_the_minimum_of_the_potential_energy() -> None:
    space = _pool(step=401)
    potential = LennardJonesPotential(sigma=2.2, epsilon=0.1, cutoff=7.0)
    start = 4.6 * torch.tensor([0.93, 0.97, 1.0, 1.03, 1.07], dtype=torch.float64)  # the minimum is ≈ 4.595 Å
    a_eq = equilibrium_lattice_constant(space, potential, start)
    grid = torch.linspace(0.8, 1.2, 801, dtype=torch.float64)
    from smoacs.search.screen import _cubic_energy

    energies = torch.stack([_cubic_energy(space, potential, a_eq * g) for g in grid])  # [801, B]
    brute = a_eq * grid[energies.argmin(dim=0)]
    assert torch.allclose(a_eq, brute, rtol=2e-3)
    assert bool((a_eq != start).all())


def _objectives(target: float) -> tuple[Window]:
    return (Window("band_gap", target, 0.01, 0.05),)


def test_screen_returns_only_compositions_meeting_the_objectives_at_equilibrium() -> None:
    template = perovskite_templates(1, seed=3)[0]
    predictor = ToyPredictor("band_gap")
    potential = LennardJonesPotential(sigma=2.2, epsilon=0.1, cutoff=7.0)
    # toy value at the LJ minimum (a ≈ 4.595 Å for every composition): 2.69 + mean Z / 100
    chosen, report = screen(template, SPACE, [predictor], _objectives(3.0), ScreenSettings(candidates=6), 0.5, potential)
    assert report.pool == 1792 and report.shortlisted == 48
    assert 0 < len(chosen) <= 6 and report.chosen == [t.name for t in chosen]
    assert all(t.name.startswith(PREFIX) and t.n_combos == 1 and len(t.species) == 5 for t in chosen)
    space = DesignSpace(chosen, SPACE)
    set_template_compositions(space)
    values = predictor.final(space.discretize().crystals)
    assert bool(((values - 3.0).abs() <= 0.05).all())  # the verdict's margin, at the screened cell
    assert np.allclose([t.lengths[0] for t in chosen], 4.595, atol=0.01)  # at the potential's equilibrium
    assert all(np.allclose(t.lengths, t.lengths[0]) for t in chosen)  # cubic
    assert len({t.species for t in chosen}) == len(chosen)


def test_screen_refuses_templates_it_cannot_list() -> None:
    supercell = perovskite_templates(1, seed=0, supercell=2)[0]
    with pytest.raises(ConfigError, match="perovskite unit-cell"):
        screen(supercell, SPACE, [ToyPredictor()], _objectives(5.0), ScreenSettings(candidates=2), 0.5)
    general = Template("pair", np.full(3, 4.0), np.full(3, 90.0), np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]]),
                       np.array([[1, -1]]), np.array([-1, -1]))  # fmt: skip
    with pytest.raises(ConfigError, match="perovskite unit-cell"):
        screen(general, SPACE, [ToyPredictor()], _objectives(5.0), ScreenSettings(candidates=2), 0.5)
    assert screen(general, SPACE, [ToyPredictor()], _objectives(5.0), ScreenSettings(candidates=0), 0.5)[0] == []


def test_place_replaces_the_last_templates_and_marks_them() -> None:
    templates = perovskite_templates(5, seed=0)
    starts = candidate_templates(templates, SPACE, "single")[:2]
    placed, screened = place(templates, starts)
    assert [t.name for t in placed] == [t.name for t in templates[:3]] + [t.name for t in starts]
    assert screened.tolist() == [False, False, False, True, True]
    placed, screened = place(templates[:1], starts)
    assert len(placed) == 1 and screened.tolist() == [True]


def test_screened_starts_keep_their_composition_and_geometry_and_the_rest_is_untouched() -> None:
    templates = perovskite_templates(6, seed=1)
    starts = candidate_templates(templates, SPACE, "single")[100:102]
    placed, screened = place(templates, starts)
    reference = DesignSpace(templates, SPACE, seed=4)
    space = DesignSpace(placed, SPACE, seed=4)
    frozen = apply_screened(space, screened)
    assert frozen.tolist() == screened.tolist()
    species = space.discretize().crystals.species_probs.argmax(dim=-1)
    rows = space.site_rows(torch.tensor([4, 5]))
    assert species[rows].tolist() == [element_index(s) for t in starts for s in t.species]
    others = space.site_rows(torch.arange(4))
    assert torch.equal(space.element_logits[others], reference.element_logits[others])  # same seeded draws
    lattice, frac = space.lattice().detach().clone(), space.frac_coords().detach().clone()
    settings = OptimizerSettings(steps=6, copy_mutate_steps=(3,), top_ratio=0.5, keep_probability=0.0)
    predictor = ToyPredictor("band_gap")
    gradient_search(space, [predictor], _objectives(5.0), settings, seed=0, frozen=frozen)
    after = space.discretize().crystals.species_probs.argmax(dim=-1)
    assert after[rows].tolist() == species[rows].tolist()
    assert torch.equal(space.lattice().detach()[4:], lattice[4:])
    assert torch.equal(space.frac_coords().detach()[rows], frac[rows])
    assert not torch.equal(space.lattice().detach()[:4], lattice[:4])  # the others were searched


def test_set_composition_rows_checks_admissibility() -> None:
    space = DesignSpace(perovskite_templates(3, seed=0), SPACE)
    with pytest.raises(ValueError, match="not allowed"):
        space.set_composition_rows(torch.tensor([1]), torch.tensor([0]), torch.full((5,), element_index("He")))
    with pytest.raises(ValueError, match="expected"):
        space.set_composition_rows(torch.tensor([1]), torch.tensor([0]), torch.zeros(4, dtype=torch.long))


def test_screen_is_a_fraction_of_the_candidates_in_the_physics_section() -> None:
    from smoacs.presets import build_config

    config = build_config("perovskite-bandgap", 2.5, "unused")
    assert config.physics.screen == 0.125
    with pytest.raises(ConfigError, match="fraction"):
        config.with_overrides(physics={"screen": 1.5}).validate()
    with pytest.raises(ConfigError, match="fraction"):
        config.with_overrides(physics={"screen": -0.1}).validate()
    assert build_config("wide-bandgap", 4.0, "unused").physics.screen == 0.0


def test_run_config_records_the_screen() -> None:
    from smoacs.options import RunOptions, run_config

    config: RunConfig = run_config(RunOptions(preset="perovskite-bandgap", target=2.5, screen=0.25))
    assert config.physics.screen == 0.25
    assert run_config(RunOptions(preset="perovskite-bandgap", target=2.5, screen=0)).physics.screen == 0.0
