"""Model cards (``model.json``) of predictors trained by ``smoacs train``, and the output transforms they name."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from smoacs.errors import PredictorError

CARD_NAME = "model.json"
OutputTransform = Literal["none", "pow10"]


@dataclass
class ModelCard:
    """What a trained model is and how it was made.

    Attributes:
        arch: ``"crystalformer"`` or ``"cgcnn"``.
        weights: weight file name, relative to the card's directory.
        property: property key of the output (result column), e.g. ``"tc"``.
        unit: unit of the output, e.g. ``"K"``.
        target: how the training target was made from the data, e.g. ``"-prop"`` or ``"log10(K_VRH)"``.
        output_transform: map from the network's de-normalised output to ``property`` (``"pow10"`` after a log10
            target transform, else ``"none"``).
        hyper_parameters: architecture and optimiser settings.
        data: training data description (files, row counts, sha256 of the table, skipped rows).
        metrics: validation and test MAE in ``unit`` (and anything else measured).
        training_time_s: wall-clock training time, s.
        licence: licence of the training data, if known.
        description: one line for listings.
    """

    arch: str
    weights: str
    property: str
    unit: str
    target: str
    output_transform: OutputTransform = "none"
    hyper_parameters: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training_time_s: float = 0.0
    licence: str = ""
    description: str = ""
    format_version: int = 1

    def write(self, directory: str | Path) -> Path:
        """Write ``model.json`` into ``directory``; returns its path."""
        path = Path(directory) / CARD_NAME
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=False) + "\n")
        return path

    @classmethod
    def read(cls, directory: str | Path) -> ModelCard:
        """Read ``model.json`` from a model directory; clear error if it is missing or malformed."""
        path = Path(directory) / CARD_NAME
        if not path.is_file():
            raise PredictorError(f"{directory} is not a trained model directory (no {CARD_NAME})")
        try:
            raw = json.loads(path.read_text())
            return cls(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise PredictorError(f"malformed model card {path}: {exc}") from exc

    def weights_path(self, directory: str | Path) -> Path:
        """Absolute path of the weight file of a model directory."""
        path = Path(directory) / self.weights
        if not path.is_file():
            raise PredictorError(f"weights {path} named by {Path(directory) / CARD_NAME} not found")
        return path


def apply_output_transform(value: Tensor, transform: OutputTransform) -> Tensor:
    """The reported property from the de-normalised network output."""
    if transform == "pow10":
        return torch.pow(10.0, value)
    if transform == "none":
        return value
    raise PredictorError(f"unknown output transform {transform!r}")
