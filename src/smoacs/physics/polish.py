"""Composition polish: composition-only gradient steps at the relaxed geometry, then relax again.

After the design loop the final relaxation moves every cell to the potential's equilibrium for its composition, and
there the property values shift (a gap leaves its window, E_f rises). :func:`polish` closes that loop before the
verdict, for ``rounds`` rounds:

1. relax every discrete candidate (batched FIRE, the run's relaxation settings, from a start perturbed by
   ``perturb`` Å as the final relaxation does);
2. set the design's geometry to the relaxed cell (:meth:`~smoacs.design.space.DesignSpace.set_from`, clamped into
   the design space's bounds);
3. candidates whose discrete composition misses an objective at that geometry (evaluation margins, as the verdict
   uses) are *polished*: their composition logits restart from the discrete choice, softened
   (:data:`MARGIN` at temperature :data:`TEMPERATURE_START`), and take ``steps`` Adam steps on the property losses
   with the geometry held fixed (lattice and coordinate rates 0); the others are frozen (their argmax is kept).

The final relaxation and verdict (:mod:`smoacs.evaluate.relaxation`) then run on the polished designs, so success
still means "the relaxed structure meets every criterion" — the polish changes which compositions are relaxed, not
how they are judged. Nothing here writes files.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.design.space import DesignSpace
from smoacs.objectives.terms import Objective
from smoacs.optimize.loop import DesignOptimizer, OptimizerSettings
from smoacs.physics.relax import RelaxSettings, perturb_positions, relax_in_chunks
from smoacs.physics.settings import PhysicsSettings
from smoacs.predictors.base import Predictor
from smoacs.predictors.potential import Potential

#: Logit given to the discrete choice when a polished candidate's composition restarts (others 0): at
#: :data:`TEMPERATURE_START` the chosen element keeps most of the probability (e^{MARGIN/T} against each other one)
#: but the gradient can still move it.
MARGIN = 0.05
#: Softmax temperature of the first and last polish step (linear in between, as the design loop's schedule).
TEMPERATURE_START = 1e-2
TEMPERATURE_END = 1e-4
#: Temperature at which a discrete composition is scored (the soft realisation is one-hot to float precision).
HARD_TEMPERATURE = 1e-6


@dataclass(frozen=True)
class PolishSettings:
    """How many polish rounds, and how each relaxes and steps.

    Attributes:
        rounds: relax → composition steps rounds (0: no polish).
        steps: composition-only Adam steps per round.
        relax: FIRE settings of each round's relaxation (the run's final-relaxation settings).
        perturb: random displacement (Å) of every atom before each round's relaxation (0: none).
        batch_size: structures relaxed together.
        lr_composition: Adam rate of the element / pattern / slot logits during the polish.
    """

    rounds: int = 1
    steps: int = 30
    relax: RelaxSettings = field(default_factory=RelaxSettings)
    perturb: float = 0.0
    batch_size: int = 256
    lr_composition: float = 0.003


@dataclass
class PolishReport:
    """What the polish did to one mini-batch.

    Attributes:
        polished: candidates polished in each round.
        changed: candidates whose discrete composition changed in each round.
        relax_s: seconds in the rounds' relaxations; optimize_s: seconds in the composition steps.
    """

    polished: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    relax_s: float = 0.0
    optimize_s: float = 0.0

    def timings(self) -> dict[str, float]:
        """Per-batch timing entries for run.json (``polish_relax_s``, ``polish_optimize_s``, counts)."""
        return {
            "polish_relax_s": self.relax_s,
            "polish_optimize_s": self.optimize_s,
            "polished": sum(self.polished),
            "polish_changed": sum(self.changed),
        }


def polish(
    space: DesignSpace,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    potential: Potential,
    settings: PolishSettings,
    seed: int,
    optimizer: OptimizerSettings | None = None,
    frozen: Tensor | None = None,
) -> PolishReport:
    """Run ``settings.rounds`` polish rounds on ``space`` in place (module doc); the report of what changed.

    ``optimizer``: the run's optimiser settings (minimum-distance cutoff, rebuild schedule); ``seed`` seeds the
    perturbations and the optimiser of each round. ``frozen`` (``[B]`` bool, optional): crystals the polish
    leaves as they are (neither relaxed into the space nor polished; screened starts).
    """
    report = PolishReport()
    base = optimizer or OptimizerSettings()
    frozen = None if frozen is None or not bool(frozen.any()) else frozen.to(space.n_atoms.device)
    if frozen is not None and bool(frozen.all()):
        return report
    for round_ in range(settings.rounds):
        design = space.discretize()
        species = design.crystals.species_probs.argmax(dim=-1)
        start = time.perf_counter()
        relaxed, usable = _relax_moving(design.crystals, frozen, potential, settings, seed * 1_000_003 + 7_777 * (round_ + 1))
        report.relax_s += time.perf_counter() - start
        space.set_from(relaxed)
        start = time.perf_counter()
        todo = usable & ~satisfied_now(space, predictors, objectives, base)
        space.set_composition(design.combo, species, margin=MARGIN)
        if bool(todo.any()):
            run = DesignOptimizer(space, predictors, objectives, _polish_settings(base, settings), seed=seed + 31 * round_)
            run.freeze(~todo)
            run.run()
        changed = (space.discretize().crystals.species_probs.argmax(dim=-1) != species).to(torch.long)
        per_crystal = torch.zeros(space.n_crystals, dtype=torch.long, device=changed.device)
        per_crystal.index_add_(0, space.crystal_idx, changed)
        report.optimize_s += time.perf_counter() - start
        report.polished.append(int(todo.sum()))
        report.changed.append(int((per_crystal > 0).sum()))
    return report


def _polish_settings(base: OptimizerSettings, settings: PolishSettings) -> OptimizerSettings:
    """Composition-only steps: geometry rates 0, no copy-and-mutate, the polish temperatures."""
    return OptimizerSettings(
        steps=settings.steps, lr_lattice=0.0, lr_coords=0.0, lr_composition=settings.lr_composition,
        lr_floor=base.lr_floor, temperature_start=TEMPERATURE_START, temperature_end=TEMPERATURE_END,
        rebuild_every=base.rebuild_every, copy_mutate_steps=(), min_distance_cutoff=base.min_distance_cutoff,
    )  # fmt: skip


def _relax_moving(
    crystals: CrystalBatch, frozen: Tensor | None, potential: Potential, settings: PolishSettings, seed: int
) -> tuple[CrystalBatch, Tensor]:
    """:func:`_relax` of the crystals not ``frozen``; the frozen ones come back as they are, never usable."""
    if frozen is None:
        return _relax(crystals, potential, settings, seed)
    moving = ~frozen
    atoms = moving[crystals.crystal_idx]
    relaxed, usable_part = _relax(crystals.select(moving), potential, settings, seed)
    lattice, frac = crystals.lattice.clone(), crystals.frac_coords.clone()
    lattice[moving], frac[atoms] = relaxed.lattice.to(lattice), relaxed.frac_coords.to(frac)
    usable = torch.zeros_like(moving)
    usable[moving] = usable_part
    return CrystalBatch(lattice, frac, crystals.species_probs, crystals.crystal_idx, crystals.n_atoms), usable


def _relax(crystals: CrystalBatch, potential: Potential, settings: PolishSettings, seed: int) -> tuple[CrystalBatch, Tensor]:
    """The relaxed batch (chunks of ``batch_size``) and ``[B]`` bool: its relaxation did not fail."""
    start = perturb_positions(crystals, settings.perturb, seed) if settings.perturb > 0 else crystals
    result = relax_in_chunks(start, potential, settings.relax, settings.batch_size)
    relaxed = CrystalBatch(
        result.crystals.lattice, torch.remainder(result.crystals.frac_coords, 1.0), start.species_probs,
        start.crystal_idx, start.n_atoms,
    )  # fmt: skip
    usable = torch.tensor([s != "failed" for s in result.status], dtype=torch.bool, device=start.lattice.device)
    return relaxed, usable


@torch.no_grad()
def satisfied_now(
    space: DesignSpace, predictors: Sequence[Predictor], objectives: Sequence[Objective], settings: OptimizerSettings
) -> Tensor:
    """``[B]`` bool: the discrete composition at the space's current geometry meets every objective (evaluation
    margins), scored on the near one-hot realisation at :data:`HARD_TEMPERATURE`."""
    scorer = DesignOptimizer(space, predictors, objectives, OptimizerSettings(steps=1, min_distance_cutoff=settings.min_distance_cutoff))
    values = scorer.values_at(HARD_TEMPERATURE)
    ok = torch.ones(space.n_crystals, dtype=torch.bool, device=space.n_atoms.device)
    for objective in objectives:
        ok &= objective.satisfied(values).to(ok.device)
    return ok


def polish_settings(physics: PhysicsSettings) -> PolishSettings | None:
    """The polish of a run's ``physics`` section (its relaxation settings, perturbation and batch), or None when
    the physics is off or ``polish_rounds`` is 0."""
    if not physics.enabled or physics.polish_rounds == 0:
        return None
    return PolishSettings(
        rounds=physics.polish_rounds, steps=physics.polish_steps,
        relax=RelaxSettings(fmax=physics.fmax, max_steps=physics.max_steps),
        perturb=physics.perturb, batch_size=physics.batch_size,
    )  # fmt: skip
