"""The `Potential` protocol: an interatomic potential evaluated on a whole `CrystalBatch` at once.

A potential is what the batched relaxer (``smoacs.physics``) and the physics terms of the design loop (pressure,
residual force) read. Adapters live beside the other predictors (e.g. ``smoacs.predictors.chgnet``); a potential is
also a :class:`~smoacs.predictors.base.Predictor` of its energy per atom, so it can appear in objectives like any
other model.

Units and signs (ASE's conventions):

- ``energy``: total energy per crystal, eV.
- ``forces``: ``F = −∂E/∂r``, eV/Å, one row per atom.
- ``stress``: ``σ = (1/V) ∂E/∂ε`` at zero strain, GPa, one 3×3 per crystal. A compressed cell (one that wants to
  expand) has negative stress; ``pressure = −tr(σ)/3`` is then positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.predictors.base import PredictorInfo

EV_PER_A3_IN_GPA = 160.21766208
"""1 eV/Å³ expressed in GPa."""


@dataclass
class PotentialOutput:
    """Energies, forces and stresses of a batch.

    Attributes:
        energy: ``[n_crystals]`` total energy, eV.
        n_atoms: ``[n_crystals]`` atoms per crystal (to form per-atom energies).
        forces: ``[n_atoms, 3]`` eV/Å, or None when not asked for.
        stress: ``[n_crystals, 3, 3]`` GPa (σ = (1/V) ∂E/∂ε), or None when not asked for.
    """

    energy: Tensor
    n_atoms: Tensor
    forces: Tensor | None = None
    stress: Tensor | None = None

    @property
    def energy_per_atom(self) -> Tensor:
        """``[n_crystals]`` energy per atom, eV/atom."""
        return self.energy / self.n_atoms.to(self.energy.dtype)

    @property
    def pressure(self) -> Tensor:
        """``[n_crystals]`` hydrostatic pressure −tr(σ)/3, GPa (positive: the cell wants to expand)."""
        if self.stress is None:
            raise ValueError("pressure needs the stress; compute the potential with stress=True")
        return -torch.diagonal(self.stress, dim1=-2, dim2=-1).sum(-1) / 3.0

    def max_force(self, crystal_idx: Tensor) -> Tensor:
        """``[n_crystals]`` largest per-atom force norm in each crystal, eV/Å."""
        if self.forces is None:
            raise ValueError("max_force needs the forces; compute the potential with forces=True")
        norms = self.forces.norm(dim=-1)
        out = torch.zeros(self.energy.shape[0], dtype=norms.dtype, device=norms.device)
        return out.scatter_reduce(0, crystal_idx, norms, reduce="amax", include_self=True)


@runtime_checkable
class Potential(Protocol):
    """An interatomic potential on a batch of crystals.

    ``compute`` evaluates the whole batch in one call. With ``create_graph=True`` the returned tensors stay
    differentiable with respect to ``crystals.lattice``, ``crystals.frac_coords`` (and ``species_probs`` where the
    potential supports soft species), so loss terms built on energy, stress or forces can be optimised; otherwise
    they are detached. ``rebuild`` refreshes the neighbour graph from the current geometry, on the same schedule as
    the property predictors.
    """

    info: PredictorInfo

    def compute(
        self, crystals: CrystalBatch, forces: bool = True, stress: bool = True, create_graph: bool = False
    ) -> PotentialOutput: ...

    def rebuild(self, crystals: CrystalBatch) -> None: ...
