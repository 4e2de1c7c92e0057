"""DesignSpace state: tagged fields, vectorised copy_crystals, discrete choices, set_composition / set_geometry."""

from __future__ import annotations

import pytest
import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.lattice import lattice_from_parameters
from smoacs.design import DesignSpace
from smoacs.templates import perovskite_templates


def _space(n: int = 4, seed: int = 0) -> DesignSpace:
    return DesignSpace(perovskite_templates(n, seed=seed), seed=seed)


def test_tagged_fields_cover_every_parameter_and_have_row_shapes() -> None:
    space = _space()
    names = {name for name, _ in space.named_parameters()}
    assert names <= set(space.CRYSTAL_FIELDS) | set(space.ATOM_FIELDS)
    for name in space.CRYSTAL_FIELDS:
        assert getattr(space, name).shape[0] == space.n_crystals, name
    for name in space.ATOM_FIELDS:
        assert getattr(space, name).shape[0] == int(space.n_atoms.sum()), name


def test_copy_crystals_copies_every_field_and_adds_noise() -> None:
    space = _space(4)
    with torch.no_grad():
        for parameter in space.parameters():
            parameter.normal_(generator=torch.Generator().manual_seed(1))
    before = {name: getattr(space, name).clone() for name in (*space.CRYSTAL_FIELDS, *space.ATOM_FIELDS)}
    noise = {"length_raw": torch.full((2, 3), 0.5), "coord_raw": torch.full((10, 3), 0.25)}
    fresh = torch.zeros(10, space.element_logits.shape[1])
    space.copy_crystals(torch.tensor([0, 1]), torch.tensor([3, 2]), noise, {"element_logits": fresh})
    sites = {c: slice(5 * c, 5 * c + 5) for c in range(4)}
    torch.testing.assert_close(space.length_raw[3], before["length_raw"][0] + 0.5)
    torch.testing.assert_close(space.length_raw[2], before["length_raw"][1] + 0.5)
    torch.testing.assert_close(space.combo_logits[3], before["combo_logits"][0])
    torch.testing.assert_close(space.coord_raw[sites[3]], before["coord_raw"][sites[0]] + 0.25)
    torch.testing.assert_close(space.frac0[sites[2]], before["frac0"][sites[1]])
    assert torch.all(space.element_logits[sites[3]] == 0) and torch.all(space.element_logits[sites[2]] == 0)
    for name in (*space.CRYSTAL_FIELDS, *space.ATOM_FIELDS):  # donors untouched
        torch.testing.assert_close(getattr(space, name)[:2] if name in space.CRYSTAL_FIELDS else
                                   getattr(space, name)[:10], before[name][:2] if name in space.CRYSTAL_FIELDS
                                   else before[name][:10])  # fmt: skip


def test_copy_crystals_rejects_different_sizes() -> None:
    cell = perovskite_templates(1, seed=0)[0]
    supercell = perovskite_templates(1, seed=0, supercell=2)[0]
    space = DesignSpace([cell, supercell])
    with pytest.raises(ValueError, match="equal atom counts"):
        space.copy_crystals(torch.tensor([0]), torch.tensor([1]))


def test_set_composition_makes_the_argmax() -> None:
    space = _space(3)
    choices = space.choices()
    patterns = torch.tensor([int(torch.nonzero(row)[-1]) for row in choices.valid_patterns])
    site_pattern = patterns[space.crystal_idx]
    allowed = choices.allowed_elements[torch.arange(len(site_pattern)), site_pattern]
    species = torch.tensor([int(torch.nonzero(row)[-1]) for row in allowed])  # the heaviest allowed element
    space.set_composition(patterns, species)
    design = space.discretize()
    assert torch.equal(design.combo, patterns)
    assert torch.equal(design.crystals.hard_species(), species)
    soft = space.realize(1e-2).crystals.species_probs
    assert torch.all(soft.argmax(dim=-1) == species)
    bad = species.clone()
    bad[0] = int(torch.nonzero(~allowed[0])[0])
    with pytest.raises(ValueError, match="not allowed"):
        space.set_composition(patterns, bad)


def test_set_geometry_round_trips_within_bounds() -> None:
    space = _space(3)
    target_lengths = torch.tensor([[4.0, 4.5, 5.0], [6.0, 6.0, 6.0], [3.5, 3.6, 3.7]])
    lattice = lattice_from_parameters(target_lengths, torch.full((3, 3), 90.0))
    shift = 0.05 * torch.sin(torch.arange(space.frac0.numel(), dtype=torch.float32)).view(-1, 3)
    frac = torch.remainder(space.frac0 + shift * space.coord_bound[:, None].clamp_max(1.0), 1.0)
    space.set_geometry(lattice, frac)
    torch.testing.assert_close(space.lengths(), target_lengths, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.remainder(space.frac_coords(), 1.0), frac, atol=1e-4, rtol=0)


def test_set_geometry_clamps_to_the_bounds() -> None:
    space = _space(2)
    lattice = lattice_from_parameters(torch.tensor([[50.0, 1.0, 4.0], [4.0, 4.0, 4.0]]), torch.full((2, 3), 90.0))
    frac = space.frac0 + 0.4  # far beyond each site's coordinate bound
    space.set_geometry(lattice, frac)
    lengths = space.lengths().detach()
    assert torch.all(lengths <= space.length_high) and torch.all(lengths >= space.length_low)
    assert float(lengths[0, 0]) > float(space.length_high[0, 0]) - 0.01
    assert float(lengths[0, 1]) < float(space.length_low[0, 1]) + 0.01
    displacement = (space.frac_coords().detach() - space.frac0).abs()
    assert torch.all(displacement <= space.coord_bound[:, None] + 1e-6)
    assert torch.all(torch.isfinite(space.length_raw)) and torch.all(torch.isfinite(space.coord_raw))


def test_set_from_a_crystal_batch() -> None:
    space = _space(2)
    design = space.discretize()
    other = _space(2, seed=5)
    other.set_from(CrystalBatch(design.crystals.lattice, design.crystals.frac_coords, design.crystals.species_probs,
                                design.crystals.crystal_idx, design.crystals.n_atoms))  # fmt: skip
    torch.testing.assert_close(other.lengths().double(), space.lengths().double(), atol=1e-4, rtol=1e-4)
