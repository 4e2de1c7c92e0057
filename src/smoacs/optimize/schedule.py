"""Schedules over optimisation steps: temperature, learning-rate decay, neighbour-list rebuilds."""

from __future__ import annotations

import math


def linear_temperature(step: int, n_steps: int, start: float, end: float) -> float:
    """Linear anneal from ``start`` at step 0 to ``end`` at the last step."""
    if n_steps <= 1:
        return end
    return start + (end - start) * step / (n_steps - 1)


def cosine_scale(step: int, n_steps: int, floor: float = 0.0) -> float:
    """Cosine decay factor of the learning rate: 1 at step 0, ``floor`` after the last step."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * step / max(n_steps, 1)))


def rebuild_steps(n_steps: int, every: int, extra: tuple[int, ...] = ()) -> set[int]:
    """Steps at whose start neighbour lists are rebuilt: 0, every ``every`` steps, and ``extra`` (after mutations)."""
    steps = set(range(0, n_steps, max(every, 1)))
    steps.update(s for s in extra if 0 <= s < n_steps)
    return steps
