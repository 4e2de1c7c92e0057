"""Batched FIRE relaxation of cell and positions, for a whole :class:`CrystalBatch` at once.

The algorithm is ASE's ``FIRE`` optimiser acting through ASE's ``FrechetCellFilter``, vectorised over crystals:
every crystal has its own FIRE state (velocities, time step, mixing α, count of downhill steps) and its own
convergence test; converged or failed crystals freeze while the others go on.

Degrees of freedom per crystal (as in ``FrechetCellFilter``), with ``L₀`` the starting lattice (rows, Å):

* atoms: positions in the *reference* cell, ``r̃ = f · L₀`` (Å); the fractional coordinates are ``f = r̃ · L₀⁻¹``
  whatever the cell does;
* cell: ``c · X`` where ``X = log F`` is the matrix logarithm of the deformation gradient (``L = L₀ · Fᵀ``) and ``c``
  the ``exp_cell_factor`` (default: the crystal's atom count, as ASE).

Generalised forces: atoms ``f̃ = F_cart · F`` (eV/Å); cell ``D / c`` with ``D = L_exp(Xᵀ)[G]``, the Fréchet derivative
of the matrix exponential (computed as the upper-right block of ``exp([[Xᵀ, G], [0, Xᵀ]])``), and
``G = W · F⁻ᵀ`` for the virial ``W = −V (σ + p·I)``. A crystal has converged when every row of ``f̃`` and of ``D / c``
has a norm below ``fmax`` — ASE's measure, so ``fmax`` means the same as in ``FIRE(FrechetCellFilter(atoms)).run``.

FIRE (ASE's variant, no masses): with ``P = f·v`` summed over a crystal's atoms and cell, ``P > 0`` mixes
``v ← (1−α) v + α |v| f/|f|`` and, after more than ``n_min`` such steps, grows ``dt`` (× ``f_inc``, at most
``dt_max``) and shrinks α (× ``f_alpha``); ``P ≤ 0`` zeroes ``v``, halves ``dt`` (× ``f_dec``) and resets α. Then
``v ← v + dt f``, ``Δ = dt v`` capped at ``max_step`` (Å, norm over all the crystal's degrees of freedom).

Not a copy of ASE or torch-sim; written from the algorithm's description and checked against ASE in the tests.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import min_distances
from smoacs.errors import ConfigError
from smoacs.predictors.potential import EV_PER_A3_IN_GPA, Potential

if TYPE_CHECKING:
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

RelaxStatus = Literal["converged", "step_limit", "failed"]
"""Outcome of one crystal's relaxation."""

_RUNNING, _CONVERGED, _STEP_LIMIT, _FAILED = 0, 1, 2, 3
_STATUS_NAMES: dict[int, RelaxStatus] = {_CONVERGED: "converged", _STEP_LIMIT: "step_limit", _FAILED: "failed"}


