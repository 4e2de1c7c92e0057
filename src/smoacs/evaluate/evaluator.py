"""Discretise, re-predict with one-hot inputs, and check every criterion of every candidate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from smoacs.chem.elements import ELEMENTS
from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.lattice import lattice_to_parameters
from smoacs.errors import ConfigError
from smoacs.design.provenance import Provenance
from smoacs.design.space import DesignSpace, DiscreteDesign
from smoacs.evaluate.candidates import Candidates, EvaluationStage, StageContext
from smoacs.design.sublattices import site_group_labels
from smoacs.evaluate.checks import neutrality, perovskite_geometry
from smoacs.evaluate.composition import composition_check, describe_designs, group_labels
from smoacs.objectives.derived import DerivedInputs, derived_values
from smoacs.objectives.terms import Objective
from smoacs.predictors.base import Predictor, predictor_values


@dataclass(frozen=True)
class EvaluationSettings:
    """Criteria that are not objectives.

    Attributes:
        angle_range: allowed lattice angles (degrees) for perovskite geometry.
        check_neutrality: require a neutral per-atom assignment from the super-common oxidation states.
        min_distance_cutoff: search radius (Å) of the exact minimum-distance computation.
        relax: relax every success with this universal potential and re-check it (``"chgnet"``), or None.
        references: novelty and known-value reference sets (``perov5``, ``supercon``, ``prototypes``, a directory,
            a CSV with a ``cif`` column, with property declarations ``PATH:COLUMN=UNIT@THEORY``); None: every
            built-in set whose data is present.
        known_values: which candidates get reference values of a matched entry (:mod:`smoacs.evaluate.known`):
            ``successes`` or ``all``.
    """

    angle_range: tuple[float, float] = (85.0, 95.0)
    check_neutrality: bool = True
    min_distance_cutoff: float = 4.0
    relax: str | None = None
    references: tuple[str, ...] | None = None
    known_values: str = "successes"

    def __post_init__(self) -> None:
        if self.known_values not in ("successes", "all"):
            raise ConfigError(f"evaluation.known_values must be 'successes' or 'all', got {self.known_values!r}")
        if not self.min_distance_cutoff > 0:
            raise ConfigError(f"evaluation.min_distance_cutoff must be > 0 Å, got {self.min_distance_cutoff}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for run.json."""
        return asdict(self)


