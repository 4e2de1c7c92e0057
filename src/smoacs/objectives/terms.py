"""Objective terms. Each maps a dict of per-crystal values to a per-crystal loss and a "satisfied" flag.

Values are ``[n_crystals]`` tensors keyed by property name (predictor outputs such as ``band_gap``, and derived
quantities such as ``tolerance`` and ``min_distance``). Losses are hinges in the property's own unit, multiplied by
``weight``; they are zero once the *training* criterion holds. ``satisfied`` uses the *evaluation* criterion, which is
what ``success`` reports; training criteria are set slightly tighter so that discretisation noise does not push a
candidate out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from smoacs.errors import ConfigError


def _value(values: dict[str, Tensor], key: str) -> Tensor:
    if key not in values:
        raise ConfigError(f"objective needs {key!r} but the run provides only: {', '.join(sorted(values))}")
    return values[key]


@dataclass(frozen=True)
class Window:
    """|y − target| ≤ margin. Loss ``weight · max(|y − target| − margin, 0)``; satisfied if ≤ ``eval_margin``."""

    key: str
    target: float
    margin: float = 0.04
    eval_margin: float = 0.2
    weight: float = 1.0
    kind: ClassVar[str] = "window"

    def __post_init__(self) -> None:
        if self.margin < 0 or self.eval_margin < 0:
            raise ConfigError(f"window on {self.key}: margins must be ≥ 0, got {self.margin}, {self.eval_margin}")

    def loss(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` hinge loss."""
        return self.weight * torch.relu((_value(values, self.key) - self.target).abs() - self.margin)

    def satisfied(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` bool under the evaluation margin."""
        return (_value(values, self.key) - self.target).abs() <= self.eval_margin

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"{self.key} = {self.target:g} ± {self.eval_margin:g}"


@dataclass(frozen=True)
class Below:
    """y < threshold. Training pushes to ``threshold − margin``; satisfied if y < ``threshold``."""

    key: str
    threshold: float
    margin: float = 0.0
    weight: float = 1.0
    kind: ClassVar[str] = "below"

    def loss(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` hinge loss."""
        return self.weight * torch.relu(_value(values, self.key) - (self.threshold - self.margin))

    def satisfied(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` bool."""
        return _value(values, self.key) < self.threshold

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"{self.key} < {self.threshold:g}"


@dataclass(frozen=True)
class Above:
    """y > threshold. Training pushes to ``threshold + margin``; satisfied if y > ``threshold``."""

    key: str
    threshold: float
    margin: float = 0.0
    weight: float = 1.0
    kind: ClassVar[str] = "above"

    def loss(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` hinge loss."""
        return self.weight * torch.relu((self.threshold + self.margin) - _value(values, self.key))

    def satisfied(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` bool."""
        return _value(values, self.key) > self.threshold

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"{self.key} > {self.threshold:g}"


@dataclass(frozen=True)
class Band:
    """low ≤ y ≤ high (e.g. the tolerance factor in [0.8, 1.0]); training uses the band shrunk by ``margin``."""

    key: str
    low: float
    high: float
    margin: float = 0.0
    weight: float = 1.0
    kind: ClassVar[str] = "band"

    def __post_init__(self) -> None:
        if not self.low + 2 * self.margin <= self.high:
            raise ConfigError(f"band on {self.key}: need low + 2·margin ≤ high, got [{self.low}, {self.high}] ± {self.margin}")

    def loss(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` hinge loss on both sides."""
        y = _value(values, self.key)
        return self.weight * (torch.relu(self.low + self.margin - y) + torch.relu(y - (self.high - self.margin)))

    def satisfied(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` bool."""
        y = _value(values, self.key)
        return (y >= self.low) & (y <= self.high)

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"{self.low:g} ≤ {self.key} ≤ {self.high:g}"


Objective = Window | Below | Above | Band


def objective_to_dict(objective: Objective) -> dict[str, Any]:
    """Serialisable form (``kind`` plus fields) for run.json and configs."""
    return {"kind": objective.kind, **asdict(objective)}


def total_loss(objectives: list[Objective], values: dict[str, Tensor]) -> Tensor:
    """``[n_crystals]`` sum of every term's loss."""
    return torch.stack([objective.loss(values) for objective in objectives]).sum(0)
