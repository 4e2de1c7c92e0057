"""Periodic neighbour lists and minimum distances against pymatgen."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from conftest import random_structure
from smoacs.crystal import CrystalBatch, build_neighbor_list, edge_vectors, min_distances
from smoacs.crystal.neighbors import lexicographic_keys

CUTOFF = 8.0


def _batch(structures: list[Structure], frac_shift: np.ndarray | None = None) -> CrystalBatch:
    batch = CrystalBatch.from_structures(structures, dtype=torch.float64)
    if frac_shift is not None:
        batch.frac_coords = batch.frac_coords + torch.as_tensor(frac_shift, dtype=torch.float64)
    return batch


def _distances(batch: CrystalBatch, max_neighbors: int | None, cutoff: float = CUTOFF):
    graph = build_neighbor_list(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, cutoff, max_neighbors)
    dist = edge_vectors(batch.lattice, batch.frac_coords, batch.crystal_idx, graph).norm(dim=-1)
    return graph, dist


def _pymatgen_distances(structures: list[Structure], cutoff: float = CUTOFF) -> list[np.ndarray]:
    out = []
    for structure in structures:
        for neighbors in structure.get_all_neighbors(cutoff):
            out.append(np.sort([n.nn_distance for n in neighbors]))
    return out


@pytest.fixture(scope="module")
def cells() -> list[Structure]:
    rng = np.random.default_rng(7)
    return [random_structure(rng, n, min_dist=0.8) for n in (1, 2, 3, 4, 5, 7)]


@pytest.mark.parametrize("unwrapped", [False, True], ids=["wrapped", "unwrapped"])
def test_12_nearest_match_pymatgen(cells: list[Structure], unwrapped: bool) -> None:
    n_total = sum(len(s) for s in cells)
    shift = np.random.default_rng(3).integers(-3, 4, (n_total, 3)).astype(float) if unwrapped else None
    batch = _batch(cells, shift)
    graph, dist = _distances(batch, 12)
    assert graph.n_edges == n_total * 12
    dist = dist.view(n_total, 12).numpy()
    valid = graph.valid.view(n_total, 12).numpy()
    n_full = 0
    for atom, reference in enumerate(_pymatgen_distances(cells)):
        n_valid = min(12, len(reference))
        n_full += n_valid == 12
        assert valid[atom].sum() == n_valid and valid[atom, :n_valid].all()
        np.testing.assert_allclose(dist[atom, :n_valid], reference[:n_valid], rtol=0, atol=1e-9)
        assert np.all(np.diff(dist[atom, :n_valid]) >= -1e-12), "edges must be ordered nearest first"
    assert n_full >= n_total - 2, "most atoms of these cells have 12 neighbours within 8 Å"
    # Centres are laid out [n_atoms, 12] row-major and neighbours stay inside their crystal.
    assert torch.equal(graph.center, torch.arange(n_total).repeat_interleave(12))
    assert torch.equal(batch.crystal_idx[graph.center], batch.crystal_idx[graph.neighbor])


def test_all_within_cutoff_match_pymatgen(cells: list[Structure]) -> None:
    batch = _batch(cells)
    graph, dist = _distances(batch, None)
    reference = _pymatgen_distances(cells)
    for atom, expected in enumerate(reference):
        mine = np.sort(dist[graph.center == atom].numpy())
        assert len(mine) == len(expected)
        np.testing.assert_allclose(mine, expected, rtol=0, atol=1e-9)


def test_unwrapped_coordinates_give_identical_distances(cells: list[Structure]) -> None:
    n_total = sum(len(s) for s in cells)
    shift = np.random.default_rng(5).integers(-4, 5, (n_total, 3)).astype(float)
    graph_w, dist_w = _distances(_batch(cells), 12)
    unwrapped = _batch(cells, shift)
    graph_u, dist_u = _distances(unwrapped, 12)
    np.testing.assert_allclose(dist_u.numpy(), dist_w.numpy(), rtol=0, atol=1e-9)
    assert torch.equal(graph_u.neighbor, graph_w.neighbor)
    # The images refer to the unwrapped coordinates: they differ by the integer shifts of the two ends.
    shift_t = torch.as_tensor(shift)
    expected_image = graph_w.image - shift_t[graph_w.neighbor] + shift_t[graph_w.center]
    torch.testing.assert_close(graph_u.image, expected_image, rtol=0, atol=0)


def test_padding_when_fewer_than_12_neighbors() -> None:
    # A 3-atom cluster in a 20 Å box (2 neighbours each within 8 Å), after a dense cell so offsets are non-zero.
    dense = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    sparse = Structure(Lattice.cubic(20.0), ["O", "H", "H"], [[0.5, 0.5, 0.5], [0.55, 0.5, 0.5], [0.5, 0.56, 0.5]])
    batch = _batch([dense, sparse])
    graph, dist = _distances(batch, 12)
    valid = graph.valid.view(4, 12)
    neighbor = graph.neighbor.view(4, 12)
    assert valid[0].all()
    for atom in (1, 2, 3):
        assert valid[atom, :2].all() and not valid[atom, 2:].any()
        assert torch.all(neighbor[atom, 2:] == 1), "padding points at the crystal's first atom"
        assert set(neighbor[atom, :2].tolist()) == {1, 2, 3} - {atom}
    # The valid distances are the cluster's own.
    reference = _pymatgen_distances([sparse])
    np.testing.assert_allclose(dist.view(4, 12)[1, :2].numpy(), reference[0], atol=1e-9)


def test_min_distances_match_pymatgen_including_self_images(cells: list[Structure]) -> None:
    one_atom = Structure(Lattice.from_parameters(2.9, 3.4, 3.1, 80, 95, 105), ["Fe"], [[0.3, 0.2, 0.9]])
    structures = [one_atom, *cells]
    batch = _batch(structures)
    mine = min_distances(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, cutoff=5.0).numpy()
    for value, structure in zip(mine, structures, strict=True):
        expected = min((n.nn_distance for neighbors in structure.get_all_neighbors(5.0) for n in neighbors), default=5.0)
        assert value == pytest.approx(expected, abs=1e-9)
    # The one-atom cell's shortest distance is to its own image: the shortest lattice vector here.
    assert mine[0] == pytest.approx(min(one_atom.lattice.abc), abs=1e-9)


def test_min_distances_cutoff_when_nothing_closer() -> None:
    isolated = Structure(Lattice.cubic(10.0), ["Xe"], [[0, 0, 0]])
    batch = _batch([isolated])
    assert min_distances(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, cutoff=4.0).item() == 4.0


@pytest.mark.parametrize(
    "lattice", [Lattice.cubic(2.0), Lattice.from_parameters(2.0, 2.3, 6.0, 75, 100, 110)], ids=["cubic", "triclinic"]
)
def test_small_cell_large_cutoff(lattice: Lattice) -> None:
    structure = Structure(lattice, ["Al", "Al"], [[0.1, 0.2, 0.3], [0.6, 0.7, 0.75]])
    batch = _batch([structure])
    graph, dist = _distances(batch, None)
    reference = _pymatgen_distances([structure])
    for atom in range(2):
        mine = np.sort(dist[graph.center == atom].numpy())
        assert len(mine) == len(reference[atom]) > 100
        np.testing.assert_allclose(mine, reference[atom], atol=1e-9)
    graph12, dist12 = _distances(batch, 12)
    np.testing.assert_allclose(dist12.view(2, 12).numpy()[0], reference[0][:12], atol=1e-9)


def test_edge_vectors_are_differentiable(dtype: torch.dtype) -> None:
    structure = Structure(Lattice.from_parameters(3.0, 3.3, 3.6, 85, 95, 100), ["Na", "Cl"], [[0, 0, 0], [0.45, 0.55, 0.5]])
    batch = CrystalBatch.from_structures([structure], dtype=dtype)
    graph = build_neighbor_list(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, 5.0, 12)
    lattice = batch.lattice.double().requires_grad_()
    frac = batch.frac_coords.double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda lat, f: edge_vectors(lat, f, batch.crystal_idx, graph).norm(dim=-1), (lattice, frac)
    )


# ---- the linear-time search against the dense one and against pymatgen's get_neighbor_list -------------------------


def _varied_cells() -> list[Structure]:
    """Small, skewed and large cells: one atom in a sheared cell (many images), a needle, random cells, and 40- and
    135-atom supercells of a perturbed perovskite (the cell-list regime)."""
    rng = np.random.default_rng(17)
    sheared = Structure(Lattice([[2.4, 0, 0], [2.2, 0.9, 0], [0.5, 0.4, 2.1]]), ["Fe"], [[0.3, 0.6, 0.1]])
    needle = Structure(Lattice.from_parameters(1.9, 2.1, 14.0, 60, 70, 125), ["Si", "O"], [[0, 0, 0], [0.4, 0.3, 0.55]])
    perovskite = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                           [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    large = []
    for scale in (2, 3):
        cell = perovskite.copy()
        cell.make_supercell(scale)
        large.append(Structure(cell.lattice, cell.species, cell.frac_coords + rng.normal(0, 0.004, (len(cell), 3))))
    return [sheared, needle, *(random_structure(rng, n, min_dist=0.8) for n in (3, 6)), *large]


@pytest.fixture(scope="module")
def varied() -> list[Structure]:
    return _varied_cells()


def _graph_tuples(graph, batch: CrystalBatch, crystal: int) -> set[tuple[int, ...]]:
    """(centre, neighbour, image) of one crystal's valid edges, atom indices local to the crystal."""
    mine = graph.valid & (batch.crystal_idx[graph.center] == crystal)
    first = int(batch.atom_offsets[crystal])
    rows = zip((graph.center[mine] - first).tolist(), (graph.neighbor[mine] - first).tolist(),
               graph.image[mine].long().tolist(), strict=True)  # fmt: skip
    return {(c, n, *i) for c, n, i in rows}


