"""Shannon crystal radii (coordination VI) of the super-common oxidation states, as used for perovskites.

Values are those of the original ``ionic_radii_dict_super_common.npz``: pymatgen's default ionic radii, i.e. Shannon
(1976) crystal radii for six-fold coordination, high spin where spin matters (e.g. O²⁻ 1.26, Ba²⁺ 1.49, Ti⁴⁺ 0.745 Å).
See ``scripts/generate_chem_tables.py`` for the provenance and the few entries that are not strictly CN VI.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from smoacs.chem._tables import OX_STATES, ox_index, radii
from smoacs.chem.elements import ELEMENTS, N_ELEMENTS, element_index

__all__ = ["crystal_radius", "radius_table"]


def crystal_radius(symbol: str, ox: int) -> float | None:
    """Crystal radius of an ion.

    Args:
        symbol: Element symbol (H … Cf).
        ox: Oxidation state (elementary charges).

    Returns:
        The radius in Å, or None when the pair is not super-common or has no tabulated radius (including any ``ox``
        outside :data:`~smoacs.chem.OX_STATES`).

    Raises:
        ChemistryError: ``symbol`` is not one of the 98 supported elements.
    """
    element_index(symbol)
    return radii().get(symbol, {}).get(ox)


@cache
def radius_table() -> np.ndarray:
    """Radii laid out as ``[98, len(OX_STATES)]`` float32 in Å; row Z − 1, column :func:`ox_index`; 0 where none.

    The array is cached and read-only; copy it before modifying.
    """
    table = np.zeros((N_ELEMENTS, len(OX_STATES)), dtype=np.float32)
    for symbol in ELEMENTS:
        for ox, r in radii().get(symbol, {}).items():
            table[element_index(symbol), ox_index(ox)] = r
    table.setflags(write=False)
    return table
