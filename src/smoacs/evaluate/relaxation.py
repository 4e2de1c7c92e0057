"""The relaxation stage: relax every discrete candidate (batched), re-predict and re-check it on the relaxed cell.

With physics on (``physics.potential``, or ``smoacs relax`` / ``smoacs evaluate --relax``) the **relaxed** structure
is the one judged: ``success`` is every criterion on the relaxed cell (windows re-predicted there, tolerance,
neutrality, minimum distance, the template's geometry — a perovskite must still be one) **and** a converged
relaxation (``converged_ok``). The verdict on the unrelaxed design stays in ``unrelaxed_success`` with its predictions
as ``unrelaxed_<property>``. With physics off and ``evaluation.relax`` set, it is the other way round: ``success``
keeps its plain meaning and the relaxed verdict is ``relaxed_success`` / ``relaxed_<property>``.

Columns of the relaxation itself: ``relax_status`` (converged / step_limit / failed), ``relax_reason``,
``relax_steps``, ``relax_fmax`` (eV/Å, the convergence measure), ``volume_change`` (V_relaxed / V − 1),
``energy_per_atom`` (eV/atom, the potential's) and ``pressure`` (GPa) at the relaxed geometry. A failed relaxation is
a reported row (not a success), never an exception.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import ConfigError
from smoacs.evaluate.candidates import Candidates, EvaluationStage, StageOutput
from smoacs.evaluate.evaluator import Evaluation, EvaluationSettings, check_candidates
from smoacs.objectives.terms import Objective
from smoacs.physics.relax import RelaxSettings, perturb_positions, relax_in_chunks
from smoacs.physics.settings import POTENTIALS, PhysicsSettings
from smoacs.predictors.base import Predictor
from smoacs.predictors.potential import Potential

#: Columns the relaxation adds to every row.
RELAX_COLUMNS = ("relax_status", "relax_reason", "relax_steps", "relax_fmax", "volume_change", "energy_per_atom", "pressure")


def check_relaxer(name: str | None) -> None:
    """Raise :class:`ConfigError` for an unknown relaxation potential or a missing optional dependency."""
    if name is None:
        return
    if name not in POTENTIALS:
        raise ConfigError(f"relax: unknown potential {name!r}; allowed: {', '.join(POTENTIALS)}")
    try:
        import chgnet  # noqa: F401
    except ImportError:
        raise ConfigError('relaxation with chgnet needs the chgnet package: pip install "smoacs[relax]"') from None


def load_potential(name: str, device: torch.device | str = "cpu") -> Potential:
    """The batched potential ``name`` (checked with :func:`check_relaxer`) on ``device``."""
    from smoacs.predictors.registry import load_predictor

    check_relaxer(name)
    return load_predictor(name, device)  # type: ignore[return-value]  # the POTENTIALS implement Potential


@dataclass
class RelaxationCheck:
    """How candidates are relaxed and which verdict is the headline.

    Attributes:
        potential: the batched potential.
        settings: FIRE settings (``fmax`` eV/Å, ``max_steps``).
        verdict: True: ``success`` is the relaxed verdict (physics on); False: it stays the unrelaxed one.
        batch_size: structures relaxed together.
        elapsed_s: seconds spent relaxing so far (accumulated over calls).
        perturb: random displacement of every atom before relaxing (Å; 0: none), seeded by ``seed`` and the
            candidates' ids, so a run and its resume draw the same displacements.
        seed: the run's seed.
    """

    potential: Potential
    settings: RelaxSettings
    verdict: bool = True
    batch_size: int = 256
    elapsed_s: float = 0.0
    perturb: float = 0.0
    seed: int = 0


def relaxation_check(physics: PhysicsSettings, potential: Potential, verdict: bool, seed: int) -> RelaxationCheck:
    """The relaxation of a run's final candidates from its ``physics`` settings (fmax, step limit, batch, perturbation)."""
    settings = RelaxSettings(fmax=physics.fmax, max_steps=physics.max_steps)
    return RelaxationCheck(potential, settings, verdict, physics.batch_size, perturb=physics.perturb, seed=seed)


