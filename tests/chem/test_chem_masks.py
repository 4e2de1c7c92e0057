"""Oxidation-state tables and element masks against the original mask files (METHOD §2.3)."""

from __future__ import annotations

import numpy as np
import pytest

from smoacs.chem import ELEMENTS, OX_STATES, allowed_elements, allowed_table, element_index, ox_index, oxidation_states
from smoacs.errors import ChemistryError

# mask_dict_super_common.npz of the original repository (pymatgen 2023.10.11, smact 2.5.5), as listed in METHOD §2.3.
ORIGINAL_SUPER_COMMON = {
    -4: "C Si",
    -3: "N P As Sb",
    -2: "O S Se Te",
    -1: "H F Cl Br I",
    1: "H Li Na K Rb Ag Cs Hg Tl",
    2: "Be Mg S Ca Mn Fe Co Ni Cu Zn Ge Sr Pd Cd Sn Ba Eu Hg Pb",
    3: "B N Al P Sc Cr Fe Co Ga As Y Ru Rh In Sb La Ce Pr Nd Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Ir Tl Bi",
    4: "C Si S Ti Mn Ge Se Zr Mo Ru Pd Sn Te Ce Hf W Re Ir Pb Th",
    5: "N P V As Br Nb Sb I Ta",
    6: "S Cr Se Mo Te W U",
    7: "Mn",
}
# ionic_mask_dict_super_common.npz = the table above minus these pairs (no radius in the original radii file).
ORIGINAL_IONIC_REMOVED = {
    -4: "C Si",
    -3: "P As Sb",
    -1: "H",
    1: "H",
    2: "S Ni Sn",
    3: "Cr",
    6: "Cr",
}
# Version drift (METHOD §2.3): today's pymatgen lists C -3/-2/+2/+3 and Re +7 as "common", so they enter the
# super-common table. None of the C pairs has a radius; Re7+ does (0.67 Å), so it also enters the ionic mask.
DRIFT_SUPER_COMMON = {-3: "C", -2: "C", 2: "C", 3: "C", 7: "Re"}
DRIFT_IONIC = {7: "Re"}


def _names(mask: np.ndarray) -> set[str]:
    return {ELEMENTS[i] for i in np.flatnonzero(mask)}


def _expected(
    table: dict[int, str], ox: int, minus: dict[int, str] | None = None, plus: dict[int, str] | None = None
) -> set[str]:
    names = set(table.get(ox, "").split())
    names -= set((minus or {}).get(ox, "").split())
    return names | set((plus or {}).get(ox, "").split())


@pytest.mark.parametrize("ox", OX_STATES)
def test_super_common_mask_matches_original(ox: int) -> None:
    assert _names(allowed_elements(ox)) == _expected(ORIGINAL_SUPER_COMMON, ox, plus=DRIFT_SUPER_COMMON)


@pytest.mark.parametrize("ox", OX_STATES)
def test_ionic_mask_matches_original(ox: int) -> None:
    expected = _expected(ORIGINAL_SUPER_COMMON, ox, minus=ORIGINAL_IONIC_REMOVED, plus=DRIFT_IONIC)
    assert _names(allowed_elements(ox, ionic=True)) == expected


def test_mask_unions_and_shapes() -> None:
    table, ionic = allowed_table(), allowed_table(ionic=True)
    assert table.shape == ionic.shape == (98, 11) and table.dtype == ionic.dtype == np.bool_
    assert table.any(axis=1).sum() == 75 and max(np.flatnonzero(table.any(axis=1))) + 1 == 92  # union 75, up to U
    assert ionic.any(axis=1).sum() == 72
    assert not (ionic & ~table).any()
    assert allowed_elements(2).dtype == np.bool_ and allowed_elements(2).shape == (98,)


def test_masks_agree_with_oxidation_states() -> None:
    for symbol in ELEMENTS:
        row = allowed_table()[element_index(symbol)]
        assert tuple(ox for ox in OX_STATES if row[ox_index(ox)]) == oxidation_states(symbol)


def test_icsd3_contains_super_common() -> None:
    for symbol in ELEMENTS:
        assert set(oxidation_states(symbol)) <= set(oxidation_states(symbol, "icsd3"))
    assert oxidation_states("Fe") == (2, 3)
    assert oxidation_states("He") == ()


@pytest.mark.parametrize("ox", [0, 8, -5])
def test_unknown_ox_raises_and_names_allowed(ox: int) -> None:
    with pytest.raises(ChemistryError, match=r"-4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7"):
        allowed_elements(ox)


def test_unknown_symbol_or_table_raises() -> None:
    with pytest.raises(ChemistryError):
        oxidation_states("Xx")
    with pytest.raises(ChemistryError):
        oxidation_states("Fe", table="loose")  # type: ignore[arg-type]


def test_run_time_does_not_import_smact() -> None:
    import subprocess
    import sys

    code = (
        "import sys, smoacs.chem as c; c.allowed_table(True); c.is_neutral(['Na', 'Cl']); c.radius_table(); "
        "assert 'smact' not in sys.modules and 'pymatgen' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_single_anion_perovskite_count() -> None:
    # (A, B, X) triples admitted by the ionic masks for A+ B2+ X-3 and A2+ B4+ X2-3. The same 512 + 1280 = 1792 follow
    # from the original masks of METHOD §2.3 (the drift pairs C and Re7+ play no part).
    patterns = ((1, 2, -1), (2, 4, -2))
    counts = [int(np.prod([allowed_elements(ox, ionic=True).sum() for ox in p])) for p in patterns]
    assert counts == [512, 1280]
    same = [int((allowed_elements(a, ionic=True) & allowed_elements(b, ionic=True)).sum()) for a, b, x in patterns]
    assert same == [1, 4]  # Hg (+1/+2); Mn, Ge, Pd, Pb (+2/+4), each with 4 anions
    assert sum(counts) - 4 * sum(same) == 1772  # A != B
    b_is_x = int((allowed_elements(4, ionic=True) & allowed_elements(-2, ionic=True)).sum())
    assert b_is_x == 3  # S, Se, Te (+4 and -2), each with 16 A
    assert sum(counts) - 4 * sum(same) - 16 * b_is_x == 1724  # A, B, X pairwise distinct
