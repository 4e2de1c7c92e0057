"""Shared fixtures: small session-scoped structures, random cells and a cheap analytic toy predictor."""

from __future__ import annotations

import os

# The suite's tensors are tiny: one intra-op thread avoids OpenMP spin-waiting on a shared machine (7x faster here).
# The environment variable carries it into runs (smoacs.runtime.set_threads), the call into this process's torch.
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch import Tensor

from smoacs.chem.elements import ELEMENTS, N_ELEMENTS, element_index
from smoacs.crystal.batch import CrystalBatch
from smoacs.design import DesignSpace
from smoacs.predictors.base import PredictorInfo

torch.set_num_threads(1)

# Elements for random cells: a spread of rows and groups (all have CGCNN features).
RANDOM_ELEMENTS = ("H", "Li", "C", "O", "F", "Na", "Mg", "Al", "Si", "S", "Cl", "K", "Ca", "Ti", "Fe", "Cu", "Zn",
                   "Ga", "Se", "Sr", "Zr", "Ag", "Sn", "I", "Ba", "La", "W", "Pb", "Bi", "U")  # fmt: skip


def random_lattice(rng: np.random.Generator, low: float = 3.0, high: float = 7.0) -> np.ndarray:
    """A well-conditioned random triclinic lattice (rows), lengths roughly in [low, high] Å."""
    while True:
        lengths = rng.uniform(low, high, 3)
        angles = rng.uniform(70.0, 110.0, 3)
        try:
            lattice = Lattice.from_parameters(*lengths, *angles)
        except ValueError:
            continue
        if lattice.volume > 0.5 * np.prod(lengths):
            return lattice.matrix


def random_structure(rng: np.random.Generator, n_atoms: int, min_dist: float = 1.2) -> Structure:
    """A random triclinic cell with ``n_atoms`` atoms of varied elements and no pair closer than ``min_dist`` Å."""
    while True:
        lattice = Lattice(random_lattice(rng))
        species = list(rng.choice(RANDOM_ELEMENTS, n_atoms))
        structure = Structure(lattice, species, rng.uniform(0, 1, (n_atoms, 3)))
        if n_atoms == 1:
            return structure
        dist = structure.distance_matrix + np.eye(n_atoms) * 100
        if dist.min() > min_dist:
            return structure


@pytest.fixture(scope="session")
def rock_salt() -> Structure:
    """Conventional NaCl cell, coordinates slightly perturbed to break 12th-neighbour ties."""
    rng = np.random.default_rng(11)
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return Structure(structure.lattice, structure.species, structure.frac_coords + rng.normal(0, 0.01, (len(structure), 3)))


@pytest.fixture(scope="session")
def srtio3() -> Structure:
    """Cubic SrTiO3 (A at the body centre, as our templates), coordinates slightly perturbed."""
    rng = np.random.default_rng(12)
    frac = np.array([[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    return Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], frac + rng.normal(0, 0.01, (5, 3)))


@pytest.fixture(scope="session")
def random_structures() -> list[Structure]:
    """Ten random triclinic cells with 1–6 atoms of varied elements."""
    rng = np.random.default_rng(2024)
    return [random_structure(rng, n) for n in (1, 2, 3, 4, 5, 6, 1, 3, 5, 6)]


class ToyPredictor:
    """Cheap analytic predictor implementing the Predictor protocol.

    value = (volume / n_atoms)^(1/3) + mean over sites of Σ_e p_e·(Z_e / 100); smooth in lattice and composition.
    ``nan_crystals`` return NaN values; ``nan_grad_crystals`` return finite values with NaN gradients.
    """

    def __init__(
        self, prop: str = "band_gap", nan_crystals: tuple[int, ...] = (), nan_grad_crystals: tuple[int, ...] = ()
    ) -> None:
        self.info = PredictorInfo(f"toy-{prop}", prop, "eV", "none", "tests", "analytic toy")
        self.nan_crystals = nan_crystals
        self.nan_grad_crystals = nan_grad_crystals
        self.weights = torch.arange(1, N_ELEMENTS + 1, dtype=torch.float64) / 100.0
        self.n_rebuilds = 0

    def __call__(self, crystals: CrystalBatch) -> Tensor:
        scale = (crystals.volumes() / crystals.n_atoms.to(crystals.lattice.dtype)) ** (1.0 / 3.0)
        site = crystals.species_probs @ self.weights.to(crystals.species_probs.dtype)
        mean = torch.zeros_like(scale).index_add(0, crystals.crystal_idx, site.to(scale.dtype))
        value = scale + mean / crystals.n_atoms.to(scale.dtype)
        index = torch.arange(crystals.n_crystals)
        if self.nan_grad_crystals:
            value = _NanGrad.apply(value, torch.isin(index, torch.tensor(self.nan_grad_crystals)))
        if self.nan_crystals:
            value = torch.where(torch.isin(index, torch.tensor(self.nan_crystals)), torch.nan, value)
        return value

    def final(self, crystals: CrystalBatch) -> Tensor:
        return self(crystals)

    def rebuild(self, crystals: CrystalBatch) -> None:
        self.n_rebuilds += 1

    def to(self, device: torch.device | str) -> ToyPredictor:
        return self


class _NanGrad(torch.autograd.Function):
    """Identity whose gradient is NaN on the masked rows."""

    @staticmethod
    def forward(ctx, value: Tensor, mask: Tensor) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(mask)
        return value.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN001
        (mask,) = ctx.saved_tensors
        return torch.where(mask, torch.full_like(grad, float("nan")), grad), None


@pytest.fixture
def toy_predictor() -> ToyPredictor:
    """A fresh toy band-gap predictor."""
    return ToyPredictor()


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Both floating dtypes."""
    return request.param


@pytest.fixture
def device() -> torch.device:
    """The CPU (GPU tests carry the ``gpu`` marker)."""
    return torch.device("cpu")


def symbols_of(batch: CrystalBatch) -> list[list[str]]:
    """Argmax element symbols per crystal."""
    species = batch.hard_species().tolist()
    out, start = [], 0
    for n in batch.n_atoms.tolist():
        out.append([ELEMENTS[e] for e in species[start : start + n]])
        start += n
    return out


def choose_composition(space: DesignSpace, crystal: int, pattern: int, symbols: list[str]) -> None:
    """Make ``symbols`` (in template site order) and ``pattern`` the argmax choice of ``crystal``."""
    start = int(space.n_atoms[:crystal].sum())
    with torch.no_grad():
        space.combo_logits[crystal] = 0.0
        space.combo_logits[crystal, pattern] = 10.0
        for site, symbol in enumerate(symbols):
            space.element_logits[start + site] = 0.0
            space.element_logits[start + site, element_index(symbol)] = 10.0
