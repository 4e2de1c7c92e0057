"""Reference values of matched entries (smoacs.evaluate.known): structure vs composition, theory mapping, summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from smoacs.errors import ConfigError
from smoacs.evaluate.known import (
    KnownValues,
    known_sentences,
    known_summary,
    known_values,
    predictor_theory,
    reference_interval,
    verdict,
)
from smoacs.evaluate.matching import ReferenceSet, match_and_order
from smoacs.evaluate.reference_data import ReferenceProperty
from smoacs.objectives.terms import Above, Below, Window

PEROVSKITE = [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]
GAP = Window("band_gap", 2.5, 0.04, 0.2)
GAP_PBE = ReferenceProperty("band_gap", "eV", "PBE")
GAP_GLLB = ReferenceProperty("band_gap", "eV", "GLLB-SC")


def perovskite(a: str, b: str, x: str, length: float = 3.9, noise: float = 0.0, seed: int = 0) -> Structure:
    frac = np.array(PEROVSKITE) + np.random.default_rng(seed).normal(0, noise, (5, 3))
    return Structure(Lattice.cubic(length), [a, b, x, x, x], frac)


def scrambled(a: str, b: str, x: str) -> Structure:
    """Same composition as ``perovskite(a, b, x)``, another structure (a long tetragonal cell, other sites)."""
    frac = [[0, 0, 0], [0.5, 0.5, 0.1], [0.5, 0, 0.3], [0, 0.5, 0.6], [0.5, 0.5, 0.8]]
    return Structure(Lattice.tetragonal(3.9, 8.0), [a, b, x, x, x], frac)


def gap_reference(prop: ReferenceProperty = GAP_GLLB) -> ReferenceSet:
    reference = ReferenceSet("refs", properties=(prop,))
    reference.add("refs:SrTiO3", "SrTiO3", perovskite("Sr", "Ti", "O"), {"band_gap": 0.0})
    reference.add("refs:KMgF3", "KMgF3", perovskite("K", "Mg", "F", 4.0), {"band_gap": 7.0})
    return reference


def rows_for(successes: list[bool]) -> list[dict]:
    return [{"id": f"c{i}", "success": s, "formula": ""} for i, s in enumerate(successes)]


def gap_known(scope: str = "successes", predictor: str = "cgcnn-band-gap", references: list | None = None) -> KnownValues:
    return known_values(references or [gap_reference()], {"band_gap": predictor}, {"band_gap": "eV"}, [GAP], scope)


def test_structure_match_and_composition_match_are_told_apart() -> None:
    structures = [perovskite("Sr", "Ti", "O", 3.93, noise=0.01), scrambled("K", "Mg", "F"),
                  perovskite("Ca", "Ti", "O"), perovskite("Sr", "Ti", "O")]  # fmt: skip
    references = [gap_reference()]
    rows = match_and_order(rows_for([True, True, True, False]), structures, references, known=gap_known())
    assert [r["reference_match"] for r in rows] == ["structure", "composition", "", ""]
    assert [r["reference_id"] for r in rows] == ["refs:SrTiO3", "refs:KMgF3", "", ""]
    assert [r["novel"] for r in rows] == [False, True, True, False]  # a composition match is still novel
    assert rows[0]["band_gap_reference"] == 0.0 and rows[0]["band_gap_reference_theory"] == "GLLB-SC"
    assert rows[0]["band_gap_reference_ok"] is False  # a GLLB-SC metal is a PBE metal: not 2.5 ± 0.2 eV
    assert rows[1]["band_gap_reference"] == 7.0 and rows[1]["band_gap_reference_ok"] is False  # 7 eV → [2.8, 7] eV
    assert rows[2]["band_gap_reference"] == "" and rows[3]["band_gap_reference"] == ""  # no match; not a success
    assert list(rows[0]) == ["id", "success", "unique", "duplicate_of", "novel", "reference_id", "reference_match",
                             "band_gap_reference", "band_gap_reference_theory", "band_gap_reference_ok", "formula"]  # fmt: skip


def test_every_candidate_scope_matches_failures_too() -> None:
    structures = [perovskite("Sr", "Ti", "O", 3.93, noise=0.01), scrambled("K", "Mg", "F")]
    rows = match_and_order(rows_for([False, False]), structures, [gap_reference()], known=gap_known("all"))
    assert [r["reference_match"] for r in rows] == ["structure", "composition"]
    assert [r["band_gap_reference"] for r in rows] == [0.0, 7.0]
    assert all(r["unique"] is False and r["novel"] is False for r in rows)  # novelty is still about successes only


def test_structure_match_in_a_set_without_values_does_not_hide_a_known_value() -> None:
    plain = ReferenceSet.from_structures("prototypes", [perovskite("Sr", "Ti", "O")], ["prototypes:SrTiO3"])
    rows = match_and_order(rows_for([True]), [perovskite("Sr", "Ti", "O", 3.93, noise=0.01)],
                           [plain, gap_reference()], known=gap_known())  # fmt: skip
    assert rows[0]["reference_id"] == "refs:SrTiO3" and rows[0]["reference_match"] == "structure"  # searched first


def test_theory_mapping_decides_only_where_any_correction_agrees() -> None:
    assert reference_interval("band_gap", 0.0, "GLLB-SC", "PBE") == (0.0, 0.0)
    assert reference_interval("band_gap", 3.7, "GLLB-SC", "PBE") == pytest.approx((1.48, 3.7))
    assert reference_interval("band_gap", 0.0, "PBE", "HSE") == (0.0, math.inf)
    assert reference_interval("band_gap", 2.0, "gllbsc", "GLLB-SC") == (2.0, 2.0)  # same theory, other spelling
    assert reference_interval("band_gap", 2.0, "GLLB-SC", "") == (2.0, 2.0)  # the run's theory unknown: as given
    assert reference_interval("formation_energy", 1.0, "RPBE", "PBE") == pytest.approx((0.8, 1.2))
    assert verdict(GAP, (1.48, 3.7)) == "" and verdict(GAP, (2.4, 2.6)) is True and verdict(GAP, (2.8, 7.0)) is False
    assert verdict(GAP, (2.5, 2.5)) is True and verdict(GAP, (0.0, math.inf)) == ""
    assert verdict(Below("formation_energy", -0.5), (0.8, 1.2)) is False
    assert verdict(Above("tc", 5.0), (6.0, 6.0)) is True


def test_predictor_theories() -> None:
    assert predictor_theory("cgcnn-band-gap") == "PBE" and predictor_theory("megnet-band-gap") == "PBE"
    assert predictor_theory("megnet-mf-band-gap") == "PBE"
    assert predictor_theory("megnet-mf-band-gap:fidelity=gllb") == "GLLB-SC"
    assert predictor_theory("megnet-mf-band-gap:fidelity=exp") == "experiment"
    assert predictor_theory("alignn:/some/model.zip") == ""


def test_a_same_theory_predictor_is_judged_on_the_value_itself() -> None:
    reference = ReferenceSet("refs", properties=(GAP_GLLB,))
    reference.add("refs:a", "SrTiO3", perovskite("Sr", "Ti", "O"), {"band_gap": 2.6})
    for predictor, expected in (("megnet-mf-band-gap:fidelity=gllb", True), ("cgcnn-band-gap", "")):
        rows = match_and_order(rows_for([True]), [perovskite("Sr", "Ti", "O")], [reference],
                               known=gap_known(predictor=predictor, references=[reference]))  # fmt: skip
        assert rows[0]["band_gap_reference_ok"] == expected


def test_units_are_converted_and_mismatches_are_one_line() -> None:
    reference = ReferenceSet("refs", properties=(ReferenceProperty("band_gap", "meV", "PBE"),))
    reference.add("refs:a", "SrTiO3", perovskite("Sr", "Ti", "O"), {"band_gap": 2500.0})
    rows = match_and_order(rows_for([True]), [perovskite("Sr", "Ti", "O")], [reference], known=gap_known(references=[reference]))
    assert rows[0]["band_gap_reference"] == pytest.approx(2.5) and rows[0]["band_gap_reference_ok"] is True
    custom = ReferenceSet("custom", properties=(ReferenceProperty("e_custom", "eV", "PBE"),))
    with pytest.raises(ConfigError, match="cannot be expressed in the run's e_custom unit eV/atom") as info:
        known_values([custom], {"e_custom": "x"}, {"e_custom": "eV/atom"}, [])
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="known_values must be one of"):
        known_values([custom], {}, {}, [], "some")


def test_heat_of_formation_checks_formation_energy_and_other_properties_are_reported_without_verdict() -> None:
    reference = ReferenceSet("perov", properties=(ReferenceProperty("heat_of_formation", "eV/atom", "RPBE"),
                                                  ReferenceProperty("tc", "K", "experiment")))  # fmt: skip
    reference.add("perov:a", "SrTiO3", perovskite("Sr", "Ti", "O"), {"heat_of_formation": 1.3, "tc": 0.3})
    known = known_values([reference], {"formation_energy": "cgcnn-formation-energy"}, {"formation_energy": "eV/atom"},
                         [Below("formation_energy", -0.5)])  # fmt: skip
    assert known.columns == ["formation_energy_reference", "formation_energy_reference_theory",
                             "formation_energy_reference_ok", "tc_reference", "tc_reference_theory"]  # fmt: skip
    rows = match_and_order(rows_for([True]), [perovskite("Sr", "Ti", "O")], [reference], known=known)
    assert rows[0]["formation_energy_reference"] == 1.3 and rows[0]["formation_energy_reference_ok"] is False
    assert rows[0]["tc_reference"] == 0.3 and "tc_reference_ok" not in rows[0]


def _summary_rows() -> list[dict]:
    known = {"reference_match": "structure", "band_gap_reference": 0.0, "band_gap_reference_theory": "GLLB-SC",
             "band_gap_reference_ok": False}  # fmt: skip
    none = {"reference_match": "", "band_gap_reference": "", "band_gap_reference_theory": "", "band_gap_reference_ok": ""}
    rows = [{"id": f"c{i}", "success": True, **known} for i in range(3)]
    rows[2]["reference_match"] = "composition"
    return [*rows, {"id": "c3", "success": True, **none}, {"id": "c4", "success": False, **known}]


def test_summary_counts_and_plain_wording() -> None:
    rows = _summary_rows()
    summary = {"n_success": 4, **known_summary(rows)}
    assert summary["n_success_known"] == 3 and summary["n_success_known_structure"] == 2
    assert summary["n_success_known_composition"] == 1 and summary["n_success_known_contradicted"] == 3
    assert summary["band_gap_reference_n"] == 3 and summary["band_gap_reference_contradicted"] == 3
    assert summary["band_gap_reference_confirmed"] == 0 and summary["band_gap_reference_agreement"] == 0.0
    text = known_sentences(rows, summary)
    assert "3 of 3 successes with a GLLB-SC band gap are metals in GLLB-SC (gap 0 eV)." in text
    assert text[0].startswith("3 of 4 successes match a reference entry with a known value (2 by structure, 1 by composition")
    assert known_summary([{"id": "c0", "success": True}]) == {}  # no reference-value columns: nothing added


def test_no_success_with_a_value_leaves_the_agreement_unmeasured() -> None:
    rows = [r for r in _summary_rows() if r["id"] in ("c3", "c4")]
    summary = known_summary(rows)
    assert summary["band_gap_reference_n"] == 0 and summary["band_gap_reference_agreement"] == ""
    assert known_sentences(rows, {"n_success": 1, **summary})[0].startswith("0 of 1 successes")
