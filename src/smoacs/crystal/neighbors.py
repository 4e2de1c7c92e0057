"""Batched periodic neighbour lists.

Neighbour *indices and image offsets* are built without gradients (a discrete search) and kept fixed between
rebuilds; edge vectors and distances are then recomputed differentiably from the lattice and coordinates at every
step (:func:`edge_vectors`). Coordinates need not be wrapped: image offsets are expressed for the coordinates
exactly as given, so a list built from unwrapped coordinates stays valid while they move continuously.

Two searches give the same pairs (the tests check it): ``"dense"``, every atom pair × every image that can reach the
cutoff, vectorised over the whole batch (O(N² · images) per crystal), and ``"cell_list"``, the linear-time cell list
of the maintained ``vesin`` library, one call per crystal. ``"auto"`` (the default) sends each crystal to the cheaper
one by its dense workload (on CPU nearly always the cell list). Distances of the found candidates are recomputed here
with one formula, and pairs are ordered by a total key (centre, distance to 1e-6 Å, neighbour, image), so the result
does not depend on the search.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from smoacs.crystal.scatter import gather_rows

# Pairs × images evaluated at once while searching; bounds the memory of a rebuild (~100 MB in float64).
_CHUNK_CANDIDATES = 4_000_000
# Under "auto", a crystal whose dense search would evaluate more pair-images than this goes to the cell list. On CPU
# the cell list costs ~0.05–0.3 ms per crystal and already beats the batched dense search for 5-atom cells with the
# 8 Å / 12-NN and 3 Å lists (workload 3,125; benchmarks/large_cells.py), so only tiny workloads stay dense. On a GPU
# the dense search runs batched on the device while the cell list goes through the host crystal by crystal, so small
# cells stay dense there (a limit set without a GPU measurement: none was available).
_DENSE_LIMIT = {"cpu": 1_000, "other": 200_000}
# vesin's radius is widened by this (Å) so no pair within the cutoff is lost to its own rounding; the exact
# ``distance <= cutoff`` test is then made here, on the distances computed as in the dense search.
_CELL_LIST_SLACK = 1e-6
Search = Literal["auto", "dense", "cell_list"]
_TOKENS = itertools.count()


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
        token: an integer unique to this list in the process, so caches can key features computed on it
            (see :class:`smoacs.crystal.cache.FeatureCache`).
    """

    center: Tensor
    neighbor: Tensor
    image: Tensor
    valid: Tensor
    max_neighbors: int | None
    cutoff: float
    token: int = field(default_factory=lambda: next(_TOKENS), compare=False)

    @property
    def n_edges(self) -> int:
        """Number of edges, padding included."""
        return int(self.center.shape[0])


def edge_vectors(lattice: Tensor, frac_coords: Tensor, crystal_idx: Tensor, neighbors: NeighborList) -> Tensor:
    """``[n_edges, 3]`` Cartesian vectors centre → neighbour image in Å, differentiable in lattice and coordinates."""
    # gather_rows: index_select with a sparse-product backward (index_add_ is slow on CPU, index_put slower).
    delta = (
        gather_rows(frac_coords, neighbors.neighbor)
        + neighbors.image.to(frac_coords.dtype)
        - gather_rows(frac_coords, neighbors.center)
    )
    cells = gather_rows(lattice.reshape(len(lattice), -1), crystal_idx[neighbors.center]).view(-1, 3, 3)
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


Candidates = tuple[Tensor, Tensor, Tensor, Tensor]  # centre, neighbour, image (wrapped coordinates), distance


def _empty_candidates(device: torch.device) -> Candidates:
    index = torch.zeros(0, dtype=torch.long, device=device)
    return index, index, torch.zeros(0, 3, dtype=torch.float64, device=device), torch.zeros(0, dtype=torch.float64, device=device)


def _dense_candidates(
    lattice: Tensor, wrapped: Tensor, crystal_idx: Tensor, n_atoms: Tensor, cutoff: Tensor, ranges: Tensor, chosen: Tensor
) -> Candidates:
    """Every (centre, neighbour, image) of the ``chosen`` crystals by testing all pairs × all reaching images.

    Crystals are grouped by their image extent, so a small cell does not inflate the image grid of the others, and
    each group is processed in chunks of at most ``_CHUNK_CANDIDATES`` pair-images. Images refer to ``wrapped``.
    """
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    out: list[Candidates] = []
    searched = torch.nonzero(chosen).flatten()
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
            out.append((center[p_idx], neighbor[p_idx], images[k_idx] + nearest[p_idx], dist[p_idx, k_idx]))
    return _concat(out, lattice.device)


