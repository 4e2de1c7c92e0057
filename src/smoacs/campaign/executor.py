"""Running a campaign's cells: on Ray (one task per run) or locally (worker processes, or in this process).

This is the only module of smoacs that imports ``ray``. Each run is one task that reserves ``threads`` CPUs and
its estimated memory, so that the scheduler never puts more runs on a node than its cores and memory hold (two
runs that each take every core slow each other down by up to 70×). At most ``limit`` runs are in flight.

Backends: ``ray`` (``ray.init()`` locally, or ``address`` for an existing cluster); ``local`` (a process pool of
``limit`` workers; in this process when ``limit`` is 1) — what ``auto`` falls back to when ray is not installed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

from smoacs.campaign.cell import CellOutcome, run_cell
from smoacs.campaign.spec import Cell
from smoacs.config import RunConfig
from smoacs.errors import ConfigError
from smoacs.resources import BASE_MEMORY_GB, atoms_per_cell, available_memory_gb, estimate_memory_gb
from smoacs.runtime import available_cores

log = logging.getLogger(__name__)

Backend = Literal["auto", "ray", "local"]
BACKENDS = ("auto", "ray", "local")
@dataclass(frozen=True)
class Plan:
    """How a campaign's runs are scheduled.

    Attributes:
        backend: ``ray`` or ``local``.
        limit: runs in flight at a time.
        threads: torch threads (CPUs reserved) per run.
        memory_gb: memory reserved per run, GB.
        cpus: CPUs of the machine or cluster; available_gb: memory available when the campaign started, GB.
        address: the Ray cluster's address (None: a local Ray instance).
    """

    backend: Literal["ray", "local"]
    limit: int
    threads: int
    memory_gb: float
    cpus: int
    available_gb: float
    address: str | None = None

    def describe(self) -> str:
        """One line for the console."""
        where = f"Ray at {self.address}" if self.address else ("local Ray" if self.backend == "ray" else "local processes")
        return (f"{where}: {self.limit} run(s) at a time, {self.threads} thread(s) and ≈{self.memory_gb:.1f} GB each "
                f"({self.cpus} CPUs, {self.available_gb:.1f} GB available)")  # fmt: skip


#: Relative cost of one predictor evaluation per candidate, by search method (TPE: Optuna's sampler, whose time
#: grows with the trials, ×(1 + budget / TPE_TRIALS_SCALE); measured 15× random's at 200 trials, search_methods.py).
TPE_TRIALS_SCALE = 15.0
#: Candidates an exhaustive method (``enumerate``) lists, for the estimate (1,792 single-anion ABX3 compositions).
ENUMERATED_CANDIDATES = 1800
#: Cost factor of a run with the universal potential in the loop (CHGNet's forward + backward per step).
POTENTIAL_COST = 3.0


def estimated_cost(config: RunConfig) -> float:
    """A run's relative cost (arbitrary units: candidates × atoms per cell × evaluations per candidate, with the
    method's and the potential's factors), to start the longest runs first."""
    from smoacs.search import budget

    atoms = atoms_per_cell(config)
    method, evaluations = config.search.method, budget(config.search, config.optimizer)
    candidates = ENUMERATED_CANDIDATES if method == "enumerate" else config.candidates
    factor = 1.0 + evaluations / TPE_TRIALS_SCALE if method == "tpe" else 1.0
    if config.physics.enabled:
        factor *= POTENTIAL_COST
    return float(candidates * atoms * evaluations * factor)


def longest_first(cells: Sequence[Cell]) -> list[Cell]:
    """``cells`` by :func:`estimated_cost`, largest first (ties in their order): the order runs are started in, so
    that no long run is left for the end while the other workers idle (results do not depend on the order)."""
    return sorted(cells, key=lambda cell: -estimated_cost(cell.config))


def ray_available() -> bool:
    """True when the ``ray`` package can be imported."""
    return importlib.util.find_spec("ray") is not None


def plan(cells: Sequence[Cell], threads: int, workers: int, memory_gb: float, backend: Backend = "auto",
         address: str | None = None) -> Plan:  # fmt: skip
    """The schedule: the backend, and runs at a time = min(``workers`` or CPUs ÷ threads, memory ÷ per-run memory,
    cells), at least 1. ``memory_gb`` 0: the largest cell's :func:`estimate_memory_gb`."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    chosen: Literal["ray", "local"] = "ray" if backend == "ray" or (backend == "auto" and ray_available()) else "local"
    if chosen == "ray" and not ray_available():
        raise ConfigError("the ray backend needs ray: pip install 'smoacs[campaign]' (or use --backend local)")
    if address and chosen != "ray":
        raise ConfigError("--address needs the ray backend (pip install 'smoacs[campaign]')")
    per_run = memory_gb or max((estimate_memory_gb(c.config) for c in cells), default=BASE_MEMORY_GB)
    cpus, free = available_cores(), available_memory_gb()
    if chosen == "ray" and address:
        cpus, free = _cluster_resources(address)
    by_cpu = max(1, cpus // threads)
    limit = min(workers or by_cpu, max(1, int(free // per_run)), max(1, len(cells)))
    return Plan(chosen, max(1, limit), threads, per_run, cpus, free, address)


def _cluster_resources(address: str) -> tuple[int, float]:
    """CPUs and memory (GB) of the Ray cluster at ``address`` (connects to it): :func:`cluster_capacity` of its
    nodes."""
    _connect(address, None)
    import ray

    return cluster_capacity(ray.nodes())


#: Memory assumed for a cluster whose nodes report none, GB.
UNREPORTED_MEMORY_GB = 4.0


def cluster_capacity(nodes: Sequence[Mapping[str, Any]]) -> tuple[int, float]:
    """CPUs and memory (GB) of the alive nodes of a Ray cluster, as ``ray.nodes()`` lists them. CPUs are summed
    (each raylet's ``--num-cpus`` is honoured); memory is counted once per host (the largest of its raylets), since
    every raylet started without ``--memory`` advertises most of its host's memory, and two raylets on one host
    would otherwise be planned with twice the memory there is."""
    alive = [node for node in nodes if node.get("Alive", True)]
    cpus = sum(float(node.get("Resources", {}).get("CPU", 0.0)) for node in alive)
    per_host: dict[str, float] = {}
    for node in alive:
        host = str(node.get("NodeManagerAddress") or node.get("NodeID", ""))
        memory = float(node.get("Resources", {}).get("memory", 0.0)) / 2**30
        per_host[host] = max(per_host.get(host, 0.0), memory)
    return max(1, int(cpus)), (sum(per_host.values()) or UNREPORTED_MEMORY_GB)


OnDone = Callable[[CellOutcome], None]


def execute(cells: Sequence[Cell], schedule: Plan, retries: int, on_done: OnDone,
            then: Callable[[list[CellOutcome]], None] | None = None) -> list[CellOutcome]:  # fmt: skip
    """Run every cell by ``schedule``, the longest first (:func:`longest_first`); ``on_done`` is called as each
    finishes. Outcomes in cell order; ``then`` receives them while the backend shuts down (a local Ray instance
    takes ~1 s to stop: the campaign's tables are written meanwhile)."""
    if not cells:
        if then:
            then([])
        return []
    order = longest_first(cells) if schedule.limit > 1 else list(cells)

    def finish(ran: list[CellOutcome]) -> list[CellOutcome]:
        by_name = {o.name: o for o in ran}
        outcomes = [by_name[c.name] for c in cells]
        if then:
            then(outcomes)
        return outcomes

    if schedule.backend == "ray":
        return _execute_ray(order, schedule, retries, on_done, finish)
    return finish(_execute_local(order, schedule, retries, on_done))


def _execute_local(cells: Sequence[Cell], schedule: Plan, retries: int, on_done: OnDone) -> list[CellOutcome]:
    outcomes: dict[str, CellOutcome] = {}
    if schedule.limit == 1:  # in this process: no start-up cost (and what a test can step through)
        for cell in cells:
            outcomes[cell.name] = run_cell(cell.name, cell.config, retries)
            on_done(outcomes[cell.name])
        return [outcomes[c.name] for c in cells]
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(max_workers=schedule.limit, mp_context=context, initializer=_quiet_worker) as pool:
        pending = {pool.submit(run_cell, c.name, c.config, retries): c for c in cells}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                cell = pending.pop(future)
                outcomes[cell.name] = _outcome(cell, future.result)
                on_done(outcomes[cell.name])
    return [outcomes[c.name] for c in cells]


def _quiet_worker() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")


def _outcome(cell: Cell, get: Callable[[], Any]) -> CellOutcome:
    """The task's outcome, or a failed one when the worker itself died (killed, out of memory)."""
    try:
        return get()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a lost worker is one failed cell, not a failed campaign
        return CellOutcome(cell.name, "failed", error=f"worker lost: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _connect(address: str | None, num_cpus: int | None) -> bool:
    """Connect to Ray (start a local instance when ``address`` is None); True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if not (address or "").startswith("ray://"):  # a Ray Client server refuses to start with logging_level
        kwargs["logging_level"] = logging.WARNING
    if address is None and num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    try:
        ray.init(address=address or "local", **kwargs)  # "local": a new instance even where a cluster runs already
    except Exception as exc:  # noqa: BLE001 - an unreachable cluster is a user error
        raise ConfigError(f"cannot connect to Ray{f' at {address}' if address else ''}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}{_auth_hint(address)}") from None  # fmt: skip
    return True


def _auth_hint(address: str | None) -> str:
    """A hint for the usual cause of a refused connection to a cluster: Ray's token authentication (on for clusters
    that ``ray start`` creates with Ray 2.60), which an explicit address does not switch on by itself."""
    if address is None or address == "auto" or os.environ.get("RAY_AUTH_MODE"):
        return ""
    return ("; if the cluster uses token authentication, set RAY_AUTH_MODE=token (the token is read from "
            "~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)")  # fmt: skip


def _execute_ray(cells: Sequence[Cell], schedule: Plan, retries: int, on_done: OnDone,
                 finish: Callable[[list[CellOutcome]], list[CellOutcome]]) -> list[CellOutcome]:  # fmt: skip
    """The cells as Ray tasks; a Ray instance this call started is stopped in a thread while ``finish`` runs."""
    import ray

    started = _connect(schedule.address, schedule.cpus if schedule.address is None else None)
    try:
        ran = _ray_tasks(cells, schedule, retries, on_done)
    except BaseException:
        if started:
            ray.shutdown()
        raise
    if not started:
        return finish(ran)
    stopping = threading.Thread(target=ray.shutdown, name="ray-shutdown")
    stopping.start()
    try:
        return finish(ran)
    finally:
        stopping.join()


def _run_cell_on_node(name: str, config: RunConfig, retries: int, workdir: str) -> CellOutcome:
    """:func:`run_cell` as a Ray task; the outcome names the node that ran it."""
    import ray

    outcome = run_cell(name, config, retries, workdir)
    outcome.node = ray.get_runtime_context().get_node_id()
    return outcome


def _ray_tasks(cells: Sequence[Cell], schedule: Plan, retries: int, on_done: OnDone) -> list[CellOutcome]:
    """Submit the cells in order, at most ``schedule.limit`` in flight; outcomes as they finish."""
    import ray

    task = ray.remote(_run_cell_on_node).options(
        num_cpus=schedule.threads, memory=int(schedule.memory_gb * 2**30), max_retries=retries
    )  # Ray sets OMP_NUM_THREADS to num_cpus in the task; the run sets torch's threads from its config
    workdir = os.getcwd()  # the cluster's workers start elsewhere: relative paths mean what they mean here
    queue = list(cells)
    pending: dict[Any, Cell] = {}
    outcomes: dict[str, CellOutcome] = {}
    while queue or pending:
        while queue and len(pending) < schedule.limit:
            cell = queue.pop(0)
            pending[task.remote(cell.name, cell.config, retries, workdir)] = cell
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            cell = pending.pop(ref)
            outcomes[cell.name] = _outcome(cell, lambda ref=ref: ray.get(ref))
            on_done(outcomes[cell.name])
    return [outcomes[c.name] for c in cells]


__all__ = ["BACKENDS", "Backend", "Plan", "available_memory_gb", "cluster_capacity", "estimate_memory_gb",
           "estimated_cost", "execute", "longest_first", "plan", "ray_available"]