@dataclass(frozen=True)
class RelaxSettings:
    """Settings of :func:`relax`; the FIRE values default to ASE's.

    Attributes:
        fmax: convergence threshold on atom and cell generalised forces (eV/Å), as ASE measures it.
        max_steps: FIRE steps at most per crystal.
        relax_cell: relax the cell as well as the positions.
        hydrostatic_strain: only isotropic cell deformation (the virial is replaced by its mean diagonal).
        constant_volume: project the volume change out of the cell force (approximately constant volume).
        scalar_pressure: external pressure in GPa (enthalpy ``E + pV`` is minimised; 0 by default).
        exp_cell_factor: scale of the log-deformation degrees of freedom; None uses each crystal's atom count.
        dt_start, dt_max, n_min, f_inc, f_dec, alpha_start, f_alpha: FIRE parameters (ASE's names dt, dtmax, Nmin,
            finc, fdec, astart, fa).
        max_step: largest step per crystal (Å, norm over all its degrees of freedom; ASE's ``maxstep``).
        min_distance: a crystal whose atoms come closer than this (Å) fails.
        max_volume_factor: a crystal whose volume leaves ``[V₀/x, x·V₀]`` fails.
        check_distance_every: steps between minimum-distance checks (also checked at the end).
        rebuild_every: steps between neighbour-graph rebuilds (``Potential.rebuild``); the graph is also rebuilt
            whenever the set of moving crystals changes.
        drop_converged: evaluate only the crystals that still move (saves compute; results are identical).
    """

    fmax: float = 0.05
    max_steps: int = 500
    relax_cell: bool = True
    hydrostatic_strain: bool = False
    constant_volume: bool = False
    scalar_pressure: float = 0.0
    exp_cell_factor: float | None = None
    dt_start: float = 0.1
    dt_max: float = 1.0
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99
    max_step: float = 0.2
    min_distance: float = 0.5
    max_volume_factor: float = 10.0
    check_distance_every: int = 10
    rebuild_every: int = 1
    drop_converged: bool = True

    def __post_init__(self) -> None:
        positive = ("fmax", "dt_start", "dt_max", "f_inc", "f_dec", "alpha_start", "f_alpha", "max_step")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"relax: {name} must be > 0, got {getattr(self, name)}")
        if self.max_steps < 0:
            raise ConfigError(f"relax: max_steps must be ≥ 0, got {self.max_steps}")
        if self.max_volume_factor <= 1:
            raise ConfigError(f"relax: max_volume_factor must be > 1, got {self.max_volume_factor}")
        if self.check_distance_every < 1 or self.rebuild_every < 1:
            raise ConfigError("relax: check_distance_every and rebuild_every must be ≥ 1")
        if self.exp_cell_factor is not None and self.exp_cell_factor <= 0:
            raise ConfigError(f"relax: exp_cell_factor must be > 0, got {self.exp_cell_factor}")


@dataclass
class RelaxResult:
    """Per-crystal outcome of a batched relaxation (crystal order as given).

    Attributes:
        crystals: final geometry (same species and dtype as the input; coordinates not wrapped).
        energy: ``[n_crystals]`` total energy at the final geometry, eV.
        stress: ``[n_crystals, 3, 3]`` final stress, GPa (ASE sign).
        max_force: ``[n_crystals]`` largest Cartesian atom force, eV/Å.
        fmax: ``[n_crystals]`` the convergence measure (largest generalised atom/cell force row), eV/Å.
        steps: ``[n_crystals]`` FIRE steps taken.
        status: per crystal "converged", "step_limit" or "failed".
        reason: per crystal why it failed ("" otherwise).
        volume_change: ``[n_crystals]`` V / V₀ − 1.
        timings: seconds spent in the potential (``potential``), graph rebuilds (``rebuild``) and the rest.
    """

    crystals: CrystalBatch
    energy: Tensor
    stress: Tensor
    max_force: Tensor
    fmax: Tensor
    steps: Tensor
    status: list[RelaxStatus]
    reason: list[str]
    volume_change: Tensor
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def energy_per_atom(self) -> Tensor:
        """``[n_crystals]`` final energy per atom, eV/atom."""
        return self.energy / self.crystals.n_atoms.to(self.energy.dtype)

    @property
    def pressure(self) -> Tensor:
        """``[n_crystals]`` final pressure −tr(σ)/3, GPa."""
        return -torch.diagonal(self.stress, dim1=-2, dim2=-1).sum(-1) / 3.0


@dataclass
class _FireState:
    """Full-batch optimiser state (float64)."""

    ref_lattice: Tensor  # [B, 3, 3] L₀
    ref_inverse: Tensor  # [B, 3, 3] L₀⁻¹
    positions: Tensor  # [N, 3] r̃ = f · L₀
    log_cell: Tensor  # [B, 3, 3] c · X
    cell_factor: Tensor  # [B] c
    velocities: Tensor  # [N, 3]
    cell_velocities: Tensor  # [B, 3, 3]
    dt: Tensor  # [B]
    alpha: Tensor  # [B]
    n_pos: Tensor  # [B] long

    def deformation(self) -> Tensor:
        """``[B, 3, 3]`` deformation gradient F = exp(X)."""
        return torch.linalg.matrix_exp(self.log_cell / self.cell_factor[:, None, None])

    def lattice(self) -> Tensor:
        """``[B, 3, 3]`` current lattice L = L₀ · Fᵀ (rows)."""
        return self.ref_lattice @ self.deformation().transpose(-1, -2)


