"""``tpe``: Optuna's TPE sampler over the design space, asked and told in batches.

Every candidate (crystal of the space) has its own Optuna study over its template's space: the oxidation pattern
(categorical over the admissible patterns), each site's element under that pattern (a conditional categorical over
the elements the space's mask allows there; with ``anions="single"`` one per anion group), the lattice lengths, free
angles and displacements (floats in [0, 1], i.e. linear within the space's bounds). A round asks one trial of every
study, decodes the batch through :func:`smoacs.search.proposals.decode` (so the categorical index ``j`` of ``n``
choices is the gene ``(j + ½)/n``), scores it in one batched pass of the predictors and tells every study its
trial's loss. ``budget`` rounds = ``budget`` trials per candidate; each candidate keeps its best trial.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from smoacs.design.space import DesignSpace
from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import GeometryDriver, StepRecord
from smoacs.predictors.base import Predictor
from smoacs.search.base import SearchResult
from smoacs.search.proposals import HEAD, BaselineSettings, Scorer, anion_leaders, run_rounds


@dataclass(frozen=True)
class CrystalChoices:
    """What one crystal's study suggests: its admissible patterns, and per pattern the (site position, number of
    allowed elements) of each independently chosen site; site count, free angles."""

    patterns: tuple[int, ...]
    sites: dict[int, tuple[tuple[int, int], ...]]
    n_sites: int
    free_angles: bool


def crystal_choices(space: DesignSpace, anions: str) -> list[CrystalChoices]:
    """The per-crystal choices of ``space`` (read from its masks)."""
    choices = space.choices()
    counts = choices.allowed_elements.sum(-1).cpu().numpy()  # [N, K]
    valid = choices.valid_patterns.cpu().numpy()
    crystal = space.crystal_idx.cpu().numpy()
    starts = (space.n_atoms.cumsum(0) - space.n_atoms).cpu().numpy()
    independent = np.ones((len(crystal), space.n_combos), dtype=bool)
    if anions == "single":
        for k in range(space.n_combos):
            leaders = anion_leaders(space, torch.full((len(crystal),), k, device=space.n_atoms.device)).cpu().numpy()
            independent[:, k] = leaders == np.arange(len(crystal))
    out = []
    for c, (start, n) in enumerate(zip(starts.tolist(), space.n_atoms.tolist(), strict=True)):
        patterns = tuple(int(k) for k in np.nonzero(valid[c])[0])
        sites = {
            k: tuple((i, int(counts[start + i, k])) for i in range(n) if independent[start + i, k]) for k in patterns
        }
        out.append(CrystalChoices(patterns, sites, n, bool(space.free_angles[c])))
    return out


def suggest(trial, choices: CrystalChoices, n_max: int) -> np.ndarray:  # noqa: ANN001 - optuna.Trial
    """One crystal's gene row from an Optuna trial."""
    genes = np.full(HEAD + 4 * n_max, 0.5)
    j = trial.suggest_categorical("pattern", list(range(len(choices.patterns))))
    k = choices.patterns[j]
    genes[0] = (j + 0.5) / len(choices.patterns)
    for site, n_allowed in choices.sites[k]:
        genes[HEAD + site] = (trial.suggest_categorical(f"site{site}|k{k}", list(range(n_allowed))) + 0.5) / n_allowed
    for axis in range(3):
        genes[1 + axis] = trial.suggest_float(f"length{axis}", 0.0, 1.0)
        if choices.free_angles:
            genes[4 + axis] = trial.suggest_float(f"angle{axis}", 0.0, 1.0)
    for site in range(choices.n_sites):
        for axis in range(3):
            genes[HEAD + n_max + 3 * site + axis] = trial.suggest_float(f"coord{site}{'abc'[axis]}", 0.0, 1.0)
    return genes


def search(
    space: DesignSpace,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: BaselineSettings,
    seed: int,
    callbacks: Sequence[Callable[[StepRecord], None]] = (),
    geometry: GeometryDriver | None = None,  # noqa: ARG001 - proposals carry their own geometry
) -> SearchResult:
    """``settings.budget`` rounds of one TPE trial per candidate (one study each, seeded from ``seed``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    per_crystal = crystal_choices(space, settings.anions)
    n_max = int(space.n_atoms.max())
    studies = [
        optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed * 100_003 + c)) for c in range(space.n_crystals)
    ]
    trials: list = []
    scorer = Scorer(predictors, objectives, settings.optimizer.min_distance_cutoff)

    def propose(step: int) -> torch.Tensor:  # noqa: ARG001
        trials[:] = [study.ask() for study in studies]
        rows = [suggest(trial, choices, n_max) for trial, choices in zip(trials, per_crystal, strict=True)]
        return torch.as_tensor(np.stack(rows))

    def tell(genes: torch.Tensor, loss: torch.Tensor) -> None:  # noqa: ARG001
        for study, trial, value in zip(studies, trials, loss.tolist(), strict=True):
            study.tell(trial, value)

    return run_rounds(space, scorer, settings, propose, tell, callbacks)
