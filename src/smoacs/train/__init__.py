"""``smoacs train``: fit a Crystalformer or CGCNN predictor on a table of structures and write a model directory."""

from __future__ import annotations

from smoacs.train.arch import ARCHS, architecture
from smoacs.train.data import TRANSFORMS, Table, read_table
from smoacs.train.fit import TrainResult, TrainSettings, train_model

__all__ = ["ARCHS", "TRANSFORMS", "Table", "TrainResult", "TrainSettings", "architecture", "read_table", "train_model"]
