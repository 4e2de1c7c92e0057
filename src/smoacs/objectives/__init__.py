"""Composable objective terms with per-crystal losses and satisfied flags, and the derived terms they can constrain."""

from __future__ import annotations

from smoacs.objectives.derived import (
    DERIVED_TERMS,
    DerivedInputs,
    DerivedTerm,
    MinDistance,
    ToleranceFactor,
    derived_values,
    tolerance_factor,
)
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

__all__ = ["DERIVED_TERMS", "OBJECTIVE_KINDS", "Above", "Band", "Below", "DerivedInputs", "DerivedTerm", "Maximize",
           "MinDistance", "Minimize", "Objective", "Range", "ToleranceFactor", "Window", "derived_values",
           "objective_to_dict", "tolerance_factor", "total_loss"]  # fmt: skip
