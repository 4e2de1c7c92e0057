"""CHGNet adapter: parity with chgnet's own predict_structure, gradients, soft species, batching and the graph skin."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from smoacs.chem.elements import element_index
from smoacs.crystal import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors import load_predictor
from smoacs.predictors.base import Predictor
from smoacs.predictors.potential import Potential
from smoacs.templates.packaged import read_library

from smoacs.predictors.chgnet import CHGNetPotential, load_chgnet  # noqa: E402

ENERGY_TOL = 1e-4  # eV/atom
FORCE_TOL = 1e-3  # eV/Å
STRESS_TOL = 1e-2  # GPa
PEROVSKITE_SITES = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def _perovskite(a: float, elements: tuple[str, str, str], rng: np.random.Generator, noise: float = 0.0, strain: float = 0.0) -> Structure:
    lattice = np.eye(3) * a @ (np.eye(3) + strain * rng.normal(size=(3, 3)))
    coords = PEROVSKITE_SITES + noise * rng.normal(size=(5, 3))
    a_site, b_site, x_site = elements
    return Structure(Lattice(lattice), [a_site, b_site, x_site, x_site, x_site], coords)


def _structures() -> list[Structure]:
    rng = np.random.default_rng(7)
    out = [
        _perovskite(3.905, ("Sr", "Ti", "O"), rng),
        _perovskite(4.25, ("Ba", "Zr", "S"), rng, noise=0.03),
        _perovskite(6.3, ("Cs", "Pb", "I"), rng, noise=0.04, strain=0.06),  # strained, near the 3 Å bond cutoff
        _perovskite(4.0, ("K", "Nb", "O"), rng, noise=0.02, strain=0.03),
        Structure(Lattice(np.diag([4.0, 4.0, 4.3])), ["Pb", "Ti", "O", "O", "O"], PEROVSKITE_SITES + [0, 0.03, 0]),
        _perovskite(3.95, ("Sr", "Ti", "O"), rng, noise=0.02).make_supercell([2, 2, 2], in_place=False),  # 40 atoms
        Structure(Lattice.from_parameters(2.2, 2.3, 2.5, 55, 62, 70), ["Cu"], [[0, 0, 0]]),  # skewed, self-images
        Structure(Lattice.from_parameters(3.1, 3.3, 3.0, 65, 100, 75), ["Na", "Cl"], [[0, 0, 0], [0.45, 0.52, 0.5]]),
        Structure(Lattice.hexagonal(3.25, 5.2), ["Zn", "Zn", "O", "O"], [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.88]]),
    ]
    library = [r for r in read_library("supercon.json.gz") if r["ordered"] and len(r["species"]) <= 8][:3]
    out += [Structure(Lattice(r["lattice"]), r["species"], r["frac_coords"]) for r in library]
    return out


@pytest.fixture(scope="module")
def potential() -> CHGNetPotential:
    return CHGNetPotential()


@pytest.fixture(scope="module")
def structures() -> list[Structure]:
    return _structures()


@pytest.fixture(scope="module")
def potential64(potential: CHGNetPotential) -> CHGNetPotential:
    return copy.deepcopy(potential).double()


def _split(forces: torch.Tensor, batch: CrystalBatch) -> list[np.ndarray]:
    return [f.numpy() for f in torch.split(forces.detach(), batch.n_atoms.tolist())]


@pytest.mark.parametrize("fused", [True, False])
def test_parity_with_predict_structure(fused: bool, potential: CHGNetPotential, structures: list[Structure]) -> None:
    """Both evaluation paths (hoisted projections, chgnet's own layer modules) match chgnet's own pipeline."""
    reference = load_chgnet().predict_structure(structures, task="efs", batch_size=4)
    batch = CrystalBatch.from_structures(structures)
    potential = potential if fused else CHGNetPotential(fused=False)
    out = potential.compute(batch)
    forces = _split(out.forces, batch)
    assert len(structures) >= 10 and max(len(s) for s in structures) >= 40
    for i, ref in enumerate(reference):
        assert abs(float(out.energy_per_atom[i]) - float(ref["e"])) <= ENERGY_TOL, structures[i].formula
        assert np.abs(forces[i] - ref["f"]).max() <= FORCE_TOL, structures[i].formula
        assert np.abs(out.stress[i].numpy() - ref["s"]).max() <= STRESS_TOL, structures[i].formula
    assert torch.allclose(potential(batch), out.energy_per_atom, atol=1e-6)  # Predictor view: eV/atom


def test_stress_sign_is_ase(potential: CHGNetPotential, structures: list[Structure]) -> None:
    """A compressed cell wants to expand: negative stress, positive pressure (ASE convention)."""
    squeezed = structures[0].copy()
    squeezed.scale_lattice(squeezed.volume * 0.85)
    out = potential.compute(CrystalBatch.from_structures([squeezed]))
    assert float(out.pressure[0]) > 1.0


def test_forces_and_stress_are_energy_derivatives(potential64: CHGNetPotential, structures: list[Structure]) -> None:
    """Float64 finite differences of the energy against the autograd forces and stress."""
    batch = CrystalBatch.from_structures([structures[3]], dtype=torch.float64)
    potential64.rebuild(batch)
    out = potential64.compute(batch)
    h = 1e-5
    lattice, frac = batch.lattice, batch.frac_coords

    def energy(lat: torch.Tensor, fr: torch.Tensor) -> float:
        moved = CrystalBatch(lat, fr, batch.species_probs, batch.crystal_idx, batch.n_atoms)
        return float(potential64.compute(moved, forces=False, stress=False).energy[0])

    inverse = torch.linalg.inv(lattice[0])
    for atom, axis in [(0, 0), (2, 1), (4, 2)]:
        shift = torch.zeros_like(frac)
        shift[atom] = inverse[axis] * h  # a Cartesian step of h along `axis`
        numeric = -(energy(lattice, frac + shift) - energy(lattice, frac - shift)) / (2 * h)
        assert numeric == pytest.approx(float(out.forces[atom, axis]), abs=1e-5)
    volume = float(torch.linalg.det(lattice[0]).abs())
    for i, j in [(0, 0), (1, 2), (2, 1)]:
        strain = torch.zeros(3, 3, dtype=torch.float64)
        strain[i, j] = h
        plus = energy(lattice @ (torch.eye(3, dtype=torch.float64) + strain), frac)
        minus = energy(lattice @ (torch.eye(3, dtype=torch.float64) - strain), frac)
        numeric = (plus - minus) / (2 * h) / volume * 160.21766208
        assert numeric == pytest.approx(float(out.stress[0, i, j]), abs=1e-4)


def test_create_graph_keeps_stress_differentiable(potential64: CHGNetPotential, structures: list[Structure]) -> None:
    """∂pressure/∂lattice through create_graph matches finite differences of the pressure."""
    batch = CrystalBatch.from_structures([structures[1]], dtype=torch.float64)
    potential64.rebuild(batch)
    lattice = batch.lattice.clone().requires_grad_()
    moved = CrystalBatch(lattice, batch.frac_coords, batch.species_probs, batch.crystal_idx, batch.n_atoms)
    out = potential64.compute(moved, create_graph=True)
    (grad,) = torch.autograd.grad(out.pressure.sum() + out.forces.square().sum(), lattice)
    h = 1e-5
    for i, j in [(0, 0), (2, 1)]:
        step = torch.zeros_like(lattice)
        step[0, i, j] = h

        def value(lat: torch.Tensor) -> float:
            o = potential64.compute(CrystalBatch(lat, batch.frac_coords, batch.species_probs, batch.crystal_idx, batch.n_atoms))
            return float(o.pressure.sum() + o.forces.square().sum())

        numeric = (value(batch.lattice + step) - value(batch.lattice - step)) / (2 * h)
        assert numeric == pytest.approx(float(grad[0, i, j]), rel=1e-4, abs=1e-4)
    detached = potential64.compute(moved)
    assert not detached.energy.requires_grad and not detached.stress.requires_grad


def test_soft_species(potential: CHGNetPotential, structures: list[Structure]) -> None:
    """One-hot probabilities give the hard energy; mixed ones give finite gradients in the probabilities."""
    batch = CrystalBatch.from_structures([structures[0]])
    hard = potential.compute(batch, forces=False, stress=False).energy
    probs = batch.species_probs.clone()
    probs[0] = 0.0
    probs[0, element_index("Sr")] = 1.0
    probs[0, element_index("Ba")] = 0.0  # an explicit zero weight on a second element
    probs.requires_grad_()
    soft = CrystalBatch(batch.lattice, batch.frac_coords, probs, batch.crystal_idx, batch.n_atoms)
    assert torch.allclose(potential(soft) * 5, hard, atol=1e-5)
    mixed = probs.detach().clone()
    mixed[0, element_index("Sr")], mixed[0, element_index("Ba")] = 0.6, 0.4
    mixed.requires_grad_()
    soft = CrystalBatch(batch.lattice, batch.frac_coords, mixed, batch.crystal_idx, batch.n_atoms)
    energy = potential(soft)
    (grad,) = torch.autograd.grad(energy.sum(), mixed)
    assert torch.isfinite(grad).all() and grad[0, element_index("Ba")] != 0
    assert abs(float(energy) - float(hard) / 5) > 1e-3  # the mixture moves the energy away from pure Sr
    out = potential.compute(soft, create_graph=True)
    (grad,) = torch.autograd.grad(out.pressure.sum(), mixed)
    assert torch.isfinite(grad).all()


def test_batched_equals_one_by_one(potential: CHGNetPotential, structures: list[Structure]) -> None:
    chosen = [structures[i] for i in (0, 2, 6, 7, 8)]
    together = potential.compute(CrystalBatch.from_structures(chosen))
    forces = _split(together.forces, CrystalBatch.from_structures(chosen))
    for i, structure in enumerate(chosen):
        alone = potential.compute(CrystalBatch.from_structures([structure]))
        assert float(alone.energy[0]) == pytest.approx(float(together.energy[i]), abs=1e-4)
        assert np.abs(alone.forces.numpy() - forces[i]).max() < 1e-4
        assert torch.allclose(alone.stress[0], together.stress[i], atol=1e-3)


def test_skin_graph_stays_exact_while_atoms_move(structures: list[Structure]) -> None:
    skinned = CHGNetPotential(skin=0.6)
    plain = CHGNetPotential()
    batch = CrystalBatch.from_structures([structures[1], structures[7]])
    skinned.rebuild(batch)
    generator = torch.Generator().manual_seed(0)
    shift = 0.1 * torch.randn(batch.frac_coords.shape, generator=generator) / 4.0  # ≲ 0.2 Å
    moved = CrystalBatch(batch.lattice * 1.02, batch.frac_coords + shift, batch.species_probs, batch.crystal_idx, batch.n_atoms)
    stale = skinned.compute(moved)  # graph of the old geometry (n_atoms tensor is the same object)
    fresh = plain.compute(moved)
    assert torch.allclose(stale.energy, fresh.energy, atol=1e-4)
    assert torch.allclose(stale.forces, fresh.forces, atol=1e-4)
    assert torch.allclose(stale.stress, fresh.stress, atol=1e-3)


def test_graph_with_packed_keys_equals_row_sorted_graph(structures: list[Structure], monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import smoacs.predictors.chgnet as chgnet

    batch = CrystalBatch.from_structures(structures)
    packed = chgnet.build_chgnet_graph(batch, 6.0, 3.0)
    monkeypatch.setattr(chgnet, "lexicographic_keys", lambda rows: rows)  # torch.unique over whole rows
    by_rows = chgnet.build_chgnet_graph(batch, 6.0, 3.0)
    for field in dataclasses.fields(packed):
        assert torch.equal(getattr(packed, field.name), getattr(by_rows, field.name)), field.name
    assert len(packed.angle_edges) > 100


def test_protocols_registry_and_errors(potential: CHGNetPotential, structures: list[Structure]) -> None:
    assert isinstance(potential, Potential) and isinstance(potential, Predictor)
    batch = CrystalBatch.from_structures(structures[:2], dtype=torch.float64)
    with torch.no_grad():  # evaluation code runs under no_grad; forces and stress still come back
        out = potential.compute(batch)
    assert out.forces.dtype == torch.float64 and out.stress.shape == (2, 3, 3)
    assert torch.allclose(potential.final(batch), out.energy_per_atom, atol=1e-6)
    loaded = load_predictor("chgnet")
    assert loaded.info.property == "energy_per_atom" and loaded.info.unit == "eV/atom"
    assert "chgnet" in loaded.info.source and "BSD" in loaded.info.source
    heavy = CrystalBatch.from_species(torch.eye(3)[None] * 4.0, torch.zeros(1, 3), torch.tensor([element_index("Cm")]), torch.tensor([1]))
    with pytest.raises(PredictorError, match="Pu"):
        potential.compute(heavy)
    with pytest.raises(PredictorError, match="skin"):
        CHGNetPotential(skin=-1.0)
