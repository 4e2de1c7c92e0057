"""Property predictors behind one protocol, and a declarative registry by name and by path family."""

from __future__ import annotations

from smoacs.predictors.base import GraphPredictor, Predictor, PredictorEntry, PredictorInfo
from smoacs.predictors.registry import (
    available_path_families,
    available_predictors,
    load_predictor,
    predictor_info,
    read_spec,
    register,
    register_path_family,
)

__all__ = [
    "GraphPredictor",
    "Predictor",
    "PredictorEntry",
    "PredictorInfo",
    "available_path_families",
    "available_predictors",
    "load_predictor",
    "predictor_info",
    "read_spec",
    "register",
    "register_path_family",
]
