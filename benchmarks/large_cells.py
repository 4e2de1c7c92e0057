"""Large cells fast (issue 15): before vs after, measured in one script so machine load affects both sides alike.

"Before" is a source tree of the code preceding this work (``git archive <commit> src | tar -x -C DIR``, then
``--before-src DIR/src``); "after" is this checkout's ``src``. Every measurement runs in a fresh subprocess with one
torch thread (``OMP_NUM_THREADS=1``, ``--threads 1``), so peak memory (``ru_maxrss``) is per measurement, and the
load average is recorded around each one (the machine is shared with other jobs).

Measurements:
1. identity: ``perovskite-bandgap`` 2.5 eV, 64 × 50, ``--physics none``: result.csv of before, after, and after with
   the per-step feature cache disabled (only the neighbour search changed), compared byte for byte;
2. ``perovskite3x3x3-bandgap`` 32 candidates, ``--physics none``, the full CLI run (``--steps``, default 60, and
   extrapolated to 200 from the loop's per-step time), before and after; ``--full-3x3x3`` adds a 200-step run after;
3. ``perovskite-bandgap`` 256 × 200 unit cells, full CLI run, before and after;
4. loop micro-benchmark (DesignOptimizer, both CGCNN models, rebuild every 10 steps): seconds per step vs atoms per
   cell (5, 40, 135, 320; 32 candidates) and vs candidates (32 … 1,024 unit cells), before and after, with peak RSS.

Writes ``benchmarks/results/large_cells.json`` and prints Markdown tables.

    python benchmarks/large_cells.py --before-src /tmp/before/src [--steps 60] [--full-3x3x3] [--skip-cli]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AFTER_SRC = HERE.parent / "src"
NO_CACHE = "from smoacs.crystal.batch import CrystalBatch\nCrystalBatch.with_cache = lambda self, cache=None: self\n"


def _child_env(src: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _run_child(src: Path, code: str, args: list[str]) -> dict:
    """Run ``code`` (reads sys.argv, prints one JSON line last) in a fresh interpreter on ``src``."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=_child_env(src), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({src}): {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(load_before=load_before, load_after=os.getloadavg()[0], child_wall_s=time.perf_counter() - start)
    return out


CLI_CHILD = """
import json, resource, sys
{patch}
from smoacs.cli import main
code = main(sys.argv[1:])
out = sys.argv[sys.argv.index("--out") + 1]
meta = json.load(open(out + "/run.json"))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"rc": code, "timings": meta["timings"], "summary": meta["summary"], "peak_rss_mb": rss}}))
"""


def cli_run(src: Path, out: Path, preset: str, target: float, candidates: int, batch: int, steps: int,
            cache: bool = True) -> dict:  # fmt: skip
    """One ``smoacs run`` (``--physics none``, one thread, no progress bar) in a fresh process."""
    args = ["run", "--preset", preset, "--target", str(target), "--candidates", str(candidates), "--batch-size",
            str(batch), "--steps", str(steps), "--physics", "none", "--threads", "1", "--seed", "0", "--no-progress",
            "--out", str(out), "--overwrite"]  # fmt: skip
    result = _run_child(src, CLI_CHILD.format(patch="" if cache else NO_CACHE), args)
    batches = result["timings"]["batches"]
    result["optimize_s"] = sum(b["optimize_s"] for b in batches)
    result["predictor_s"] = sum(b["predictor_s"] for b in batches)
    result["rebuild_s"] = sum(b["rebuild_s"] for b in batches)
    result["total_s"] = result["timings"]["total_s"]
    result["steps"] = steps
    return result


LOOP_CHILD = """
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from smoacs.design import DesignSpace
from smoacs.objectives import Window, Below
from smoacs.optimize import DesignOptimizer, OptimizerSettings
from smoacs.predictors import load_predictor
from smoacs.templates import perovskite_templates
n, supercell, steps = (int(a) for a in sys.argv[1:4])
space = DesignSpace(perovskite_templates(n, seed=0, supercell=supercell), seed=0)
predictors = [load_predictor("cgcnn-band-gap"), load_predictor("cgcnn-formation-energy")]
objectives = [Window("band_gap", 2.5, 0.04, 0.2), Below("formation_energy", -0.5, margin=0.2)]
settings = OptimizerSettings(steps=steps, rebuild_every=10, copy_mutate_steps=())
result = DesignOptimizer(space, predictors, objectives, settings, seed=0).run()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall_s": result.wall_time_s, "predictor_s": result.predictor_time_s,
                  "rebuild_s": result.rebuild_time_s, "steps": steps, "peak_rss_mb": rss}))
"""


