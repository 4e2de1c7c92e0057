"""Chemistry tables: elements, oxidation states, Shannon radii, element features. Pure data plus lookups."""

from __future__ import annotations

from smoacs.chem.elements import ELEMENTS, N_ELEMENTS, element_index
from smoacs.chem.oxidation import (
    OX_STATES,
    OxTable,
    allowed_elements,
    allowed_table,
    enumerate_neutral_combos,
    is_neutral,
    neutral_assignment,
    ox_index,
    oxidation_states,
)
from smoacs.chem.radii import crystal_radius, radius_table

__all__ = [
    "ELEMENTS",
    "N_ELEMENTS",
    "OX_STATES",
    "OxTable",
    "allowed_elements",
    "allowed_table",
    "crystal_radius",
    "element_index",
    "enumerate_neutral_combos",
    "is_neutral",
    "neutral_assignment",
    "ox_index",
    "oxidation_states",
    "radius_table",
]