def _init_state(crystals: CrystalBatch, settings: RelaxSettings) -> _FireState:
    lattice = crystals.lattice.detach().double()
    frac = crystals.frac_coords.detach().double()
    n = crystals.n_crystals
    dev = lattice.device
    factor = crystals.n_atoms.double() if settings.exp_cell_factor is None else torch.full((n,), settings.exp_cell_factor, device=dev)
    return _FireState(
        ref_lattice=lattice,
        ref_inverse=torch.linalg.inv(lattice),
        positions=torch.einsum("ni,nij->nj", frac, lattice[crystals.crystal_idx]),
        log_cell=torch.zeros_like(lattice),
        cell_factor=factor.to(lattice),
        velocities=torch.zeros_like(frac),
        cell_velocities=torch.zeros_like(lattice),
        dt=torch.full((n,), settings.dt_start, dtype=torch.float64, device=dev),
        alpha=torch.full((n,), settings.alpha_start, dtype=torch.float64, device=dev),
        n_pos=torch.zeros(n, dtype=torch.long, device=dev),
    )


def frechet_exp_adjoint(x: Tensor, g: Tensor) -> Tensor:
    """``[B, 3, 3]`` ``D`` with ``D_μν = Σᵢⱼ (∂ exp(X)ᵢⱼ / ∂X_μν) Gᵢⱼ``, i.e. the Fréchet derivative ``L_exp(Xᵀ)[G]``.

    Computed for the whole batch as the upper-right block of ``exp([[Xᵀ, G], [0, Xᵀ]])``.
    """
    b = x.shape[0]
    block = torch.zeros(b, 6, 6, dtype=x.dtype, device=x.device)
    xt = x.transpose(-1, -2)
    block[:, :3, :3] = xt
    block[:, 3:, 3:] = xt
    block[:, :3, 3:] = g
    return torch.linalg.matrix_exp(block)[:, :3, 3:]


def _segment_sum(values: Tensor, index: Tensor, n: int) -> Tensor:
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, index, values)


def _segment_max(values: Tensor, index: Tensor, n: int) -> Tensor:
    out = torch.zeros(n, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, index, values, reduce="amax", include_self=True)


def _generalised_forces(
    state: _FireState, forces: Tensor, stress: Tensor, crystal_idx: Tensor, settings: RelaxSettings
) -> tuple[Tensor, Tensor]:
    """Filter forces: atoms ``F_cart · F`` and cell ``L_exp(Xᵀ)[W F⁻ᵀ] / c`` (both eV/Å, see module docstring)."""
    deform = state.deformation()
    atom = torch.einsum("ni,nij->nj", forces, deform[crystal_idx])
    if not settings.relax_cell:
        return atom, torch.zeros_like(state.log_cell)
    lattice = state.ref_lattice @ deform.transpose(-1, -2)
    volume = torch.linalg.det(lattice).abs()
    eye = torch.eye(3, dtype=stress.dtype, device=stress.device)
    virial = -volume[:, None, None] * (stress + settings.scalar_pressure * eye) / EV_PER_A3_IN_GPA
    if settings.hydrostatic_strain:
        virial = torch.diagonal(virial, dim1=-2, dim2=-1).mean(-1)[:, None, None] * eye
    grad = virial @ torch.linalg.inv(deform.transpose(-1, -2))
    cell = frechet_exp_adjoint(state.log_cell / state.cell_factor[:, None, None], grad)
    if settings.constant_volume:
        cell = cell - torch.diagonal(cell, dim1=-2, dim2=-1).mean(-1)[:, None, None] * eye
    return atom, cell / state.cell_factor[:, None, None]


