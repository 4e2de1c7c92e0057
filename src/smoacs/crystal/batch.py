"""`CrystalBatch`: a ragged batch of crystals with soft (probabilistic) species, the state every predictor reads."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
from torch import Tensor

from smoacs.chem.elements import ELEMENTS, N_ELEMENTS, element_index
from smoacs.crystal.cache import FeatureCache

if TYPE_CHECKING:
    from pymatgen.core import Structure

T = TypeVar("T")


@dataclass
class CrystalBatch:
    """A batch of crystals; atoms of one crystal are contiguous.

    Attributes:
        lattice: ``[n_crystals, 3, 3]`` lattice vectors as rows, Å.
        frac_coords: ``[n_atoms, 3]`` fractional coordinates (not necessarily wrapped into [0, 1)).
        species_probs: ``[n_atoms, 98]`` probability of each element (H … Cf) per site; one-hot for real crystals.
        crystal_idx: ``[n_atoms]`` index of the crystal each atom belongs to (non-decreasing).
        n_atoms: ``[n_crystals]`` atoms per crystal.
        cache: featurisation shared by the predictors reading this batch in one step (see
            :mod:`smoacs.crystal.cache`), or None (every predictor computes its own). Attach one with
            :meth:`with_cache`; batches derived from this one (:meth:`detach`, :meth:`to`, :meth:`select`) carry none.
    """

    lattice: Tensor
    frac_coords: Tensor
    species_probs: Tensor
    crystal_idx: Tensor
    n_atoms: Tensor
    cache: FeatureCache | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        n_crystals = self.lattice.shape[0]
        if self.lattice.shape != (n_crystals, 3, 3):
            raise ValueError(f"lattice must have shape (n_crystals, 3, 3), got {tuple(self.lattice.shape)}")
        n_atoms_total = self.frac_coords.shape[0]
        if self.frac_coords.shape != (n_atoms_total, 3):
            raise ValueError(f"frac_coords must have shape (n_atoms, 3), got {tuple(self.frac_coords.shape)}")
        if self.species_probs.shape != (n_atoms_total, N_ELEMENTS):
            raise ValueError(
                f"species_probs must have shape ({n_atoms_total}, {N_ELEMENTS}), got {tuple(self.species_probs.shape)}"
            )
        if self.crystal_idx.shape != (n_atoms_total,) or self.n_atoms.shape != (n_crystals,):
            raise ValueError("crystal_idx must be [n_atoms] and n_atoms must be [n_crystals]")

    @property
    def n_crystals(self) -> int:
        """Number of crystals in the batch."""
        return self.lattice.shape[0]

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.lattice.device

    @property
    def atom_offsets(self) -> Tensor:
        """``[n_crystals]`` index of each crystal's first atom."""
        return torch.cumsum(self.n_atoms, 0) - self.n_atoms

    def cart_coords(self) -> Tensor:
        """``[n_atoms, 3]`` Cartesian positions in Å (r = f · L)."""
        return torch.einsum("ni,nij->nj", self.frac_coords, self.lattice[self.crystal_idx])

    def volumes(self) -> Tensor:
        """``[n_crystals]`` cell volumes in Å³."""
        return torch.linalg.det(self.lattice).abs()

    def detach(self) -> CrystalBatch:
        """A copy with every tensor detached from the autograd graph."""
        return CrystalBatch(*(t.detach() for t in self._tensors()))

    def to(self, device: torch.device | str) -> CrystalBatch:
        """A copy on another device."""
        return CrystalBatch(*(t.to(device) for t in self._tensors()))

    def _tensors(self) -> tuple[Tensor, ...]:
        return (self.lattice, self.frac_coords, self.species_probs, self.crystal_idx, self.n_atoms)

    def select(self, chosen: Tensor) -> CrystalBatch:
        """The crystals where ``chosen`` (``[n_crystals]`` bool) holds, in order, with their atoms."""
        atoms = chosen[self.crystal_idx]
        n_atoms = self.n_atoms[chosen]
        crystal_idx = torch.repeat_interleave(torch.arange(len(n_atoms), device=n_atoms.device), n_atoms)
        return CrystalBatch(self.lattice[chosen], self.frac_coords[atoms], self.species_probs[atoms], crystal_idx, n_atoms)

    def with_cache(self, cache: FeatureCache | None = None) -> CrystalBatch:
        """The same tensors with ``cache`` attached (a fresh :class:`FeatureCache` by default)."""
        return replace(self, cache=cache if cache is not None else FeatureCache())

    def shared(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``, computed once per ``key`` for this batch when it carries a cache (see :mod:`smoacs.crystal.cache`
        for the key conventions), else computed on every call."""
        return build() if self.cache is None else self.cache.get(key, build)

    def hard_species(self) -> Tensor:
        """``[n_atoms]`` argmax element index per site."""
        return self.species_probs.argmax(dim=-1)

    @classmethod
    def from_species(
        cls,
        lattices: Tensor,
        frac_coords: Tensor,
        species: Tensor,
        n_atoms: Tensor,
    ) -> CrystalBatch:
        """Build a one-hot batch from element indices ``species[n_atoms]`` (Z − 1)."""
        probs = torch.nn.functional.one_hot(species.long(), N_ELEMENTS).to(lattices.dtype)
        crystal_idx = torch.repeat_interleave(torch.arange(len(n_atoms), device=lattices.device), n_atoms)
        return cls(lattices, frac_coords, probs, crystal_idx, n_atoms)

    @classmethod
    def from_structures(
        cls, structures: Sequence[Structure], dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
    ) -> CrystalBatch:
        """One-hot batch from ordered pymatgen structures (disordered sites are rejected)."""
        lattices, coords, species, sizes = [], [], [], []
        for structure in structures:
            if not structure.is_ordered:
                raise ValueError(f"disordered structure {structure.composition.reduced_formula} is not supported")
            lattices.append(structure.lattice.matrix)
            coords.append(structure.frac_coords)
            species.extend(element_index(site.specie.symbol) for site in structure)
            sizes.append(len(structure))
        return cls.from_species(
            torch.as_tensor(np.array(lattices), dtype=dtype, device=device),
            torch.as_tensor(np.concatenate(coords), dtype=dtype, device=device),
            torch.as_tensor(species, device=device),
            torch.as_tensor(sizes, device=device),
        )

    def to_structures(self, wrap: bool = True) -> list[Structure]:
        """pymatgen structures with the argmax element on every site (coordinates wrapped into [0, 1))."""
        from pymatgen.core import Lattice, Structure

        lattice = self.lattice.detach().double().cpu().numpy()
        frac = self.frac_coords.detach().double().cpu().numpy()
        if wrap:
            frac = np.mod(frac, 1.0)
        species = self.hard_species().cpu().numpy()
        offsets = self.atom_offsets.cpu().numpy()
        sizes = self.n_atoms.cpu().numpy()
        out = []
        for c in range(self.n_crystals):
            rows = slice(offsets[c], offsets[c] + sizes[c])
            symbols = [ELEMENTS[e] for e in species[rows]]
            out.append(Structure(Lattice(lattice[c]), symbols, frac[rows], coords_are_cartesian=False))
        return out
