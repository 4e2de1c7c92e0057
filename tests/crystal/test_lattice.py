"""Lattice parameters ↔ matrices against pymatgen, and differentiability."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Lattice

from smoacs.crystal import lattice_from_parameters, lattice_to_parameters


def _params(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = rng.uniform(2.0, 10.0, (n, 3))
    angles = rng.uniform(70.0, 110.0, (n, 3))
    return lengths, angles


def test_metric_tensor_matches_pymatgen() -> None:
    lengths, angles = _params(np.random.default_rng(0), 20)
    lattice = lattice_from_parameters(torch.as_tensor(lengths), torch.as_tensor(angles)).numpy()
    for matrix, abc, ang in zip(lattice, lengths, angles, strict=True):
        reference = Lattice.from_parameters(*abc, *ang)
        np.testing.assert_allclose(matrix @ matrix.T, reference.metric_tensor, atol=1e-10)
        assert matrix[0, 1] == matrix[0, 2] == matrix[1, 2] == 0.0  # a along x, b in the xy plane


def test_parameters_round_trip(dtype: torch.dtype) -> None:
    lengths, angles = _params(np.random.default_rng(1), 20)
    lattice = lattice_from_parameters(torch.as_tensor(lengths, dtype=dtype), torch.as_tensor(angles, dtype=dtype))
    back_lengths, back_angles = lattice_to_parameters(lattice)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    np.testing.assert_allclose(back_lengths.double().numpy(), lengths, rtol=tol)
    np.testing.assert_allclose(back_angles.double().numpy(), angles, atol=tol * 100)
    angles_pmg = np.array([Lattice(m).angles for m in lattice.double().numpy()])
    np.testing.assert_allclose(back_angles.double().numpy(), angles_pmg, atol=tol * 100)


def test_impossible_angles_give_nan() -> None:
    lattice = lattice_from_parameters(torch.tensor([[3.0, 3.0, 3.0]]), torch.tensor([[170.0, 10.0, 90.0]]))
    assert torch.isnan(lattice[0, 2]).any() and torch.isfinite(lattice[0, :2]).all()


def test_gradcheck() -> None:
    lengths, angles = _params(np.random.default_rng(2), 3)
    inputs = (torch.as_tensor(lengths).requires_grad_(), torch.as_tensor(angles).requires_grad_())
    assert torch.autograd.gradcheck(lattice_from_parameters, inputs)


def test_angles_within_is_one_test_for_arrays_and_tensors() -> None:
    from smoacs.crystal.lattice import ANGLE_SLACK, angles_within

    angles = np.array([[90.0, 90.0, 90.0], [85.0, 95.0, 90.0], [84.99, 90.0, 90.0], [90.0, 90.0, 95.0 + ANGLE_SLACK / 2]])
    expected = [True, True, False, True]
    assert angles_within(angles, (85.0, 95.0)).tolist() == expected
    assert angles_within(torch.as_tensor(angles), (85.0, 95.0)).tolist() == expected
