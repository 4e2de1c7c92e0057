"""A campaign end to end: expand the grid, skip what ``--resume`` finds finished, run the rest, write the tables.

The campaign directory holds one ordinary run directory per cell (``<out>/<cell name>/``, exactly what
``smoacs run`` with the same options writes), ``campaign.json`` (the campaign as given, and its plan),
``campaign.csv`` and ``campaign.md`` with its plots. A directory that already holds a campaign is refused unless
``resume``: then finished runs are skipped (not even scheduled), interrupted or failed ones are resumed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from smoacs import __version__
from smoacs.campaign.cell import CellOutcome, is_finished, skipped_outcome
from smoacs.campaign.executor import Backend, Plan, execute, plan
from smoacs.campaign.report import CAMPAIGN_CSV, write_campaign
from smoacs.campaign.spec import CampaignSpec, Cell, expand
from smoacs.errors import ConfigError
from smoacs.io.rundir import RunDirectory

CAMPAIGN_JSON = "campaign.json"


@dataclass
class CampaignResult:
    """What a campaign produced.

    Attributes:
        directory: the campaign directory.
        cells: the cells, in grid order; outcomes: theirs, in the same order.
        table: campaign.csv's rows.
        schedule: how the runs were scheduled; wall_s: the campaign's wall time, seconds.
    """

    directory: Path
    cells: list[Cell]
    outcomes: list[CellOutcome]
    table: pd.DataFrame
    schedule: Plan | None
    wall_s: float

    @property
    def failed(self) -> list[CellOutcome]:
        """The runs that failed every attempt."""
        return [o for o in self.outcomes if o.status == "failed"]


def run_campaign(spec: CampaignSpec, resume: bool = False, backend: Backend = "auto", address: str | None = None,
                 workers: int | None = None, echo: Callable[[str], None] = print) -> CampaignResult:  # fmt: skip
    """Run the campaign ``spec`` (see the module docstring); ``workers`` replaces the file's; ``echo`` receives
    the progress lines (one per finished run)."""
    settings = CellSettings(spec.threads, spec.workers if workers is None else workers, spec.memory_gb, spec.retries)
    return run_cells(Path(spec.out), expand(spec), list(spec.grid), settings, resume, backend, address, echo,
                     title=spec.name, record={"campaign": asdict(spec)})  # fmt: skip


@dataclass(frozen=True)
class CellSettings:
    """How each run of a campaign is given resources: torch threads, runs at a time (0: decided), memory per
    run (GB, 0: estimated) and extra attempts."""

    threads: int = 1
    workers: int = 0
    memory_gb: float = 0.0
    retries: int = 1


def run_cells(directory: Path, cells: list[Cell], grid_keys: list[str], settings: CellSettings, resume: bool = False,
              backend: Backend = "auto", address: str | None = None, echo: Callable[[str], None] = print,
              title: str = "campaign", header: str = "", record: dict[str, Any] | None = None) -> CampaignResult:  # fmt: skip
    """Run configured ``cells`` as one campaign in ``directory`` (``grid_keys``: the override keys of campaign.csv,
    ``seed`` among them averaged over); see the module docstring."""
    started = time.perf_counter()
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"campaign directory {directory} is a file; choose another --out")
    if not resume and _holds_campaign(directory, cells):
        raise ConfigError(f"{directory} already holds a campaign; `--resume` continues it, or choose another --out")
    directory.mkdir(parents=True, exist_ok=True)
    skipped = {c.name: skipped_outcome(c.name, c.config.out) for c in cells if resume and is_finished(c.config.out)}
    todo = [c for c in cells if c.name not in skipped]
    schedule = plan(todo, settings.threads, settings.workers, settings.memory_gb, backend, address) if todo else None
    _write_record(directory, record or {}, cells, schedule)
    echo(f"campaign {directory}: {len(cells)} runs, {len(skipped)} already finished, {len(todo)} to run"
         + (f" on {schedule.describe()}" if schedule else ""))  # fmt: skip
    done: list[CellOutcome] = []

    def report(outcome: CellOutcome) -> None:
        done.append(outcome)
        echo(f"[{len(done)}/{len(todo)}] {progress_line(outcome)}")

    written: list[pd.DataFrame] = []

    def write(ran: list[CellOutcome]) -> None:  # while a local Ray instance shuts down
        by_name = {o.name: o for o in ran}
        outcomes = [skipped.get(c.name) or by_name[c.name] for c in cells]
        written.append(write_campaign(directory, title, cells, outcomes, grid_keys, header))

    if schedule:
        ran = execute(todo, schedule, settings.retries, report, then=write)
    else:
        ran = []
        write(ran)
    by_name = {o.name: o for o in ran}
    outcomes = [skipped.get(c.name) or by_name[c.name] for c in cells]
    table = written[0]
    wall = time.perf_counter() - started
    echo(f"wrote {directory}/{CAMPAIGN_CSV} and campaign.md ({wall:.1f} s; {sum(o.status == 'failed' for o in outcomes)} failed)")
    return CampaignResult(directory, cells, outcomes, table, schedule, wall)


def progress_line(outcome: CellOutcome) -> str:
    """One console line for a finished or failed run."""
    if outcome.status == "failed":
        return f"{outcome.name}: FAILED after {outcome.attempts} attempt(s) ({outcome.wall_s:.1f} s): {outcome.error}"
    rate = outcome.summary.get("success_rate")
    success = f"success {rate:.3f}" if isinstance(rate, float) else "no summary"
    retried = f", attempt {outcome.attempts}" if outcome.attempts > 1 else ""
    return f"{outcome.name}: finished in {outcome.wall_s:.1f} s{retried}: {success}"


def _holds_campaign(directory: Path, cells: list[Cell]) -> bool:
    if (directory / CAMPAIGN_CSV).exists() or (directory / CAMPAIGN_JSON).exists():
        return True
    return any(RunDirectory(c.config.out).run_files() for c in cells)


def _write_record(directory: Path, extra: dict[str, Any], cells: list[Cell], schedule: Plan | None) -> None:
    record = {
        **extra,
        "cells": [{"name": c.name, "overrides": c.overrides} for c in cells],
        "plan": asdict(schedule) if schedule else None,
        "smoacs": __version__,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (directory / CAMPAIGN_JSON).write_text(json.dumps(record, indent=2, default=str) + "\n")