def relax_candidates(candidates: Candidates, check: RelaxationCheck) -> tuple[Candidates, StageOutput]:
    """The relaxed candidates (same sites, float64, coordinates wrapped) and the relaxation's columns and criterion."""
    start = time.perf_counter()
    crystals = _perturbed(candidates, check)
    result = relax_in_chunks(crystals, check.potential, check.settings, check.batch_size)
    check.elapsed_s += time.perf_counter() - start
    columns: dict[str, np.ndarray] = {
        "relax_status": np.array(result.status, dtype=object),
        "relax_reason": np.array(result.reason, dtype=object),
        "relax_steps": result.steps.cpu().numpy().astype(np.int64),
        "relax_fmax": result.fmax.double().cpu().numpy(),
        "volume_change": result.volume_change.double().cpu().numpy(),
        "energy_per_atom": result.energy_per_atom.double().cpu().numpy(),
        "pressure": result.pressure.double().cpu().numpy(),
    }
    wrapped = torch.remainder(result.crystals.frac_coords, 1.0)  # relax_in_chunks keeps crystals' device and dtype
    relaxed = CrystalBatch(result.crystals.lattice, wrapped, crystals.species_probs, crystals.crystal_idx, crystals.n_atoms)
    output = StageOutput(columns=columns, criteria={"converged_ok": columns["relax_status"] == "converged"})
    return replace(candidates, crystals=relaxed), output


def _perturbed(candidates: Candidates, check: RelaxationCheck) -> CrystalBatch:
    """The candidates with every atom displaced by ``check.perturb`` Å in a random direction (seeded by the run's
    seed and the first candidate's id)."""
    crystals = candidates.crystals
    if check.perturb <= 0:
        return crystals
    digits = "".join(ch for ch in (candidates.ids[0] if candidates.ids else "") if ch.isdigit())
    return perturb_positions(crystals, check.perturb, check.seed * 1_000_003 + int(digits or 0))


def _constant(output: StageOutput) -> EvaluationStage:
    def stage(candidates: Candidates, context: Any) -> StageOutput:  # noqa: ANN401, ARG001
        return output

    return stage


def evaluate_with_relaxation(
    candidates: Candidates,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: EvaluationSettings,
    judges: Sequence[Predictor] = (),
    stages: Sequence[EvaluationStage] = (),
    *,
    check: RelaxationCheck,
) -> Evaluation:
    """Check the candidates as they are and relaxed; rows carry the headline verdict and the other one (module doc).

    Same signature as :func:`~smoacs.evaluate.evaluator.check_candidates` plus ``check``, so it can replace it.
    """
    relaxed, output = relax_candidates(candidates, check)
    with_relax = [*stages, _constant(output)]
    plain_ = check_candidates(candidates, predictors, objectives, settings, () if check.verdict else judges, stages)
    relaxed_ = check_candidates(relaxed, predictors, objectives, settings, judges if check.verdict else (), with_relax)
    main, other, prefix = (relaxed_, plain_, "unrelaxed") if check.verdict else (plain_, relaxed_, "relaxed")
    properties = [p.info.property for p in predictors]
    for row, alt in zip(main.rows, other.rows, strict=True):
        extra = {f"{prefix}_success": alt["success"], **{f"{prefix}_{p}": alt[p] for p in properties}}
        if not check.verdict:
            extra.update({key: alt[key] for key in (*RELAX_COLUMNS, "converged_ok")})
        _insert_after(row, "success", extra)
    main.arrays[f"{prefix}_lattice"] = other.arrays["lattice"]
    main.arrays[f"{prefix}_frac_coords"] = other.arrays["frac_coords"]
    main.arrays[f"{prefix}_success"] = other.arrays["success"]
    if check.verdict:
        main.design_structures = other.structures
        main.relaxed_structures = main.structures
    else:
        main.design_structures = main.structures
        main.relaxed_structures = other.structures
    return main


def _insert_after(row: dict[str, Any], key: str, extra: dict[str, Any]) -> None:
    """Insert ``extra`` right after ``key``, in place, keeping the order of the other columns."""
    items = list(row.items())
    at = [k for k, _ in items].index(key) + 1
    row.clear()
    row.update(items[:at])
    row.update(extra)
    row.update(items[at:])
