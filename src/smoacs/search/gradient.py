"""``gradient``: the SMOACS optimiser (Adam through the predictors, schedules, copy-and-mutate) as a search method."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from smoacs.design.space import DesignSpace
from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import DesignOptimizer, GeometryDriver, OptimizerSettings, StepRecord
from smoacs.predictors.base import Predictor
from smoacs.search.base import SearchResult


def search(
    space: DesignSpace,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: OptimizerSettings,
    seed: int,
    callbacks: Sequence[Callable[[StepRecord], None]] = (),
    geometry: GeometryDriver | None = None,
    frozen: Tensor | None = None,
) -> SearchResult:
    """Optimise ``space`` in place with :class:`~smoacs.optimize.loop.DesignOptimizer`; ``callbacks`` get each step.

    ``frozen`` (``[B]`` bool, optional): crystals left out of every step and of copy-and-mutate (screened starts,
    :mod:`smoacs.search.screen`); they keep their state.
    """
    optimizer = DesignOptimizer(space, predictors, objectives, settings, seed=seed, geometry=geometry)
    if frozen is not None:
        optimizer.freeze(frozen)
    result = optimizer.run(callbacks)
    timings = {
        "optimize_s": result.wall_time_s,
        "predictor_s": result.predictor_time_s,
        "rebuild_s": result.rebuild_time_s,
        "n_mutated": result.n_mutated,
    }
    if geometry is not None:
        timings["geometry_s"] = result.geometry_time_s
    return SearchResult(result, timings)
