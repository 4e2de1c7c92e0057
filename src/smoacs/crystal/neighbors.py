"""Batched periodic neighbour lists in torch.

Neighbour *indices and image offsets* are built without gradients (a discrete search) and kept fixed between
rebuilds; edge vectors and distances are then recomputed differentiably from the lattice and coordinates at every
step (:func:`edge_vectors`). Coordinates need not be wrapped: image offsets are expressed for the coordinates
exactly as given, so a list built from unwrapped coordinates stays valid while they move continuously.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Pairs × images evaluated at once while searching; bounds the memory of a rebuild (~100 MB in float64).
_CHUNK_CANDIDATES = 4_000_000


@dataclass(frozen=True)
class NeighborList:
    """Directed edges ``center → neighbor`` with the neighbour's periodic image.

    Attributes:
        center: ``[n_edges]`` global atom index of the centre.
        neighbor: ``[n_edges]`` global atom index of the neighbour.
        image: ``[n_edges, 3]`` integer image offset (float dtype) of the neighbour, in lattice units.
        valid: ``[n_edges]`` False for padding edges (only when a fixed neighbour count was requested).
        max_neighbors: fixed neighbours per atom (edges are then laid out ``[n_atoms, max_neighbors]`` row-major,
            nearest first), or None for "all within the cutoff" (edges sorted by centre, then distance).
        cutoff: search radius in Å.
    """

    center: Tensor
    neighbor: Tensor
    image: Tensor
    valid: Tensor
    max_neighbors: int | None
    cutoff: float

    @property
    def n_edges(self) -> int:
        """Number of edges, padding included."""
        return int(self.center.shape[0])


def edge_vectors(lattice: Tensor, frac_coords: Tensor, crystal_idx: Tensor, neighbors: NeighborList) -> Tensor:
    """``[n_edges, 3]`` Cartesian vectors centre → neighbour image in Å, differentiable in lattice and coordinates."""
    # index_select (backward: index_add) is much faster on CPU than advanced indexing (backward: index_put).
    delta = (
        torch.index_select(frac_coords, 0, neighbors.neighbor)
        + neighbors.image.to(frac_coords.dtype)
        - torch.index_select(frac_coords, 0, neighbors.center)
    )
    cells = torch.index_select(lattice, 0, crystal_idx[neighbors.center])
    return torch.einsum("ei,eij->ej", delta, cells)


def _image_ranges(lattice: Tensor, cutoff: Tensor) -> Tensor:
    """``[n_crystals, 3]`` images per axis that reach every point within ``cutoff``.

    A point within ``cutoff`` lies within ``cutoff / spacing`` of the origin along each fractional axis; pair
    differences are reduced to [−½, ½) first, so ``ceil(cutoff / spacing + ½)`` shells suffice.
    """
    inverse = torch.linalg.inv(lattice)  # columns of inv(L) are reciprocal vectors / 2π
    widths = 1.0 / inverse.norm(dim=-2)  # interplanar spacing per axis
    return torch.ceil(cutoff[:, None] / widths + 0.5).long()


def all_pairs(n_atoms: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
    """All ordered (i, j) atom pairs within each crystal (``n_atoms`` and first-atom ``offsets`` per crystal),
    as global atom indices, crystal by crystal, i-major."""
    counts = n_atoms * n_atoms
    owner = torch.repeat_interleave(torch.arange(len(n_atoms), device=n_atoms.device), counts)
    local = torch.arange(int(counts.sum()), device=n_atoms.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    size = n_atoms[owner]
    return offsets[owner] + local // size, offsets[owner] + local % size


def _image_grid(extent: Tensor, device: torch.device) -> Tensor:
    axes = [torch.arange(-int(n), int(n) + 1, device=device, dtype=torch.float64) for n in extent]
    return torch.cartesian_prod(*axes)


@torch.no_grad()
def _candidates(
    lattice: Tensor, frac: Tensor, crystal_idx: Tensor, n_atoms: Tensor, cutoff: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every (centre, neighbour, image) within each crystal's ``cutoff[c]`` (self at zero offset excluded).

    Crystals are grouped by their image extent, so a small cell does not inflate the image grid of the others, and
    each group is processed in chunks of at most ``_CHUNK_CANDIDATES`` pair-images.
    """
    lattice = lattice.double()
    wrapped = torch.remainder(frac.double(), 1.0)
    shift = frac.double() - wrapped  # integer part; images are converted back to unwrapped coordinates below
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    ranges = _image_ranges(lattice, cutoff)
    out_c, out_n, out_img, out_d = [], [], [], []
    searched = torch.nonzero(cutoff > 0).flatten()  # crystals with a zero radius are skipped
    extents, group_of = torch.unique(ranges[searched], dim=0, return_inverse=True)
    for group, extent in enumerate(extents):
        members = searched[group_of == group]
        images = _image_grid(extent, lattice.device)
        is_origin = images.abs().sum(-1) == 0
        pairs_per_crystal = n_atoms[members] ** 2
        budget = max(1, _CHUNK_CANDIDATES // len(images))
        chunk_id = torch.div(torch.cumsum(pairs_per_crystal, 0) - pairs_per_crystal, budget, rounding_mode="floor")
        for chunk in torch.unique(chunk_id):
            crystals = members[chunk_id == chunk]
            center, neighbor = all_pairs(n_atoms[crystals], offsets[crystals])
            cell = lattice[crystal_idx[center]]
            delta = wrapped[neighbor] - wrapped[center]
            nearest = -torch.round(delta)  # image bringing the pair difference into [−½, ½]
            base = torch.einsum("pi,pij->pj", delta + nearest, cell)  # [P, 3]
            image_cart = torch.einsum("ki,pij->pkj", images, cell)  # [P, K, 3]
            dist = (base[:, None, :] + image_cart).norm(dim=-1)  # [P, K]
            radius = cutoff[crystal_idx[center]][:, None]
            is_self = (center == neighbor)[:, None] & is_origin[None, :]  # nearest is 0 for i == j
            keep = (dist <= radius) & ~is_self
            p_idx, k_idx = keep.nonzero(as_tuple=True)
            out_c.append(center[p_idx])
            out_n.append(neighbor[p_idx])
            out_img.append(images[k_idx] + nearest[p_idx] - shift[neighbor[p_idx]] + shift[center[p_idx]])
            out_d.append(dist[p_idx, k_idx])
    if not out_c:
        empty = torch.zeros(0, dtype=torch.long, device=frac.device)
        return empty, empty, torch.zeros(0, 3, dtype=torch.float64, device=frac.device), torch.zeros(0, dtype=torch.float64, device=frac.device)
    return torch.cat(out_c), torch.cat(out_n), torch.cat(out_img), torch.cat(out_d)


def _nearest_candidates(
    lattice: Tensor, frac: Tensor, crystal_idx: Tensor, n_atoms: Tensor, cutoff: Tensor, k: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Candidates that contain every atom's ``k`` nearest neighbours within ``cutoff``, searched cheaply.

    A first pass uses, per crystal, the radius of a sphere holding ~3k atoms at the crystal's density (capped at the
    cutoff). Crystals where some atom found fewer than k neighbours inside a radius below the cutoff are searched
    again with the full cutoff. The k nearest are therefore exactly those of a full search.
    """
    volume_per_atom = torch.linalg.det(lattice.double()).abs() / n_atoms
    radius = torch.minimum((3 * (3 * k) * volume_per_atom / (4 * torch.pi)) ** (1 / 3), cutoff)
    center, neighbor, image, dist = _candidates(lattice, frac, crystal_idx, n_atoms, radius)
    found = torch.bincount(center, minlength=frac.shape[0])
    short = torch.zeros(len(n_atoms), dtype=torch.bool, device=frac.device)
    short[crystal_idx[found < k]] = True
    redo = short & (radius < cutoff)
    if not redo.any():
        return center, neighbor, image, dist
    keep = ~redo[crystal_idx[center]]
    radius = torch.where(redo, cutoff, torch.zeros_like(cutoff))
    more = _candidates(lattice, frac, crystal_idx, n_atoms, radius)
    return tuple(torch.cat([a[keep], b]) for a, b in zip((center, neighbor, image, dist), more, strict=True))  # type: ignore[return-value]


@torch.no_grad()
def build_neighbor_list(
    lattice: Tensor,
    frac_coords: Tensor,
    crystal_idx: Tensor,
    n_atoms: Tensor,
    cutoff: float,
    max_neighbors: int | None = None,
) -> NeighborList:
    """Search periodic neighbours of every atom, for a whole batch at once.

    Args:
        lattice: ``[n_crystals, 3, 3]`` row-vector lattices, Å.
        frac_coords: ``[n_atoms, 3]`` fractional coordinates (any real values).
        crystal_idx: ``[n_atoms]`` crystal of each atom.
        n_atoms: ``[n_crystals]`` atoms per crystal.
        cutoff: search radius, Å.
        max_neighbors: keep the nearest ``max_neighbors`` per atom (ties broken by neighbour index, then image) and
            pad atoms that have fewer with invalid edges pointing at their crystal's first atom (CGCNN's rule);
            None keeps every neighbour within the cutoff.

    Returns:
        The :class:`NeighborList`; for a fixed count its edges are ordered ``[n_atoms, max_neighbors]``.
    """
    device = frac_coords.device
    full = torch.full((len(n_atoms),), float(cutoff), dtype=torch.float64, device=device)
    if max_neighbors is None:
        center, neighbor, image, dist = _candidates(lattice, frac_coords, crystal_idx, n_atoms, full)
    else:
        center, neighbor, image, dist = _nearest_candidates(lattice, frac_coords, crystal_idx, n_atoms, full, max_neighbors)
    # Deterministic order: by centre, then distance (rounded so float noise does not reorder ties), then index.
    key_dist = torch.round(dist * 1e6)
    order = torch.argsort(neighbor, stable=True)
    order = order[torch.argsort(key_dist[order], stable=True)]
    order = order[torch.argsort(center[order], stable=True)]
    center, neighbor, image = center[order], neighbor[order], image[order]
    if max_neighbors is None:
        valid = torch.ones_like(center, dtype=torch.bool)
        return NeighborList(center, neighbor, image, valid, None, cutoff)

    n_total = frac_coords.shape[0]
    counts = torch.bincount(center, minlength=n_total)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(center), device=device) - starts[center]
    keep = rank < max_neighbors
    slot = center[keep] * max_neighbors + rank[keep]
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    grid_center = torch.arange(n_total, device=device).repeat_interleave(max_neighbors)
    grid_neighbor = offsets[crystal_idx].repeat_interleave(max_neighbors).clone()
    grid_image = torch.zeros(n_total * max_neighbors, 3, dtype=torch.float64, device=device)
    grid_valid = torch.zeros(n_total * max_neighbors, dtype=torch.bool, device=device)
    grid_neighbor[slot] = neighbor[keep]
    grid_image[slot] = image[keep]
    grid_valid[slot] = True
    return NeighborList(grid_center, grid_neighbor, grid_image, grid_valid, max_neighbors, cutoff)


def min_distances(lattice: Tensor, frac_coords: Tensor, crystal_idx: Tensor, n_atoms: Tensor, cutoff: float = 4.0) -> Tensor:
    """``[n_crystals]`` shortest interatomic distance (periodic images included) in Å; ``cutoff`` if none closer.

    A crystal with one atom still has a distance to its own images.
    """
    neighbors = build_neighbor_list(lattice, frac_coords, crystal_idx, n_atoms, cutoff, max_neighbors=None)
    dist = edge_vectors(lattice, frac_coords, crystal_idx, neighbors).norm(dim=-1)
    out = torch.full((len(n_atoms),), float(cutoff), dtype=dist.dtype, device=dist.device)
    if len(dist):
        out = out.scatter_reduce(0, crystal_idx[neighbors.center], dist, reduce="amin")
    return out

