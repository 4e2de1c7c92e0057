"""Shannon crystal radii (CN VI) of the super-common states."""

from __future__ import annotations

import numpy as np
import pytest

from smoacs.chem import ELEMENTS, OX_STATES, allowed_table, crystal_radius, element_index, ox_index, radius_table
from smoacs.errors import ChemistryError


@pytest.mark.parametrize(
    ("symbol", "ox", "radius"),
    [
        ("O", -2, 1.26), ("F", -1, 1.19), ("Cl", -1, 1.67), ("Ba", 2, 1.49), ("Sr", 2, 1.32), ("Ca", 2, 1.14),
        ("K", 1, 1.52), ("Cs", 1, 1.81), ("Ti", 4, 0.745), ("Zr", 4, 0.86), ("Nb", 5, 0.78), ("La", 3, 1.172),
        ("Mn", 2, 0.97), ("Fe", 3, 0.785), ("Mn", 4, 0.67), ("Mn", 7, 0.6),  # high spin; Mn4+/7+ as pymatgen 2023
    ],
)  # fmt: skip
def test_examples(symbol: str, ox: int, radius: float) -> None:
    assert crystal_radius(symbol, ox) == pytest.approx(radius)
    assert radius_table()[element_index(symbol), ox_index(ox)] == pytest.approx(radius)


@pytest.mark.parametrize(("symbol", "ox"), [("Ni", 2), ("Cr", 3), ("Cr", 6), ("Sn", 2), ("H", 1), ("Si", -4), ("O", 2)])
def test_missing(symbol: str, ox: int) -> None:
    assert crystal_radius(symbol, ox) is None


def test_table_is_nonzero_exactly_on_ionic_mask() -> None:
    table = radius_table()
    assert table.shape == (len(ELEMENTS), len(OX_STATES)) and table.dtype == np.float32
    assert np.array_equal(table > 0, allowed_table(ionic=True))
    assert not table.flags.writeable
    assert 0.25 < table[table > 0].min() and table.max() < 2.1


def test_unknown_symbol_raises() -> None:
    with pytest.raises(ChemistryError):
        crystal_radius("Xx", 2)
