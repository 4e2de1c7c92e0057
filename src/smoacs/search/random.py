"""``random``: uniform random search over the design space (genes drawn uniformly, decoded within the masks and
bounds by :mod:`smoacs.search.proposals`); each candidate keeps its best of ``budget`` proposals."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from smoacs.design.space import DesignSpace
from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import GeometryDriver, StepRecord
from smoacs.predictors.base import Predictor
from smoacs.search.base import SearchResult
from smoacs.search.proposals import BaselineSettings, Scorer, n_genes, run_rounds


def search(
    space: DesignSpace,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: BaselineSettings,
    seed: int,
    callbacks: Sequence[Callable[[StepRecord], None]] = (),
    geometry: GeometryDriver | None = None,  # noqa: ARG001 - proposals carry their own geometry
) -> SearchResult:
    """``settings.budget`` rounds of one uniform proposal per candidate, scored in one batch per round."""
    generator = torch.Generator().manual_seed(seed + 7919)
    shape = (space.n_crystals, n_genes(space))
    scorer = Scorer(predictors, objectives, settings.optimizer.min_distance_cutoff)

    def propose(step: int) -> torch.Tensor:  # noqa: ARG001
        return torch.rand(shape, generator=generator, dtype=torch.float64)

    return run_rounds(space, scorer, settings, propose, lambda genes, loss: None, callbacks)
