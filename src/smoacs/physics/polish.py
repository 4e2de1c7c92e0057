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

With ``replace_escaped`` (``physics.polish_replace``) step 2 first looks at where each relaxation ended: a candidate
whose relaxed structure fails the verdict's template-geometry check (:func:`left_template`: a site beyond its
template's coordinate bound, or, for a perovskite, a lattice angle outside the verdict's range; an unstable cell that
distorted once perturbed) is given a new start instead: the composition of
a random candidate that stayed inside its bounds and meets every objective there (:func:`escape_donors`), with one
site changed to another element admissible at that site (:func:`mutated_copies`; same oxidation state, still
neutral), on that donor's relaxed geometry; it is then polished like the others, and the next round (or the final
relaxation) judges it.

The final relaxation and verdict (:mod:`smoacs.evaluate.relaxation`) then run on the polished designs, so success
still means "the relaxed structure meets every criterion" — the polish changes which compositions are relaxed, not
how they are judged. Nothing here writes files.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.lattice import BOUND_SLACK, angles_within, lattice_to_parameters, periodic_displacement
from smoacs.design.provenance import Provenance
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
        replace_escaped: give candidates whose relaxed structure left the template's geometry a mutated copy of a
            stable, satisfied candidate's composition (module doc).
        angle_range: the verdict's allowed lattice angles (min, max; degrees) for templates with site roles
            (perovskites), part of the escape test; None: the escape test looks at the coordinates only.
    """

    rounds: int = 1
    steps: int = 30
    relax: RelaxSettings = field(default_factory=RelaxSettings)
    perturb: float = 0.0
    batch_size: int = 256
    lr_composition: float = 0.003
    replace_escaped: bool = False
    angle_range: tuple[float, float] | None = None


@dataclass
class PolishReport:
    """What the polish did to one mini-batch.

    Attributes:
        polished: candidates polished in each round.
        changed: candidates whose discrete composition changed in each round.
        replaced: escaped candidates given a mutated donor composition, in each round that replaced any.
        donors: ``(donor, receiver)`` crystal indices of every replacement, in the order made (``copied_from``).
        relax_s: seconds in the rounds' relaxations; optimize_s: seconds in the composition steps.
    """

    polished: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    replaced: list[int] = field(default_factory=list)
    donors: list[tuple[int, int]] = field(default_factory=list)
    relax_s: float = 0.0
    optimize_s: float = 0.0

    def record_copies(self, provenance: Provenance) -> None:
        """Write the replacements into a search's provenance: each is its receiver's last copy (``copied_from``), on
        the donor's relaxed cell (``template_index``), as a copy-and-mutate of the search records them."""
        for donor, receiver in self.donors:
            provenance.copied_from[receiver] = donor
            provenance.template_index[receiver] = provenance.template_index[donor]

    def timings(self) -> dict[str, float]:
        """Per-batch timing entries for run.json (``polish_relax_s``, ``polish_optimize_s``, counts)."""
        return {
            "polish_relax_s": self.relax_s,
            "polish_optimize_s": self.optimize_s,
            "polished": sum(self.polished),
            "polish_changed": sum(self.changed),
            "polish_replaced": sum(self.replaced),
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
        escaped = usable & left_template(space, relaxed, settings.angle_range)
        space.set_from(relaxed)
        start = time.perf_counter()
        todo = usable & ~satisfied_now(space, predictors, objectives, base)
        combo = design.combo
        if settings.replace_escaped and bool(escaped.any()):
            generator = torch.Generator().manual_seed(seed * 7_919 + round_)
            pairs = escape_donors(space, escaped, usable & ~escaped & ~todo, generator)
            if len(pairs):
                combo, species = mutated_copies(space, pairs, combo, species, generator)
                space.set_from(_with_donor_geometry(space, relaxed, pairs))
                todo[pairs[:, 1]] = True
                report.replaced.append(len(pairs))
                report.donors.extend((int(donor), int(receiver)) for donor, receiver in pairs.tolist())
        space.set_composition(combo, species, margin=MARGIN)
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


@torch.no_grad()
def beyond_bounds(space: DesignSpace, crystals: CrystalBatch) -> Tensor:
    """``[B]`` bool: some site of the crystal lies beyond its template's coordinate bound (periodic displacement,
    fractional units; the design space's own bound, which the verdict's template-geometry check also uses)."""
    displacement = periodic_displacement(crystals.frac_coords.to(space.frac0), space.frac0).abs()
    excess = (displacement.amax(dim=1) - space.coord_bound).clamp(min=0.0)
    hits = torch.zeros(space.n_crystals, dtype=excess.dtype, device=excess.device)
    return hits.index_add_(0, space.crystal_idx, (excess > BOUND_SLACK).to(excess.dtype)) > 0


@torch.no_grad()
def left_template(space: DesignSpace, crystals: CrystalBatch, angle_range: tuple[float, float] | None) -> Tensor:
    """``[B]`` bool: the crystal fails the verdict's template-geometry test: a site beyond its bound
    (:func:`beyond_bounds`) or, for a template with site roles (perovskites) when ``angle_range`` (degrees) is given,
    a lattice angle outside it (:func:`~smoacs.crystal.lattice.angles_within`, as the verdict)."""
    escaped = beyond_bounds(space, crystals)
    if angle_range is None:
        return escaped
    roles = torch.zeros(space.n_crystals, dtype=torch.long, device=escaped.device)
    roles.index_add_(0, space.crystal_idx, (space.site_roles >= 0).to(torch.long))
    _, angles = lattice_to_parameters(crystals.lattice.double())
    return escaped | ((roles > 0) & ~angles_within(angles, angle_range).to(escaped.device))


@torch.no_grad()
def escape_donors(space: DesignSpace, receivers: Tensor, donors: Tensor, generator: torch.Generator) -> Tensor:
    """``[M, 2]`` (donor, receiver) pairs: each receiver paired with a random donor whose sites match its own (same
    template coordinates, bounds and admissible elements), none where no such donor exists."""
    keys = _site_keys(space)
    by_key: dict[bytes, list[int]] = {}
    for crystal in torch.nonzero(donors).flatten().tolist():
        by_key.setdefault(keys[crystal], []).append(crystal)
    pairs = []
    for receiver in torch.nonzero(receivers).flatten().tolist():
        pool = by_key.get(keys[receiver], [])
        if pool:
            pairs.append((pool[int(torch.randint(len(pool), (1,), generator=generator))], receiver))
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)


