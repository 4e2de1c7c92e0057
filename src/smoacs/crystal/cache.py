"""`FeatureCache`: featurisation shared by the predictors of one step.

Predictors that read the same graph (same cutoff and neighbour count) would each search the same neighbour list and
expand the same distances. Whoever owns a step (the optimisation loop creates one cache per step and one per
neighbour rebuild) attaches a fresh cache to that step's batch with :meth:`CrystalBatch.with_cache`; predictors then
ask the batch for shared pieces with :meth:`CrystalBatch.shared`, and build them themselves when the batch carries
no cache. The cache lives exactly as long as the batch object of that step: nothing is global, nothing keyed by
``id()``.

Contract for callers and predictors:

* one cache per batch of crystals whose tensors will not change while it is used (one optimisation step, one
  evaluation); a new step realises new tensors and gets a new cache;
* keys are tuples that name *everything* the value depends on besides the batch: a namespace string first, then
  parameters, e.g. ``("neighbor_list", 8.0, 12)`` or ``("cgcnn_bond_features", graph.token, torch.float32, "cpu")``
  (a :class:`~smoacs.crystal.neighbors.NeighborList`'s ``token`` is unique per list in the process);
* values may carry autograd history (they are computed once and used by several predictors in the same backward
  pass); a cache is therefore not reused across backward passes.

Keys in use: ``("neighbor_list", cutoff, max_neighbors)`` (:class:`smoacs.predictors.base.GraphPredictor`, the
optimisation loop's minimum-distance list), ``("cgcnn_atom_features", dtype, device)`` and
``("cgcnn_bond_features", graph.token, dtype, device)`` (:mod:`smoacs.predictors.cgcnn`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class FeatureCache:
    """A memo of values computed from one batch of crystals, keyed by what else they depend on.

    Attributes:
        hits: number of :meth:`get` calls answered from the cache.
        misses: number of :meth:`get` calls that built their value.
    """

    def __init__(self) -> None:
        self._values: dict[Hashable, object] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value stored under ``key``, built by ``build()`` (and stored) on first use."""
        if key in self._values:
            self.hits += 1
            return self._values[key]  # type: ignore[return-value]
        self.misses += 1
        value = build()
        self._values[key] = value
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)
