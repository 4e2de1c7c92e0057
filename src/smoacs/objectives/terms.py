"""Objective terms. Each maps a dict of per-crystal values to a per-crystal loss and a "satisfied" flag.

Values are ``[n_crystals]`` tensors keyed by property name (predictor outputs such as ``band_gap``, and derived
quantities such as ``tolerance`` and ``min_distance``). Losses of the bounded terms (window, range, below, above) are
hinges in the property's own unit, multiplied by ``weight``; they are zero once the *training* criterion holds.
``maximize`` / ``minimize`` are linear (optionally capped) and need not reach zero. ``satisfied`` uses the *evaluation* criterion, which is
what ``success`` reports; training criteria are set slightly tighter so that discretisation noise does not push a
candidate out.

Ensembles (:mod:`smoacs.predictors.ensemble`) put their members' values next to the combined one
(``<key>_m0``, ``<key>_m1``, …, and ``<key>_spread``). Every term has an ``agreement``:

* ``"all"`` (default) — the term applies to **every member**: satisfied only if every member satisfies it, and the
  loss is the mean of the members' losses, so every member is pushed into the window (its gradient reaches every
  model). Without an ensemble the only "member" is the value itself, so single-model runs are unchanged.
* ``"value"`` — the term applies to the combined value only (the ensemble's mean or quantile).

``spread_tolerance`` (same unit) adds a criterion on the disagreement: satisfied only if ``<key>_spread`` ≤ the
tolerance, with the loss ``weight · max(spread − tolerance, 0)`` added (a single model has spread 0). With
``agreement: value`` this is "the combined value in the window and the models within ``spread_tolerance`` of each
other".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from smoacs.errors import ConfigError
from smoacs.predictors.ensemble import member_key, spread_key

AGREEMENTS = ("all", "value")


def _outside(value: float, excess: float) -> float:
    """``max(excess, 0)``, or inf when ``value`` is NaN (a missing value violates every criterion)."""
    return math.inf if math.isnan(value) else max(excess, 0.0)


def _value(values: dict[str, Tensor], key: str) -> Tensor:
    if key not in values:
        raise ConfigError(f"objective needs {key!r} but the run provides only: {', '.join(sorted(values))}")
    return values[key]


def member_values(values: dict[str, Tensor], key: str) -> Tensor:
    """``[n_members, B]`` the ensemble members' values of ``key`` (``[1, B]``: the value itself without an ensemble)."""
    found, index = [], 0
    while member_key(key, index) in values:
        found.append(values[member_key(key, index)])
        index += 1
    return torch.stack(found) if found else _value(values, key)[None]


