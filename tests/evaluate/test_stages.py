"""Evaluation stages: one function (candidates, context) → columns and criteria, joined into rows and success."""

from __future__ import annotations

import numpy as np

from conftest import ToyPredictor
from smoacs.design import DesignSpace, Provenance
from smoacs.evaluate import EvaluationSettings, evaluate_design
from smoacs.evaluate.candidates import Candidates, StageContext, StageOutput
from smoacs.evaluate.stages import configured_stages
from smoacs.objectives import Window
from smoacs.templates import perovskite_templates


def _volume_stage(candidates: Candidates, context: StageContext) -> StageOutput:
    """Test stage: the cell volume per atom from the structures, and a criterion on it."""
    volume = np.array([s.volume / len(s) for s in context.structures])
    assert set(context.values) >= {"band_gap", "tolerance", "min_distance"}
    assert len(candidates.ids) == len(volume)
    return StageOutput({"stage_volume": volume}, {"small_ok": volume < 30.0})


def test_a_stage_adds_columns_and_joins_success() -> None:
    space = DesignSpace(perovskite_templates(4, seed=3), seed=3)
    args = ([ToyPredictor("band_gap")], [Window("band_gap", 2.0, eval_margin=10.0)], EvaluationSettings(),
            Provenance.untouched(4), [f"c{i:05d}" for i in range(4)])  # fmt: skip
    plain = evaluate_design(space, *args)
    staged = evaluate_design(space, *args, stages=[_volume_stage])
    assert "small_ok" in staged.criteria and "small_ok" not in plain.criteria
    for before, after in zip(plain.rows, staged.rows, strict=True):
        assert list(after)[-1] == "stage_volume" and isinstance(after["stage_volume"], float)
        assert after["success"] == (before["success"] and after["stage_volume"] < 30.0)
        assert {k: v for k, v in after.items() if k not in ("stage_volume", "small_ok", "success")} == {
            k: v for k, v in before.items() if k != "success"
        }


def test_no_stage_configured_by_default() -> None:
    assert configured_stages(EvaluationSettings()) == []
