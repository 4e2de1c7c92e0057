"""Process-level helpers: thread count, allocator, device choice."""

from __future__ import annotations

import resource
import sys

import pytest
import torch

from smoacs.errors import ConfigError
from smoacs.presets import build_config
from smoacs.runtime import available_cores, resolve_device, retain_freed_memory, set_threads


def test_set_threads_default(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert set_threads(0) == available_cores() == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(0) == 1 == torch.get_num_threads()
        assert set_threads(2) == 2 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_negative_threads_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="threads must be"):
        set_threads(-1)
    with pytest.raises(ConfigError, match="threads must be"):
        build_config("perovskite-bandgap", 2.5, "runs/x").with_overrides(threads=-2).validate()


def test_threads_round_trips_through_the_config() -> None:
    config = build_config("perovskite-bandgap", 2.5, "runs/x").with_overrides(threads=3).validate()
    assert config.to_dict()["threads"] == 3
    assert type(config).from_dict(config.to_dict()).threads == 3


def test_cuda_absent_is_a_config_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")


def _faults_of_touching(n_bytes: int, times: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.ones(n_bytes // 4).sum()  # allocated, written, freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_retain_freed_memory_stops_refaulting_large_buffers() -> None:
    size = 40 << 20  # above glibc's largest adaptive mmap threshold (32 MiB): a fresh mmap on every allocation
    pages = size // resource.getpagesize()
    threshold = retain_freed_memory()
    if threshold < size:
        pytest.skip(f"this C library keeps a lower mmap threshold ({threshold})")
    # Without it every round of 10 faults 10 x pages (measured 10.0x). With it the heap may still grow in a round
    # or two (fragmentation left by earlier tests), after which the buffer is reused: 0 faults measured.
    assert min(_faults_of_touching(size, 10) for _ in range(6)) < pages