def _cell_list_candidates(
    lattice: Tensor, wrapped: Tensor, crystal_idx: Tensor, n_atoms: Tensor, cutoff: Tensor, chosen: Tensor
) -> Candidates:
    """The same candidates as :func:`_dense_candidates` for the ``chosen`` crystals, found by ``vesin``'s cell list.

    One library call per crystal (linear in its atoms, any cell shape, cutoffs beyond the cell included); the
    distances are then recomputed for all found pairs at once exactly as the dense search computes them, and the
    ``distance <= cutoff`` test is made on those.
    """
    from vesin import NeighborList as VesinList  # a core dependency; imported here to keep import time low

    members = torch.nonzero(chosen).flatten().tolist()
    if not members:
        return _empty_candidates(lattice.device)
    offsets = (torch.cumsum(n_atoms, 0) - n_atoms).tolist()
    sizes, radii = n_atoms.tolist(), cutoff.tolist()
    cells = lattice.cpu().numpy()
    positions = torch.einsum("ni,nij->nj", wrapped, lattice[crystal_idx]).cpu().numpy()
    threads = torch.get_num_threads()
    found_center, found_neighbor, found_shift = [], [], []
    for c in members:  # one linear-time search per crystal: the loop is over a few large cells
        rows = slice(offsets[c], offsets[c] + sizes[c])
        search = VesinList(cutoff=radii[c] + _CELL_LIST_SLACK, full_list=True, n_threads=threads)
        i, j, shift = search.compute(np.ascontiguousarray(positions[rows]), cells[c], True, "ijS")
        found_center.append(i.astype(np.int64) + offsets[c])
        found_neighbor.append(j.astype(np.int64) + offsets[c])
        found_shift.append(shift)
    device = lattice.device
    center = torch.from_numpy(np.concatenate(found_center)).to(device)
    neighbor = torch.from_numpy(np.concatenate(found_neighbor)).to(device)
    image = torch.from_numpy(np.concatenate(found_shift).astype(np.float64)).to(device)
    cell = lattice[crystal_idx[center]]
    delta = wrapped[neighbor] - wrapped[center]
    nearest = -torch.round(delta)
    base = torch.einsum("pi,pij->pj", delta + nearest, cell)
    dist = (base + torch.einsum("pi,pij->pj", image - nearest, cell)).norm(dim=-1)
    is_self = (center == neighbor) & (image == 0).all(dim=-1)
    keep = (dist <= cutoff[crystal_idx[center]]) & ~is_self
    return center[keep], neighbor[keep], image[keep], dist[keep]


def _concat(parts: list[Candidates], device: torch.device) -> Candidates:
    if not parts:
        return _empty_candidates(device)
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]


@torch.no_grad()
def _candidates(
    lattice: Tensor, frac: Tensor, crystal_idx: Tensor, n_atoms: Tensor, cutoff: Tensor, search: Search = "auto"
) -> Candidates:
    """Every (centre, neighbour, image) within each crystal's ``cutoff[c]`` (self at zero offset excluded).

    Crystals with a zero radius are skipped. Images are returned for the coordinates as given (unwrapped).
    """
    lattice = lattice.double()
    wrapped = torch.remainder(frac.double(), 1.0)
    shift = frac.double() - wrapped  # integer part; images are converted back to unwrapped coordinates below
    ranges = _image_ranges(lattice, cutoff)
    if search == "dense":
        by_cells = torch.zeros_like(cutoff, dtype=torch.bool)
    elif search == "cell_list":
        by_cells = torch.ones_like(cutoff, dtype=torch.bool)
    else:
        limit = _DENSE_LIMIT["cpu" if lattice.device.type == "cpu" else "other"]
        by_cells = n_atoms.long() ** 2 * (2 * ranges + 1).prod(dim=-1) > limit
    searched = cutoff > 0
    parts = [
        _dense_candidates(lattice, wrapped, crystal_idx, n_atoms, cutoff, ranges, searched & ~by_cells),
        _cell_list_candidates(lattice, wrapped, crystal_idx, n_atoms, cutoff, searched & by_cells),
    ]
    center, neighbor, image, dist = _concat(parts, frac.device)
    return center, neighbor, image - shift[neighbor] + shift[center], dist


