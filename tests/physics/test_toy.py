"""The toy Lennard-Jones potential: protocol, forces and stress against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from smoacs.crystal.batch import CrystalBatch
from smoacs.physics.toy import LennardJonesPotential
from smoacs.predictors.potential import EV_PER_A3_IN_GPA, Potential


def mixed_lj() -> LennardJonesPotential:
    return LennardJonesPotential(sigma=torch.linspace(1.5, 3.0, 98, dtype=torch.float64), epsilon=0.1, cutoff=6.0)


def random_gas_cell(seed: int) -> Structure:
    rng = np.random.default_rng(seed)
    lattice = Lattice.from_parameters(*rng.uniform(3.5, 5.0, 3), *rng.uniform(80, 100, 3))
    return Structure(lattice, ["Ne", "Ar", "Kr"], rng.uniform(0, 1, (3, 3)))


def batch(structures: list[Structure]) -> CrystalBatch:
    return CrystalBatch.from_structures(structures, dtype=torch.float64)


def test_is_a_potential():
    assert isinstance(mixed_lj(), Potential)


def test_translation_gives_zero_net_force_and_symmetric_stress():
    potential = mixed_lj()
    out = potential.compute(batch([random_gas_cell(3)]))
    assert torch.allclose(out.forces.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(out.stress[0], out.stress[0].T, atol=1e-10)


def test_toy_forces_and_stress_match_finite_differences():
    potential = mixed_lj()
    structure = random_gas_cell(5)
    b = batch([structure])
    potential.rebuild(b)
    out = potential.compute(b)
    h = 1e-5
    cart = b.cart_coords()
    for atom, axis in [(0, 0), (1, 2)]:
        energies = []
        for sign in (1, -1):
            moved = cart.clone()
            moved[atom, axis] += sign * h
            frac = moved @ torch.linalg.inv(b.lattice[0])
            energies.append(potential.energy(b.lattice, frac, b))
        assert float(out.forces[atom, axis]) == pytest.approx(-float(energies[0] - energies[1]) / (2 * h), rel=1e-6, abs=1e-6)
    for i, j in [(0, 0), (1, 2)]:
        energies = []
        for sign in (1, -1):
            strain = torch.eye(3, dtype=torch.float64)
            strain[i, j] += sign * h
            energies.append(potential.energy(b.lattice @ strain, b.frac_coords, b))
        derivative = float(energies[0] - energies[1]) / (2 * h) / float(b.volumes()[0]) * EV_PER_A3_IN_GPA
        assert float(out.stress[0, i, j]) == pytest.approx(derivative, rel=1e-6, abs=1e-5)
