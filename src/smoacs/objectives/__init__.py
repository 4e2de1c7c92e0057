"""Composable objective terms with per-crystal losses and satisfied flags."""

from __future__ import annotations

from smoacs.objectives.terms import (
    OBJECTIVE_KINDS,
    Above,
    Band,
    Below,
    Maximize,
    Minimize,
    Objective,
    Range,
    Window,
    objective_to_dict,
    total_loss,
)

__all__ = ["OBJECTIVE_KINDS", "Above", "Band", "Below", "Maximize", "Minimize", "Objective", "Range", "Window",
           "objective_to_dict", "total_loss"]  # fmt: skip