def _nearest_candidates(
    lattice: Tensor, frac: Tensor, crystal_idx: Tensor, n_atoms: Tensor, cutoff: Tensor, k: int, search: Search
) -> Candidates:
    """Candidates that contain every atom's ``k`` nearest neighbours within ``cutoff``, searched cheaply.

    A first pass uses, per crystal, the radius of a sphere holding ~3k atoms at the crystal's density (capped at the
    cutoff). Crystals where some atom found fewer than k neighbours inside a radius below the cutoff are searched
    again with the full cutoff. The k nearest are therefore exactly those of a full search.
    """
    volume_per_atom = torch.linalg.det(lattice.double()).abs() / n_atoms
    radius = torch.minimum((3 * (3 * k) * volume_per_atom / (4 * torch.pi)) ** (1 / 3), cutoff)
    center, neighbor, image, dist = _candidates(lattice, frac, crystal_idx, n_atoms, radius, search)
    found = torch.bincount(center, minlength=frac.shape[0])
    short = torch.zeros(len(n_atoms), dtype=torch.bool, device=frac.device)
    short[crystal_idx[found < k]] = True
    redo = short & (radius < cutoff)
    if not redo.any():
        return center, neighbor, image, dist
    keep = ~redo[crystal_idx[center]]
    radius = torch.where(redo, cutoff, torch.zeros_like(cutoff))
    more = _candidates(lattice, frac, crystal_idx, n_atoms, radius, search)
    return tuple(torch.cat([a[keep], b]) for a, b in zip((center, neighbor, image, dist), more, strict=True))  # type: ignore[return-value]


def lexicographic_keys(rows: Tensor) -> Tensor:
    """``[n]`` int64 keys ordered as the rows of the ``[n, k]`` integer tensor ``rows`` are lexicographically, or
    ``rows`` itself when such a key would not fit in 62 bits.

    Each column is shifted to start at 0 and given as many digits as its range needs, first column most significant:
    equal rows get equal keys and the sort order is the same, so ``torch.unique`` or ``argsort`` on the keys give what
    they give on whole rows (``torch.unique(dim=0)`` sorts rows and is ~10× slower).
    """
    if len(rows) == 0:
        return rows
    low = rows.amin(dim=0)
    spans = rows.amax(dim=0) - low + 1
    if float(torch.log2(spans.double()).sum()) > 62:
        return rows
    key = torch.zeros(len(rows), dtype=torch.long, device=rows.device)
    for column, span in zip((rows - low).unbind(1), spans.tolist(), strict=True):
        key = key * span + column
    return key


def _canonical_order(center: Tensor, neighbor: Tensor, image: Tensor, dist: Tensor) -> Tensor:
    """Permutation sorting edges by centre, distance (to 1e-6 Å, so float noise does not reorder ties), neighbour,
    then image (lexicographic): a total order, so the list does not depend on the order the search found pairs in."""
    key_dist = torch.round(dist * 1e6)
    columns = (center, key_dist, neighbor, image[:, 0], image[:, 1], image[:, 2])
    key = lexicographic_keys(torch.stack([torch.round(c).long() for c in columns], dim=1)) if len(center) else center
    if key.dim() == 1:  # one sort of packed keys (distinct: no edge repeats its centre, neighbour and image)
        return torch.argsort(key)
    order = torch.argsort(image[:, 2], stable=True)
    for column in (image[:, 1], image[:, 0], neighbor, key_dist, center):
        order = order[torch.argsort(column[order], stable=True)]
    return order


@torch.no_grad()
def build_neighbor_list(
    lattice: Tensor,
    frac_coords: Tensor,
    crystal_idx: Tensor,
    n_atoms: Tensor,
    cutoff: float,
    max_neighbors: int | None = None,
    search: Search = "auto",
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
        search: ``"dense"`` (all pairs × images, batched), ``"cell_list"`` (vesin, linear time) or ``"auto"`` (per
            crystal, whichever is cheaper); all three give the same list.

    Returns:
        The :class:`NeighborList`; for a fixed count its edges are ordered ``[n_atoms, max_neighbors]``.
    """
    if search not in ("auto", "dense", "cell_list"):
        raise ValueError(f"search must be auto, dense or cell_list, got {search!r}")
    device = frac_coords.device
    full = torch.full((len(n_atoms),), float(cutoff), dtype=torch.float64, device=device)
    if max_neighbors is None:
        center, neighbor, image, dist = _candidates(lattice, frac_coords, crystal_idx, n_atoms, full, search)
    else:
        center, neighbor, image, dist = _nearest_candidates(
            lattice, frac_coords, crystal_idx, n_atoms, full, max_neighbors, search
        )
    order = _canonical_order(center, neighbor, image, dist)
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


def min_distances(
    lattice: Tensor, frac_coords: Tensor, crystal_idx: Tensor, n_atoms: Tensor, cutoff: float = 4.0, search: Search = "auto"
) -> Tensor:
    """``[n_crystals]`` shortest interatomic distance (periodic images included) in Å; ``cutoff`` if none closer.

    A crystal with one atom still has a distance to its own images.
    """
    neighbors = build_neighbor_list(lattice, frac_coords, crystal_idx, n_atoms, cutoff, max_neighbors=None, search=search)
    dist = edge_vectors(lattice, frac_coords, crystal_idx, neighbors).norm(dim=-1)
    out = torch.full((len(n_atoms),), float(cutoff), dtype=dist.dtype, device=dist.device)
    if len(dist):
        out = out.scatter_reduce(0, crystal_idx[neighbors.center], dist, reduce="amin")
    return out

