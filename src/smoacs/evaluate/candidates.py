"""What evaluation stages see and return: discrete candidates, the context of a check, a stage's output.

An evaluation stage is a function ``(candidates: Candidates, context: StageContext) -> StageOutput``. Its columns are
appended to every result row, and its criteria (boolean ``<name>_ok`` columns) join ``success``. Stages run after the
built-in checks (predictions, derived terms, neutrality, perovskite geometry), in the order of
:func:`smoacs.evaluate.stages.configured_stages`, in ``smoacs run`` and ``smoacs evaluate`` alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.objectives.terms import Objective
from smoacs.predictors.base import Predictor


@dataclass
class Candidates:
    """Discrete candidates and what their checks need, from a :class:`DesignSpace` or from a run's files.

    Attributes:
        crystals: float64 one-hot batch (coordinates wrapped).
        site_radius: ``[N]`` float32 Shannon radius (Å) of each chosen element in its pattern state (for the
            tolerance factor).
        pattern: ``[N]`` oxidation state of every site under the chosen pattern.
        frac0: ``[N, 3]`` template coordinates; coord_bound: ``[N]`` allowed displacement; site_roles: ``[N]``.
        ids, template_names, copied_from: per candidate ("" when not copied).
        quarantine: candidate index → reason.
        site_groups: ``[N]`` site group (sublattice) name of every site (None: from ``site_roles``, A/B/X or "").
        limits: the run's sublattice limits (group name → limits); empty: no ``composition_ok`` criterion.
    """

    crystals: CrystalBatch
    site_radius: torch.Tensor
    pattern: np.ndarray
    frac0: np.ndarray
    coord_bound: np.ndarray
    site_roles: np.ndarray
    ids: list[str]
    template_names: list[str]
    copied_from: list[str]
    quarantine: dict[int, str] = field(default_factory=dict)
    site_groups: np.ndarray | None = None
    limits: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    """What an evaluation stage may use besides the candidates.

    Attributes:
        predictors: the run's optimised predictors (graphs already rebuilt on the candidates).
        objectives: the objective terms.
        settings: the run's evaluation settings (``EvaluationSettings``).
        values: key → ``[B]`` float64 values computed so far (predictions and derived terms).
        structures: pymatgen structures of the candidates, in order.
    """

    predictors: Sequence[Predictor]
    objectives: Sequence[Objective]
    settings: Any
    values: dict[str, np.ndarray]
    structures: list[Any]


@dataclass
class StageOutput:
    """What a stage adds: ``columns`` (name → ``[B]`` values, appended to the rows) and ``criteria`` (name ending in
    ``_ok`` → ``[B]`` bool, joined into ``success``)."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    criteria: dict[str, np.ndarray] = field(default_factory=dict)


EvaluationStage = Callable[[Candidates, StageContext], StageOutput]

__all__ = ["Candidates", "EvaluationStage", "StageContext", "StageOutput"]
