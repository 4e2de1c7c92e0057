"""Scaling of one optimisation step: time per step vs candidates and vs atoms per cell, and peak memory.

    python benchmarks/scaling.py [--steps 5] [--threads 1] [--quick]

Each point is one `perovskite-bandgap` mini-batch (CGCNN band gap with its metal gate + CGCNN formation energy,
physics none) searched for ``--steps`` gradient steps in a fresh subprocess (so that its peak resident memory,
``ru_maxrss``, is its own): candidates 32…1024 of 5-atom cells, and 32 candidates of n×n×n perovskite
supercells (5, 40, 135, 320 atoms). Time per step is the optimiser's wall time over its steps (neighbour-list
rebuilds included, model loading and evaluation excluded). Writes benchmarks/results/scaling.json and
benchmarks/scaling_candidates.png, benchmarks/scaling_atoms.png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CANDIDATES = (32, 64, 128, 256, 512, 1024)
SUPERCELLS = (1, 2, 3, 4)  # 5, 40, 135, 320 atoms


def measure_point(candidates: int, supercell: int, steps: int, threads: int) -> dict:
    """Search one mini-batch for ``steps`` steps in this process; its time per step and peak memory."""
    from smoacs.options import RunOptions, run_config
    from smoacs.runner import build_problem, search_batch
    from smoacs.runtime import seed_everything, set_threads

    options = RunOptions(preset="perovskite-bandgap", candidates=candidates, batch_size=candidates, steps=steps,
                         physics="none", no_oracle=True, device="cpu", threads=threads, out="/tmp/unused")  # fmt: skip
    config = run_config(options)
    config = config.with_overrides(templates={"supercell": supercell}, copy_mutate_steps=())
    set_threads(config.threads)
    seed_everything(config.seed)
    problem = build_problem(config)
    start = time.perf_counter()
    _, result = search_batch(problem, 0, [])
    wall = time.perf_counter() - start
    atoms = 5 * supercell**3
    return {
        "candidates": candidates, "atoms": atoms, "steps": steps, "threads": threads,
        "s_per_step": result.timings["optimize_s"] / steps, "predictor_s_per_step": result.timings["predictor_s"] / steps,
        "search_wall_s": wall, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }  # fmt: skip


def run_point(candidates: int, supercell: int, steps: int, threads: int) -> dict:
    """:func:`measure_point` in a fresh subprocess (its own peak memory)."""
    command = [sys.executable, __file__, "--point", str(candidates), str(supercell), "--steps", str(steps),
               "--threads", str(threads)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if out.returncode != 0:
        return {"candidates": candidates, "atoms": 5 * supercell**3, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(points: list[dict], x: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [p for p in points if "s_per_step" in p]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot([p[x] for p in good], [p["s_per_step"] for p in good], "o-", color="#4878a8", label="time per step")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("candidates (5-atom cells)" if x == "candidates" else "atoms per cell (32 candidates)")
    ax.set_ylabel("s per optimisation step", color="#4878a8")
    twin = ax.twinx()
    twin.plot([p[x] for p in good], [p["peak_rss_gb"] for p in good], "s--", color="#c05030", label="peak RSS")
    twin.set_ylabel("peak resident memory (GB)", color="#c05030")
    ax.set_xticks([p[x] for p in good], [str(p[x]) for p in good])
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--point", type=int, nargs=2, metavar=("CANDIDATES", "SUPERCELL"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="candidates up to 256, supercells up to 3")
    args = parser.parse_args()
    if args.point:
        print(json.dumps(measure_point(*args.point, args.steps, args.threads)))
        return
    load_before = os.getloadavg()
    candidates = [c for c in CANDIDATES if not args.quick or c <= 256]
    supercells = [s for s in SUPERCELLS if not args.quick or s <= 3]
    by_candidates = [run_point(c, 1, args.steps, args.threads) for c in candidates]
    for point in by_candidates:
        print(point, flush=True)
    by_atoms = [run_point(32, s, args.steps, args.threads) for s in supercells]
    for point in by_atoms:
        print(point, flush=True)
    record = {"load_before": load_before, "load_after": os.getloadavg(), "steps": args.steps, "threads": args.threads,
              "by_candidates": by_candidates, "by_atoms": by_atoms}  # fmt: skip
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "scaling.json").write_text(json.dumps(record, indent=2) + "\n")
    note = f"{args.threads} thread, {args.steps} steps; load {load_before[0]:.1f}→{record['load_after'][0]:.1f} (2 shared cores)"
    plot(by_candidates, "candidates", HERE / "scaling_candidates.png", f"perovskite-bandgap, 5-atom cells; {note}")
    plot(by_atoms, "atoms", HERE / "scaling_atoms.png", f"perovskite-bandgap supercells, 32 candidates; {note}")


if __name__ == "__main__":
    main()
