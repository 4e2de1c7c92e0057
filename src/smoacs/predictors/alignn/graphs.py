"""ALIGNN crystal graphs and line graphs, batched over crystals and built in torch (no DGL, no jarvis).

Two graph conventions exist, one per model family (see ``../shared/fixtures/alignn/README.md`` §3–4):

* **legacy** (``alignn.graphs.Graph.atom_dgl_multigraph``, k-nearest, canonised): every neighbour within 8 Å is
  searched with jarvis' float64 arithmetic (lattice rounded to 5 decimals, the same image ranges and the same
  operation order, so float ties at the 12th distance resolve as in the original); each atom keeps every neighbour
  not farther than its 12th nearest (ties included); a crystal in which some atom has fewer than 12 neighbours is
  searched again with a larger radius (``max(a, b, c)``, else twice the radius); the kept pairs are canonised
  (lower index first, image negated when swapped), de-duplicated, and every canonical pair gives two directed edges
  (so a bond from an atom to its own image appears twice). The line graph pairs every edge with every edge leaving
  its destination, backtracking pairs included, except a self-loop edge with itself (DGL's rule).
* **pure** (``alignn.torch_graph_builder.build_pure_torch_graph``): directed edges centre → neighbour, the 12 nearest
  per centre within 8 Å, strictly (no ties, no symmetrisation); messages are aggregated at the neighbour. The line
  graph pairs every edge with every edge leaving its destination, the pair (A, A) of a self-loop edge included.

Only the topology (indices and integer images) is built here, without gradients. Edge vectors
``r = (frac[dst] + image − frac[src]) · L`` and bond cosines are recomputed differentiably by the predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from smoacs.crystal.neighbors import all_pairs, build_neighbor_list

GraphKind = Literal["legacy", "pure"]

CUTOFF = 8.0  # Å, the published models' neighbour radius
MAX_NEIGHBORS = 12
BOND_TOL = 0.15  # Å, jarvis' minimum distance and image-range margin
LATTICE_DECIMALS = 5  # jarvis rounds the lattice matrix to 5 decimals
_CHUNK_CANDIDATES = 2_000_000  # pair-images evaluated at once in the legacy search (~50 MB per float64 [.., 3])


@dataclass(frozen=True)
class ALIGNNGraph:
    """Atom graph and line graph of a batch of crystals.

    Attributes:
        src: ``[E]`` global atom index where each directed edge starts.
        dst: ``[E]`` global atom index where it ends (messages are aggregated here).
        image: ``[E, 3]`` integer lattice offset (float64) with ``r = (frac[dst] + image − frac[src]) · L``.
        lg_src: ``[T]`` edge index A of each line-graph edge (A → B, ``dst[A] == src[B]``).
        lg_dst: ``[T]`` edge index B.
        edge_crystal: ``[E]`` crystal of each edge.
    """

    src: Tensor
    dst: Tensor
    image: Tensor
    lg_src: Tensor
    lg_dst: Tensor
    edge_crystal: Tensor

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return int(self.src.shape[0])

    @property
    def n_triplets(self) -> int:
        """Number of line-graph edges."""
        return int(self.lg_src.shape[0])


def edge_vectors(lattice: Tensor, frac_coords: Tensor, graph: ALIGNNGraph) -> Tensor:
    """``[E, 3]`` Cartesian bond vectors src → dst image in Å, differentiable in lattice and coordinates."""
    delta = (
        torch.index_select(frac_coords, 0, graph.dst)
        + graph.image.to(frac_coords.dtype)
        - torch.index_select(frac_coords, 0, graph.src)
    )
    cells = torch.index_select(lattice, 0, graph.edge_crystal)
    return torch.einsum("ei,eij->ej", delta, cells)


def bond_cosines(r: Tensor, graph: ALIGNNGraph) -> Tensor:
    """``[T]`` cosine of the angle at the shared atom of each line-graph edge: ``−r_A · r_B / (|r_A| |r_B|)``."""
    r_a = torch.index_select(r, 0, graph.lg_src)
    r_b = torch.index_select(r, 0, graph.lg_dst)
    num = -(r_a * r_b).sum(dim=-1)
    den = torch.linalg.vector_norm(r_a, dim=-1) * torch.linalg.vector_norm(r_b, dim=-1)
    return (num / den.clamp_min(1e-12)).clamp(-1.0, 1.0)


def line_graph(src: Tensor, dst: Tensor, n_atoms_total: int, self_pairs: bool) -> tuple[Tensor, Tensor]:
    """All edge pairs (A, B) with ``dst[A] == src[B]``, vectorised.

    Args:
        src, dst: ``[E]`` edge endpoints.
        n_atoms_total: number of atoms in the batch.
        self_pairs: keep (A, A) for self-loop edges (pure convention); DGL's line graph drops them (legacy).
    """
    order = torch.argsort(src, stable=True)
    out_degree = torch.bincount(src, minlength=n_atoms_total)
    starts = torch.cumsum(out_degree, 0) - out_degree
    n_next = out_degree[dst]
    lg_src = torch.repeat_interleave(torch.arange(len(src), device=src.device), n_next)
    first = torch.cumsum(n_next, 0) - n_next
    rank = torch.arange(len(lg_src), device=src.device) - torch.repeat_interleave(first, n_next)
    lg_dst = order[starts[dst[lg_src]] + rank]
    if not self_pairs:
        keep = lg_src != lg_dst
        lg_src, lg_dst = lg_src[keep], lg_dst[keep]
    by_dst = torch.argsort(lg_dst, stable=True)  # aggregation targets contiguous: index_add is ~4x faster on CPU
    return lg_src[by_dst], lg_dst[by_dst]


def _by_destination(src: Tensor, dst: Tensor, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Edges reordered by destination atom (stable), so message aggregation writes contiguous rows."""
    order = torch.argsort(dst, stable=True)
    return src[order], dst[order], image[order]


