"""Process-level helpers with no smoacs dependencies: seeding and device choice (a leaf module)."""

from __future__ import annotations

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
