"""FeatureCache and CrystalBatch.with_cache/shared: one value per key per batch, none without a cache."""

from __future__ import annotations

import torch

from smoacs.crystal import CrystalBatch, FeatureCache


def _batch() -> CrystalBatch:
    lattice = torch.eye(3).repeat(2, 1, 1) * 4.0
    return CrystalBatch.from_species(lattice, torch.rand(3, 3), torch.tensor([7, 10, 25]), torch.tensor([1, 2]))


def test_cache_builds_once_per_key() -> None:
    cache = FeatureCache()
    calls = []
    first = cache.get(("a", 1), lambda: calls.append(1) or torch.ones(2))
    again = cache.get(("a", 1), lambda: calls.append(1) or torch.zeros(2))
    other = cache.get(("a", 2), lambda: calls.append(1) or torch.zeros(2))
    assert again is first and not torch.equal(other, first)
    assert len(calls) == 2 and (cache.hits, cache.misses) == (1, 2) and len(cache) == 2 and ("a", 1) in cache


def test_batch_without_cache_recomputes_and_with_cache_shares() -> None:
    batch = _batch()
    assert batch.cache is None
    assert batch.shared("k", lambda: object()) is not batch.shared("k", lambda: object())
    cached = batch.with_cache()
    assert cached.lattice is batch.lattice and cached.n_atoms is batch.n_atoms  # same tensors, new cache
    assert cached.shared("k", lambda: object()) is cached.shared("k", lambda: object())
    assert cached.with_cache().cache is not cached.cache


def test_derived_batches_do_not_inherit_the_cache() -> None:
    cached = _batch().with_cache()
    assert cached.detach().cache is None and cached.to("cpu").cache is None
    assert cached.select(torch.tensor([True, False])).cache is None
