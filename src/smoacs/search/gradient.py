"""``gradient``: the SMOACS optimiser (Adam through the predictors, schedules, copy-and-mutate) as a search method."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from smoacs.design.space import DesignSpace
from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import DesignOptimizer, OptimizerSettings, StepRecord
from smoacs.predictors.base import Predictor
from smoacs.search.base import SearchResult


def search(
    space: DesignSpace,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: OptimizerSettings,
    seed: int,
    callbacks: Sequence[Callable[[StepRecord], None]] = (),
) -> SearchResult:
    """Optimise ``space`` in place with :class:`~smoacs.optimize.loop.DesignOptimizer`; ``callbacks`` get each step."""
    result = DesignOptimizer(space, predictors, objectives, settings, seed=seed).run(callbacks)
    timings = {
        "optimize_s": result.wall_time_s,
        "predictor_s": result.predictor_time_s,
        "rebuild_s": result.rebuild_time_s,
        "n_mutated": result.n_mutated,
    }
    return SearchResult(result, timings)
