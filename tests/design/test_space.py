"""DesignSpace: hard masks, normalisation, discretisation, bounds, frozen angles and the tolerance factor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pymatgen.core import Structure

from conftest import choose_composition
from smoacs.chem import allowed_elements, crystal_radius
from smoacs.chem.elements import ELEMENTS
from smoacs.design import DesignSpace, SpaceSettings
from smoacs.templates import perovskite_templates
from smoacs.templates.files import general_from_structure


def _scramble(space: DesignSpace, seed: int = 0, scale: float = 5.0) -> None:
    """Large random logits, so masks and normalisation are tested far from the near-uniform initialisation."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("element_logits", "combo_logits", "coord_raw", "length_raw", "angle_raw"):
            param = getattr(space, name)
            param.copy_(scale * torch.randn(param.shape, generator=generator))


@pytest.fixture
def perovskites() -> DesignSpace:
    return DesignSpace(perovskite_templates(4, seed=0), SpaceSettings(), seed=0)


@pytest.fixture
def mixed(rock_salt: Structure) -> DesignSpace:
    """Perovskites and a general template (different atom and pattern counts) in one space."""
    return DesignSpace([*perovskite_templates(2, seed=1), general_from_structure(rock_salt, "nacl")], seed=0)


def _allowed_sets(space: DesignSpace) -> list[set[int]]:
    """Per site: union over the crystal's patterns of the elements allowed at the site's oxidation state."""
    out = []
    for template in space.templates:
        for site in range(template.n_atoms):
            allowed: set[int] = set()
            for state in template.ox_combos[:, site]:
                allowed |= set(np.flatnonzero(allowed_elements(int(state), ionic=space.settings.ionic_masks)))
            out.append(allowed)
    return out


@pytest.mark.parametrize("space_name", ["perovskites", "mixed"])
def test_masks_are_hard(space_name: str, request: pytest.FixtureRequest) -> None:
    space: DesignSpace = request.getfixturevalue(space_name)
    _scramble(space)
    soft = space.realize(1e-2)
    probs = soft.crystals.species_probs.detach()
    for site, allowed in enumerate(_allowed_sets(space)):
        outside = np.setdiff1d(np.arange(len(ELEMENTS)), sorted(allowed))
        assert torch.all(probs[site, outside] == 0), f"site {site} has probability on a disallowed element"
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(probs)), atol=1e-5, rtol=0)
    torch.testing.assert_close(soft.combo_probs.sum(-1), torch.ones(space.n_crystals), atol=1e-5, rtol=0)
    # Per pattern the conditional probabilities are zero outside that pattern's mask.
    conditional = space.conditional_probs(1e-2).detach()
    assert torch.all(conditional[~space.element_mask] == 0)


def test_padding_patterns_get_no_probability(mixed: DesignSpace) -> None:
    _scramble(mixed)
    combo = mixed.realize(1.0).combo_probs.detach()
    assert torch.all(combo[~mixed.combo_valid] == 0)
    assert mixed.combo_valid[:2, :2].all()


@pytest.mark.parametrize("space_name", ["perovskites", "mixed"])
def test_discretize_is_admissible_and_neutral(space_name: str, request: pytest.FixtureRequest) -> None:
    space: DesignSpace = request.getfixturevalue(space_name)
    _scramble(space, seed=3)
    design = space.discretize()
    crystals = design.crystals
    assert crystals.lattice.dtype == torch.float64
    frac = crystals.frac_coords
    assert torch.all((frac >= 0) & (frac < 1))
    expected = torch.remainder(space.frac_coords().detach().double(), 1.0)
    torch.testing.assert_close(frac, expected)
    species = crystals.hard_species()
    start = 0
    for c, template in enumerate(space.templates):
        pattern = template.ox_combos[int(design.combo[c])]
        states = design.ox_states[start : start + template.n_atoms].numpy()
        np.testing.assert_array_equal(states, pattern)
        assert states.sum() == 0
        for site, state in enumerate(states):
            assert allowed_elements(int(state), ionic=True)[int(species[start + site])]
        start += template.n_atoms
    # The chosen pattern is the argmax of P(k) and the elements the limit T → 0 of the soft realisation.
    soft = space.realize(1e-6)
    assert torch.equal(soft.combo_probs.argmax(-1), design.combo)
    assert torch.equal(soft.crystals.species_probs.argmax(-1), species)


