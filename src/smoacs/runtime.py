"""Process-level helpers with no smoacs dependencies: seeding, threads, allocator and device choice (a leaf module)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import sys

import numpy as np
import torch

from smoacs.errors import ConfigError

#: Device names a run or ``smoacs predict`` accepts.
DEVICES = ("auto", "cpu", "cuda")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ConfigError when ``cuda`` is asked for and absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but torch sees no CUDA device; use --device cpu (or auto)")
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    return torch.device(name)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def set_threads(requested: int = 0) -> int:
    """Set torch's intra-op CPU thread count deliberately and return it.

    ``requested`` 0 means ``$OMP_NUM_THREADS`` where it is set to a positive integer (the usual way to limit a
    process), else the cores this process may use (:func:`available_cores`). Two processes that each take every
    core slow each other's forward passes by up to 70x, so a campaign gives each run its share. CPU results can
    differ in the last bits between thread counts (reductions split differently), so the count is recorded.
    """
    if requested < 0:
        raise ConfigError(f"threads must be >= 0 (0: the cores this process may use), got {requested}")
    threads = requested or _environment_threads() or available_cores()
    torch.set_num_threads(threads)
    return threads


#: glibc ``mallopt`` parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap instead of their own ``mmap``; glibc versions that refuse a value above
#: HEAP_MAX_SIZE / 2 get :data:`FALLBACK_MMAP_THRESHOLD` (32 MiB on 64-bit) instead.
MMAP_THRESHOLD = 1 << 30
FALLBACK_MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap is returned to the OS only beyond this (the largest value mallopt takes).
TRIM_THRESHOLD = 2**31 - 1


def retain_freed_memory() -> int:
    """Keep freed tensor memory in the process for reuse instead of returning it to the OS (glibc only).

    torch's CPU allocator is ``malloc``. glibc serves a block above its mmap threshold (128 KiB, adapting up to
    32 MiB) by a fresh ``mmap`` and unmaps it on ``free``, and trims free memory at the heap top beyond twice that.
    An optimisation step allocates and frees the same dozens of MB-sized edge buffers every step, so each step
    page-faults them in again: ~25,000 minor faults and ~20 % of a 256-cell CGCNN step's CPU time here
    (benchmarks/README.md, "Where a step's time goes, and fewer page faults"). Raising both thresholds makes later
    steps reuse the memory; no number changes. The price: the process keeps its peak heap until it exits.

    Returns the mmap threshold now in effect (:data:`MMAP_THRESHOLD`, or :data:`FALLBACK_MMAP_THRESHOLD` where
    glibc refuses the larger value), or 0 where nothing was changed (not Linux, or no glibc ``mallopt``).
    """
    if not sys.platform.startswith("linux"):
        return 0
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return 0
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for threshold in (MMAP_THRESHOLD, FALLBACK_MMAP_THRESHOLD):
        if mallopt(_M_MMAP_THRESHOLD, threshold):
            return threshold if mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) else 0
    return 0


def prepare_cpu(threads: int = 0) -> int:
    """The process set-up of every command that runs models on a run's behalf (``run``, ``evaluate``, ``relax``):
    torch's thread count by :func:`set_threads` and freed memory kept by :func:`retain_freed_memory`, whose mmap
    threshold is returned (0: unchanged). Without the latter a batched CHGNet call on 32 × 135 atoms takes ~3.3 s
    instead of ~1.5 s here (benchmarks/README.md, "The allocator setting in the relaxer")."""
    set_threads(threads)
    return retain_freed_memory()


def _environment_threads() -> int:
    """``$OMP_NUM_THREADS`` as a positive integer, 0 when unset or not one."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 0