class _Agreement:
    """What every term shares: per-member loss and criterion (``agreement``), and the spread criterion.

    Subclasses implement ``_member_loss(y)`` and ``_member_ok(y)`` on a ``[n_members, B]`` tensor.
    """

    key: str
    weight: float
    agreement: str
    spread_tolerance: float | None

    def _check_agreement(self) -> None:
        if self.agreement not in AGREEMENTS:
            raise ConfigError(f"agreement on {self.key}: must be one of {', '.join(AGREEMENTS)}, got {self.agreement!r}")
        if self.spread_tolerance is not None and not self.spread_tolerance >= 0:
            raise ConfigError(f"spread_tolerance on {self.key}: must be ≥ 0, got {self.spread_tolerance}")

    def _members(self, values: dict[str, Tensor]) -> Tensor:
        if self.agreement == "value":
            return _value(values, self.key)[None]
        return member_values(values, self.key)

    def _spread(self, values: dict[str, Tensor]) -> Tensor:
        base = _value(values, self.key)
        return values.get(spread_key(self.key), torch.zeros_like(base))

    def _member_loss(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    def _member_ok(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    def loss(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` loss: the mean over members (``agreement: all``) plus the spread hinge when set."""
        loss = self._member_loss(self._members(values)).mean(dim=0)
        if self.spread_tolerance is not None:
            loss = loss + self.weight * torch.relu(self._spread(values) - self.spread_tolerance)
        return loss

    def satisfied(self, values: dict[str, Tensor]) -> Tensor:
        """``[n_crystals]`` bool: every member (or the value) meets the criterion, and the spread its tolerance."""
        ok = self._member_ok(self._members(values)).all(dim=0)
        if self.spread_tolerance is not None:
            ok &= self._spread(values) <= self.spread_tolerance
        return ok

    def _agreement_text(self) -> str:
        parts = [] if self.agreement == "all" else ["combined value only"]
        if self.spread_tolerance is not None:
            parts.append(f"spread ≤ {self.spread_tolerance:g}")
        return f" ({', '.join(parts)})" if parts else ""


@dataclass(frozen=True)
class Window(_Agreement):
    """|y − target| ≤ margin. Loss ``weight · max(|y − target| − margin, 0)``; satisfied if ≤ ``eval_margin``."""

    key: str
    target: float
    margin: float = 0.04
    eval_margin: float = 0.2
    weight: float = 1.0
    agreement: str = "all"
    spread_tolerance: float | None = None
    kind: ClassVar[str] = "window"

    def __post_init__(self) -> None:
        if self.margin < 0 or self.eval_margin < 0:
            raise ConfigError(f"window on {self.key}: margins must be ≥ 0, got {self.margin}, {self.eval_margin}")
        self._check_agreement()

    def _member_loss(self, y: Tensor) -> Tensor:
        """Hinge ``weight · max(|y − target| − margin, 0)``."""
        return self.weight * torch.relu((y - self.target).abs() - self.margin)

    def _member_ok(self, y: Tensor) -> Tensor:
        """Inside the evaluation margin."""
        return (y - self.target).abs() <= self.eval_margin

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"{self.key} = {self.target:g} ± {self.eval_margin:g}{self._agreement_text()}"

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
class Below(_Agreement):
    """y < threshold. Training pushes to ``threshold − margin``; satisfied if y < ``threshold``."""

    key: str
    threshold: float
    margin: float = 0.0
    weight: float = 1.0
    agreement: str = "all"
    spread_tolerance: float | None = None
    kind: ClassVar[str] = "below"

    def __post_init__(self) -> None:
        self._check_agreement()

    def _member_loss(self, y: Tensor) -> Tensor:
        """Hinge ``weight · max(y − (threshold − margin), 0)``."""
        return self.weight * torch.relu(y - (self.threshold - self.margin))

    def _member_ok(self, y: Tensor) -> Tensor:
        """Below the threshold."""
        return y < self.threshold

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"{self.key} < {self.threshold:g}{self._agreement_text()}"

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
class Above(_Agreement):
    """y > threshold. Training pushes to ``threshold + margin``; satisfied if y > ``threshold``."""

    key: str
    threshold: float
    margin: float = 0.0
    weight: float = 1.0
    agreement: str = "all"
    spread_tolerance: float | None = None
    kind: ClassVar[str] = "above"

    def __post_init__(self) -> None:
        self._check_agreement()

    def _member_loss(self, y: Tensor) -> Tensor:
        """Hinge ``weight · max(threshold + margin − y, 0)``."""
        return self.weight * torch.relu((self.threshold + self.margin) - y)

    def _member_ok(self, y: Tensor) -> Tensor:
        """Above the threshold."""
        return y > self.threshold

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"{self.key} > {self.threshold:g}{self._agreement_text()}"

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
class Range(_Agreement):
    """low ≤ y ≤ high (e.g. the tolerance factor in [0.8, 1.0]); training uses the range shrunk by ``margin``.

    Loss ``weight · (max(low + margin − y, 0) + max(y − (high − margin), 0))``; satisfied if low ≤ y ≤ high.
    """

    key: str
    low: float
    high: float
    margin: float = 0.0
    weight: float = 1.0
    agreement: str = "all"
    spread_tolerance: float | None = None
    kind: ClassVar[str] = "range"

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ConfigError(f"range on {self.key}: margin must be ≥ 0, got {self.margin}")
        if not self.low + 2 * self.margin <= self.high:
            raise ConfigError(f"range on {self.key}: need low + 2·margin ≤ high, got [{self.low}, {self.high}] ± {self.margin}")
        self._check_agreement()

    def _member_loss(self, y: Tensor) -> Tensor:
        """Hinge on both sides of the range shrunk by ``margin``."""
        return self.weight * (torch.relu(self.low + self.margin - y) + torch.relu(y - (self.high - self.margin)))

    def _member_ok(self, y: Tensor) -> Tensor:
        """Inside [low, high]."""
        return (y >= self.low) & (y <= self.high)

    def describe(self) -> str:
        """Human-readable criterion."""
        return f"{self.low:g} ≤ {self.key} ≤ {self.high:g}{self._agreement_text()}"

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


class _OpenEnded(_Agreement):
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
    agreement: str = "all"
    spread_tolerance: float | None = None
    kind: ClassVar[str] = "maximize"

    def __post_init__(self) -> None:
        _check_open_ended(self)
        self._check_agreement()

    def _member_loss(self, y: Tensor) -> Tensor:
        """Linear (or capped linear) loss."""
        if self.cap is None:
            return -self.weight * y
        return self.weight * torch.relu(self.cap - y)

    def _member_ok(self, y: Tensor) -> Tensor:
        """Above the threshold (finite when there is none)."""
        return torch.isfinite(y) if self.threshold is None else y > self.threshold

    def describe(self) -> str:
        """Human-readable criterion."""
        text = f"maximize {self.key}" if self.threshold is None else f"maximize {self.key} (> {self.threshold:g})"
        return text + self._agreement_text()


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
    agreement: str = "all"
    spread_tolerance: float | None = None
    kind: ClassVar[str] = "minimize"

    def __post_init__(self) -> None:
        _check_open_ended(self)
        self._check_agreement()

    def _member_loss(self, y: Tensor) -> Tensor:
        """Linear (or capped linear) loss."""
        if self.cap is None:
            return self.weight * y
        return self.weight * torch.relu(y - self.cap)

    def _member_ok(self, y: Tensor) -> Tensor:
        """Below the threshold (finite when there is none)."""
        return torch.isfinite(y) if self.threshold is None else y < self.threshold

    def describe(self) -> str:
        """Human-readable criterion."""
        text = f"minimize {self.key}" if self.threshold is None else f"minimize {self.key} (< {self.threshold:g})"
        return text + self._agreement_text()


Objective = Window | Range | Below | Above | Maximize | Minimize

#: ``kind`` → class of every objective term (the ``kind`` values of a config file).
OBJECTIVE_KINDS: dict[str, type[Objective]] = {
    cls.kind: cls for cls in (Window, Range, Below, Above, Maximize, Minimize)  # type: ignore[misc]
}


_AGREEMENT_DEFAULTS: dict[str, Any] = {"agreement": "all", "spread_tolerance": None}


def objective_to_dict(objective: Objective) -> dict[str, Any]:
    """Config-file form (also run.json's): ``kind``, ``property`` and the term's fields.

    A :class:`Range`'s bounds are one ``range: [low, high]`` entry; ``agreement`` and ``spread_tolerance`` are
    written only when they differ from their defaults (``all``, none). :func:`smoacs.configfile.objective_from_dict`
    reads it back.
    """
    fields = asdict(objective)
    for name, default in _AGREEMENT_DEFAULTS.items():  # omitted at their defaults: files of earlier versions stay equal
        if fields[name] == default:
            del fields[name]
    data: dict[str, Any] = {"kind": objective.kind, "property": fields.pop("key")}
    if isinstance(objective, Range):
        data["range"] = [fields.pop("low"), fields.pop("high")]
    data.update(fields)
    return data


def total_loss(objectives: list[Objective], values: dict[str, Tensor]) -> Tensor:
    """``[n_crystals]`` sum of every term's loss."""
    return torch.stack([objective.loss(values) for objective in objectives]).sum(0)
