"""The held-out judge: its columns, its summary (agreement, MAE over successes), and that the optimiser never sees it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ToyPredictor
from smoacs.design import DesignSpace
from smoacs.evaluate.evaluator import judge_columns
from smoacs.evaluate.summary import summarize
from smoacs.objectives import Below, Window
from smoacs.physics.settings import PhysicsSettings
from smoacs.predictors import load_predictor
from smoacs.predictors import registry
from smoacs.predictors.base import PredictorInfo
from smoacs.presets import build_config
from smoacs.runner import run
from smoacs.templates import perovskite_templates


def test_judge_columns_apply_the_objective_criteria() -> None:
    space = DesignSpace(perovskite_templates(4, seed=1), seed=1)
    design = space.discretize()
    judge = load_predictor("megnet-formation-energy")
    value = judge.final(design.crystals).double().numpy()
    threshold = float(np.median(value))
    columns = judge_columns(design, [judge], [Below("formation_energy", threshold), Window("band_gap", 1.0)])
    assert set(columns) == {"formation_energy_judge", "formation_energy_judge_ok"}
    np.testing.assert_allclose(columns["formation_energy_judge"], value, atol=1e-6)
    np.testing.assert_array_equal(columns["formation_energy_judge_ok"], value < threshold)


def test_summary_reports_agreement_over_successes_only() -> None:
    rows = [
        {"formula": "A", "success": True, "band_gap": 2.5, "band_gap_judge": 2.6, "band_gap_judge_ok": True,
         "band_gap_spread": 0.1},
        {"formula": "B", "success": True, "band_gap": 2.4, "band_gap_judge": 1.4, "band_gap_judge_ok": False,
         "band_gap_spread": 0.3},
        {"formula": "C", "success": False, "band_gap": 9.0, "band_gap_judge": 0.0, "band_gap_judge_ok": False,
         "band_gap_spread": 5.0},
    ]  # fmt: skip
    summary = summarize(rows, [])
    assert summary["band_gap_judge_agreement"] == 0.5
    assert abs(summary["band_gap_judge_mae"] - 0.55) < 1e-12
    assert summary["band_gap_spread_median"] == pytest.approx(0.2)


class CountingJudge(ToyPredictor):
    """A toy band-gap judge that counts how it is called."""

    def __init__(self) -> None:
        super().__init__("band_gap")
        self.info = PredictorInfo("counting-judge", "band_gap", "eV", "none", "tests")
        self.soft_calls = 0
        self.final_calls = 0

    def __call__(self, crystals):  # noqa: ANN001, ANN204
        self.soft_calls += 1
        return super().__call__(crystals)

    def final(self, crystals):  # noqa: ANN001, ANN201
        self.final_calls += 1
        return super().__call__(crystals)


def _run(out: Path, judge: dict[str, str]):  # noqa: ANN202
    config = build_config("perovskite-bandgap", 1.0, str(out))
    config = config.with_overrides(
        candidates=4, batch_size=4, steps=6, device="cpu", physics=PhysicsSettings(potential="none"),
        ensemble={"band_gap": ["cgcnn-band-gap", "megnet-band-gap"]}, judge=judge,
    )  # fmt: skip
    return run(config, progress=False)


def test_the_judge_never_enters_the_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    judge = CountingJudge()
    monkeypatch.setitem(registry._STATE.entries, "counting-judge", registry.PredictorEntry(judge.info, lambda: judge))
    judged = _run(tmp_path / "judged", {"band_gap": "counting-judge"})
    plain = _run(tmp_path / "plain", {})
    assert judge.soft_calls == 0 and judge.final_calls >= 1  # evaluated on the discrete candidates only
    with np.load(judged.out_dir / "result.npz") as a, np.load(plain.out_dir / "result.npz") as b:
        np.testing.assert_array_equal(a["history_loss"], b["history_loss"])  # identical optimisation
        np.testing.assert_array_equal(a["success"], b["success"])  # and identical verdicts
    for row in judged.rows:
        assert row["band_gap_judge_ok"] == (abs(row["band_gap_judge"] - 1.0) <= 0.2)  # the preset's window
        members = [row["band_gap_m0"], row["band_gap_m1"]]
        assert row["band_gap"] == pytest.approx(np.mean(members), abs=1e-5)
        assert row["band_gap_spread"] == pytest.approx(abs(members[0] - members[1]), abs=1e-5)
        assert row["band_gap_ok"] == all(abs(m - 1.0) <= 0.2 for m in members)  # every member inside the window
    assert "band_gap_judge" not in plain.rows[0]
    assert "band_gap_judge_agreement" in judged.summary and "band_gap_judge_agreement" not in plain.summary