def _fire_step(
    state: _FireState, atom_f: Tensor, cell_f: Tensor, moving: Tensor, crystal_idx: Tensor, first: bool, s: RelaxSettings
) -> None:
    """One ASE-FIRE step of every ``moving`` crystal (in place); the others keep their state."""
    n = moving.shape[0]
    v, vc = state.velocities, state.cell_velocities
    dt, alpha, n_pos = state.dt, state.alpha, state.n_pos
    if not first:
        power = _segment_sum((atom_f * v).sum(-1), crystal_idx, n) + (cell_f * vc).sum((-2, -1))
        f_norm = torch.sqrt(_segment_sum((atom_f**2).sum(-1), crystal_idx, n) + (cell_f**2).sum((-2, -1)))
        v_norm = torch.sqrt(_segment_sum((v**2).sum(-1), crystal_idx, n) + (vc**2).sum((-2, -1)))
        up = power > 0
        mix = alpha * v_norm / f_norm.clamp_min(1e-300)
        keep = (1.0 - alpha) * up
        v = keep[crystal_idx, None] * v + (mix * up)[crystal_idx, None] * atom_f
        vc = keep[:, None, None] * vc + (mix * up)[:, None, None] * cell_f
        grow = up & (n_pos > s.n_min)
        dt = torch.where(grow, (dt * s.f_inc).clamp_max(s.dt_max), torch.where(up, dt, dt * s.f_dec))
        alpha = torch.where(grow, alpha * s.f_alpha, torch.where(up, alpha, torch.full_like(alpha, s.alpha_start)))
        n_pos = torch.where(up, n_pos + 1, torch.zeros_like(n_pos))
    v = v + dt[crystal_idx, None] * atom_f
    vc = vc + dt[:, None, None] * cell_f
    step, cell_step = dt[crystal_idx, None] * v, dt[:, None, None] * vc
    norm = torch.sqrt(_segment_sum((step**2).sum(-1), crystal_idx, n) + (cell_step**2).sum((-2, -1)))
    scale = torch.where(norm > s.max_step, s.max_step / norm.clamp_min(1e-300), torch.ones_like(norm))
    atom_moving = moving[crystal_idx, None]
    state.positions = torch.where(atom_moving, state.positions + scale[crystal_idx, None] * step, state.positions)
    state.log_cell = torch.where(moving[:, None, None], state.log_cell + scale[:, None, None] * cell_step, state.log_cell)
    state.velocities = torch.where(atom_moving, v, state.velocities)
    state.cell_velocities = torch.where(moving[:, None, None], vc, state.cell_velocities)
    state.dt = torch.where(moving, dt, state.dt)
    state.alpha = torch.where(moving, alpha, state.alpha)
    state.n_pos = torch.where(moving, n_pos, state.n_pos)


def _subset(
    crystals: CrystalBatch, lattice: Tensor, frac: Tensor, chosen: Tensor, index: tuple[Tensor, Tensor, Tensor] | None = None
) -> tuple[CrystalBatch, Tensor]:
    """The crystals where ``chosen`` ([B] bool) holds, at the given geometry; also their atoms' mask.

    ``index`` (atom mask, crystal_idx, n_atoms of an earlier call with the same ``chosen``) is reused when given, so
    a potential that recognises its batch by those tensors keeps its graph.
    """
    if index is None:
        index = _subset_index(crystals, chosen)
    atom_mask, crystal_idx, n_atoms = index
    dtype = crystals.lattice.dtype
    sub = CrystalBatch(
        lattice[chosen].to(dtype), frac[atom_mask].to(dtype), crystals.species_probs[atom_mask], crystal_idx, n_atoms
    )
    return sub, atom_mask


