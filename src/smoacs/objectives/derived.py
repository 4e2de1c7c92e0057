"""Derived terms: quantities computed from a crystal batch itself (not by a predictor) that objectives can constrain.

Both the optimisation loop (soft crystals, differentiable) and the evaluation (discrete crystals) get their values
from :func:`derived_values`, so a term is defined once. A term is any object with a ``key`` (the property name
objectives and result columns use) and ``__call__(inputs: DerivedInputs) -> [n_crystals] Tensor``.

To add one (e.g. a pressure from a potential): write a class here with ``key`` and ``__call__``, and add an instance
to :data:`DERIVED_TERMS` (its key then becomes available to objectives, see ``smoacs.config.DERIVED_PROPERTIES``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import NeighborList, edge_vectors, min_distances


@dataclass
class DerivedInputs:
    """What derived terms see.

    Attributes:
        crystals: the (soft or discrete) batch.
        site_radius: ``[N]`` Shannon radius (Å) of each site's element in its pattern state (soft: expected radius).
        site_roles: ``[N]`` perovskite role of each site (0 A, 1 B, 2 X; negative: none).
        graph: the short-range neighbour list of the optimiser's last rebuild, or None for an exact search.
        cutoff: search radius (Å) of ``graph`` or of the exact search.
    """

    crystals: CrystalBatch
    site_radius: Tensor
    site_roles: Tensor
    graph: NeighborList | None = None
    cutoff: float = 4.0


class DerivedTerm(Protocol):
    """A derived quantity (see the module docstring)."""

    key: str

    def __call__(self, inputs: DerivedInputs) -> Tensor: ...


def role_radii(site_radius: Tensor, site_roles: Tensor, crystal_idx: Tensor, n_crystals: int) -> Tensor:
    """``[B, 3]`` mean radius (Å) of each crystal's A, B and X sites; NaN for a role a crystal does not have."""
    site_roles = site_roles.to(site_radius.device)
    has_role = site_roles >= 0
    index = crystal_idx.to(site_radius.device) * 3 + site_roles.clamp_min(0)
    zeros = torch.zeros(n_crystals * 3, dtype=site_radius.dtype, device=site_radius.device)
    total = zeros.index_add(0, index[has_role], site_radius[has_role])
    count = zeros.index_add(0, index[has_role], torch.ones_like(site_radius[has_role]))
    return (total / count).view(-1, 3)  # 0/0 → NaN for crystals without roles


def tolerance_factor(site_radius: Tensor, site_roles: Tensor, crystal_idx: Tensor, n_crystals: int) -> Tensor:
    """``[B]`` t = (r_A + r_X) / (√2 (r_B + r_X)) from per-site radii (Å) averaged per role; NaN without roles."""
    r_a, r_b, r_x = role_radii(site_radius, site_roles, crystal_idx, n_crystals).unbind(-1)
    return (r_a + r_x) / (math.sqrt(2.0) * (r_b + r_x))


class ToleranceFactor:
    """Goldschmidt tolerance factor of the A/B/X sites (NaN for crystals without roles)."""

    key: ClassVar[str] = "tolerance"

    def __call__(self, inputs: DerivedInputs) -> Tensor:
        """``[B]`` tolerance factor."""
        crystals = inputs.crystals
        return tolerance_factor(inputs.site_radius, inputs.site_roles, crystals.crystal_idx, crystals.n_crystals)


class MinDistance:
    """Shortest interatomic distance (Å): over the short-range ``graph`` when given (differentiable; ``cutoff``
    when no pair is closer), else the exact periodic minimum in float64."""

    key: ClassVar[str] = "min_distance"

    def __call__(self, inputs: DerivedInputs) -> Tensor:
        """``[B]`` minimum distance in Å."""
        crystals = inputs.crystals
        if inputs.graph is None:
            return min_distances(
                crystals.lattice.double(), crystals.frac_coords.double(), crystals.crystal_idx, crystals.n_atoms,
                inputs.cutoff,
            )  # fmt: skip
        graph = inputs.graph
        dist = edge_vectors(crystals.lattice, crystals.frac_coords, crystals.crystal_idx, graph).norm(dim=-1)
        out = torch.full((crystals.n_crystals,), float(inputs.cutoff), dtype=dist.dtype, device=dist.device)
        if len(dist) == 0:
            return out
        return out.scatter_reduce(0, crystals.crystal_idx[graph.center], dist, reduce="amin", include_self=True)


#: The derived terms every run provides, in column order.
DERIVED_TERMS: tuple[DerivedTerm, ...] = (ToleranceFactor(), MinDistance())


def derived_values(inputs: DerivedInputs, terms: tuple[DerivedTerm, ...] = DERIVED_TERMS) -> dict[str, Tensor]:
    """Key → ``[B]`` value of every term."""
    return {term.key: term(inputs) for term in terms}
