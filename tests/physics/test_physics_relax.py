"""Batched FIRE + Fréchet cell filter: minima, freezing, statuses, batch invariance and agreement with ASE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import ConfigError
from smoacs.physics.relax import RelaxSettings, frechet_exp_adjoint, relax, relax_in_chunks, relax_structures
from smoacs.physics.toy import LennardJonesPotential
from smoacs.predictors.potential import EV_PER_A3_IN_GPA, PotentialOutput

FCC = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
GASES = ["Ne", "Ar", "Kr", "Xe"]


def mixed_lj() -> LennardJonesPotential:
    """LJ with σ growing with atomic number (1.5 … 3 Å), so multi-element cells have distinct pair minima."""
    return LennardJonesPotential(sigma=torch.linspace(1.5, 3.0, 98, dtype=torch.float64), epsilon=0.1, cutoff=6.0)


def random_gas_cells(n: int, seed: int) -> list[Structure]:
    """Random triclinic cells of 2–4 noble-gas atoms, lattice lengths 3.5–5 Å, angles 80–100°."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        lattice = Lattice.from_parameters(*rng.uniform(3.5, 5.0, 3), *rng.uniform(80, 100, 3))
        k = 2 + i % 3
        out.append(Structure(lattice, GASES[:k], rng.uniform(0, 1, (k, 3))))
    return out


def fcc(a: float, perturb: float = 0.0, seed: int = 0) -> Structure:
    structure = Structure(Lattice.cubic(a), ["Ar"] * 4, FCC)
    if perturb:
        rng = np.random.default_rng(seed)
        structure = Structure(structure.lattice, structure.species, structure.cart_coords + rng.normal(0, perturb, (4, 3)), coords_are_cartesian=True)
    return structure


def batch(structures: list[Structure]) -> CrystalBatch:
    return CrystalBatch.from_structures(structures, dtype=torch.float64)


class Recording:
    """Wraps a potential; records how many crystals each call saw, and can poison crystals containing Xe."""

    def __init__(self, inner: LennardJonesPotential, poison: str | None = None, stress_offset: float = 0.0) -> None:
        self.inner, self.poison, self.stress_offset = inner, poison, stress_offset
        self.info = inner.info
        self.calls: list[int] = []

    def rebuild(self, crystals: CrystalBatch) -> None:
        self.inner.rebuild(crystals)

    def compute(self, crystals: CrystalBatch, forces: bool = True, stress: bool = True, create_graph: bool = False) -> PotentialOutput:
        self.calls.append(crystals.n_crystals)
        out = self.inner.compute(crystals, forces, stress, create_graph)
        if self.poison is not None:
            from smoacs.chem.elements import element_index

            has = torch.zeros(crystals.n_crystals, dtype=torch.bool)
            has[crystals.crystal_idx[crystals.hard_species() == element_index(self.poison)]] = True
            out.energy = torch.where(has, torch.full_like(out.energy, float("nan")), out.energy)
        if self.stress_offset and out.stress is not None:
            out.stress = out.stress + self.stress_offset * torch.eye(3, dtype=out.stress.dtype)
        return out


def test_lj_fcc_reaches_the_minimum_of_an_independent_lattice_scan():
    from scipy.optimize import minimize_scalar

    potential = LennardJonesPotential(sigma=2.0, epsilon=0.1, cutoff=6.0)

    def energy_at(a: float) -> float:
        b = batch([fcc(a)])
        potential.rebuild(b)
        return float(potential.compute(b, forces=False, stress=False).energy[0])

    a_scan = minimize_scalar(energy_at, bracket=(2.9, 3.1, 3.4), tol=1e-10).x
    starts = [fcc(2.9, 0.05, 1), fcc(3.3, 0.05, 2), fcc(3.7, 0.05, 3)]
    result = relax(batch(starts), potential, RelaxSettings(fmax=1e-4, max_steps=2000))
    assert result.status == ["converged"] * 3
    volumes_per_atom = result.crystals.volumes() / 4
    assert torch.allclose(volumes_per_atom, torch.full((3,), a_scan**3 / 4, dtype=torch.float64), rtol=1e-4)
    assert torch.allclose(result.energy_per_atom, torch.full((3,), energy_at(a_scan) / 4, dtype=torch.float64), atol=1e-7)
    assert result.pressure.abs().max() < 0.01
    assert 1.53 < a_scan / 2.0 < 1.56  # near the full-sum LJ fcc constant 1.542 σ (cutoff 3σ here)


