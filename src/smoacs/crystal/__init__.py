"""Crystal geometry: the batched crystal state, lattice conversions, periodic neighbour lists, pymatgen bridges."""

from __future__ import annotations

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.cache import FeatureCache
from smoacs.crystal.lattice import lattice_from_parameters, lattice_to_parameters
from smoacs.crystal.neighbors import NeighborList, build_neighbor_list, edge_vectors, min_distances

__all__ = [
    "CrystalBatch",
    "FeatureCache",
    "NeighborList",
    "build_neighbor_list",
    "edge_vectors",
    "lattice_from_parameters",
    "lattice_to_parameters",
    "min_distances",
]
