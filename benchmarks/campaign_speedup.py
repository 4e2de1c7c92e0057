"""Campaign speed-up and throughput: a 12-run campaign on local Ray vs the same runs one after another.

    python benchmarks/campaign_speedup.py [--candidates 32] [--steps 60] [--workers 1 2 3] [--local 2] [--tag NAME]

The 12 runs: `perovskite-bandgap`, targets 0.5/1.5/2.5/3.5 × seeds 0/1/2, ``--candidates`` × ``--steps``,
physics none, no oracle, 1 torch thread each. Measured back to back in this one script, so that the machine's
load (printed before and after each part) affects every part alike:

1. one after another: the campaign with ``--backend local --workers 1`` (in this process, no start-up cost);
2. local Ray with ``--workers N`` for each N (one task per run, N in flight; Ray's start-up included);
3. with ``--local N …``: ``--backend local --workers N`` (a pool of N spawned processes, no Ray) for each N.

Every part's run directories must hold identical result files (checked). Each part's timeline says where the wall
time goes (from each run's start time, worker and duration): ``startup_s`` (campaign start → first run starting:
Ray's start-up and the worker's imports), ``first_run_extra_s`` (a worker's first run less the median run: lazy
imports, first model loads), ``tail_s`` (the last run's end less the end of the worker that went idle first),
``close_s`` (last run's end → tables written and Ray stopped), and ``concurrency`` (Σ run time / wall). CPU
seconds are counted too — of the runs (``sum_run_cpu_s``), of this process and of Ray's processes (``cpu_s``:
driver, children) — which, unlike wall times, hardly depend on the machine's load: on an idle machine of ``C``
cores a part cannot take less than its CPU seconds ÷ ``C``, nor the serial part less than its own. The Ray
workers' CPU (``cpu_s.workers``: start-up and runs; ``cpu_s.worker_startup``: imports before the first run) is
read from each run's ``process_cpu_s``; ``cpu_s.children`` is what Ray's stopped daemons used.
Writes benchmarks/results/campaign_speedup[_TAG].json and benchmarks/campaign_throughput[_TAG].png (runs per hour
vs workers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def campaign(out: Path, candidates: int, steps: int) -> dict:
    return {
        "base": {"preset": "perovskite-bandgap", "candidates": candidates, "steps": steps, "physics": "none",
                 "no_oracle": True, "device": "cpu"},
        "grid": {"target": [0.5, 1.5, 2.5, 3.5], "seed": [0, 1, 2]},
        "out": str(out),
        "threads": 1,
    }  # fmt: skip


def timed(label: str, out: Path, data: dict, backend: str, workers: int) -> dict:
    from smoacs.campaign.orchestrate import run_campaign
    from smoacs.campaign.spec import campaign_from_dict

    load, cpu = os.getloadavg(), cpu_seconds()
    start, epoch = time.perf_counter(), time.time()
    result = run_campaign(campaign_from_dict(data), backend=backend, workers=workers, echo=lambda line: None)
    wall = time.perf_counter() - start
    used = {key: value - cpu[key] for key, value in cpu_seconds().items()}
    failed = [o.name for o in result.outcomes if o.status != "finished"]
    part = {"label": label, "backend": backend, "workers": workers, "wall_s": wall, "runs": len(result.outcomes),
            "runs_per_hour": 3600 * len(result.outcomes) / wall, "sum_run_s": sum(o.run_s for o in result.outcomes),
            **timeline(result.outcomes, epoch, wall), "cpu_s": {**used, **worker_cpu(result.outcomes, backend == "local" and workers == 1)},
            "sum_run_cpu_s": sum(o.cpu_s for o in result.outcomes),
            "load_before": load, "load_after": os.getloadavg(),
            "failed": failed}  # fmt: skip
    print(json.dumps(part), flush=True)
    return part


def cpu_seconds() -> dict:
    """CPU seconds (user + system) of this process and of its reaped descendants (Ray's processes, once stopped)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"driver": own.ru_utime + own.ru_stime, "children": children.ru_utime + children.ru_stime}


def worker_cpu(outcomes: list, in_process: bool) -> dict:
    """CPU seconds of the worker processes: in all (start-up and runs) and in start-up alone (imports before the
    first run: the process's CPU at its last run's end less its runs' own). Empty for the in-process part."""
    if in_process:
        return {}
    hosts: dict[str, list] = {}
    for o in outcomes:
        hosts.setdefault(o.host, []).append(o)
    totals = [max(o.process_cpu_s for o in runs) for runs in hosts.values()]
    startup = [total - sum(o.cpu_s for o in runs) for total, runs in zip(totals, hosts.values(), strict=True)]
    return {"workers": sum(totals), "worker_startup": startup}


def timeline(outcomes: list, epoch: float, wall: float) -> dict:
    """Where a part's wall time went (see the module docstring), from each run's start, worker and duration."""
    import statistics

    ends = [o.started + o.wall_s for o in outcomes]
    by_host: dict[str, list] = {}
    for o in sorted(outcomes, key=lambda o: o.started):
        by_host.setdefault(o.host, []).append(o)
    median = statistics.median(o.wall_s for o in outcomes)
    host_ends = [max(o.started + o.wall_s for o in runs) for runs in by_host.values()]
    return {
        "workers_used": len(by_host), "runs_per_worker": [len(r) for r in by_host.values()],
        "startup_s": min(o.started for o in outcomes) - epoch,
        "first_run_extra_s": [runs[0].wall_s - median for runs in by_host.values()], "median_run_s": median,
        "tail_s": max(ends) - min(host_ends), "close_s": epoch + wall - max(ends),
        "concurrency": sum(o.wall_s for o in outcomes) / wall,
    }  # fmt: skip


def identical(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir() if p.is_dir())
    return all((a / n / f).read_bytes() == (b / n / f).read_bytes() for n in names for f in ("result.csv", "result.npz"))


def plot(parts: list[dict], path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ray_parts = [p for p in parts if p["backend"] == "ray"]
    serial, pools = parts[0], [p for p in parts[1:] if p["backend"] == "local"]
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    ax.plot([p["workers"] for p in ray_parts], [p["runs_per_hour"] for p in ray_parts], "o-", label="local Ray")
    if pools:
        ax.plot([p["workers"] for p in pools], [p["runs_per_hour"] for p in pools], "s--", label="local processes (no Ray)")
    ax.axhline(serial["runs_per_hour"], color="grey", ls="--", label="one after another (in-process)")
    ax.set_ylim(bottom=0)
    ax.set_xticks(sorted({p["workers"] for p in ray_parts + pools}))
    ax.set_xlabel("workers (runs in flight)")
    ax.set_ylabel("runs per hour")
    ax.set_title(note, fontsize=8)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--local", type=int, nargs="*", default=[], metavar="N",
                        help="also --backend local with N worker processes (no Ray), for each N")
    parser.add_argument("--tag", default="", help="suffix of the results file (campaign_speedup_TAG.json)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="smoacs-speedup-"))
    parts = [timed("one after another", root / "serial", campaign(root / "serial", args.candidates, args.steps), "local", 1)]
    for workers in args.workers:
        out = root / f"ray-{workers}"
        parts.append(timed(f"local Ray, {workers} workers", out, campaign(out, args.candidates, args.steps), "ray", workers))
    for workers in args.local:
        out = root / f"local-{workers}"
        parts.append(timed(f"local processes, {workers} workers", out, campaign(out, args.candidates, args.steps), "local", workers))
    same = all(identical(root / "serial", root / f"ray-{w}") for w in args.workers)
    same = same and all(identical(root / "serial", root / f"local-{w}") for w in args.local)
    serial = parts[0]["wall_s"]
    record = {"candidates": args.candidates, "steps": args.steps, "cores": os.cpu_count(), "parts": parts,
              "speedup": {p["label"]: serial / p["wall_s"] for p in parts[1:]}, "identical_results": same}  # fmt: skip
    print(json.dumps({"speedup": record["speedup"], "identical_results": same}))
    (HERE / "results").mkdir(exist_ok=True)
    name = f"campaign_speedup_{args.tag}.json" if args.tag else "campaign_speedup.json"
    (HERE / "results" / name).write_text(json.dumps(record, indent=2) + "\n")
    loads = ", ".join(f"{p['load_before'][0]:.1f}" for p in parts)
    note = f"12 runs of {args.candidates}×{args.steps}, 1 thread each; {os.cpu_count()} shared cores, 1-min load at starts: {loads}"
    plot(parts, HERE / (f"campaign_throughput_{args.tag}.png" if args.tag else "campaign_throughput.png"), note)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