@pytest.mark.parametrize(("cutoff", "max_neighbors"), [(3.0, None), (8.0, None), (8.0, 12), (5.0, 30)])
def test_cell_list_and_dense_search_give_the_same_list(varied: list[Structure], cutoff: float, max_neighbors) -> None:
    shift = np.random.default_rng(2).integers(-2, 3, (sum(len(s) for s in varied), 3)).astype(float)
    batch = _batch(varied, shift)  # unwrapped coordinates: images must refer to them in both searches
    args = (batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, cutoff, max_neighbors)
    dense = build_neighbor_list(*args, search="dense")
    for search in ("cell_list", "auto"):
        other = build_neighbor_list(*args, search=search)
        for name in ("center", "neighbor", "image", "valid"):
            assert torch.equal(getattr(dense, name), getattr(other, name)), f"{search}: {name} differs"
    assert dense.n_edges > 1000


@pytest.mark.parametrize("cutoff", [3.0, 6.0])
def test_cell_list_pairs_match_pymatgen_neighbor_list(varied: list[Structure], cutoff: float) -> None:
    batch = _batch(varied)
    graph = build_neighbor_list(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, cutoff,
                                search="cell_list")  # fmt: skip
    for c, structure in enumerate(varied):
        center, neighbor, images, _ = structure.get_neighbor_list(cutoff)
        reference = {(int(i), int(j), *map(int, np.round(k))) for i, j, k in zip(center, neighbor, images, strict=True)}
        assert _graph_tuples(graph, batch, c) == reference, f"cell {c} ({len(structure)} atoms)"
    assert graph.n_edges == sum(len(s.get_neighbor_list(cutoff)[0]) for s in varied)