def _site_keys(space: DesignSpace) -> list[bytes]:
    """One key per crystal: its sites' template coordinates, bounds and element masks (equal keys: interchangeable)."""
    choices = space.choices()
    rows = torch.cat([space.frac0.reshape(len(space.frac0), -1).double(), space.coord_bound[:, None].double(),
                      choices.allowed_elements.reshape(len(space.frac0), -1).double()], dim=1).cpu().numpy()  # fmt: skip
    return [part.tobytes() for part in np.split(rows, space.n_atoms.cumsum(0)[:-1].tolist())]


@torch.no_grad()
def mutated_copies(
    space: DesignSpace, pairs: Tensor, combo: Tensor, species: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Patterns ``[B]`` and species ``[N]`` with every receiver given its donor's pattern and elements, one random
    site changed to another element admissible there under that pattern (same oxidation state: still neutral)."""
    combo, species = combo.clone(), species.clone()
    allowed = space.choices().allowed_elements
    donor_sites, receiver_sites = space.site_rows(pairs[:, 0]), space.site_rows(pairs[:, 1])
    species[receiver_sites] = species[donor_sites]
    combo[pairs[:, 1]] = combo[pairs[:, 0]]
    for receiver in pairs[:, 1].tolist():
        sites = space.site_rows(torch.tensor([receiver]))
        for _ in range(4 * len(sites)):  # a site whose pattern admits another element
            site = int(sites[int(torch.randint(len(sites), (1,), generator=generator))])
            options = torch.nonzero(allowed[site, combo[receiver]]).flatten()
            options = options[options != species[site]]
            if len(options):
                species[site] = options[int(torch.randint(len(options), (1,), generator=generator))]
                break
    return combo, species


def _with_donor_geometry(space: DesignSpace, relaxed: CrystalBatch, pairs: Tensor) -> CrystalBatch:
    """``relaxed`` with each receiver's lattice and coordinates replaced by its donor's (same site count)."""
    lattice, frac = relaxed.lattice.clone(), relaxed.frac_coords.clone()
    lattice[pairs[:, 1]] = relaxed.lattice[pairs[:, 0]]
    frac[space.site_rows(pairs[:, 1])] = relaxed.frac_coords[space.site_rows(pairs[:, 0])]
    return CrystalBatch(lattice, frac, relaxed.species_probs, relaxed.crystal_idx, relaxed.n_atoms)


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


def polish_settings(physics: PhysicsSettings, angle_range: tuple[float, float] | None) -> PolishSettings | None:
    """The polish of a run's ``physics`` section (its relaxation settings, perturbation and batch), or None when
    the physics is off or ``polish_rounds`` is 0; ``angle_range``: the verdict's (``evaluation.angle_range``)."""
    if not physics.enabled or physics.polish_rounds == 0:
        return None
    return PolishSettings(
        rounds=physics.polish_rounds, steps=physics.polish_steps,
        relax=RelaxSettings(fmax=physics.fmax, max_steps=physics.max_steps),
        perturb=physics.perturb, batch_size=physics.batch_size, replace_escaped=physics.polish_replace,
        angle_range=angle_range,
    )  # fmt: skip