def test_frechet_adjoint_matches_scipy():
    from scipy.linalg import expm_frechet

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, (4, 3, 3))
    g = rng.normal(0, 1.0, (4, 3, 3))
    got = frechet_exp_adjoint(torch.tensor(x), torch.tensor(g)).numpy()
    for b in range(4):
        want = np.zeros((3, 3))
        for mu in range(3):
            for nu in range(3):
                direction = np.zeros((3, 3))
                direction[mu, nu] = 1.0
                want[mu, nu] = np.sum(expm_frechet(x[b], direction, compute_expm=False) * g[b])
        np.testing.assert_allclose(got[b], want, atol=1e-12)


def test_batch_equals_one_by_one():
    potential = mixed_lj()
    structures = random_gas_cells(5, seed=1)
    settings = RelaxSettings(fmax=0.01, max_steps=300)
    together = relax(batch(structures), potential, settings)
    for i, structure in enumerate(structures):
        alone = relax(batch([structure]), potential, settings)
        assert alone.status[0] == together.status[i]
        assert int(alone.steps[0]) == int(together.steps[i])
        assert float(alone.energy[0]) == pytest.approx(float(together.energy[i]), abs=1e-10)
        assert torch.allclose(alone.crystals.lattice[0], together.crystals.lattice[i], atol=1e-9)


class Raising:
    """Raises on any batch that contains Xe (an exception, not a NaN: the whole chunk cannot be evaluated)."""

    def __init__(self, inner: LennardJonesPotential) -> None:
        self.inner, self.info = inner, inner.info

    def rebuild(self, crystals: CrystalBatch) -> None:
        self.inner.rebuild(crystals)

    def compute(self, crystals: CrystalBatch, forces: bool = True, stress: bool = True, create_graph: bool = False) -> PotentialOutput:
        if (crystals.species_probs.argmax(-1) == 53).any():  # Xe, Z = 54
            raise RuntimeError("cannot evaluate Xe")
        return self.inner.compute(crystals, forces=forces, stress=stress, create_graph=create_graph)