def test_many_images_of_a_small_skewed_cell(varied: list[Structure]) -> None:
    sheared = varied[0]
    batch = _batch([sheared])
    graph = build_neighbor_list(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, 8.0,
                                search="cell_list")  # fmt: skip
    assert graph.n_edges == len(sheared.get_neighbor_list(8.0)[0]) > 400
    assert graph.image.abs().max() >= 4, "the sheared cell needs images far beyond the first shell"


def test_cell_list_edges_are_differentiable(varied: list[Structure]) -> None:
    batch = _batch(varied[4:5])  # the 40-atom supercell: searched by the cell list under "auto"
    graph = build_neighbor_list(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, 3.5, 6,
                                search="cell_list")  # fmt: skip
    lattice = batch.lattice.clone().requires_grad_()
    frac = batch.frac_coords.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda lat, f: edge_vectors(lat, f, batch.crystal_idx, graph).norm(dim=-1), (lattice, frac)
    )


def test_unknown_search_is_a_clear_error() -> None:
    batch = _batch([Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])])
    with pytest.raises(ValueError, match="search must be"):
        build_neighbor_list(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, 3.0, search="fast")


# ---- packed sort keys (one 1-D sort instead of row sorts) -------------------------------------------------------------


def test_lexicographic_keys_sort_and_group_as_rows() -> None:
    gen = torch.Generator().manual_seed(3)
    rows = torch.cat([torch.randint(0, 900, (4000, 2), generator=gen), torch.randint(-4, 5, (4000, 3), generator=gen)], 1)
    rows = torch.cat([rows, rows[:500]])  # repeated rows must share a key
    keys = lexicographic_keys(rows)
    assert keys.dim() == 1
    ref_unique, ref_inverse, ref_counts = torch.unique(rows, dim=0, return_inverse=True, return_counts=True)
    unique, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
    assert torch.equal(inverse, ref_inverse) and torch.equal(counts, ref_counts) and len(unique) == len(ref_unique)
    order = torch.argsort(keys, stable=True)
    assert torch.equal(rows[order], ref_unique[ref_inverse[order]])  # rows in lexicographic order


def test_lexicographic_keys_fall_back_to_rows_when_too_wide() -> None:
    rows = torch.tensor([[0, 0, 0], [2**30, 2**30, 5]])
    assert lexicographic_keys(rows) is rows
    assert lexicographic_keys(rows[:0]).shape == (0, 3)


def test_neighbor_order_without_packed_keys_is_the_same(varied: list[Structure], monkeypatch: pytest.MonkeyPatch) -> None:
    import smoacs.crystal.neighbors as neighbors

    batch = _batch(varied)
    args = (batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms, 6.0, None)
    packed = build_neighbor_list(*args)
    monkeypatch.setattr(neighbors, "lexicographic_keys", lambda rows: rows)  # the six stable sorts
    sorted_by_columns = build_neighbor_list(*args)
    for name in ("center", "neighbor", "image"):
        assert torch.equal(getattr(packed, name), getattr(sorted_by_columns, name))
