"""What the baselines share: genes in the unit cube, decoded into a :class:`DesignSpace`'s own choices and bounds,
scored in batches through the predictors and objectives, with the per-candidate budget and the best-so-far record.

**Genes.** A proposal for every crystal of a space is a ``[B, D]`` array in [0, 1), ``D = 7 + 4·n_max`` (``n_max``
the largest site count): column 0 picks the oxidation pattern among the crystal's admissible ones, columns 1–3 the
lattice lengths within ``[length_low, length_high]``, 4–6 the free angles within their bounds (frozen angles keep
the template's, as do free angles whose triple makes no cell of volume ≥ ½·abc), ``7 + i`` the element of site i among those the space's mask allows at i under the chosen pattern,
and ``7 + n_max + 3i + axis`` the displacement of site i within ± its coordinate bound (unbounded sites: ± ½). A
gene of ``u`` picks entry ``⌊u·n⌋`` of the ``n`` admissible choices (in atomic-number order), so every gene array
decodes to a composition the gradient engine could output; mutation and crossover of genes stay within the masks.
With ``anions="single"`` the anion sites of one oxidation state in a crystal follow the first such site's gene.

**Scoring** sets the space to the proposals (:meth:`DesignSpace.set_composition`, :meth:`DesignSpace.set_geometry`),
discretises it, rebuilds the predictors' graphs and takes their ``final`` (one-hot) predictions, adds the derived
terms (exact minimum distance, the discrete tolerance factor) and returns the objectives' hinge loss (the loss the
gradient engine minimises; 0 = every training criterion met). One call is one predictor evaluation per candidate.

**Budget.** ``budget`` rounds of (propose one gene row per crystal → score the batch → tell the sampler); each crystal
keeps its best-scoring proposal (lowest loss, first one on ties), which is written into the space at the end and is
what the run evaluates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from smoacs.crystal.lattice import lattice_from_parameters
from smoacs.design.provenance import Provenance
from smoacs.design.space import DesignSpace
from smoacs.objectives.derived import DerivedInputs, derived_values
from smoacs.objectives.terms import Objective, total_loss
from smoacs.optimize.loop import OptimizerSettings, StepRecord
from smoacs.predictors.base import Predictor
from smoacs.search.base import SearchResult

#: Gene columns before the per-site ones: pattern, three lengths, three angles.
HEAD = 7
#: Loss given to samplers for a proposal whose loss is not finite (they need a number).
NON_FINITE_LOSS = 1e9


@dataclass(frozen=True)
class BaselineSettings:
    """What a baseline search takes (built by :func:`smoacs.search.method_settings` from the run's config).

    Attributes:
        budget: predictor evaluations per candidate (rounds of proposals; ``enumerate``: scan points + steps).
        anions: ``single`` or ``mixed`` (see the module docstring).
        optimizer: the run's optimiser settings (``enumerate`` relaxes the lattice with them; the others read
            ``min_distance_cutoff``, Å, of the soft minimum distance of the loss).
    """

    budget: int
    anions: str = "mixed"
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)


@dataclass
class Proposal:
    """A decoded proposal per crystal: the arguments of ``set_composition`` and ``set_geometry``.

    Attributes:
        patterns: ``[B]`` pattern index; species: ``[N]`` element index (atomic number − 1).
        lattice: ``[B, 3, 3]`` rows, Å; frac_coords: ``[N, 3]`` fractional coordinates (unwrapped).
    """

    patterns: Tensor
    species: Tensor
    lattice: Tensor
    frac_coords: Tensor

    def apply(self, space: DesignSpace) -> None:
        """Put ``space`` into this state."""
        space.set_composition(self.patterns, self.species)
        space.set_geometry(self.lattice, self.frac_coords)


def n_genes(space: DesignSpace) -> int:
    """Gene columns D of ``space``."""
    return HEAD + 4 * int(space.n_atoms.max())


def site_position(space: DesignSpace) -> Tensor:
    """``[N]`` index of every site within its crystal."""
    offsets = space.n_atoms.cumsum(0) - space.n_atoms
    return torch.arange(len(space.crystal_idx), device=space.n_atoms.device) - offsets[space.crystal_idx]


def pick(mask: Tensor, genes: Tensor) -> Tensor:
    """``[R]`` column of the ``⌊u·n⌋``-th True entry of each row of ``mask [R, C]`` (``n`` True entries, gene ``u``)."""
    counts = mask.sum(-1)
    index = torch.minimum((genes * counts).long(), (counts - 1).clamp_min(0))
    cumulative = mask.long().cumsum(-1)
    return ((cumulative == (index + 1)[:, None]) & mask).int().argmax(-1)


def anion_leaders(space: DesignSpace, site_pattern: Tensor) -> Tensor:
    """``[N]`` for every anion site the first site of its crystal with the same (negative) oxidation state under
    the chosen pattern; every other site is its own leader."""
    rows = torch.arange(len(site_pattern), device=site_pattern.device)
    state = space.ox_states[rows, site_pattern].cpu().numpy()
    crystal = space.crystal_idx.cpu().numpy()
    key = crystal * 1000 + (state + 500)  # oxidation states lie within ±9
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    leader = np.where(state < 0, first[inverse], np.arange(len(state)))
    return torch.as_tensor(leader, device=site_pattern.device)


def decode(space: DesignSpace, genes: Tensor, anions: str = "mixed") -> Proposal:
    """The proposal that ``genes [B, D]`` (values in [0, 1)) stand for in ``space`` (see the module docstring)."""
    genes = genes.to(space.n_atoms.device, torch.float64).clamp(0.0, 1.0 - 1e-9)
    choices = space.choices()
    patterns = pick(choices.valid_patterns, genes[:, 0])
    position = site_position(space)
    crystal = space.crystal_idx
    site_pattern = patterns[crystal]
    rows = torch.arange(len(crystal), device=crystal.device)
    site_genes = genes[crystal, HEAD + position]
    if anions == "single":
        site_genes = site_genes[anion_leaders(space, site_pattern)]
    species = pick(choices.allowed_elements[rows, site_pattern], site_genes)
    low, high = space.length_low.double(), space.length_high.double()
    lengths = low + (high - low) * genes[:, 1:4]
    a_low, a_high = space.angle_low.double(), space.angle_high.double()
    free = a_low + (a_high - a_low) * genes[:, 4:7]
    free_ok = space.free_angles[:, None] & valid_cell(free)[:, None]  # an impossible angle triple: template angles
    angles = torch.where(free_ok, free, space.angles0.double())
    n_max = int(space.n_atoms.max())
    axes = torch.arange(3, device=crystal.device)
    coord_genes = genes[crystal[:, None], HEAD + n_max + 3 * position[:, None] + axes]
    bound = space.coord_bound.double()[:, None]
    finite = torch.isfinite(bound)
    displacement = torch.where(finite, torch.where(finite, bound, 1.0) * (2 * coord_genes - 1), coord_genes - 0.5)
    frac = space.frac0.double() + displacement
    return Proposal(patterns, species, lattice_from_parameters(lengths, angles), frac)


def valid_cell(angles: Tensor, min_factor: float = 0.25) -> Tensor:
    """``[B]`` whether the angle triples (degrees) make a cell of volume ≥ √min_factor·abc (squared volume factor
    1 − cos²α − cos²β − cos²γ + 2 cos α cos β cos γ ≥ ``min_factor``; excludes impossible and near-flat cells)."""
    c = torch.cos(torch.deg2rad(angles))
    factor = 1 - (c**2).sum(-1) + 2 * c.prod(-1)
    return factor >= min_factor


@dataclass
class Scores:
    """Scored proposals: ``loss [B]`` (non-finite → inf) and ``values`` property → ``[B]``."""

    loss: Tensor
    values: dict[str, Tensor]


class Scorer:
    """Scores the current state of a space (one predictor evaluation per candidate), timing the predictors."""

    def __init__(self, predictors: Sequence[Predictor], objectives: Sequence[Objective], cutoff: float) -> None:
        self.predictors = list(predictors)
        self.objectives = list(objectives)
        self.cutoff = cutoff
        self.predictor_s = 0.0
        self.n_evaluations = 0

    @torch.no_grad()
    def __call__(self, space: DesignSpace) -> Scores:
        """The hinge loss and values of ``space``'s discretised state."""
        design = space.discretize()
        start = time.perf_counter()
        values = {}
        for predictor in self.predictors:
            predictor.rebuild(design.crystals)
            values[predictor.info.property] = predictor.final(design.crystals)
        self.predictor_s += time.perf_counter() - start
        self.n_evaluations += space.n_crystals
        inputs = DerivedInputs(design.crystals, design.site_radius, space.site_roles, None, self.cutoff)
        values.update(derived_values(inputs))
        loss = total_loss(self.objectives, values).double()
        loss = torch.where(torch.isfinite(loss), loss, torch.full_like(loss, float("inf")))
        return Scores(loss, values)


