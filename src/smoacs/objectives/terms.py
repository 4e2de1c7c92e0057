"""Objective terms. Each maps a dict of per-crystal values to a per-crystal loss and a "satisfied" flag.

Values are ``[n_crystals]`` tensors keyed by property name (predictor outputs such as ``band_gap``, and derived
quantities such as ``tolerance`` and ``min_distance``). Losses of the bounded terms (window, range, below, above) are
hinges in the property's own unit, multiplied by ``weight``; they are zero once the *training* criterion holds.
``maximize`` / ``minimize`` are linear (optionally capped) and need not reach zero. ``satisfied`` uses the *evaluation* criterion, which is
what ``success`` reports; training criteria are set slightly tighter so that discretisation noise does not push a
candidate out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from smoacs.errors import ConfigError


def _outside(value: float, excess: float) -> float:
    """``max(excess, 0)``, or inf when ``value`` is NaN (a missing value violates every criterion)."""
    return math.inf if math.isnan(value) else max(excess, 0.0)


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

    def violation(self, value: float) -> float:
        """How far ``value`` lies outside the evaluation criterion (0 inside; inf for NaN)."""
        return _outside(value, abs(value - self.target) - self.eval_margin)

    def target_offset(self, value: float) -> float:
        """|value − target| (ranks equally good candidates in reports)."""
        return abs(value - self.target)

    def plot_lines(self) -> tuple[tuple[float, str], ...]:
        """Horizontal (value, line style) guides for plots: the evaluation window."""
        return ((self.target - self.eval_margin, "--"), (self.target + self.eval_margin, "--"))


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

    def violation(self, value: float) -> float:
        """How far ``value`` lies above the threshold (0 below it; inf for NaN)."""
        return _outside(value, value - self.threshold)

    def target_offset(self, value: float) -> float:  # noqa: ARG002 - no target
        """0 (no target value)."""
        return 0.0

    def plot_lines(self) -> tuple[tuple[float, str], ...]:
        """Horizontal (value, line style) guides for plots: the threshold."""
        return ((self.threshold, "--"),)


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

    def violation(self, value: float) -> float:
        """How far ``value`` lies below the threshold (0 above it; inf for NaN)."""
        return _outside(value, self.threshold - value)

    def target_offset(self, value: float) -> float:  # noqa: ARG002 - no target
        """0 (no target value)."""
        return 0.0

    def plot_lines(self) -> tuple[tuple[float, str], ...]:
        """Horizontal (value, line style) guides for plots: the threshold."""
        return ((self.threshold, "--"),)


@dataclass(frozen=True)
class Range:
    """low ≤ y ≤ high (e.g. the tolerance factor in [0.8, 1.0]); training uses the range shrunk by ``margin``.

    Loss ``weight · (max(low + margin − y, 0) + max(y − (high − margin), 0))``; satisfied if low ≤ y ≤ high.
    """

    key: str
    low: float
    high: float
    margin: float = 0.0
    weight: float = 1.0
    kind: ClassVar[str] = "range"

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ConfigError(f"range on {self.key}: margin must be ≥ 0, got {self.margin}")
        if not self.low + 2 * self.margin <= self.high:
            raise ConfigError(f"range on {self.key}: need low + 2·margin ≤ high, got [{self.low}, {self.high}] ± {self.margin}")

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

    def violation(self, value: float) -> float:
        """How far ``value`` lies outside [low, high] (0 inside; inf for NaN)."""
        return _outside(value, max(self.low - value, 0.0) + max(value - self.high, 0.0))

    def target_offset(self, value: float) -> float:  # noqa: ARG002 - no target
        """0 (no target value)."""
        return 0.0

    def plot_lines(self) -> tuple[tuple[float, str], ...]:
        """Horizontal (value, line style) guides for plots: the range bounds."""
        return ((self.low, "--"), (self.high, "--"))


#: Former name of :class:`Range` (kept so that code written against it keeps importing; prefer ``Range``).
Band = Range


def _check_open_ended(term: Maximize | Minimize) -> None:
    if term.weight < 0:
        raise ConfigError(f"{term.kind} on {term.key}: weight must be ≥ 0 (use {_OPPOSITE[term.kind]} to reverse), got {term.weight}")
    if term.threshold is not None and term.cap is not None:
        ok = term.cap >= term.threshold if term.kind == "maximize" else term.cap <= term.threshold
        if not ok:
            relation = "≥" if term.kind == "maximize" else "≤"
            raise ConfigError(
                f"{term.kind} on {term.key}: cap must be {relation} threshold (the loss would stop improving before "
                f"the success criterion holds), got cap {term.cap}, threshold {term.threshold}"
            )


_OPPOSITE = {"maximize": "minimize", "minimize": "maximize"}


class _OpenEnded:
    """What :class:`Maximize` and :class:`Minimize` share: no target, an optional threshold and cap."""

    threshold: float | None
    cap: float | None

    def violation(self, value: float) -> float:
        """0 (a preference; its criterion, when set, is reported as ``<key>_ok``); inf for NaN."""
        return _outside(value, 0.0)

    def target_offset(self, value: float) -> float:  # noqa: ARG002 - no target
        """0 (no target value)."""
        return 0.0

    def plot_lines(self) -> tuple[tuple[float, str], ...]:
        """Horizontal (value, line style) guides for plots: threshold (dashed) and cap (dotted) when set."""
        lines = [] if self.threshold is None else [(self.threshold, "--")]
        return tuple(lines + ([] if self.cap is None else [(self.cap, ":")]))


@dataclass(frozen=True)
class Maximize(_OpenEnded):
    """Push y up, as far as the predictor allows (or up to ``cap``).

    Loss: without ``cap``, ``−weight · y`` (linear, unbounded: a constant gradient ``weight`` forever, and the loss is
    never zero, so such a candidate never counts as "solved" for copy-and-mutate — it is ranked by its loss instead);
    with ``cap``, ``weight · max(cap − y, 0)`` — the same gradient below the cap and zero at or beyond it, so no
    further improvement is rewarded and the other terms take over (equal to ``−weight · min(y, cap)`` up to a
    constant). Satisfied: ``y > threshold`` when ``threshold`` is set, otherwise whenever y is finite (the term is
    then a pure preference, not a criterion).
    """

    key: str
    threshold: float | None = None
    cap: float | None = None
    weight: float = 1.0
    kind: ClassVar[str] = "maximize"

    def __post_init__(self) -> None:
        _check_open_ended(self)

    def loss(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` linear (or capped linear) loss."""
        y = _value(values, self.key)
        if self.cap is None:
            return -self.weight * y
        return self.weight * torch.relu(self.cap - y)

    def satisfied(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` bool: above the threshold (finite when there is none)."""
        y = _value(values, self.key)
        return torch.isfinite(y) if self.threshold is None else y > self.threshold

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"maximize {self.key}" if self.threshold is None else f"maximize {self.key} (> {self.threshold:g})"


@dataclass(frozen=True)
class Minimize(_OpenEnded):
    """Push y down, as far as the predictor allows (or down to ``cap``). The mirror image of :class:`Maximize`.

    Loss: without ``cap``, ``weight · y``; with ``cap``, ``weight · max(y − cap, 0)`` (zero at or below the cap).
    Satisfied: ``y < threshold`` when ``threshold`` is set, otherwise whenever y is finite.
    """

    key: str
    threshold: float | None = None
    cap: float | None = None
    weight: float = 1.0
    kind: ClassVar[str] = "minimize"

    def __post_init__(self) -> None:
        _check_open_ended(self)

    def loss(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` linear (or capped linear) loss."""
        y = _value(values, self.key)
        if self.cap is None:
            return self.weight * y
        return self.weight * torch.relu(y - self.cap)

    def satisfied(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` bool: below the threshold (finite when there is none)."""
        y = _value(values, self.key)
        return torch.isfinite(y) if self.threshold is None else y < self.threshold

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"minimize {self.key}" if self.threshold is None else f"minimize {self.key} (< {self.threshold:g})"


Objective = Window | Range | Below | Above | Maximize | Minimize

#: ``kind`` → class of every objective term (the ``kind`` values of a config file).
OBJECTIVE_KINDS: dict[str, type[Objective]] = {
    cls.kind: cls for cls in (Window, Range, Below, Above, Maximize, Minimize)  # type: ignore[misc]
}


def objective_to_dict(objective: Objective) -> dict[str, Any]:
    """Config-file form (also run.json's): ``kind``, ``property`` and the term's fields.

    A :class:`Range`'s bounds are one ``range: [low, high]`` entry. :func:`smoacs.configfile.objective_from_dict`
    reads it back.
    """
    fields = asdict(objective)
    data: dict[str, Any] = {"kind": objective.kind, "property": fields.pop("key")}
    if isinstance(objective, Range):
        data["range"] = [fields.pop("low"), fields.pop("high")]
    data.update(fields)
    return data


def total_loss(objectives: list[Objective], values: dict[str, Tensor]) -> Tensor:
    """``[n_crystals]`` sum of every term's loss."""
    return torch.stack([objective.loss(values) for objective in objectives]).sum(0)
