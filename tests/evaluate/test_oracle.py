"""Independent-oracle columns and their summary (agreement, MAE over successes)."""

from __future__ import annotations

import numpy as np

from smoacs.design import DesignSpace
from smoacs.evaluate.evaluator import oracle_columns
from smoacs.evaluate.summary import summarize
from smoacs.objectives import Below, Window
from smoacs.predictors import load_predictor
from smoacs.templates import perovskite_templates


def test_oracle_columns_apply_the_objective_criteria() -> None:
    space = DesignSpace(perovskite_templates(4, seed=1), seed=1)
    design = space.discretize()
    oracle = load_predictor("megnet-formation-energy")
    value = oracle.final(design.crystals).double().numpy()
    threshold = float(np.median(value))
    columns = oracle_columns(design, [oracle], [Below("formation_energy", threshold), Window("band_gap", 1.0)])
    np.testing.assert_allclose(columns["formation_energy_oracle"], value, atol=1e-6)
    np.testing.assert_array_equal(columns["formation_energy_oracle_ok"], value < threshold)
    assert "band_gap_oracle" not in columns


def test_summary_reports_agreement_over_successes_only() -> None:
    rows = [
        {"formula": "A", "success": True, "band_gap": 2.5, "band_gap_oracle": 2.6, "band_gap_oracle_ok": True},
        {"formula": "B", "success": True, "band_gap": 2.4, "band_gap_oracle": 1.4, "band_gap_oracle_ok": False},
        {"formula": "C", "success": False, "band_gap": 9.0, "band_gap_oracle": 0.0, "band_gap_oracle_ok": False},
    ]
    summary = summarize(rows, [])
    assert summary["band_gap_oracle_agreement"] == 0.5
    assert abs(summary["band_gap_oracle_mae"] - 0.55) < 1e-12
