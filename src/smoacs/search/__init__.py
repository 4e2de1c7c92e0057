"""Search methods over a design space, by name (see :mod:`smoacs.search.base` for the protocol).

To add a method: write ``smoacs/search/<name>.py`` with a ``search(space, predictors, objectives, settings, seed,
callbacks, geometry) -> SearchResult`` function and add one line to :data:`METHODS` (and its default budget to
:data:`DEFAULT_BUDGETS`). ``gradient`` takes the run's :class:`~smoacs.optimize.loop.OptimizerSettings`; the
baselines take :class:`~smoacs.search.proposals.BaselineSettings` (:func:`method_settings`). A method that decides
the candidate list itself (``enumerate``) adds a function to :data:`CANDIDATE_PLANS`.

**Budget**: predictor evaluations per candidate — one batched pass of the predictors over a candidate, whether a
gradient step (forward and backward, ≈ 2–3× a forward pass), a scored proposal or trial, or a lattice-scan point.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

from smoacs.design.space import SpaceSettings
from smoacs.errors import ConfigError
from smoacs.optimize.loop import OptimizerSettings
from smoacs.search import enumerate as enumeration
from smoacs.search import ga, gradient, random, tpe
from smoacs.search.base import SearchMethod, SearchResult, SearchSettings
from smoacs.search.proposals import BaselineSettings
from smoacs.templates.base import Template

#: Method name → its search function.
METHODS: dict[str, SearchMethod] = {
    "gradient": gradient.search,
    "random": random.search,
    "tpe": tpe.search,
    "ga": ga.search,
    "enumerate": enumeration.search,
}
#: Budget (predictor evaluations per candidate) of each method when ``search.budget`` is not set; ``gradient``'s
#: (and that of a method not listed here) is ``optimizer.steps``.
DEFAULT_BUDGETS: dict[str, int] = {"random": 200, "tpe": 200, "ga": 200, "enumerate": 40}
#: Methods that choose their own candidates: (templates, space settings, anions) → the run's templates.
CANDIDATE_PLANS: dict[str, Callable[[Sequence[Template], SpaceSettings, str], list[Template]]] = {
    "enumerate": enumeration.candidate_templates,
}
#: Methods that need an optional library: method → (importable module, pip requirement).
REQUIRES: dict[str, tuple[str, str]] = {"tpe": ("optuna", "optuna"), "ga": ("pymoo", "pymoo")}
ANIONS = ("auto", "single", "mixed")
BUDGET_UNIT = "predictor evaluations per candidate"


def search_method(name: str) -> SearchMethod:
    """The search function called ``name``; ConfigError listing the methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown search method {name!r}; available: {', '.join(sorted(METHODS))}") from None


def check_settings(search: SearchSettings, optimizer: OptimizerSettings, space: SpaceSettings | None = None) -> None:
    """ConfigError for an unknown method, a budget < 1, a gradient budget other than its steps, a bad ``anions``, a
    baseline with sublattice limits (their proposals do not honour ``max_species`` and fraction windows yet)."""
    search_method(search.method)
    _check_requirement(search.method)
    if space is not None and getattr(space, "sublattices", None) and search.method in DEFAULT_BUDGETS:
        raise ConfigError(
            f"search method {search.method} does not support sublattice limits (space.sublattices) yet; use gradient"
        )
    if search.budget is not None and search.budget < 1:
        raise ConfigError(f"search.budget must be ≥ 1 ({BUDGET_UNIT}), got {search.budget}")
    if search.anions not in ANIONS:
        raise ConfigError(f"search.anions must be one of {', '.join(ANIONS)}, got {search.anions!r}")
    if search.method == "gradient":
        if search.budget is not None and search.budget != optimizer.steps:
            raise ConfigError(
                f"search.budget ({search.budget}) must equal optimizer.steps ({optimizer.steps}) for the gradient "
                "method (one evaluation per step); set one of them"
            )
        if search.anions != "auto":
            raise ConfigError("search.anions applies to the baselines; the gradient method chooses every site (auto)")


def _check_requirement(method: str) -> None:
    """ConfigError naming the pip extra when ``method``'s library is not installed."""
    if method not in REQUIRES:
        return
    module, requirement = REQUIRES[method]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"search method {method} needs {requirement}, which is not installed: pip install 'smoacs[baselines]'"
        )


def budget(search: SearchSettings, optimizer: OptimizerSettings) -> int:
    """The run's budget: ``search.budget``, else the method's default."""
    if search.budget is not None:
        return search.budget
    return DEFAULT_BUDGETS.get(search.method, optimizer.steps)  # gradient (and methods without one): its steps


def anions(search: SearchSettings) -> str:
    """``single`` or ``mixed`` (``auto``: single for ``enumerate``, mixed otherwise)."""
    if search.anions != "auto":
        return search.anions
    return "single" if search.method == "enumerate" else "mixed"


def method_settings(search: SearchSettings, optimizer: OptimizerSettings) -> Any:  # noqa: ANN401
    """What the method takes: ``optimizer`` itself for ``gradient``, :class:`BaselineSettings` otherwise."""
    if search.method == "gradient":
        return optimizer
    return BaselineSettings(budget(search, optimizer), anions(search), optimizer)


def plan_candidates(search: SearchSettings, space: SpaceSettings, templates: list[Template]) -> list[Template]:
    """The run's templates: the method's own plan where it has one (``enumerate``), else ``templates``."""
    plan = CANDIDATE_PLANS.get(search.method)
    return templates if plan is None else plan(templates, space, anions(search))


def describe(search: SearchSettings, optimizer: OptimizerSettings) -> dict[str, Any]:
    """run.json's ``search`` entry: the method, its effective budget (and unit) and anion mode."""
    record: dict[str, Any] = {"method": search.method, "budget": budget(search, optimizer), "budget_unit": BUDGET_UNIT}
    if search.method != "gradient":
        record["anions"] = anions(search)
    return record


__all__ = [
    "BUDGET_UNIT", "CANDIDATE_PLANS", "DEFAULT_BUDGETS", "METHODS", "BaselineSettings", "SearchMethod", "SearchResult",
    "SearchSettings", "budget", "check_settings", "describe", "method_settings", "plan_candidates", "search_method",
]  # fmt: skip
