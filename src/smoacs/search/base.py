"""The search protocol: what every search method takes and returns.

A search method is a function ``(space, predictors, objectives, settings, seed, callbacks, geometry) -> SearchResult`` that
changes the :class:`~smoacs.design.space.DesignSpace` in place (its final state is what gets evaluated) and reports
where each candidate came from (:class:`~smoacs.design.provenance.Provenance`). Methods are listed by name in
:data:`smoacs.search.METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from smoacs.design.provenance import Provenance
from smoacs.design.space import DesignSpace
from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import GeometryDriver
from smoacs.predictors.base import Predictor


@dataclass(frozen=True)
class SearchSettings:
    """The ``search`` section of a run configuration.

    Attributes:
        method: name of the search method (a key of :data:`smoacs.search.METHODS`); ``gradient`` is the SMOACS
            optimiser, whose hyper-parameters are the ``optimizer`` section.
        budget: predictor evaluations per candidate (one evaluation = one batched pass of the predictors over a
            candidate: a gradient step, a scored proposal or trial, a lattice-scan point). None: the method's default
            (``gradient``: ``optimizer.steps``, which ``budget`` must equal when set; see
            :data:`smoacs.search.DEFAULT_BUDGETS` for the others).
        anions: how the baselines choose anion sites: ``single`` (all anion sites of one oxidation state in a
            crystal share one element), ``mixed`` (each site on its own, as the gradient engine) or ``auto``
            (``enumerate``: single; the others: mixed). ``gradient`` takes only ``auto``.
    """

    method: str = "gradient"
    budget: int | None = None
    anions: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for run.json."""
        return asdict(self)


@dataclass
class SearchResult:
    """What a search of one mini-batch produced.

    Attributes:
        provenance: template, copy-and-mutate donor, quarantine and per-step histories of every candidate.
        timings: per-batch figures for run.json (seconds, counts), e.g. ``optimize_s``, ``predictor_s``.
    """

    provenance: Provenance
    timings: dict[str, float] = field(default_factory=dict)


class SearchMethod(Protocol):
    """A search method (see the module docstring)."""

    def __call__(
        self,
        space: DesignSpace,
        predictors: Sequence[Predictor],
        objectives: Sequence[Objective],
        settings: Any,  # noqa: ANN401 - each method has its own settings dataclass
        seed: int,
        callbacks: Sequence[Callable[[Any], None]] = (),
        geometry: GeometryDriver | None = None,
    ) -> SearchResult: ...
