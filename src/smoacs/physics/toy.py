"""A cheap analytic :class:`~smoacs.predictors.potential.Potential`: a batched Lennard-Jones pair potential.

For tests, examples and benchmarks of the relaxer without a machine-learned model. The pair energy is the
shifted-force Lennard-Jones form, so energy and force are both continuous at the cutoff::

    φ(r) = 4ε[(σ/r)¹² − (σ/r)⁶],   E_pair(r) = φ(r) − φ(r_c) − (r − r_c) φ'(r_c)   for r < r_c.

Per-element σ and ε (Lorentz–Berthelot mixing: σᵢⱼ = (σᵢ+σⱼ)/2, εᵢⱼ = √(εᵢεⱼ)) are read through the soft
``species_probs`` (σᵢ = Σₑ pᵢₑ σₑ), so the energy is differentiable in species too. Forces and stress come from
autograd: forces ``−∂E/∂r`` (eV/Å), stress ``(1/V) ∂E/∂ε`` at zero strain (GPa, ASE sign).
"""

from __future__ import annotations

import torch
from torch import Tensor

from smoacs.chem.elements import N_ELEMENTS
from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import NeighborList, build_neighbor_list, edge_vectors
from smoacs.predictors.base import PredictorInfo
from smoacs.predictors.potential import EV_PER_A3_IN_GPA, PotentialOutput


class LennardJonesPotential:
    """Shifted-force Lennard-Jones on a whole batch (implements the ``Potential`` protocol).

    Args:
        sigma: σ in Å — one value for every element, or a ``[98]`` tensor per element (H … Cf).
        epsilon: ε in eV — one value or a ``[98]`` tensor per element.
        cutoff: r_c in Å (default 2.5 × the largest σ).
    """

    def __init__(self, sigma: float | Tensor = 2.0, epsilon: float | Tensor = 0.1, cutoff: float | None = None) -> None:
        self.sigma = torch.as_tensor(sigma, dtype=torch.float64).expand(N_ELEMENTS).clone()
        self.epsilon = torch.as_tensor(epsilon, dtype=torch.float64).expand(N_ELEMENTS).clone()
        self.cutoff = float(cutoff) if cutoff is not None else 2.5 * float(self.sigma.max())
        self.info = PredictorInfo(
            name="toy-lennard-jones",
            property="energy_per_atom",
            unit="eV/atom",
            training_data="none (analytic)",
            source="smoacs.physics.toy",
            description="shifted-force Lennard-Jones pair potential for tests",
        )
        self._graph: NeighborList | None = None
        self._graph_atoms = -1

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Search neighbours within the cutoff for the current geometry."""
        self._graph = build_neighbor_list(
            crystals.lattice.detach(), crystals.frac_coords.detach(), crystals.crystal_idx, crystals.n_atoms, self.cutoff
        )
        self._graph_atoms = crystals.frac_coords.shape[0]

    def energy(self, lattice: Tensor, frac_coords: Tensor, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` total energy (eV) for the given lattice and coordinates (differentiable)."""
        graph = self._graph
        assert graph is not None
        vectors = edge_vectors(lattice, frac_coords, crystals.crystal_idx, graph)
        r = vectors.norm(dim=-1)
        probs = crystals.species_probs.to(r.dtype)
        sig_atom, eps_atom = probs @ self.sigma.to(r), probs @ self.epsilon.to(r)
        sig = 0.5 * (sig_atom[graph.center] + sig_atom[graph.neighbor])
        eps = torch.sqrt(eps_atom[graph.center] * eps_atom[graph.neighbor])
        rc = torch.full_like(r, self.cutoff)
        pair = _lj(r, sig, eps) - _lj(rc, sig, eps) - (r - rc) * _lj_derivative(rc, sig, eps)
        pair = torch.where(r < rc, pair, torch.zeros_like(pair))
        out = torch.zeros(crystals.n_crystals, dtype=r.dtype, device=r.device)
        return out.index_add(0, crystals.crystal_idx[graph.center], 0.5 * pair)

    def compute(
        self, crystals: CrystalBatch, forces: bool = True, stress: bool = True, create_graph: bool = False
    ) -> PotentialOutput:
        """Energy (eV), forces (eV/Å) and stress (GPa) of every crystal; see the module docstring for signs."""
        if self._graph is None or self._graph_atoms != crystals.frac_coords.shape[0]:
            self.rebuild(crystals)
        lattice, frac = crystals.lattice, crystals.frac_coords
        if not create_graph:
            lattice, frac = lattice.detach(), frac.detach()
        # r' = r (I + ε) with the fractional coordinates fixed: the lattice carries the strain.
        strain = torch.zeros_like(lattice, requires_grad=True)
        strained = lattice @ (torch.eye(3, dtype=lattice.dtype, device=lattice.device) + strain)
        cart = torch.einsum("ni,nij->nj", frac, lattice[crystals.crystal_idx])
        if forces and not cart.requires_grad:
            cart.requires_grad_(True)
        inverse = torch.linalg.inv(lattice)[crystals.crystal_idx]
        frac_used = torch.einsum("nj,njk->nk", cart, inverse)
        energy = self.energy(strained, frac_used, crystals)
        wrt = [t for t, need in ((cart, forces), (strain, stress)) if need]
        grads = list(torch.autograd.grad(energy.sum(), wrt, create_graph=create_graph)) if wrt else []
        out = PotentialOutput(energy=energy if create_graph else energy.detach(), n_atoms=crystals.n_atoms)
        if forces:
            out.forces = -grads.pop(0)
        if stress:
            volume = torch.linalg.det(lattice).abs()
            out.stress = grads.pop(0) / volume[:, None, None] * EV_PER_A3_IN_GPA
        return out


def _lj(r: Tensor, sigma: Tensor, epsilon: Tensor) -> Tensor:
    s6 = (sigma / r) ** 6
    return 4.0 * epsilon * (s6 * s6 - s6)


def _lj_derivative(r: Tensor, sigma: Tensor, epsilon: Tensor) -> Tensor:
    s6 = (sigma / r) ** 6
    return 4.0 * epsilon * (-12.0 * s6 * s6 + 6.0 * s6) / r
