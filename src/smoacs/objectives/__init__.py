"""Composable objective terms with per-crystal losses and satisfied flags."""

from __future__ import annotations

from smoacs.objectives.terms import Above, Band, Below, Objective, Window, objective_to_dict, total_loss

__all__ = ["Above", "Band", "Below", "Objective", "Window", "objective_to_dict", "total_loss"]
