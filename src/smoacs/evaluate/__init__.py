"""Discretisation, one-hot re-prediction, the success criteria, evaluation stages, matching and re-evaluation."""

from __future__ import annotations

from smoacs.evaluate.candidates import Candidates, EvaluationStage, StageContext, StageOutput
from smoacs.evaluate.evaluator import Evaluation, EvaluationSettings, evaluate_design, predict_discrete
from smoacs.evaluate.stages import configured_stages

__all__ = ["Candidates", "Evaluation", "EvaluationSettings", "EvaluationStage", "StageContext", "StageOutput",
           "configured_stages", "evaluate_design", "predict_discrete"]  # fmt: skip