def loop_point(src: Path, n: int, supercell: int, steps: int) -> dict:
    """Seconds per step of the optimisation loop (rebuilds at steps 0 and every 10) in a fresh process."""
    out = _run_child(src, LOOP_CHILD, [str(n), str(supercell), str(steps)])
    out["s_per_step"] = out["wall_s"] / steps
    out["rebuild_s_per_step"] = out["rebuild_s"] / steps
    return out


def identity(before: Path, after: Path, work: Path) -> dict:
    """result.csv of the 64 × 50 run: before vs after, and before vs after without the feature cache."""
    runs = {
        "before": cli_run(before, work / "id_before", "perovskite-bandgap", 2.5, 64, 64, 50),
        "after": cli_run(after, work / "id_after", "perovskite-bandgap", 2.5, 64, 64, 50),
        "after_no_cache": cli_run(after, work / "id_nocache", "perovskite-bandgap", 2.5, 64, 64, 50, cache=False),
    }
    csv = {name: work / f"id_{tag}" / "result.csv" for name, tag in
           (("before", "before"), ("after", "after"), ("after_no_cache", "nocache"))}  # fmt: skip
    return {
        "after_identical": filecmp.cmp(csv["before"], csv["after"], shallow=False),
        "after_no_cache_identical": filecmp.cmp(csv["before"], csv["after_no_cache"], shallow=False),
        "success": {name: run["summary"]["n_success"] for name, run in runs.items()},
    }


def _extrapolated_200(run: dict) -> float:
    """Total seconds of a 200-step run: the measured total with the loop scaled from its steps to 200."""
    return run["total_s"] + run["optimize_s"] * (200 / run["steps"] - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-src", type=Path, required=True, help="src/ of the code before this work")
    parser.add_argument("--steps", type=int, default=60, help="steps of the 3×3×3 CLI runs (extrapolated to 200)")
    parser.add_argument("--full-3x3x3", action="store_true", help="also run the 3×3×3 preset for 200 steps (after)")
    parser.add_argument("--skip-cli", action="store_true", help="only the loop micro-benchmarks")
    parser.add_argument("--loop-steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "large_cells.json")
    args = parser.parse_args()
    sides = {"before": args.before_src.resolve(), "after": AFTER_SRC}
    report: dict = {"host": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": 1,
                             "load_at_start": os.getloadavg()}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_cli:
            report["identity_64x50"] = identity(sides["before"], sides["after"], work)
            print("identity", report["identity_64x50"], flush=True)
            for name, src in sides.items():
                run = cli_run(src, work / f"p3_{name}", "perovskite3x3x3-bandgap", 4.0, 32, 32, args.steps)
                run["extrapolated_200_s"] = _extrapolated_200(run)
                report.setdefault("perovskite3x3x3_32", {})[name] = run
                print("3x3x3", name, {k: run[k] for k in ("total_s", "optimize_s", "predictor_s", "rebuild_s",
                                                          "extrapolated_200_s", "peak_rss_mb")}, flush=True)  # fmt: skip
            if args.full_3x3x3:
                run = cli_run(sides["after"], work / "p3_full", "perovskite3x3x3-bandgap", 4.0, 32, 32, 200)
                report["perovskite3x3x3_32"]["after_200_steps"] = run
                print("3x3x3 after 200", run["total_s"], flush=True)
            for name, src in sides.items():
                run = cli_run(src, work / f"p1_{name}", "perovskite-bandgap", 2.5, 256, 256, 200)
                report.setdefault("perovskite_256x200", {})[name] = run
                print("256x200", name, run["total_s"], run["predictor_s"], run["rebuild_s"], flush=True)
        for atoms, supercell in ((5, 1), (40, 2), (135, 3), (320, 4)):
            for name, src in sides.items():
                point = loop_point(src, 32, supercell, args.loop_steps)
                report.setdefault("per_atoms", {}).setdefault(str(atoms), {})[name] = point
                print("atoms", atoms, name, round(point["s_per_step"], 4), round(point["rebuild_s_per_step"], 4),
                      round(point["peak_rss_mb"]), flush=True)  # fmt: skip
        for n in (32, 128, 256, 512, 1024):
            for name, src in sides.items():
                point = loop_point(src, n, 1, args.loop_steps)
                report.setdefault("per_candidates", {}).setdefault(str(n), {})[name] = point
                print("candidates", n, name, round(point["s_per_step"], 4), round(point["peak_rss_mb"]), flush=True)
    report["host"]["load_at_end"] = os.getloadavg()
    report["host"]["self_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
