"""Private loaders of the shipped oxidation-state and radius tables (``data/*.json``), cached per process.

The JSON files are written by ``scripts/generate_chem_tables.py``; nothing here imports pymatgen or smact.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Literal

from smoacs.errors import ChemistryError

OxTable = Literal["super_common", "icsd3"]
"""Name of an oxidation-state table: the 4-way "super-common" intersection or the 3-way one without "common"."""

OX_TABLES: tuple[str, ...] = ("super_common", "icsd3")
OX_STATES: tuple[int, ...] = (-4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7)
"""The 11 oxidation states that the tables and masks are keyed by (0 is never one)."""
_OX_INDEX = {ox: i for i, ox in enumerate(OX_STATES)}


def ox_index(ox: int) -> int:
    """Column of oxidation state ``ox`` in tables laid out over :data:`OX_STATES`.

    Args:
        ox: Oxidation state (elementary charges).

    Returns:
        Index into :data:`OX_STATES`.

    Raises:
        ChemistryError: ``ox`` is not one of :data:`OX_STATES`.
    """
    try:
        return _OX_INDEX[ox]
    except (KeyError, TypeError):
        raise ChemistryError(f"oxidation state must be one of {OX_STATES}, got {ox!r}") from None


def _read(name: str) -> dict:
    return json.loads((resources.files("smoacs.chem") / "data" / name).read_text())


@cache
def ox_table(table: str) -> dict[str, tuple[int, ...]]:
    """``{symbol: states}`` of one oxidation-state table (states ascending); raises for an unknown table name."""
    if table not in OX_TABLES:
        raise ChemistryError(f"oxidation-state table must be one of {OX_TABLES}, got {table!r}")
    return {symbol: tuple(states) for symbol, states in _read("oxidation_states.json")[table].items()}


@cache
def radii() -> dict[str, dict[int, float]]:
    """``{symbol: {ox: radius in Å}}`` for the super-common (element, state) pairs that have a radius."""
    return {
        symbol: {int(ox): float(r) for ox, r in by_ox.items()}
        for symbol, by_ox in _read("shannon_radii.json")["radii"].items()
    }