@dataclass
class Evaluation:
    """Checked candidates of one mini-batch.

    Attributes:
        rows: one dict per candidate (the ``result.csv`` columns, without file paths).
        structures: pymatgen structures of the discrete candidates (coordinates wrapped).
        arrays: per-candidate arrays for ``result.npz``.
        criteria: names of the boolean ``<criterion>_ok`` columns whose conjunction is ``success``.
        design_structures, relaxed_structures: with a relaxation stage (:mod:`smoacs.evaluate.relaxation`), the
            unrelaxed and the relaxed structures; ``structures`` is then the one of the two that ``success`` judges.
    """

    rows: list[dict[str, Any]]
    structures: list[Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    criteria: list[str] = field(default_factory=list)
    design_structures: list[Any] | None = None
    relaxed_structures: list[Any] | None = None


def predict_discrete(design: DiscreteDesign | SimpleNamespace, predictors: Sequence[Predictor]) -> dict[str, torch.Tensor]:
    """Final predictions of one-hot crystals (graphs rebuilt from the final geometry), keyed by property; an
    ensemble adds ``<property>_spread`` and its members ``<property>_m<i>``."""
    values = {}
    crystals = design.crystals.with_cache()  # predictors of one graph share its search and bond features
    with torch.no_grad():
        for predictor in predictors:
            predictor.rebuild(crystals)
            values.update(predictor_values(predictor, crystals, final=True))
    return values


def judge_columns(
    design: DiscreteDesign | SimpleNamespace, judges: Sequence[Predictor], objectives: Sequence[Objective]
) -> dict[str, np.ndarray]:
    """Held-out re-predictions: ``<property>_judge`` values and ``<property>_judge_ok`` flags.

    A judge is a model of a property that an objective constrains and that the optimiser never saw (e.g. the MEGNet
    multi-fidelity band gap next to a CGCNN + MEGNet ensemble being optimised). Its flag applies the same objectives'
    evaluation criteria to the judge's value alone; it is reported, never part of ``success`` or of any loss — a
    guard against candidates that only fool the optimised models.
    """
    columns: dict[str, np.ndarray] = {}
    values = predict_discrete(design, judges)
    for judge in judges:
        prop = judge.info.property
        value = values[prop]
        ok = torch.ones_like(value, dtype=torch.bool)
        for objective in objectives:
            if objective.key == prop:
                ok &= objective.satisfied({prop: value})
        columns[f"{prop}_judge"] = value.double().cpu().numpy()
        columns[f"{prop}_judge_ok"] = ok.cpu().numpy()
    return columns


#: Former name of :func:`judge_columns` (the "oracle" is now the judge; columns ``<property>_judge``).
oracle_columns = judge_columns


def evaluate_design(
    space: DesignSpace,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: EvaluationSettings,
    result: Provenance,
    ids: Sequence[str],
    judges: Sequence[Predictor] = (),
    stages: Sequence[EvaluationStage] = (),
    check: Callable[..., Evaluation] | None = None,
) -> Evaluation:
    """Evaluate the final state of ``space``: one row per candidate, ``success`` = every criterion holds.

    ``check`` replaces :func:`check_candidates` (same arguments), e.g. with the relaxation stage
    (:func:`smoacs.evaluate.relaxation.evaluate_with_relaxation`).

    Criteria: every objective under its evaluation margin (on one-hot re-predictions, exact periodic minimum
    distance and the discrete tolerance factor); charge neutrality (independent check); perovskite geometry for
    templates with A/B/X roles; not quarantined.
    """
    design = space.discretize()
    candidates = Candidates(
        crystals=design.crystals,
        site_radius=design.site_radius,
        pattern=design.ox_states.cpu().numpy(),
        frac0=space.frac0.double().cpu().numpy(),
        coord_bound=space.coord_bound.double().cpu().numpy(),
        site_roles=space.site_roles.cpu().numpy(),
        ids=list(ids),
        template_names=[space.templates[i].name for i in result.template_index],
        copied_from=[ids[j] if j >= 0 else "" for j in result.copied_from],
        quarantine=dict(result.quarantine),
        site_groups=np.array(
            [label for i in result.template_index for label in site_group_labels(space.templates[i])], dtype=object
        ),
        limits=dict(space.settings.sublattices),
    )
    evaluation = (check or check_candidates)(candidates, predictors, objectives, settings, judges, stages)
    evaluation.arrays.update(
        {
            "template_frac_coords": space.frac0.cpu().numpy(),
            "coord_bound": space.coord_bound.cpu().numpy(),
            "site_roles": space.site_roles.cpu().numpy(),
            "pattern_ox_states": candidates.pattern,
            "pattern": design.combo.cpu().numpy(),
            "site_groups": candidates.site_groups.astype(str),  # type: ignore[union-attr]
            **{f"history_{key}": value for key, value in result.history.items()},
        }
    )
    return evaluation


def _cell(value: Any) -> Any:  # noqa: ANN401
    """A numpy scalar as a plain Python value (bool, int, float, str) for a result row."""
    return value.item() if isinstance(value, np.generic) else value


def check_candidates(
    candidates: Candidates,
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    settings: EvaluationSettings,
    judges: Sequence[Predictor] = (),
    stages: Sequence[EvaluationStage] = (),
) -> Evaluation:
    """Re-predict and check discrete candidates (shared by a run and by ``smoacs evaluate``); ``stages`` add
    columns and criteria (see :mod:`smoacs.evaluate.candidates`)."""
    crystals = candidates.crystals
    design = SimpleNamespace(crystals=crystals)
    values = predict_discrete(design, predictors)
    roles = torch.as_tensor(candidates.site_roles)
    values.update(derived_values(DerivedInputs(crystals, candidates.site_radius, roles, None, settings.min_distance_cutoff)))
    lattice64 = crystals.lattice.double()
    numpy_values = {key: value.detach().double().cpu().numpy() for key, value in values.items()}
    n = crystals.n_crystals
    criteria: dict[str, np.ndarray] = {}
    for objective in objectives:
        criteria[f"{objective.key}_ok"] = objective.satisfied(values).cpu().numpy()

    structures = crystals.to_structures()
    offsets = crystals.atom_offsets.cpu().numpy()
    sizes = crystals.n_atoms.cpu().numpy()
    species = crystals.hard_species().cpu().numpy()
    symbols = [[ELEMENTS[e] for e in species[o : o + s]] for o, s in zip(offsets, sizes, strict=True)]
    if settings.check_neutrality:
        criteria["neutral_ok"], assignments = neutrality(symbols)
    else:
        assignments = [""] * n
    labels = candidates.site_groups if candidates.site_groups is not None else group_labels(candidates.site_roles)
    groups = [labels[o : o + s] for o, s in zip(offsets, sizes, strict=True)]
    hosts, designs, compositions = describe_designs(symbols, groups)
    if candidates.limits:
        criteria["composition_ok"], composition_reasons = composition_check(compositions, candidates.limits)

    lengths, angles = (t.cpu().numpy() for t in lattice_to_parameters(lattice64))
    roles = candidates.site_roles
    crystal_idx = crystals.crystal_idx.cpu().numpy()
    has_roles = np.zeros(n, dtype=bool)
    np.logical_or.at(has_roles, crystal_idx, roles >= 0)
    geometry_ok, displacement = perovskite_geometry(
        crystals.frac_coords.double().cpu().numpy(),
        candidates.frac0,
        candidates.coord_bound,
        crystal_idx,
        angles,
        settings.angle_range,
    )
    if has_roles.any():
        criteria["perovskite_ok"] = geometry_ok | ~has_roles

    extra: dict[str, np.ndarray] = {}
    context = StageContext(predictors, objectives, settings, numpy_values, structures)
    for stage in stages:
        output = stage(candidates, context)
        criteria.update(output.criteria)
        extra.update(output.columns)

    judged = judge_columns(design, judges, objectives) if judges else {}
    active = np.array([i not in candidates.quarantine for i in range(n)])
    success = active.copy()
    for flags in criteria.values():
        success &= flags
    ox_pattern = candidates.pattern
    volumes = np.abs(np.linalg.det(lattice64.cpu().numpy()))
    rows = []
    for i in range(n):
        structure = structures[i]
        row: dict[str, Any] = {
            "id": candidates.ids[i],
            "template": candidates.template_names[i],
            "formula": structure.composition.reduced_formula,
            "n_atoms": int(sizes[i]),
            "success": bool(success[i]),
        }
        row.update({key: float(numpy_values[key][i]) for key in numpy_values})
        row.update({key: bool(flags[i]) for key, flags in criteria.items()})
        row.update({key: column[i].item() for key, column in judged.items()})
        pattern = ox_pattern[offsets[i] : offsets[i] + sizes[i]]
        row["host"], row["design"] = hosts[i], designs[i]
        if candidates.limits:
            row["composition_reason"] = composition_reasons[i]
        row["oxidation_states"] = assignments[i]
        row["pattern_oxidation_states"] = " ".join(f"{s}{o:+d}" for s, o in zip(symbols[i], pattern, strict=True))
        row.update(dict(zip(("a", "b", "c"), map(float, lengths[i]), strict=True)))
        row.update(dict(zip(("alpha", "beta", "gamma"), map(float, angles[i]), strict=True)))
        row["volume_per_atom"] = float(volumes[i] / sizes[i])
        row["density"] = float(structure.density)
        row["max_displacement"] = float(displacement[i])
        row["copied_from"] = candidates.copied_from[i]
        row["quarantined"] = candidates.quarantine.get(i, "")
        row.update({key: _cell(column[i]) for key, column in extra.items()})
        rows.append(row)

    arrays = {
        "id": np.array(candidates.ids),
        "lattice": lattice64.cpu().numpy(),
        "frac_coords": crystals.frac_coords.cpu().numpy(),
        "species": species,
        "n_atoms": sizes,
        "success": success,
        **{f"final_{key}": value for key, value in numpy_values.items()},
    }
    return Evaluation(rows, structures, arrays, list(criteria))