def test_chunks_equal_one_batch_and_a_raising_chunk_fails_alone():
    structures = random_gas_cells(6, seed=5)  # cells 2 and 5 hold Xe (4 atoms)
    settings = RelaxSettings(fmax=0.01, max_steps=300)
    together = relax(batch(structures), mixed_lj(), settings)
    chunked = relax_in_chunks(batch(structures), mixed_lj(), settings, batch_size=2)
    assert chunked.status == together.status
    assert torch.equal(chunked.steps, together.steps)
    assert torch.allclose(chunked.energy, together.energy, atol=1e-10)
    assert torch.allclose(chunked.crystals.lattice, together.crystals.lattice, atol=1e-9)
    start = batch(structures)
    partial = relax_in_chunks(start, Raising(mixed_lj()), settings, batch_size=2)
    xe = [i for i, s in enumerate(structures) if "Xe" in s.composition]
    failed_chunks = {i // 2 for i in xe}
    for i in range(len(structures)):
        if i // 2 in failed_chunks:
            assert partial.status[i] == "failed" and "cannot evaluate Xe" in partial.reason[i]
            assert torch.isnan(partial.energy[i]) and int(partial.steps[i]) == 0
            assert torch.equal(partial.crystals.lattice[i], start.lattice[i])
        else:
            assert partial.status[i] == together.status[i]
            assert float(partial.energy[i]) == pytest.approx(float(together.energy[i]), abs=1e-10)
    with pytest.raises(ConfigError, match="batch_size"):
        relax_in_chunks(start, mixed_lj(), settings, batch_size=0)


def test_converged_crystals_freeze_and_are_dropped():
    potential = mixed_lj()
    settings = RelaxSettings(fmax=0.01, max_steps=300)
    relaxed = relax(batch([fcc(3.2, 0.05)]), potential, RelaxSettings(fmax=1e-4, max_steps=2000))
    at_minimum = relaxed.crystals.to_structures()[0]
    structures = [at_minimum, *random_gas_cells(3, seed=2)]
    recording = Recording(potential)
    dropped = relax(batch(structures), recording, settings)
    assert dropped.status[0] == "converged" and int(dropped.steps[0]) == 0
    assert torch.allclose(dropped.crystals.lattice[0], batch([at_minimum]).lattice[0])
    assert recording.calls[0] == 4 and recording.calls[1] == 3 and recording.calls[-1] < 3
    kept = relax(batch(structures), Recording(potential), RelaxSettings(fmax=0.01, max_steps=300, drop_converged=False))
    assert torch.allclose(kept.energy, dropped.energy, atol=1e-10)
    assert torch.equal(kept.steps, dropped.steps)


def test_step_limit_status():
    result = relax(batch(random_gas_cells(3, seed=3)), mixed_lj(), RelaxSettings(fmax=1e-6, max_steps=4))
    assert result.status == ["step_limit"] * 3
    assert result.steps.tolist() == [4, 4, 4]
    assert (result.fmax > 1e-6).all()


def test_nan_energy_fails_only_that_crystal():
    structures = random_gas_cells(3, seed=4)  # the third has Xe
    settings = RelaxSettings(fmax=0.01, max_steps=300)
    clean = relax(batch(structures[:2]), mixed_lj(), settings)
    poisoned = relax(batch(structures), Recording(mixed_lj(), poison="Xe"), settings)
    assert poisoned.status[2] == "failed" and "non-finite" in poisoned.reason[2]
    assert int(poisoned.steps[2]) == 0
    assert poisoned.status[:2] == clean.status
    assert torch.allclose(poisoned.energy[:2], clean.energy, atol=1e-10)


def test_atoms_too_close_fail():
    lattice = Lattice.cubic(4.0)
    close = Structure(lattice, ["Ar", "Ar"], [[0, 0, 0], [0.3 / 4.0, 0, 0]])
    result = relax(batch([close, fcc(3.2)]), mixed_lj(), RelaxSettings(fmax=0.01, min_distance=0.5))
    assert result.status[0] == "failed" and "closer" in result.reason[0]
    assert result.status[1] == "converged"


def test_exploding_volume_fails():
    # A constant −100 GPa stress (beyond the LJ solid's largest tension) makes the cell expand without bound.
    potential = Recording(mixed_lj(), stress_offset=-100.0)
    result = relax(batch([fcc(3.2)]), potential, RelaxSettings(fmax=0.01, max_steps=2000, max_volume_factor=3.0))
    assert result.status == ["failed"] and "volume" in result.reason[0]
    assert 2.0 < float(result.volume_change[0]) + 1 <= 3.0 * 1.5


@pytest.mark.parametrize(
    "options",
    [{}, {"hydrostatic_strain": True}, {"constant_volume": True}, {"scalar_pressure": 2.0}],
    ids=["full", "hydrostatic", "constant-volume", "pressure"],
)
def test_matches_ase_fire_with_frechet_cell_filter(options):
    import ase_bridge  # the helper beside this file (ASE comes with pymatgen and chgnet)
    potential = mixed_lj()
    structures = random_gas_cells(3 if not options else 2, seed=6)
    ours = relax(batch(structures), potential, RelaxSettings(fmax=0.01, max_steps=400, **options))
    ase_options = dict(options)
    if "scalar_pressure" in ase_options:
        ase_options["scalar_pressure"] /= EV_PER_A3_IN_GPA
    for i, structure in enumerate(structures):
        energy, steps, atoms = ase_bridge.ase_relax(structure, potential, fmax=0.01, steps=400, **ase_options)
        assert abs(float(ours.energy[i]) - energy) / len(structure) < 2e-3
        assert int(ours.steps[i]) == steps  # same algorithm, same path
        np.testing.assert_allclose(ours.crystals.lattice[i].numpy(), atoms.cell.array, atol=1e-6)


def test_relax_structures_rows_in_input_order():
    structures = random_gas_cells(5, seed=7)
    disordered = Structure(Lattice.cubic(4.0), [{"Ar": 0.5, "Kr": 0.5}], [[0, 0, 0]])
    rows = relax_structures([structures[0], disordered, *structures[1:]], mixed_lj(), fmax=0.01, max_steps=300, batch_size=2, dtype=torch.float64)
    assert len(rows) == 6
    assert rows[1].status == "failed" and rows[1].structure is None and "disordered" in rows[1].reason
    whole = relax(batch(structures), mixed_lj(), RelaxSettings(fmax=0.01, max_steps=300))
    for k, row in enumerate([rows[0], *rows[2:]]):
        assert row.status == whole.status[k]
        assert row.energy_per_atom == pytest.approx(float(whole.energy_per_atom[k]), abs=1e-9)
        assert row.structure.composition == structures[k].composition
        assert row.volume_change == pytest.approx(float(whole.volume_change[k]), abs=1e-9)


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="fmax"):
        RelaxSettings(fmax=0.0)
    with pytest.raises(ConfigError, match="max_volume_factor"):
        RelaxSettings(max_volume_factor=1.0)


