"""CrystalBatch: construction, validation, pymatgen round trips, Cartesian coordinates and volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from smoacs.chem.elements import N_ELEMENTS, element_index
from smoacs.crystal import CrystalBatch


def test_from_structures_layout(rock_salt: Structure, srtio3: Structure, dtype: torch.dtype) -> None:
    batch = CrystalBatch.from_structures([rock_salt, srtio3], dtype=dtype)
    assert batch.n_crystals == 2
    assert batch.n_atoms.tolist() == [8, 5]
    assert batch.crystal_idx.tolist() == [0] * 8 + [1] * 5
    assert batch.atom_offsets.tolist() == [0, 8]
    assert batch.lattice.dtype == dtype and batch.species_probs.dtype == dtype
    assert torch.all(batch.species_probs.sum(-1) == 1)
    assert batch.hard_species()[8:].tolist() == [element_index(s) for s in ("Sr", "Ti", "O", "O", "O")]


def test_cart_coords_and_volumes_match_pymatgen(random_structures: list[Structure]) -> None:
    batch = CrystalBatch.from_structures(random_structures, dtype=torch.float64)
    expected = np.concatenate([s.cart_coords for s in random_structures])
    np.testing.assert_allclose(batch.cart_coords().numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(batch.volumes().numpy(), [s.volume for s in random_structures], rtol=1e-12)


def test_to_structures_round_trip_wraps(random_structures: list[Structure]) -> None:
    batch = CrystalBatch.from_structures(random_structures, dtype=torch.float64)
    batch.frac_coords = batch.frac_coords + 2.0  # unwrapped by whole cells
    for original, back in zip(random_structures, batch.to_structures(), strict=True):
        assert back.composition == original.composition
        np.testing.assert_allclose(back.lattice.matrix, original.lattice.matrix, atol=1e-12)
        assert np.all((back.frac_coords >= 0) & (back.frac_coords < 1))
        np.testing.assert_allclose(back.frac_coords, np.mod(original.frac_coords, 1.0), atol=1e-9)


def test_soft_species_use_argmax() -> None:
    probs = torch.zeros(2, N_ELEMENTS)
    probs[0, element_index("Ba")] = 0.6
    probs[0, element_index("Sr")] = 0.4
    probs[1, element_index("O")] = 1.0
    batch = CrystalBatch(torch.eye(3)[None] * 4, torch.tensor([[0.0, 0, 0], [0.5, 0.5, 0.5]]), probs,
                         torch.tensor([0, 0]), torch.tensor([2]))  # fmt: skip
    assert batch.to_structures()[0].composition.reduced_formula == "BaO"


def test_detach_and_to_keep_values() -> None:
    lattice = (torch.eye(3)[None] * 3.0).requires_grad_()
    batch = CrystalBatch.from_species(lattice, torch.zeros(1, 3), torch.tensor([25]), torch.tensor([1]))
    detached = batch.detach()
    assert not detached.lattice.requires_grad and torch.equal(detached.lattice, lattice.detach())
    assert batch.to("cpu").device.type == "cpu"


@pytest.mark.parametrize(
    ("lattice", "frac", "probs", "message"),
    [
        (torch.zeros(1, 9), torch.zeros(1, 3), torch.zeros(1, N_ELEMENTS), "lattice must have shape"),
        (torch.zeros(1, 3, 3), torch.zeros(1, 2), torch.zeros(1, N_ELEMENTS), "frac_coords must have shape"),
        (torch.zeros(1, 3, 3), torch.zeros(1, 3), torch.zeros(1, 92), "species_probs must have shape"),
    ],
)
def test_shape_validation(lattice: torch.Tensor, frac: torch.Tensor, probs: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrystalBatch(lattice, frac, probs, torch.tensor([0]), torch.tensor([1]))


def test_disordered_structure_rejected() -> None:
    disordered = Structure(Lattice.cubic(4.0), [{"Sr": 0.5, "Ba": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="disordered"):
        CrystalBatch.from_structures([disordered])
