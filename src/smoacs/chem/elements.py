"""The 98-element alphabet used everywhere (H … Cf); the index of an element is Z − 1."""

from __future__ import annotations

from smoacs.errors import ChemistryError

ELEMENTS: tuple[str, ...] = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce",
    "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir",
    "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf",
)  # fmt: skip
N_ELEMENTS: int = len(ELEMENTS)
_INDEX = {symbol: i for i, symbol in enumerate(ELEMENTS)}


def element_index(symbol: str) -> int:
    """Index (Z − 1) of an element symbol; raises :class:`ChemistryError` for symbols outside H … Cf."""
    try:
        return _INDEX[symbol]
    except KeyError:
        raise ChemistryError(f"unknown element {symbol!r}: smoacs supports the 98 elements H … Cf") from None
