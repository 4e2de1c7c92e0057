"""Structural checks and the run summary."""

from __future__ import annotations

import numpy as np
import pytest

from smoacs.evaluate.checks import neutrality, perovskite_geometry, site_displacement
from smoacs.evaluate.summary import summarize

FRAC0 = np.array([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]])
BOUND = np.full(5, 0.15)
ANGLES = np.full((1, 3), 90.0)
CRYSTAL = np.zeros(5, dtype=int)


def test_periodic_displacement_across_boundary() -> None:
    frac = np.array([[0.98, 0.0, 0.03], [0.5, 0.5, 0.5]])
    frac0 = np.array([[0.0, 0.99, 0.0], [0.9, 0.5, 0.5]])
    np.testing.assert_allclose(site_displacement(frac, frac0), [0.03, 0.4])


def test_perovskite_geometry_small_wrapped_displacement_is_ok() -> None:
    frac = FRAC0.copy()
    frac[1] = [0.97, 0.02, 0.9]  # B moved by (−0.03, 0.02, −0.10) through the 0/1 boundary
    ok, worst = perovskite_geometry(frac, FRAC0, BOUND, CRYSTAL, ANGLES, (85.0, 95.0))
    assert ok.tolist() == [True]
    assert worst[0] == pytest.approx(0.10)


def test_perovskite_geometry_violations() -> None:
    far = FRAC0.copy()
    far[0] = [0.5, 0.5, 0.7]  # A displaced by 0.2 > 0.15
    ok, worst = perovskite_geometry(far, FRAC0, BOUND, CRYSTAL, ANGLES, (85.0, 95.0))
    assert ok.tolist() == [False] and worst[0] == pytest.approx(0.2)
    ok, _ = perovskite_geometry(FRAC0, FRAC0, BOUND, CRYSTAL, np.array([[90.0, 96.0, 90.0]]), (85.0, 95.0))
    assert ok.tolist() == [False]
    # Two crystals: only the offending one fails.
    frac = np.concatenate([FRAC0, far])
    ok, _ = perovskite_geometry(frac, np.concatenate([FRAC0, FRAC0]), np.full(10, 0.15), np.repeat([0, 1], 5),
                                np.full((2, 3), 90.0), (85.0, 95.0))  # fmt: skip
    assert ok.tolist() == [True, False]


def test_neutrality() -> None:
    ok, text = neutrality([["Sr", "Ti", "O", "O", "O"], ["Na", "Cl", "Cl"], ["K", "Mg", "F", "F", "F"], ["Fe", "Co"]])
    assert ok.tolist() == [True, False, True, False]
    assert text[0] == "Sr+2 Ti+4 O-2 O-2 O-2"
    assert text[1] == "" and text[3] == ""
    assert text[2] == "K+1 Mg+2 F-1 F-1 F-1"


def test_summarize_rates() -> None:
    rows = [
        {"formula": "SrTiO3", "success": True, "band_gap_ok": True, "neutral_ok": True, "quarantined": ""},
        {"formula": "SrTiO3", "success": True, "band_gap_ok": True, "neutral_ok": True, "quarantined": ""},
        {"formula": "BaTiO3", "success": True, "band_gap_ok": True, "neutral_ok": True, "quarantined": ""},
        {"formula": "KMgF3", "success": False, "band_gap_ok": False, "neutral_ok": True, "quarantined": ""},
        {"formula": "NaCl2", "success": False, "band_gap_ok": False, "neutral_ok": False, "quarantined": "nan"},
    ]
    summary = summarize(rows, ["band_gap_ok", "neutral_ok"])
    assert summary == {
        "n_candidates": 5,
        "n_success": 3,
        "success_rate": 0.6,
        "band_gap_rate": 0.6,
        "neutral_rate": 0.8,
        "distinct_success_formulas": 2,
        "n_quarantined": 1,
    }


def test_summarize_counts_screened_starts() -> None:
    rows = [
        {"formula": "KCdCl3", "template": "screen-KCdCl3", "success": True, "quarantined": ""},
        {"formula": "SrSnO3", "template": "screen-SrSnO3", "success": False, "quarantined": ""},
        {"formula": "CsCdIF2", "template": "perovskite-0001", "success": True, "quarantined": ""},
    ]
    summary = summarize(rows, [])
    assert (summary["n_screened"], summary["n_screened_success"], summary["n_success"]) == (2, 1, 2)
    assert "n_screened" not in summarize(rows[2:], [])  # no screen, no count
    from smoacs.io.report import report_markdown
    from smoacs.objectives import Window

    rows = [{**row, "id": f"c{i:05d}", "band_gap": 2.5, "band_gap_ok": row["success"]} for i, row in enumerate(rows)]
    report = report_markdown(rows, summary, [Window("band_gap", 2.5)], {"predictors": {"band_gap": "m"}})
    assert "2 candidates started from the screen" in report and "1 of them are successes" in report


def test_summarize_structure_matching_columns() -> None:
    base = {"band_gap_ok": True, "quarantined": ""}
    rows = [
        {**base, "formula": "SrTiO3", "success": True, "unique": True, "novel": True},
        {**base, "formula": "SrTiO3", "success": True, "unique": False, "novel": True},
        {**base, "formula": "SrTiO3", "success": True, "unique": True, "novel": False},  # same formula, other structure
        {**base, "formula": "KMgF3", "success": False, "unique": False, "novel": False},
    ]
    summary = summarize(rows, ["band_gap_ok"])
    assert summary["distinct_success_formulas"] == 1
    assert summary["n_unique_success"] == 2 and summary["unique_success_rate"] == pytest.approx(2 / 3)
    assert summary["n_novel_success"] == 2 and summary["novel_success_rate"] == pytest.approx(2 / 3)
    unassessed = summarize([{**row, "novel": ""} for row in rows], ["band_gap_ok"])
    assert unassessed["novel_success_rate"] == "" and unassessed["n_novel_success"] == ""


def test_summarize_empty() -> None:
    summary = summarize([], ["band_gap_ok"])
    assert summary["n_candidates"] == 0 and summary["success_rate"] == 0.0 and summary["band_gap_rate"] == 0.0


def test_summarize_without_successes_measures_nothing_over_successes() -> None:
    from smoacs.io.report import report_markdown
    from smoacs.objectives import Window

    rows = [{"id": f"c{i:05d}", "formula": "KMgF3", "success": False, "band_gap_ok": False, "quarantined": "",
             "unique": False, "novel": False, "band_gap": 0.5, "band_gap_judge": 0.9, "band_gap_judge_ok": False}
            for i in range(3)]  # fmt: skip
    summary = summarize(rows, ["band_gap_ok"])
    assert summary["n_success"] == 0 and summary["success_rate"] == 0.0 and summary["band_gap_rate"] == 0.0
    for key in ("unique_success_rate", "novel_success_rate", "band_gap_judge_agreement", "band_gap_judge_mae"):
        assert summary[key] == "", key  # not 0.0: nothing was measured
    report = report_markdown(rows, summary, [Window("band_gap", 2.0)], {"predictors": {"band_gap": "m"}})
    assert "**No successes**" in report
    assert "| 0.0 % | – | – |" in report  # success 0 %, unique and novel not measured
