"""Process-level helpers with no smoacs dependencies: seeding, threads and device choice (a leaf module)."""

from __future__ import annotations

import os
import random

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


def _environment_threads() -> int:
    """``$OMP_NUM_THREADS`` as a positive integer, 0 when unset or not one."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 0