def test_lengths_stay_inside_bounds() -> None:
    settings = SpaceSettings(length_bounds=(2.5, 9.0))
    space = DesignSpace(perovskite_templates(3, seed=0), settings)
    for value in (-1e4, -30.0, 0.0, 30.0, 1e4):
        with torch.no_grad():
            space.length_raw.fill_(value)
        lengths = space.lengths()
        assert torch.isfinite(lengths).all()
        assert torch.all((lengths >= 2.5) & (lengths <= 9.0))
    with torch.no_grad():
        space.length_raw.copy_(torch.tensor([[-1e4, 0.0, 1e4]]).expand(3, 3))
    torch.testing.assert_close(space.lengths()[0], torch.tensor([2.5, 5.75, 9.0]))


def test_lengths_initialised_at_template_values() -> None:
    templates = perovskite_templates(3, seed=5)
    space = DesignSpace(templates)
    np.testing.assert_allclose(space.lengths().detach().numpy(), [t.lengths for t in templates], rtol=1e-5)
    np.testing.assert_allclose(space.frac_coords().detach().numpy(), np.concatenate([t.frac_coords for t in templates]))


def test_out_of_bounds_template_rejected() -> None:
    with pytest.raises(ValueError, match="length_bounds"):
        DesignSpace(perovskite_templates(1, seed=0, length_range=(3.0, 7.0)), SpaceSettings(length_bounds=(4.0, 5.0)))


def test_coordinates_within_bound(perovskites: DesignSpace) -> None:
    with torch.no_grad():
        perovskites.coord_raw.copy_(1e3 * torch.randn(perovskites.coord_raw.shape, generator=torch.Generator().manual_seed(0)))
    displacement = (perovskites.frac_coords() - perovskites.frac0).abs()
    assert torch.all(displacement <= 0.15 + 1e-6)
    assert displacement.max() > 0.149


def test_general_template_coordinates_are_free(mixed: DesignSpace) -> None:
    with torch.no_grad():
        mixed.coord_raw.fill_(0.7)
    displacement = (mixed.frac_coords() - mixed.frac0).detach()
    torch.testing.assert_close(displacement[10:], torch.full_like(displacement[10:], 0.7))


def test_angles_frozen_for_perovskites(mixed: DesignSpace) -> None:
    _scramble(mixed)
    angles = mixed.angles().detach()
    assert torch.all(angles[:2] == 90.0)
    lattice = mixed.lattice().detach()[:2]
    gram = lattice @ lattice.transpose(1, 2)
    off_diagonal = gram - torch.diag_embed(torch.diagonal(gram, dim1=1, dim2=2))
    assert off_diagonal.abs().max() < 1e-4
    assert not torch.allclose(angles[2], torch.full((3,), 90.0)), "the general template's angles are free"
    assert torch.all((angles[2] >= 60) & (angles[2] <= 120))
    # No gradient reaches a perovskite's angle parameters.
    mixed.angles().sum().backward()
    assert torch.all(mixed.angle_raw.grad[:2] == 0) and torch.any(mixed.angle_raw.grad[2] != 0)


def test_tolerance_factor_of_srtio3(perovskites: DesignSpace) -> None:
    choose_composition(perovskites, 1, pattern=1, symbols=["Sr", "Ti", "O", "O", "O"])
    design = perovskites.discretize()
    species = design.crystals.hard_species()[5:10].tolist()
    assert [ELEMENTS[e] for e in species] == ["Sr", "Ti", "O", "O", "O"]
    r_a, r_b, r_x = crystal_radius("Sr", 2), crystal_radius("Ti", 4), crystal_radius("O", -2)
    expected = (r_a + r_x) / (math.sqrt(2) * (r_b + r_x))
    assert float(design.tolerance[1]) == pytest.approx(expected, rel=1e-6)
    # The soft tolerance factor converges to it at low temperature.
    assert float(perovskites.realize(1e-3).tolerance[1].detach()) == pytest.approx(expected, rel=1e-4)


def test_tolerance_undefined_without_roles(mixed: DesignSpace) -> None:
    tolerance = mixed.realize(1e-2).tolerance
    assert torch.isfinite(tolerance[:2]).all() and torch.isnan(tolerance[2])


def test_realize_is_differentiable(perovskites: DesignSpace) -> None:
    soft = perovskites.realize(0.5)
    weights = torch.randn(soft.crystals.species_probs.shape, generator=torch.Generator().manual_seed(0))
    loss = (soft.crystals.species_probs * weights).sum() + soft.crystals.lattice.sum() + soft.crystals.frac_coords.sum()
    loss = loss + soft.tolerance.sum()
    loss.backward()
    for name in ("length_raw", "coord_raw", "element_logits", "combo_logits"):
        grad = getattr(perovskites, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