class BestSoFar:
    """Each crystal's best proposal so far (genes, loss, values) and the per-round history of the best."""

    def __init__(self, n_crystals: int, n_columns: int) -> None:
        self.genes = torch.zeros(n_crystals, n_columns, dtype=torch.float64)
        self.loss = torch.full((n_crystals,), float("inf"), dtype=torch.float64)
        self.values: dict[str, Tensor] = {}
        self.history: dict[str, list[np.ndarray]] = {}

    def update(self, genes: Tensor, scores: Scores) -> Tensor:
        """Keep the proposals that beat the best (strictly); returns ``[B]`` which did."""
        better = scores.loss.cpu() < self.loss
        self.genes[better] = genes.cpu().double()[better]
        self.loss = torch.where(better, scores.loss.cpu(), self.loss)
        for key, value in scores.values.items():
            value = value.detach().double().cpu()
            self.values[key] = torch.where(better, value, self.values.get(key, value))
        for key, value in {**self.values, "loss": self.loss}.items():
            self.history.setdefault(key, []).append(value.float().numpy())
        return better

    def record(self, step: int) -> StepRecord:
        """The best so far as a :class:`StepRecord` (for the progress display and callbacks)."""
        finite = torch.isfinite(self.loss)
        loss = torch.where(finite, self.loss, torch.full_like(self.loss, float("nan")))
        return StepRecord(step, 0.0, loss, dict(self.values), self.loss == 0, finite)


