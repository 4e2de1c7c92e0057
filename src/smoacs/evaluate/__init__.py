"""Discretisation, one-hot re-prediction and the success criteria."""

from __future__ import annotations

from smoacs.evaluate.evaluator import Evaluation, EvaluationSettings, evaluate_design, predict_discrete

__all__ = ["Evaluation", "EvaluationSettings", "evaluate_design", "predict_discrete"]
