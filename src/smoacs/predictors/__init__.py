"""Property predictors behind one protocol, and a registry by name."""

from __future__ import annotations

from smoacs.predictors.base import GraphPredictor, Predictor, PredictorInfo
from smoacs.predictors.registry import available_predictors, load_predictor, predictor_info, register

__all__ = [
    "GraphPredictor",
    "Predictor",
    "PredictorInfo",
    "available_predictors",
    "load_predictor",
    "predictor_info",
    "register",
]