Propose = Callable[[int], Tensor]
Tell = Callable[[Tensor, Tensor], None]


def run_rounds(
    space: DesignSpace,
    scorer: Scorer,
    settings: BaselineSettings,
    propose: Propose,
    tell: Tell,
    callbacks: Sequence[Callable[[StepRecord], None]] = (),
) -> SearchResult:
    """``settings.budget`` rounds of ``propose(round) → [B, D] genes`` → score → ``tell(genes, loss)``; the space
    ends in each crystal's best proposal. ``tell`` gets finite losses (non-finite ones as :data:`NON_FINITE_LOSS`)."""
    start = time.perf_counter()
    best = BestSoFar(space.n_crystals, n_genes(space))
    sampler_s = 0.0
    for step in range(settings.budget):
        tick = time.perf_counter()
        genes = propose(step)
        sampler_s += time.perf_counter() - tick
        decode(space, genes, settings.anions).apply(space)
        scores = scorer(space)
        best.update(genes, scores)
        tick = time.perf_counter()
        tell(genes, torch.nan_to_num(scores.loss, posinf=NON_FINITE_LOSS).cpu())
        sampler_s += time.perf_counter() - tick
        record = best.record(step)
        for callback in callbacks:
            callback(record)
    decode(space, best.genes, settings.anions).apply(space)
    return finish(space, best, scorer, {"search_s": time.perf_counter() - start, "sampler_s": sampler_s})


def finish(space: DesignSpace, best: BestSoFar, scorer: Scorer, timings: dict[str, float]) -> SearchResult:
    """The :class:`SearchResult` of a baseline: best-so-far histories, candidates without a finite loss quarantined."""
    n = space.n_crystals
    quarantine = {int(c): "no proposal with a finite loss" for c in torch.nonzero(~torch.isfinite(best.loss)).flatten()}
    history = {key: np.stack(rows) for key, rows in best.history.items()}
    provenance = Provenance(history, quarantine, np.arange(n), np.full(n, -1))
    figures: dict[str, Any] = {
        **timings,
        "predictor_s": scorer.predictor_s,
        "n_evaluations": scorer.n_evaluations,
        "evaluations_per_candidate": scorer.n_evaluations / n,
        "n_solved": int((best.loss == 0).sum()),
    }
    return SearchResult(provenance, figures)
