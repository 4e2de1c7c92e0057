"""``smoacs evaluate RUN_DIR``: recompute every criterion and the summary from a run's files, without the optimiser.

Inputs (nothing else is read):

* ``run.json`` — predictors, judges, objectives, evaluation settings, template path;
* ``structures/<id>.cif`` — the candidates (sites restored to the run's order from the CIF labels ``<El><index>``);
* ``result.csv`` — bookkeeping only: ids, template names, the optimiser's oxidation pattern per site (for the
  tolerance factor's radii), ``copied_from`` and ``quarantined`` (a quarantined candidate stays a failure);
* ``result.npz`` — the template geometry: ``template_frac_coords``, ``coord_bound``, ``site_roles``.

Predictions are recomputed with the configured predictors and judges (``final``), neutrality, minimum distance,
tolerance factor, perovskite geometry, objectives under evaluation margins, uniqueness and novelty. The result goes
to ``evaluation.csv`` / ``evaluation_summary.csv`` (the run's own ``result*.csv`` are left untouched, so the two can
be compared) and ``report.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smoacs.config import RunConfig
from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import ConfigError
from smoacs.evaluate.evaluator import Candidates, EvaluationSettings, check_candidates
from smoacs.evaluate import relaxation as relaxation_module
from smoacs.evaluate.relaxation import evaluate_with_relaxation
from smoacs.evaluate.matching import (
    ReferenceSet,
    MATCH_COLUMNS,
    available_references,
    describe_references,
    formula_key,
    match_and_order,
    reference_set,
)
from smoacs.evaluate.known import KnownValues, known_values
from smoacs.evaluate.stages import configured_stages
from smoacs.evaluate.summary import summarize
from smoacs.io.rundir import EVALUATION_CSV, RunDirectory
from smoacs.runtime import prepare_cpu, resolve_device

_ION = re.compile(r"^([A-Z][a-z]?)([+-]\d+)$")


@dataclass
class RunEvaluation:
    """What ``smoacs evaluate`` computed.

    Attributes:
        run_dir: the run directory.
        rows: one dict per candidate (``evaluation.csv``).
        summary: the ``evaluation_summary.csv`` row.
        references: description of the novelty reference sets.
    """

    run_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    references: str = ""
    structures: list[Any] = field(default_factory=list)


def criteria_text(settings: EvaluationSettings, perovskite: bool) -> list[str]:
    """The non-objective criteria in words (for report.md)."""
    out = []
    if settings.check_neutrality:
        out.append("charge neutral (an independent per-atom assignment from the super-common oxidation states exists)")
    if perovskite:
        lo, hi = settings.angle_range
        out.append(f"perovskite geometry preserved (every site within its bound of the template site, angles {lo:g}–{hi:g}°)")
    out.append("not quarantined (finite loss and gradients throughout)")
    return out


def limits_text(limits: dict[str, dict[str, Any]]) -> list[str]:
    """The sublattice limits (``space.sublattices`` of a config dict) in words for report.md, one line each."""
    out = []
    for name, limit in limits.items():
        parts = []
        if limit.get("max_species") is not None:
            parts.append(f"at most {limit['max_species']} element{'s' if limit['max_species'] > 1 else ''}")
        if limit.get("allowed"):
            parts.append("from " + ", ".join(limit["allowed"]))
        if limit.get("fraction") is not None:
            lo, hi = limit["fraction"]
            parts.append(f"minority fraction (sites not held by the host) in [{lo:g}, {hi:g}]")
        out.append(f"sublattice {name}: {', '.join(parts) or 'no limit'} (composition_ok)")
    return out


def run_references(
    templates_path: str | None, specs: Sequence[str] | None = None, data_dir: str | Path | None = None
) -> list[ReferenceSet]:
    """Novelty references: the run's own template files (when readable) plus ``specs`` (default: every built-in
    set whose data is present)."""
    from smoacs.errors import TemplateError
    from smoacs.templates.files import read_structure, structure_files

    references = []
    if templates_path and Path(templates_path).exists():
        try:
            files = structure_files(Path(templates_path))
            structures = [read_structure(f) for f in files]
            references.append(ReferenceSet.from_structures("templates", structures, [f"templates:{f.name}" for f in files]))
        except TemplateError:
            pass
    for spec in available_references(data_dir) if specs is None else specs:
        references.append(reference_set(spec, data_dir))
    return references


def run_known_values(config: RunConfig, references: Sequence[ReferenceSet]) -> KnownValues:
    """The reference-value columns of a run (:func:`smoacs.evaluate.known.known_values` with the run's predictors,
    their units, its objectives and ``evaluation.known_values``)."""
    from smoacs.predictors.registry import predictor_info

    units = {prop: predictor_info(name, prop).unit for prop, name in config.predictors.items()}
    return known_values(references, config.predictors, units, config.objectives, config.evaluation.known_values)


def _pattern(text: str, symbols: Sequence[str], ident: str) -> list[int]:
    ions = [_ION.match(token) for token in text.split()]
    if len(ions) != len(symbols) or not all(ions):
        raise ConfigError(f"{ident}: pattern_oxidation_states {text!r} does not fit its {len(symbols)} sites")
    if [m.group(1) for m in ions] != list(symbols):
        raise ConfigError(f"{ident}: the CIF's species {' '.join(symbols)} differ from result.csv's pattern {text!r}")
    return [int(m.group(2)) for m in ions]


def pattern_radii(species: np.ndarray, pattern: np.ndarray) -> torch.Tensor:
    """``[N]`` float32 Shannon radius (Å) of each site's element in its pattern state (0 for state 0), as in a run."""
    from smoacs.chem.radii import ox_index, radius_table

    table = radius_table()
    radius = np.array(
        [table[e, ox_index(int(o))] if o != 0 else 0.0 for e, o in zip(species, pattern, strict=True)], dtype=np.float32
    )
    return torch.as_tensor(radius)