def _subset_index(crystals: CrystalBatch, chosen: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    atom_mask = chosen[crystals.crystal_idx]
    n_atoms = crystals.n_atoms[chosen]
    crystal_idx = torch.repeat_interleave(torch.arange(len(n_atoms), device=n_atoms.device), n_atoms)
    return atom_mask, crystal_idx, n_atoms


class _Evaluator:
    """Calls the potential on (a subset of) the batch, rebuilding its graph on schedule; keeps the latest results."""

    def __init__(self, potential: Potential, crystals: CrystalBatch, settings: RelaxSettings) -> None:
        self.potential, self.crystals, self.settings = potential, crystals, settings
        n, n_atoms = crystals.n_crystals, crystals.frac_coords.shape[0]
        dev = crystals.device
        self.energy = torch.full((n,), math.nan, dtype=torch.float64, device=dev)
        self.forces = torch.zeros(n_atoms, 3, dtype=torch.float64, device=dev)
        self.stress = torch.zeros(n, 3, 3, dtype=torch.float64, device=dev)
        self._graph_of: Tensor | None = None
        self._index: tuple[Tensor, Tensor, Tensor] | None = None
        self.timings = {"potential": 0.0, "rebuild": 0.0}

    def __call__(self, lattice: Tensor, frac: Tensor, chosen: Tensor, step: int) -> None:
        changed = self._graph_of is None or not torch.equal(self._graph_of, chosen)
        if changed:
            self._index = _subset_index(self.crystals, chosen)
            self._graph_of = chosen.clone()
        sub, atom_mask = _subset(self.crystals, lattice, frac, chosen, self._index)
        if changed or step % self.settings.rebuild_every == 0:
            start = time.perf_counter()
            self.potential.rebuild(sub)
            self.timings["rebuild"] += time.perf_counter() - start
        start = time.perf_counter()
        with torch.enable_grad():
            out = self.potential.compute(sub, forces=True, stress=self.settings.relax_cell, create_graph=False)
        self.timings["potential"] += time.perf_counter() - start
        self.energy[chosen] = out.energy.detach().double()
        if out.forces is None:
            raise ValueError("the potential returned no forces")
        self.forces[atom_mask] = out.forces.detach().double()
        if out.stress is not None:
            self.stress[chosen] = out.stress.detach().double()


def _failures(
    energy: Tensor, forces: Tensor, stress: Tensor, volume_ratio: Tensor, crystal_idx: Tensor, s: RelaxSettings
) -> tuple[Tensor, Tensor]:
    """``[B]`` failure code (0 none, 1 non-finite output, 2 volume out of range) and ``[B]`` bool any failure."""
    n = energy.shape[0]
    bad_forces = _segment_max((~torch.isfinite(forces)).any(-1).double(), crystal_idx, n) > 0
    non_finite = ~torch.isfinite(energy) | bad_forces | ~torch.isfinite(stress).all(-1).all(-1)
    volume_bad = (volume_ratio > s.max_volume_factor) | (volume_ratio < 1.0 / s.max_volume_factor) | ~torch.isfinite(volume_ratio)
    code = torch.where(non_finite, 1, torch.where(volume_bad, 2, 0))
    return code, code > 0


def relax(crystals: CrystalBatch, potential: Potential, settings: RelaxSettings | None = None) -> RelaxResult:
    """Relax positions (and cell) of every crystal of the batch with FIRE, all at once.

    Args:
        crystals: the starting structures; the potential is called with batches of their dtype and species.
        potential: energy, forces and stress of a batch (see :class:`~smoacs.predictors.potential.Potential`).
        settings: convergence, FIRE and failure settings (defaults: fmax 0.05 eV/Å, 500 steps).

    Returns:
        The per-crystal :class:`RelaxResult`. Nothing is raised for a crystal that fails: its status is "failed",
        its reason says why, and it keeps the last geometry it reached.
    """
    s = settings or RelaxSettings()
    start = time.perf_counter()
    n = crystals.n_crystals
    idx = crystals.crystal_idx
    state = _init_state(crystals, s)
    frac = torch.einsum("ni,nij->nj", state.positions, state.ref_inverse[idx])  # constant under cell changes only
    v0 = torch.linalg.det(state.ref_lattice).abs()
    dev = crystals.device
    status = torch.zeros(n, dtype=torch.long, device=dev)
    steps = torch.zeros(n, dtype=torch.long, device=dev)
    fmax = torch.full((n,), math.nan, dtype=torch.float64, device=dev)
    everyone = torch.ones(n, dtype=torch.bool, device=dev)
    reasons = [""] * n
    evaluate = _Evaluator(potential, crystals, s)
    evaluate(state.lattice(), frac, everyone, 0)
    for step in range(s.max_steps + 1):
        running = status == _RUNNING
        lattice = state.lattice()
        atom_f, cell_f = _generalised_forces(state, evaluate.forces, evaluate.stress, idx, s)
        row_norms = _segment_max(atom_f.norm(dim=-1), idx, n).maximum(cell_f.norm(dim=-1).amax(-1))
        fmax = torch.where(running, row_norms, fmax)
        ratio = torch.linalg.det(lattice).abs() / v0
        code, failed = _failures(evaluate.energy, evaluate.forces, evaluate.stress, ratio, idx, s)
        if step % s.check_distance_every == 0:
            failed = failed | _too_close(lattice, frac, crystals, running & ~failed, s, code)
        _mark_failed(running & failed, code, ratio, step, reasons)
        status = torch.where(running & failed, _FAILED, status)
        status = torch.where((status == _RUNNING) & (fmax < s.fmax), _CONVERGED, status)
        running = status == _RUNNING
        if step == s.max_steps or not running.any():
            break
        _fire_step(state, atom_f, cell_f, running, idx, step == 0, s)
        steps += running.long()
        frac = torch.einsum("ni,nij->nj", state.positions, state.ref_inverse[idx])
        chosen = running if s.drop_converged else everyone
        evaluate(state.lattice(), frac, chosen, step + 1)
    lattice = state.lattice()
    still = status == _RUNNING
    if still.any():  # the distance check runs on the final geometry too
        code = torch.zeros(n, dtype=torch.long, device=dev)
        close = _too_close(lattice, frac, crystals, still, s, code)
        _mark_failed(still & close, code, torch.ones_like(v0), steps, reasons)
        status = torch.where(still & close, _FAILED, torch.where(still, _STEP_LIMIT, status))
    final, _ = _subset(crystals, lattice, frac, everyone)
    timings = dict(evaluate.timings, total=time.perf_counter() - start)
    log.info("relaxed %d crystals in %.1f s (%d converged)", n, timings["total"], int((status == _CONVERGED).sum()))
    return RelaxResult(
        crystals=final,
        energy=evaluate.energy.clone(),
        stress=evaluate.stress.clone(),
        max_force=_segment_max(evaluate.forces.norm(dim=-1), idx, n),
        fmax=fmax,
        steps=steps,
        status=[_STATUS_NAMES[int(c)] for c in status],
        reason=reasons,
        volume_change=torch.linalg.det(lattice).abs() / v0 - 1.0,
        timings=timings,
    )


def relax_in_chunks(
    crystals: CrystalBatch, potential: Potential, settings: RelaxSettings | None = None, batch_size: int = 256
) -> RelaxResult:
    """:func:`relax` on consecutive chunks of at most ``batch_size`` crystals (bounded memory), results in order.

    A chunk the potential cannot evaluate at all (an exception, e.g. out of memory) keeps its starting geometry and
    reports every one of its crystals as "failed" with the exception as reason (NaN energy, stress and forces);
    the other chunks are unaffected. Tensors come back on the device and dtype of ``crystals``.
    """
    if batch_size < 1:
        raise ConfigError(f"relax: batch_size must be ≥ 1, got {batch_size}")
    parts = [_relax_or_fail(crystals, rows, potential, settings) for rows in _chunk_masks(crystals, batch_size)]
    like = crystals.lattice
    lattice = torch.cat([p.crystals.lattice.to(like) for p in parts])
    frac = torch.cat([p.crystals.frac_coords.to(crystals.frac_coords) for p in parts])
    timings: dict[str, float] = {}
    for part in parts:
        for key, value in part.timings.items():
            timings[key] = timings.get(key, 0.0) + value
    return RelaxResult(
        crystals=CrystalBatch(lattice, frac, crystals.species_probs, crystals.crystal_idx, crystals.n_atoms),
        energy=torch.cat([p.energy.to(like) for p in parts]),
        stress=torch.cat([p.stress.to(like) for p in parts]),
        max_force=torch.cat([p.max_force.to(like) for p in parts]),
        fmax=torch.cat([p.fmax.to(like) for p in parts]),
        steps=torch.cat([p.steps.to(like.device) for p in parts]),
        status=[status for p in parts for status in p.status],
        reason=[reason for p in parts for reason in p.reason],
        volume_change=torch.cat([p.volume_change.to(like) for p in parts]),
        timings=timings,
    )


def _chunk_masks(crystals: CrystalBatch, size: int) -> list[Tensor]:
    """``[B]`` bool masks of consecutive chunks of at most ``size`` crystals."""
    masks = []
    for lo in range(0, crystals.n_crystals, size):
        chosen = torch.zeros(crystals.n_crystals, dtype=torch.bool, device=crystals.lattice.device)
        chosen[lo : lo + size] = True
        masks.append(chosen)
    return masks


def _relax_or_fail(crystals: CrystalBatch, chosen: Tensor, potential: Potential, settings: RelaxSettings | None) -> RelaxResult:
    """Relax the chosen crystals; an exception fails all of them (module doc of :func:`relax_in_chunks`)."""
    chunk = crystals.select(chosen)
    try:
        return relax(chunk, potential, settings)
    except Exception as exc:  # noqa: BLE001 - a chunk that cannot be evaluated is reported, never fatal
        n, like = chunk.n_crystals, chunk.lattice
        nan = torch.full((n,), float("nan"), dtype=like.dtype, device=like.device)
        return RelaxResult(
            crystals=chunk, energy=nan, stress=torch.full((n, 3, 3), float("nan"), dtype=like.dtype, device=like.device),
            max_force=nan, fmax=nan, steps=torch.zeros(n, dtype=torch.long, device=like.device),
            status=["failed"] * n, reason=[f"{type(exc).__name__}: {exc}"] * n, volume_change=nan,
        )  # fmt: skip


def perturb_positions(crystals: CrystalBatch, distance: float, seed: int) -> CrystalBatch:
    """``crystals`` with every atom displaced by ``distance`` Å in a random direction (a torch generator seeded with
    ``seed``; float64 draws), so that a symmetric cell sitting on a saddle can leave it when relaxed."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(crystals.frac_coords.shape, generator=generator, dtype=torch.float64)
    shift = distance * direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    inverse = torch.linalg.inv(crystals.lattice.double())[crystals.crystal_idx]
    frac = crystals.frac_coords + torch.einsum("ni,nij->nj", shift, inverse).to(crystals.frac_coords)
    return CrystalBatch(crystals.lattice, frac, crystals.species_probs, crystals.crystal_idx, crystals.n_atoms)


def _too_close(
    lattice: Tensor, frac: Tensor, crystals: CrystalBatch, check: Tensor, s: RelaxSettings, code: Tensor
) -> Tensor:
    """``[B]`` True where a checked crystal has two atoms closer than ``min_distance`` (sets ``code`` to 3 there)."""
    out = torch.zeros_like(check)
    if s.min_distance <= 0 or not check.any():
        return out
    sub, _ = _subset(crystals, lattice, frac, check)
    nearest = min_distances(sub.lattice.double(), sub.frac_coords.double(), sub.crystal_idx, sub.n_atoms, cutoff=s.min_distance * 1.01)
    out[check] = nearest < s.min_distance
    code[out] = 3
    return out


def _mark_failed(newly: Tensor, code: Tensor, ratio: Tensor, step: int | Tensor, reasons: list[str]) -> None:
    """Write a one-line reason for every newly failed crystal (a loop over the failures only)."""
    for c in torch.nonzero(newly).flatten().tolist():
        at = int(step[c]) if isinstance(step, Tensor) else step
        kind = int(code[c])
        if kind == 1:
            reasons[c] = f"non-finite energy, forces or stress at step {at}"
        elif kind == 2:
            reasons[c] = f"volume left the allowed range (V/V0 = {float(ratio[c]):.3g}) at step {at}"
        else:
            reasons[c] = f"atoms closer than the minimum distance at step {at}"


@dataclass
class RelaxOutcome:
    """One structure's relaxation, as returned by :func:`relax_structures` (a failure is a row, never an error).

    Attributes:
        structure: the relaxed pymatgen structure (coordinates wrapped), or None if none could be made.
        status: "converged", "step_limit" or "failed".
        reason: why it failed ("" otherwise).
        energy_per_atom: final energy, eV/atom (NaN when unknown).
        pressure: final pressure −tr(σ)/3, GPa.
        max_force: largest final Cartesian atom force, eV/Å.
        steps: FIRE steps taken.
        volume_change: V / V₀ − 1.
    """

    structure: Structure | None
    status: RelaxStatus
    reason: str = ""
    energy_per_atom: float = math.nan
    pressure: float = math.nan
    max_force: float = math.nan
    steps: int = 0
    volume_change: float = math.nan


def relax_structures(
    structures: Sequence[Structure],
    potential: Potential,
    fmax: float = 0.05,
    max_steps: int = 500,
    batch_size: int = 256,
    max_atoms_per_batch: int = 8192,
    dtype: torch.dtype = torch.float32,
    settings: RelaxSettings | None = None,
) -> list[RelaxOutcome]:
    """Relax pymatgen structures in batches; one :class:`RelaxOutcome` per input, in input order.

    Structures are sorted by size and cut into chunks of at most ``batch_size`` structures and
    ``max_atoms_per_batch`` atoms, each relaxed with :func:`relax`. A structure that cannot be converted (e.g.
    disordered) fails on its own; if the potential raises on a chunk, that chunk's structures are retried one at a
    time so a single bad structure does not fail the rest.

    Args:
        structures: the structures to relax.
        potential: the potential (see :class:`~smoacs.predictors.potential.Potential`).
        fmax: convergence threshold, eV/Å (overrides ``settings.fmax``).
        max_steps: FIRE steps at most (overrides ``settings.max_steps``).
        batch_size: structures per chunk.
        max_atoms_per_batch: atoms per chunk (a larger structure gets a chunk of its own).
        dtype: dtype of the batches handed to the potential.
        settings: the other relaxation settings.
    """
    if batch_size < 1 or max_atoms_per_batch < 1:
        raise ConfigError("relax_structures: batch_size and max_atoms_per_batch must be ≥ 1")
    base = replace(settings or RelaxSettings(), fmax=fmax, max_steps=max_steps)
    outcomes: list[RelaxOutcome | None] = [None] * len(structures)
    usable = []
    for i, structure in enumerate(structures):
        try:
            CrystalBatch.from_structures([structure], dtype=dtype)
        except Exception as exc:  # noqa: BLE001 - an unusable structure is a failed row
            outcomes[i] = RelaxOutcome(None, "failed", f"cannot be relaxed: {exc}")
            continue
        usable.append(i)
    for chunk in _chunks(usable, [len(structures[i]) for i in usable], batch_size, max_atoms_per_batch):
        _relax_chunk(structures, chunk, potential, base, dtype, outcomes)
    return [o if o is not None else RelaxOutcome(None, "failed", "not relaxed") for o in outcomes]


def _chunks(indices: list[int], sizes: list[int], batch_size: int, max_atoms: int) -> list[list[int]]:
    """Indices sorted by size, cut into chunks of ≤ batch_size structures and ≤ max_atoms atoms."""
    order = sorted(range(len(indices)), key=lambda k: sizes[k])
    chunks: list[list[int]] = []
    current: list[int] = []
    atoms = 0
    for k in order:
        if current and (len(current) >= batch_size or atoms + sizes[k] > max_atoms):
            chunks.append(current)
            current, atoms = [], 0
        current.append(indices[k])
        atoms += sizes[k]
    if current:
        chunks.append(current)
    return chunks


def _relax_chunk(
    structures: Sequence[Structure],
    chunk: list[int],
    potential: Potential,
    settings: RelaxSettings,
    dtype: torch.dtype,
    outcomes: list[RelaxOutcome | None],
) -> None:
    batch = CrystalBatch.from_structures([structures[i] for i in chunk], dtype=dtype)
    try:
        result = relax(batch, potential, settings)
    except Exception as exc:  # noqa: BLE001 - the potential failed on the chunk: isolate the culprit
        if len(chunk) == 1:
            outcomes[chunk[0]] = RelaxOutcome(None, "failed", f"{type(exc).__name__}: {exc}")
            return
        log.warning("relaxation of a chunk of %d failed (%s); retrying one by one", len(chunk), exc)
        for i in chunk:
            _relax_chunk(structures, [i], potential, settings, dtype, outcomes)
        return
    relaxed = result.crystals.to_structures(wrap=True)
    per_atom, pressure = result.energy_per_atom, result.pressure
    for k, i in enumerate(chunk):
        outcomes[i] = RelaxOutcome(
            structure=relaxed[k],
            status=result.status[k],
            reason=result.reason[k],
            energy_per_atom=float(per_atom[k]),
            pressure=float(pressure[k]),
            max_force=float(result.max_force[k]),
            steps=int(result.steps[k]),
            volume_change=float(result.volume_change[k]),
        )