def chgnet_starts() -> list[Structure]:
    """Six perturbed, strained structures: four cubic perovskites and two general crystals."""
    rng = np.random.default_rng(11)
    perovskite = [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
    cells = [
        Structure(Lattice.cubic(4.0), ["Sr", "Ti", "O", "O", "O"], perovskite),
        Structure(Lattice.cubic(4.3), ["Ba", "Zr", "O", "O", "O"], perovskite),
        Structure(Lattice.orthorhombic(3.9, 4.1, 4.3), ["K", "Mg", "F", "F", "F"], perovskite),
        Structure(Lattice.cubic(5.7), ["Cs", "Pb", "Br", "Br", "Br"], perovskite),
        Structure(Lattice.cubic(5.9), ["Na"] * 4 + ["Cl"] * 4, [*FCC, *([x + 0.5, y, z] for x, y, z in FCC)]),
        Structure(Lattice.from_parameters(3.9, 3.8, 3.9, 60, 62, 60), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    ]
    out = []
    for cell in cells:
        cart = cell.cart_coords + rng.normal(0, 0.02, cell.cart_coords.shape)
        out.append(Structure(cell.lattice, cell.species, cart, coords_are_cartesian=True))
    return out


@pytest.mark.slow
def test_chgnet_relaxation_matches_ase_fire_with_chgnet_calculator():
    import contextlib
    import io
    import warnings

    from chgnet.model import StructOptimizer

    try:
        from smoacs.predictors.chgnet import CHGNetPotential

        potential = CHGNetPotential()
    except ImportError:
        from smoacs.physics.reference import CHGNetReferencePotential

        potential = CHGNetReferencePotential()
    structures = chgnet_starts()
    ours = relax_structures(structures, potential, fmax=0.05, max_steps=500)
    with contextlib.redirect_stdout(io.StringIO()):
        optimizer = StructOptimizer()
    for structure, row in zip(structures, ours, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = optimizer.relax(structure, fmax=0.05, steps=500, relax_cell=True, verbose=False)
        ase_energy = float(reference["trajectory"].energies[-1]) / len(structure)
        assert row.status == "converged", row.reason
        assert abs(row.energy_per_atom - ase_energy) < 2e-3, (structure.composition, row.energy_per_atom, ase_energy)
