"""One campaign cell, run where a worker runs it: :func:`run_cell` (plain Python, no Ray).

The cell is run by :func:`smoacs.runner.run` — the code path of ``smoacs run`` — with the cell's configuration.
A run that raises, or finishes with failed mini-batches, is attempted again through ``resume=True`` (finished
mini-batches kept, the rest recomputed with the same seeds; started afresh when it failed before writing its
run.json), up to ``1 + retries`` attempts; a directory that already holds a run of this cell (an interrupted
earlier campaign) is resumed from the first attempt.

Relative paths in a cell's configuration (its run directory, a predictor's weights, a config file's template) mean
what they mean where the campaign was started: a worker that runs elsewhere (a Ray cluster's worker processes start
in the cluster's own directory) is given that ``workdir`` and runs the cell there. On a multi-node cluster the
directory must be on a filesystem every node shares; a node without it records the cell as failed, with that reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from smoacs.config import RunConfig
from smoacs.io.rundir import RunDirectory

log = logging.getLogger(__name__)

CellStatus = Literal["finished", "failed", "skipped"]


@dataclass
class CellOutcome:
    """What became of one cell.

    Attributes:
        name: the cell's directory name.
        status: ``finished``; ``failed`` (every attempt failed: ``error`` says why); ``skipped`` (``--resume``
            found it finished).
        attempts: runs started (0 when skipped).
        wall_s: seconds from the first attempt's start to the end of the last (0 when skipped).
        run_s: the run's own total time from run.json (the last attempt's), seconds.
        summary: the run's summary row (result_summary.csv), empty when it failed before writing any.
        error: the last attempt's one-line error.
        host: where it ran (``hostname:pid``).
        node: the Ray node that ran it (its node id; empty when it did not run as a Ray task).
        started: when its first attempt started (seconds since the epoch, the worker's clock; 0 when skipped).
        cpu_s: CPU seconds its worker process spent on it (all attempts; what the run costs whatever the machine's
            load, unlike ``wall_s``; NaN when skipped).
        process_cpu_s: CPU seconds of the worker process when the run ended, its start-up (imports) and earlier
            runs included (NaN when skipped): with ``cpu_s``, where a campaign's CPU time goes.
    """

    name: str
    status: CellStatus
    attempts: int = 0
    wall_s: float = 0.0
    run_s: float = float("nan")
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    host: str = ""
    node: str = ""
    started: float = 0.0
    cpu_s: float = float("nan")
    process_cpu_s: float = float("nan")


def run_cell(name: str, config: RunConfig, retries: int = 1, workdir: str | None = None) -> CellOutcome:
    """Run one cell (see the module docstring) in ``workdir`` (None: this process's working directory); never raises
    for a failed run (the outcome records it)."""
    host = f"{socket.gethostname()}:{os.getpid()}"
    if workdir is None:
        return _run_cell(name, config, retries, host)
    if not os.path.isdir(workdir):
        return CellOutcome(name, "failed", error=f"the campaign's directory {workdir} does not exist on {socket.gethostname()}"
                           " (a campaign on a multi-node Ray cluster needs a filesystem all nodes share)", host=host)  # fmt: skip
    with contextlib.chdir(workdir):
        return _run_cell(name, config, retries, host)


def _run_cell(name: str, config: RunConfig, retries: int, host: str) -> CellOutcome:
    from smoacs.runner import run

    started, epoch, cpu = time.perf_counter(), time.time(), time.process_time()
    error = ""
    for attempt in range(1, retries + 2):
        resume = RunDirectory(config.out).run_json.is_file()  # a run that started: resumed, else started afresh
        try:
            result = run(config, progress=False, resume=resume)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the campaign goes on
            error = one_line(exc)
            log.info("cell %s attempt %d failed: %s", name, attempt, error)
            continue
        if result.failures:
            error = "; ".join(f"mini-batch {index}: {message}" for index, message in sorted(result.failures.items()))
            continue
        meta = RunDirectory(config.out).read_meta()
        return CellOutcome(name, "finished", attempt, time.perf_counter() - started, _total_s(meta),
                           dict(result.summary), host=host, **_clocks(epoch, cpu))  # fmt: skip
    return CellOutcome(name, "failed", retries + 1, time.perf_counter() - started, float("nan"),
                       finished_summary(config.out), error, host, **_clocks(epoch, cpu))  # fmt: skip


def _clocks(epoch: float, cpu: float) -> dict[str, float]:
    """The start time, the run's CPU seconds and the process's, for a run that started at ``epoch``/``cpu``."""
    now = time.process_time()
    return {"started": epoch, "cpu_s": now - cpu, "process_cpu_s": now}


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def _total_s(meta: dict[str, Any]) -> float:
    return float(meta.get("timings", {}).get("total_s", float("nan")))


def finished_summary(out: str) -> dict[str, Any]:
    """The summary a run directory holds (run.json's), empty when none."""
    try:
        return dict(RunDirectory(out).read_meta().get("summary") or {})
    except Exception:  # noqa: BLE001 - no or unreadable run.json: no summary
        return {}


def is_finished(out: str) -> bool:
    """True when ``out`` holds a run that finished with no failed mini-batch (``--resume`` skips it)."""
    try:
        meta = RunDirectory(out).read_meta()
    except Exception:  # noqa: BLE001 - no run there
        return False
    return meta.get("status") == "finished" and not meta.get("failures")


def skipped_outcome(name: str, out: str) -> CellOutcome:
    """The outcome of a cell ``--resume`` found finished (its summary and run time from run.json)."""
    meta = RunDirectory(out).read_meta()
    return CellOutcome(name, "skipped", 0, 0.0, _total_s(meta), dict(meta.get("summary") or {}))