# ---------------------------------------------------------------------------------------------------------------
# Legacy k-NN graph (jarvis arithmetic)
# ---------------------------------------------------------------------------------------------------------------


def jarvis_lattice(lattice: Tensor) -> Tensor:
    """``[C, 3, 3]`` float64 lattice rounded to 5 decimals, as ``jarvis.core.lattice.Lattice`` stores it."""
    scale = 10.0**LATTICE_DECIMALS
    return torch.round(lattice.double() * scale) / scale


def _rows_times(coeffs: Tensor, cells: Tensor) -> Tensor:
    """``coeffs · cells`` for ``[..., 3] × [..., 3, 3]`` summed left to right (numpy's order for these sizes)."""
    return coeffs[..., 0:1] * cells[..., 0, :] + coeffs[..., 1:2] * cells[..., 1, :] + coeffs[..., 2:3] * cells[..., 2, :]


def _jarvis_image_bounds(cells: Tensor, frac: Tensor, crystal_idx: Tensor, n_crystals: int, radius: Tensor) -> Tensor:
    """``[C, 3, 2]`` image range per axis (``arange(lo, hi)``, hi exclusive) of ``Atoms.get_all_neighbors``."""
    reciprocal = torch.linalg.vector_norm(torch.linalg.inv(cells), dim=-2)  # |b_i| / 2π
    reach = torch.ceil((radius[:, None] + BOND_TOL) * reciprocal)
    big = torch.full((n_crystals, 3), math.inf, dtype=frac.dtype, device=frac.device)
    low = big.scatter_reduce(0, crystal_idx[:, None].expand(-1, 3), frac, reduce="amin")
    high = (-big).scatter_reduce(0, crystal_idx[:, None].expand(-1, 3), frac, reduce="amax")
    return torch.stack([torch.floor(low) - reach, torch.ceil(high) + reach], dim=-1)


def _grid(bounds: Tensor) -> Tensor:
    """``[K, 3]`` images of ``itertools.product(*ranges)`` for one ``[3, 2]`` range."""
    axes = [torch.arange(int(lo), int(hi), dtype=torch.float64, device=bounds.device) for lo, hi in bounds.tolist()]
    return torch.cartesian_prod(*axes).reshape(-1, 3)