def evaluate_run(
    run_dir: str | Path,
    references: Sequence[str] | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    write: bool = True,
    relax: str | None = None,
    known_values: str | None = None,
) -> RunEvaluation:
    """Recompute criteria, uniqueness, novelty and the summary of a finished run (see the module docstring).

    Args:
        run_dir: the run directory.
        references: novelty and known-value reference specs (``perov5``, ``supercon``, ``prototypes``, a directory, a
            CSV with property declarations ``PATH:COLUMN=UNIT@THEORY``); default the run's ``evaluation.references``
            (itself defaulting to every built-in set whose data is present). The run's own template files are always
            included when readable.
        device: ``auto``, ``cpu`` or ``cuda``.
        data_dir: where built-in reference sets are looked for.
        write: write evaluation.csv, evaluation_summary.csv and report.md.
        relax: relax every candidate's design (``structures/<id>.cif``) with this potential (``"chgnet"``, batched)
            and judge the relaxed cells (``success`` = the relaxed verdict, ``unrelaxed_success`` the other; relaxed
            CIFs in ``relaxed/``); default: the run's own physics potential, else its ``evaluation.relax``.
        known_values: ``successes`` or ``all`` (which rows get reference values); default the run's
            ``evaluation.known_values``.
    """
    from smoacs.io.report import write_report
    from smoacs.predictors.registry import load_predictor

    run_dir = Path(run_dir)
    directory = RunDirectory(run_dir)
    files = directory.read_run()
    config, csv_rows, arrays = files.config, files.rows, files.arrays
    run_config = RunConfig.from_dict(config)  # the same validation as `smoacs run FILE`
    if known_values is not None:
        run_config = run_config.with_overrides(known_values=known_values)
    objectives = list(run_config.objectives)
    settings = run_config.evaluation
    prepare_cpu(run_config.threads)  # the run's thread count and allocator setting, as `smoacs run` has them
    torch_device = resolve_device(device)
    predictors = [load_predictor(name, torch_device, prop) for prop, name in run_config.predictors.items()]
    judges = [load_predictor(name, torch_device, prop) for prop, name in run_config.judge.items()]
    specs = references if references is not None else run_config.evaluation.references
    refs = run_references(run_config.templates.path, specs, data_dir)
    known = run_known_values(run_config, refs)
    physics = run_config.physics
    relaxer = relax or (physics.potential if physics.enabled else run_config.evaluation.relax)
    check = None
    if relaxer:
        potential = relaxation_module.load_potential(relaxer, torch_device)
        relaxation = relaxation_module.relaxation_check(physics, potential, True, run_config.seed)
        check = partial(evaluate_with_relaxation, check=relaxation)

    sizes = np.asarray(arrays["n_atoms"])
    if len(sizes) != len(csv_rows):
        raise ConfigError(f"{run_dir}: result.npz has {len(sizes)} candidates, result.csv {len(csv_rows)}")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    frac0 = np.asarray(arrays["template_frac_coords"], dtype=np.float64)
    bound = np.asarray(arrays["coord_bound"], dtype=np.float64)
    roles = np.asarray(arrays["site_roles"])
    groups = np.asarray(arrays["site_groups"], dtype=object) if "site_groups" in arrays else None
    if groups is not None and len(groups) != len(roles):  # e.g. a run resumed across versions
        groups = None
    batch_size = run_config.batch_size

    rows: list[dict[str, Any]] = []
    structures: list[Any] = []
    criteria: list[str] = []
    for start in range(0, len(csv_rows), batch_size):
        chunk = csv_rows[start : start + batch_size]
        chunk_structures, patterns = [], []
        for i, row in enumerate(chunk):
            n_atoms = int(sizes[start + i])
            structure = directory.read_design(row, n_atoms) if check else directory.read_structure(row, n_atoms)
            chunk_structures.append(structure)
            patterns += _pattern(row["pattern_oxidation_states"], [s.specie.symbol for s in structure], row["id"])
        crystals = CrystalBatch.from_structures(chunk_structures, dtype=torch.float64, device=torch_device)
        crystals = CrystalBatch(
            crystals.lattice, torch.remainder(crystals.frac_coords, 1.0), crystals.species_probs,
            crystals.crystal_idx, crystals.n_atoms,
        )  # fmt: skip
        sites = slice(offsets[start], offsets[start + len(chunk)])
        species = crystals.hard_species().cpu().numpy()
        pattern = np.array(patterns, dtype=np.int64)
        candidates = Candidates(
            crystals=crystals,
            site_radius=pattern_radii(species, pattern),
            pattern=pattern,
            frac0=frac0[sites],
            coord_bound=bound[sites],
            site_roles=roles[sites],
            ids=[row["id"] for row in chunk],
            template_names=[row["template"] for row in chunk],
            copied_from=[row.get("copied_from", "") for row in chunk],
            quarantine={i: row["quarantined"] for i, row in enumerate(chunk) if row.get("quarantined")},
            site_groups=groups[sites] if groups is not None else None,
            limits=dict(run_config.space.sublattices),
        )
        evaluation = (check or check_candidates)(
            candidates, predictors, objectives, settings, judges, configured_stages(settings)
        )
        for row, source in zip(evaluation.rows, chunk, strict=True):
            if check:
                row["cif"] = directory.relaxed_name(row["id"])
                row["design_cif"] = directory.cif_name(row["id"])
            else:
                row["cif"] = source["cif"] if "cif" in source else directory.cif_name(row["id"])
            row["poscar"] = source.get("poscar", "")
        if check and write:
            directory.write_relaxed(evaluation.rows, evaluation.structures)
        rows.extend(evaluation.rows)
        structures.extend(evaluation.structures)
        criteria = evaluation.criteria

    rows = match_and_order(rows, structures, refs, known=known)
    summary = summarize(rows, criteria)
    described = describe_references(refs)
    result = RunEvaluation(run_dir, rows, summary, described, structures)
    if write:
        directory.write_evaluation(rows, summary)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_report(
            run_dir, rows, summary, objectives,
            report_info(config, settings, roles, described, f"{EVALUATION_CSV} (smoacs evaluate, {stamp})"),
        )  # fmt: skip
    return result


def report_info(
    config: dict[str, Any], settings: EvaluationSettings, roles: np.ndarray, references: str, source: str
) -> dict[str, Any]:
    """The ``info`` argument of :func:`smoacs.io.report.report_markdown` from a run's config dict."""
    window = next((o for o in config.get("objectives", []) if isinstance(o, dict) and o.get("kind") == "window"), None)
    target = f", target {window['property']} = {window['target']:g}" if window is not None else ""  # from the objective
    title = f"smoacs run: {config.get('preset', '?')}{target}"
    return {
        "title": title,
        "source": source,
        "predictors": dict(config.get("predictors", {})),
        "judge": dict(config.get("judge", config.get("oracles", {}))),  # "oracles": run.json of earlier versions
        "criteria": criteria_text(settings, bool(np.any(np.asarray(roles) >= 0)))
        + limits_text(config.get("space", {}).get("sublattices") or {}),
        "references": references,
    }


__all__ = ["MATCH_COLUMNS", "RunEvaluation", "evaluate_run", "formula_key", "run_known_values", "run_references"]
