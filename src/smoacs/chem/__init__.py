"""Chemistry tables: elements, oxidation states, Shannon radii, element features. Pure data plus lookups."""

from __future__ import annotations

from smoacs.chem.elements import ELEMENTS, N_ELEMENTS, element_index

__all__ = ["ELEMENTS", "N_ELEMENTS", "element_index"]