@torch.no_grad()
def jarvis_neighbors(
    cells: Tensor, matrix: Tensor, frac: Tensor, cart: Tensor, crystal_idx: Tensor, n_atoms: Tensor, radius: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every (centre, neighbour, image, distance) with ``0.15 < d <= radius[c]``, as ``Atoms.get_all_neighbors``.

    ``d = sqrt(sum(((image · M + cart[j]) − cart[i])²))`` in float64, in jarvis' order of operations, where ``M`` is
    the unrounded ``matrix`` and ``cart`` and the image ranges come from the rounded ``cells`` (jarvis' mix). Crystals
    are grouped by their image range, and each group is processed in chunks of crystals.
    """
    n_crystals = len(n_atoms)
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    bounds = _jarvis_image_bounds(cells, frac, crystal_idx, n_crystals, radius)
    searched = torch.nonzero(radius > 0).flatten()
    out: list[list[Tensor]] = [[], [], [], []]
    if len(searched) == 0:
        return _empty_neighbors(frac.device)
    groups, group_of = torch.unique(bounds[searched].reshape(len(searched), 6), dim=0, return_inverse=True)
    for group, flat in enumerate(groups):
        images = _grid(flat.reshape(3, 2))
        members = searched[group_of == group]
        pairs = n_atoms[members] ** 2
        budget = max(1, _CHUNK_CANDIDATES // max(1, len(images)))
        chunk_id = torch.div(torch.cumsum(pairs, 0) - pairs, budget, rounding_mode="floor")
        for chunk in torch.unique(chunk_id):
            crystals = members[chunk_id == chunk]
            center, neighbor = all_pairs(n_atoms[crystals], offsets[crystals])
            cell = matrix[crystal_idx[center]]  # [P, 3, 3]
            coords = _rows_times(images[None, :, :], cell[:, None, :, :]) + cart[neighbor][:, None, :]  # [P, K, 3]
            diff = (coords - cart[center][:, None, :]) ** 2
            dist = torch.sqrt(diff[..., 0] + diff[..., 1] + diff[..., 2])
            keep = (dist <= radius[crystal_idx[center]][:, None]) & (dist > 1e-8) & (dist > BOND_TOL)
            p_idx, k_idx = keep.nonzero(as_tuple=True)
            for slot, value in enumerate((center[p_idx], neighbor[p_idx], images[k_idx], dist[p_idx, k_idx])):
                out[slot].append(value)
    if not out[0]:
        return _empty_neighbors(frac.device)
    return tuple(torch.cat(parts) for parts in out)  # type: ignore[return-value]


def _empty_neighbors(device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    empty = torch.zeros(0, dtype=torch.long, device=device)
    images = torch.zeros(0, 3, dtype=torch.float64, device=device)
    return empty, empty, images, torch.zeros(0, dtype=torch.float64, device=device)


def _extended_radius(cells: Tensor, radius: Tensor) -> Tensor:
    """alignn's cutoff extension: ``max(a, b, c)`` if the radius is below it, else twice the radius."""
    longest = torch.round(torch.linalg.vector_norm(cells, dim=-1) * 1e6).amax(dim=-1) / 1e6  # jarvis rounds a, b, c
    return torch.where(radius < longest, longest, 2.0 * radius)


def _knn_with_ties(
    center: Tensor, dist: Tensor, n_total: int, k: int
) -> tuple[Tensor, Tensor]:
    """Mask of candidates not farther than their centre's k-th nearest (exact float comparison), and neighbour counts."""
    order = torch.argsort(dist, stable=True)
    order = order[torch.argsort(center[order], stable=True)]
    counts = torch.bincount(center, minlength=n_total)
    starts = torch.cumsum(counts, 0) - counts
    kth = torch.full((n_total,), math.inf, dtype=dist.dtype, device=dist.device)
    has_k = counts >= k
    kth[has_k] = dist[order[starts[has_k] + k - 1]]
    return dist <= kth[center], counts


@torch.no_grad()
def legacy_graph(
    lattice: Tensor,
    frac_coords: Tensor,
    crystal_idx: Tensor,
    n_atoms: Tensor,
    cutoff: float = CUTOFF,
    max_neighbors: int = MAX_NEIGHBORS,
) -> ALIGNNGraph:
    """The legacy ALIGNN k-NN graph and DGL line graph of every crystal (see the module docstring).

    Args:
        lattice: ``[C, 3, 3]`` row-vector lattices, Å (rounded to 5 decimals internally, as jarvis does; a float32
            lattice is used rounded throughout).
        frac_coords: ``[N, 3]`` fractional coordinates, used as given (not wrapped), as jarvis does.
        crystal_idx: ``[N]`` crystal of each atom.
        n_atoms: ``[C]`` atoms per crystal.
        cutoff: initial search radius, Å.
        max_neighbors: k of the k-nearest rule.
    """
    cells = jarvis_lattice(lattice)
    # jarvis offsets images with the unrounded matrix; a float32 lattice has lost the file's digits, and rounding
    # recovers them for lattices given to 5 decimals (the usual case), so only float64 input is used as is.
    matrix = lattice.double() if lattice.dtype == torch.float64 else cells
    frac = frac_coords.double()
    cart = _rows_times(frac, cells[crystal_idx])
    n_total = frac.shape[0]
    radius = torch.full((len(n_atoms),), float(cutoff), dtype=torch.float64, device=frac.device)
    todo = radius.clone()
    found: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    while True:
        center, neighbor, image, dist = jarvis_neighbors(cells, matrix, frac, cart, crystal_idx, n_atoms, todo)
        counts = torch.bincount(center, minlength=n_total)
        short = torch.zeros(len(n_atoms), dtype=torch.bool, device=frac.device)
        short[crystal_idx[counts < max_neighbors]] = True
        done = ~short[crystal_idx[center]]
        found.append((center[done], neighbor[done], image[done], dist[done]))
        short &= todo > 0
        if not short.any():
            break
        radius = torch.where(short, _extended_radius(cells, radius), radius)
        todo = torch.where(short, radius, torch.zeros_like(radius))
    center, neighbor, image, dist = (torch.cat(parts) for parts in zip(*found, strict=True))
    keep, _ = _knn_with_ties(center, dist, n_total, max_neighbors)
    center, neighbor, image = center[keep], neighbor[keep], image[keep]
    # Canonise: lower atom index first, image negated when the ends are swapped; then de-duplicate.
    swap = neighbor < center
    low = torch.where(swap, neighbor, center)
    high = torch.where(swap, center, neighbor)
    image = torch.where(swap[:, None], -image, image)
    keys = torch.cat([low[:, None], high[:, None], image.round().long()], dim=1)
    keys = torch.unique(keys, dim=0)
    src = torch.cat([keys[:, 0], keys[:, 1]])
    dst = torch.cat([keys[:, 1], keys[:, 0]])
    shift = torch.cat([keys[:, 2:], -keys[:, 2:]]).double()
    src, dst, shift = _by_destination(src, dst, shift)
    lg_src, lg_dst = line_graph(src, dst, n_total, self_pairs=False)
    return ALIGNNGraph(src, dst, shift, lg_src, lg_dst, crystal_idx[src])


# ---------------------------------------------------------------------------------------------------------------
# Pure-model graph
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def pure_graph(
    lattice: Tensor,
    frac_coords: Tensor,
    crystal_idx: Tensor,
    n_atoms: Tensor,
    cutoff: float = CUTOFF,
    max_neighbors: int = MAX_NEIGHBORS,
    three_body_cutoff: float | None = None,
) -> ALIGNNGraph:
    """The pure-model graph: the ``max_neighbors`` nearest per centre within ``cutoff`` (strict), directed.

    ``three_body_cutoff`` (Å) restricts the line graph to pairs of edges not longer than it (alignn's training-data
    path and force-field calculator use 3.5); None uses every edge, as ``alignn.pretrained.get_prediction_pure``.
    Ties at the k-th distance are broken by neighbour index and image here, by candidate order in alignn.
    """
    neighbors = build_neighbor_list(lattice, frac_coords, crystal_idx, n_atoms, cutoff, max_neighbors)
    valid = neighbors.valid
    src, dst, image = _by_destination(neighbors.center[valid], neighbors.neighbor[valid], neighbors.image[valid].double())
    lg_src, lg_dst = line_graph(src, dst, frac_coords.shape[0], self_pairs=True)
    graph = ALIGNNGraph(src, dst, image, lg_src, lg_dst, crystal_idx[src])
    if three_body_cutoff is not None:
        length = torch.linalg.vector_norm(edge_vectors(lattice.double(), frac_coords.double(), graph), dim=-1)
        short = length <= three_body_cutoff
        keep = short[lg_src] & short[lg_dst]
        graph = ALIGNNGraph(src, dst, image, lg_src[keep], lg_dst[keep], graph.edge_crystal)
    return graph


def build_graph(
    kind: GraphKind,
    lattice: Tensor,
    frac_coords: Tensor,
    crystal_idx: Tensor,
    n_atoms: Tensor,
    cutoff: float = CUTOFF,
    max_neighbors: int = MAX_NEIGHBORS,
    three_body_cutoff: float | None = None,
) -> ALIGNNGraph:
    """The graph of ``kind`` for a batch (no gradient)."""
    if kind == "legacy":
        return legacy_graph(lattice, frac_coords, crystal_idx, n_atoms, cutoff, max_neighbors)
    return pure_graph(lattice, frac_coords, crystal_idx, n_atoms, cutoff, max_neighbors, three_body_cutoff)
