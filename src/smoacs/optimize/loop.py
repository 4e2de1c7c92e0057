"""The optimisation loop: Adam groups, schedules, neighbour rebuilds, copy-and-mutate, NaN quarantine.

``DesignOptimizer.iterate()`` yields one :class:`StepRecord` per step; ``run()`` consumes it, calls callbacks and
returns an :class:`OptimizationResult`. Nothing here writes files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from smoacs.chem.elements import N_ELEMENTS
from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import NeighborList, build_neighbor_list
from smoacs.design.provenance import Provenance
from smoacs.design.space import DesignSpace, SoftDesign
from smoacs.objectives.derived import DerivedInputs, derived_values
from smoacs.objectives.terms import Objective, total_loss
from smoacs.optimize.adam import ParamGroup, RowwiseAdam
from smoacs.optimize.schedule import cosine_scale, linear_temperature, rebuild_steps
from smoacs.predictors.base import Predictor, predictor_values


@dataclass(frozen=True)
class OptimizerSettings:
    """Optimiser hyper-parameters.

    Attributes:
        steps: number of gradient steps.
        lr_lattice: Adam rate of the (sigmoid-bounded) lattice length/angle parameters.
        lr_coords: Adam rate of the (tanh-bounded) coordinate displacement parameters.
        lr_composition: Adam rate of the element and pattern logits (divided by T inside the softmax).
        lr_floor: cosine decay ends at this fraction of each base rate.
        temperature_start: softmax temperature at step 0.
        temperature_end: softmax temperature at the last step.
        rebuild_every: neighbour lists are rebuilt every this many steps (and right after copy-and-mutate).
        copy_mutate_steps: steps after whose update the worst candidates are replaced by mutated copies of good ones.
        mutation_noise: Gaussian σ added to copied lattice, coordinate and pattern parameters (raw units).
        top_ratio: fraction of unsolved candidates (lowest loss) that may donate, besides the solved ones.
        keep_probability: probability that a candidate chosen for replacement is left as it is.
        min_distance_cutoff: search radius (Å) of the short-range list used for the soft minimum-distance value.
        mutate_composition: what a copy-and-mutate receiver does with the donor's element logits: ``"restart"``
            (re-initialised: the composition search restarts on the donor's geometry, as the original), ``"copy"``
            (the donor's logits plus the same small noise: a near copy of the donor), or ``"auto"`` (``copy`` with
            physics in the loop, where the geometry belongs to the donor's composition; ``restart`` otherwise).
        max_composition_copies: diversity rule of copy-and-mutate when receivers copy the donor's composition
            (``copy``, or ``auto`` with physics): a donor whose discrete composition is already held by this many
            active candidates (counting the copies made in the same round) gives it to no further receiver; a
            receiver left without an eligible donor keeps its own state. 0: no limit (every receiver copies).
            Without composition copying (``restart``) it has no effect.
    """

    steps: int = 200
    lr_lattice: float = 0.03
    lr_coords: float = 0.02
    lr_composition: float = 0.003
    lr_floor: float = 0.05
    temperature_start: float = 1e-2
    temperature_end: float = 1e-4
    rebuild_every: int = 10
    copy_mutate_steps: tuple[int, ...] = (50, 100, 150)
    mutation_noise: float = 0.01
    top_ratio: float = 0.25
    keep_probability: float = 0.1
    min_distance_cutoff: float = 3.0
    mutate_composition: str = "auto"
    max_composition_copies: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {self.steps}")
        if not self.temperature_start > 0 or not self.temperature_end > 0:
            raise ValueError("temperatures must be > 0")
        for name in ("lr_lattice", "lr_coords", "lr_composition"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0")
        if self.mutate_composition not in ("restart", "copy", "auto"):
            raise ValueError(f"mutate_composition must be restart, copy or auto, got {self.mutate_composition!r}")
        if self.max_composition_copies < 0:
            raise ValueError(f"max_composition_copies must be ≥ 0 (0: no limit), got {self.max_composition_copies}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for run.json."""
        return asdict(self)


@dataclass
class StepRecord:
    """What one step produced (values before that step's update).

    Attributes:
        step: step index.
        temperature: softmax temperature used.
        loss: ``[B]`` total loss per crystal (NaN for quarantined crystals).
        values: property name → ``[B]`` values.
        solved: ``[B]`` bool, every training criterion met (loss == 0).
        active: ``[B]`` bool, not quarantined.
    """

    step: int
    temperature: float
    loss: Tensor
    values: dict[str, Tensor]
    solved: Tensor
    active: Tensor


@dataclass
class OptimizationResult(Provenance):
    """Outcome of one mini-batch optimisation: its :class:`Provenance` plus timings.

    Attributes:
        wall_time_s: total time of the loop in seconds.
        predictor_time_s: time inside predictor forward passes and the backward pass.
        rebuild_time_s: time spent rebuilding neighbour lists.
        n_mutated: candidates replaced by copy-and-mutate.
        geometry_time_s: time inside the geometry driver's energy (physics in the loop; 0 without one).
    """

    wall_time_s: float = 0.0
    predictor_time_s: float = 0.0
    rebuild_time_s: float = 0.0
    n_mutated: int = 0
    geometry_time_s: float = 0.0


class _MutationNoise:
    """Copy-and-mutate noise, drawn receiver by receiver in a fixed order so that runs are reproducible."""

    def __init__(self) -> None:
        self.rows: dict[str, list[Tensor]] = {"length_raw": [], "angle_raw": [], "combo_logits": [], "coord_raw": []}
        self.logits: list[Tensor] = []

    def draw(self, generator: torch.Generator, sigma: float, logit_noise: float, n_atoms: int, n_combos: int) -> None:
        """Noise of one receiver: lattice, angles, pattern logits, coordinates; fresh element logits."""
        for name, shape in (("length_raw", (3,)), ("angle_raw", (3,)), ("combo_logits", (n_combos,)),
                            ("coord_raw", (n_atoms, 3))):  # fmt: skip
            self.rows[name].append(sigma * torch.randn(shape, generator=generator))
        self.logits.append(logit_noise * torch.randn((n_atoms, N_ELEMENTS), generator=generator))

    def additive(self) -> dict[str, Tensor]:
        """Field → noise added to the copied rows (per-crystal rows stacked, per-site rows concatenated)."""
        out = {name: torch.stack(rows) for name, rows in self.rows.items() if name != "coord_raw"}
        out["coord_raw"] = torch.cat(self.rows["coord_raw"])
        return out

    def fresh_logits(self) -> Tensor:
        """Re-initialised element logits of the receivers' sites (composition search restarts)."""
        return torch.cat(self.logits)


def _geometry_cut(soft: SoftDesign) -> SoftDesign:
    """The same realisation with the gradient to lattice and coordinates cut (composition keeps its gradient)."""
    c = soft.crystals
    crystals = CrystalBatch(c.lattice.detach(), c.frac_coords.detach(), c.species_probs, c.crystal_idx, c.n_atoms)
    return replace(soft, crystals=crystals)


class GeometryDriver(Protocol):
    """Physics in the loop: an energy whose gradient moves the geometry in place of the property losses.

    With a driver, lattice and coordinate parameters follow ``energy`` (e.g. a universal potential's total energy,
    eV) on every ``every``-th step, while the property losses move only the composition (they are evaluated on the
    geometry with its gradient cut). ``rebuild`` is called with the predictors' neighbour rebuilds.
    """

    every: int

    def energy(self, crystals: CrystalBatch) -> Tensor: ...

    def rebuild(self, crystals: CrystalBatch) -> None: ...


class DesignOptimizer:
    """Optimises a :class:`DesignSpace` against objectives through frozen predictors.

    ``geometry`` (optional) is a :class:`GeometryDriver`: the geometry then follows its energy and only the
    composition follows the objectives (physics in the loop); without it every parameter follows the objectives.
    """

    def __init__(
        self,
        space: DesignSpace,
        predictors: Sequence[Predictor],
        objectives: Sequence[Objective],
        settings: OptimizerSettings | None = None,
        seed: int = 0,
        geometry: GeometryDriver | None = None,
    ) -> None:
        if not objectives:
            raise ValueError("at least one objective is required")
        if geometry is not None and geometry.every < 1:
            raise ValueError(f"geometry driver: every must be ≥ 1, got {geometry.every}")
        self.geometry = geometry
        self.geometry_time = 0.0
        self.space = space
        self.predictors = list(predictors)
        self.objectives = list(objectives)
        self.settings = settings or OptimizerSettings()
        self.generator = torch.Generator().manual_seed(seed + 7919)
        s = self.settings
        groups = [
            ParamGroup("length_raw", space.length_raw, space.row_owner("length_raw"), s.lr_lattice),
            ParamGroup("angle_raw", space.angle_raw, space.row_owner("angle_raw"), s.lr_lattice),
            ParamGroup("coord_raw", space.coord_raw, space.row_owner("coord_raw"), s.lr_coords),
            ParamGroup("element_logits", space.element_logits, space.row_owner("element_logits"), s.lr_composition),
            ParamGroup("combo_logits", space.combo_logits, space.row_owner("combo_logits"), s.lr_composition),
        ]
        groups += [  # sublattice limits: the shared groups' slot logits (none without limits)
            ParamGroup(name, getattr(space, name), space.row_owner(name), s.lr_composition)
            for name in space.composition_parameters()
        ]
        self.adam = RowwiseAdam(groups, space.n_crystals)
        n = space.n_crystals
        self.active = torch.ones(n, dtype=torch.bool, device=space.n_atoms.device)
        self.quarantine: dict[int, str] = {}
        self.template_index = np.arange(n)
        self.copied_from = np.full(n, -1)
        self.predictor_time = 0.0
        self.rebuild_time = 0.0
        self.n_mutated = 0
        self._distance_graph: NeighborList | None = None

    # ---- one step -------------------------------------------------------------------------------------------
    def _rebuild(self, soft: SoftDesign) -> None:
        start = time.perf_counter()
        crystals = soft.crystals.detach().with_cache()  # this rebuild's searches, shared by predictors of one cutoff
        for predictor in self.predictors:
            predictor.rebuild(crystals)
        if self.geometry is not None:
            self.geometry.rebuild(crystals)
        cutoff = self.settings.min_distance_cutoff
        self._distance_graph = crystals.shared(
            ("neighbor_list", cutoff, None),
            lambda: build_neighbor_list(crystals.lattice, crystals.frac_coords, crystals.crystal_idx, crystals.n_atoms, cutoff),
        )
        self.rebuild_time += time.perf_counter() - start

    def values(self, soft: SoftDesign) -> dict[str, Tensor]:
        """Predictions and derived quantities of a soft realisation, keyed by property (an ensemble adds its spread
        and members, :func:`smoacs.predictors.base.predictor_values`).

        The predictors see the step's crystals with a fresh :class:`~smoacs.crystal.cache.FeatureCache`, so those on
        the same graph (ensemble members included) share its edge lengths and bond expansion within this step.
        """
        start = time.perf_counter()
        crystals = soft.crystals.with_cache()
        values = {key: value for p in self.predictors for key, value in predictor_values(p, crystals).items()}
        self.predictor_time += time.perf_counter() - start
        assert self._distance_graph is not None
        inputs = DerivedInputs(
            soft.crystals, soft.site_radius, self.space.site_roles, self._distance_graph, self.settings.min_distance_cutoff
        )
        return {**values, **derived_values(inputs)}

    @torch.no_grad()
    def values_at(self, temperature: float) -> dict[str, Tensor]:
        """Predictions and derived values of the space's realisation at ``temperature`` (graphs rebuilt from its
        current geometry; no gradient, no step). At a very low temperature: the discrete composition's values."""
        soft = self.space.realize(temperature)
        self._rebuild(soft)
        return {key: value.detach() for key, value in self.values(soft).items()}

    def freeze(self, crystals: Tensor) -> None:
        """Leave the crystals where ``crystals`` (``[B]`` bool) is True out of every step (no loss, no update, no
        copy-and-mutate), without recording them as quarantined."""
        self.active &= ~torch.as_tensor(crystals, dtype=torch.bool, device=self.active.device)

    def _geometry_energy(self, soft: SoftDesign) -> Tensor:
        """``[B]`` the driver's energy of the soft crystals; its gradient reaches lattice and coordinates only."""
        assert self.geometry is not None
        start = time.perf_counter()
        crystals = soft.crystals
        energy = self.geometry.energy(
            CrystalBatch(crystals.lattice, crystals.frac_coords, crystals.species_probs.detach(), crystals.crystal_idx, crystals.n_atoms)
        )
        self.geometry_time += time.perf_counter() - start
        return energy

    def _quarantine(self, step: int, loss: Tensor) -> None:
        bad_loss = ~torch.isfinite(loss) & self.active
        bad_grad = torch.zeros_like(bad_loss)
        bad_param = {}
        for group in self.adam.groups:
            if group.param.grad is None:
                continue
            row_bad = ~torch.isfinite(group.param.grad.reshape(len(group.owner), -1)).all(dim=1)
            hits = torch.zeros_like(bad_grad)
            hits[group.owner[row_bad]] = True
            for c in torch.nonzero(hits & self.active & ~bad_grad).flatten().tolist():
                bad_param[c] = group.name
            bad_grad |= hits
        for c in torch.nonzero(bad_loss).flatten().tolist():
            self.quarantine[c] = f"non-finite loss at step {step}"
        for c in torch.nonzero(bad_grad & self.active & ~bad_loss).flatten().tolist():
            self.quarantine[c] = f"non-finite gradient of {bad_param[c]} at step {step}"
        self.active &= ~(bad_loss | bad_grad)

    def iterate(self) -> Iterator[StepRecord]:
        """Run the loop, yielding a record per step."""
        s = self.settings
        mutate_at = set(s.copy_mutate_steps)
        rebuild_at = rebuild_steps(s.steps, s.rebuild_every, tuple(step + 1 for step in mutate_at))
        for step in range(s.steps):
            temperature = linear_temperature(step, s.steps, s.temperature_start, s.temperature_end)
            soft = self.space.realize(temperature)
            if step in rebuild_at or self._distance_graph is None:
                self._rebuild(soft)
            values = self.values(soft if self.geometry is None else _geometry_cut(soft))
            loss = total_loss(self.objectives, values)
            if soft.penalty is not None:  # sublattice fraction windows (design space)
                loss = loss + soft.penalty
            self.adam.zero_grad()
            objective = torch.where(self.active & torch.isfinite(loss), loss, torch.zeros_like(loss)).sum()
            energy = None
            if self.geometry is not None and step % self.geometry.every == 0:
                energy = self._geometry_energy(soft)
                objective = objective + torch.where(self.active & torch.isfinite(energy), energy, 0.0).sum()
            start = time.perf_counter()
            objective.backward()
            self.predictor_time += time.perf_counter() - start
            if energy is not None:  # a non-finite energy quarantines its crystal like a non-finite loss
                loss = torch.where(torch.isfinite(energy.detach()), loss, torch.full_like(loss, float("nan")))
            self._quarantine(step, loss.detach())
            self.adam.step(cosine_scale(step, s.steps, s.lr_floor), self.active)
            detached = {key: value.detach() for key, value in values.items()}
            loss = torch.where(self.active, loss.detach(), torch.full_like(loss.detach(), float("nan")))
            record = StepRecord(step, temperature, loss, detached, (loss == 0) & self.active, self.active.clone())
            if step in mutate_at:
                self._copy_and_mutate(record)
            yield record

    # ---- copy-and-mutate ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _copy_and_mutate(self, record: StepRecord) -> None:
        """Replace poor candidates by noisy copies of solved or best-ranked ones (METHOD §5.2, defects fixed).

        Solved = every training criterion met. Donors = solved ∪ the ``top_ratio`` best unsolved. Each other active
        candidate is, with probability 1 − ``keep_probability``, overwritten by a donor of the same atom count: its
        geometry and pattern logits are copied with noise, its element logits re-initialised (composition search
        restarts on the donor's geometry), and its Adam state reset. Quarantined candidates never take part.
        When receivers copy compositions, ``max_composition_copies`` (if > 0) bars donors whose composition is
        already that common (:meth:`_composition_counts`).
        """
        s = self.settings
        space = self.space
        loss = record.loss
        solved = record.solved
        unsolved = torch.nonzero(self.active & ~solved).flatten()
        if len(unsolved) == 0:
            return
        n_top = max(1, int(s.top_ratio * len(unsolved)))
        ranked = unsolved[torch.argsort(loss[unsolved], stable=True)]
        donors = torch.cat([torch.nonzero(solved).flatten(), ranked[:n_top]])
        receivers = ranked[n_top:]
        if len(receivers) == 0:
            return
        keep = torch.rand(len(receivers), generator=self.generator) < s.keep_probability
        receivers = receivers[~keep.to(receivers.device)]
        n_atoms = space.n_atoms
        held = self._composition_counts()
        keys, counts = held if held is not None else ([], {})
        pairs, noise = [], _MutationNoise()
        for receiver in receivers.tolist():
            candidates = donors[n_atoms[donors] == n_atoms[receiver]]
            if held is not None:
                open_ = [counts[keys[d]] < s.max_composition_copies for d in candidates.tolist()]
                candidates = candidates[torch.tensor(open_, dtype=torch.bool, device=candidates.device)]
            if len(candidates) == 0:
                continue
            pick = int(torch.randint(len(candidates), (1,), generator=self.generator))
            donor = int(candidates[pick])
            if held is not None:
                counts[keys[receiver]] -= 1
                keys[receiver] = keys[donor]
                counts[keys[donor]] += 1
            pairs.append((donor, receiver))
            noise.draw(self.generator, s.mutation_noise, space.settings.logit_noise, int(n_atoms[receiver]), space.n_combos)
            self.template_index[receiver] = self.template_index[donor]
            self.copied_from[receiver] = donor
        if pairs:
            sources, targets = (torch.as_tensor(side, device=n_atoms.device) for side in zip(*pairs, strict=True))
            if self._copies_composition():
                space.copy_crystals(sources, targets, {**noise.additive(), "element_logits": noise.fresh_logits()})
            else:
                fresh = {"element_logits": noise.fresh_logits(), **space.fresh_composition(sources, self.generator)}
                space.copy_crystals(sources, targets, noise.additive(), fresh)
            self.adam.reset(targets)
            self.n_mutated += len(pairs)

    def _composition_counts(self) -> tuple[list[Any], dict[Any, int]] | None:
        """(each crystal's composition key, how many active crystals hold each key) for the diversity rule of
        copy-and-mutate, or None when the rule is off (no limit, or receivers do not copy compositions)."""
        if self.settings.max_composition_copies == 0 or not self._copies_composition():
            return None
        keys: list[Any] = list(self.space.composition_keys())
        counts: dict[Any, int] = {}
        for crystal in torch.nonzero(self.active).flatten().tolist():
            counts[keys[crystal]] = counts.get(keys[crystal], 0) + 1
        return keys, counts

    def _copies_composition(self) -> bool:
        mode = self.settings.mutate_composition
        return mode == "copy" or (mode == "auto" and self.geometry is not None)

    # ---- driver ---------------------------------------------------------------------------------------------------
    def run(self, callbacks: Sequence[Callable[[StepRecord], None]] = ()) -> OptimizationResult:
        """Consume :meth:`iterate`, recording histories and calling ``callbacks`` after every step."""
        start = time.perf_counter()
        history: dict[str, list[np.ndarray]] = {}
        for record in self.iterate():
            for key, value in {**record.values, "loss": record.loss}.items():
                history.setdefault(key, []).append(value.float().cpu().numpy())
            for callback in callbacks:
                callback(record)
        return OptimizationResult(
            history={key: np.stack(rows) for key, rows in history.items()},
            quarantine=dict(self.quarantine),
            template_index=self.template_index.copy(),
            copied_from=self.copied_from.copy(),
            wall_time_s=time.perf_counter() - start,
            predictor_time_s=self.predictor_time,
            rebuild_time_s=self.rebuild_time,
            n_mutated=self.n_mutated,
            geometry_time_s=self.geometry_time,
        )
