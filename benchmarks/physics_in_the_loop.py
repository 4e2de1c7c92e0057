"""Physics in the loop vs plain SMOACS: the same preset, target and seed with ``--physics chgnet`` and ``none``.

For each (preset, target, physics) it runs ``smoacs run`` (256 × 200, seed 0 unless told otherwise) into
``OUT/<preset>-<target>-<physics>`` and reports the summary figures that matter for trust: success (with physics:
after relaxation, the headline), the unrelaxed success, distinct formulas, unique and novel rates, median |ΔV/V|,
oracle agreement, and the wall time split into optimisation / evaluation (with relaxation) / total. A run with
physics none is relaxed afterwards with ``smoacs relax`` for its relaxed figure (``--relax-plain``).

    python benchmarks/physics_in_the_loop.py --preset perovskite-bandgap --target 2.5 --out /tmp/bench \\
        [--physics chgnet none] [--candidates 256 --steps 200] [--json benchmarks/results/physics_2.5.json]
    python benchmarks/physics_in_the_loop.py --summarize runs/a runs/b [--json x.json]   # figures of finished runs
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

KEYS = ("success_rate", "unrelaxed_success_rate", "relaxed_success_rate", "distinct_success_formulas",
        "unique_success_rate", "novel_success_rate", "median_abs_volume_change", "median_abs_volume_change_success",
        "perovskite_rate", "converged_rate", "band_gap_judge_agreement", "formation_energy_judge_agreement")  # fmt: skip


def summary(path: Path) -> dict[str, str]:
    """The one-row summary CSV as a dict."""
    with path.open(newline="") as handle:
        return next(csv.DictReader(handle))


def run_figures(out: Path, physics: str) -> dict[str, object]:
    """The figures of a finished run directory: timings from run.json, rates from result_summary.csv."""
    meta = json.loads((out / "run.json").read_text())
    batches = meta["timings"]["batches"]
    figures: dict[str, object] = {
        "run": str(out),
        "physics": physics,
        "seed": meta["config"]["seed"],
        "total_s": round(meta["timings"].get("total_s", 0.0), 1),
        "optimize_s": round(sum(b["optimize_s"] for b in batches), 1),
        "geometry_s": round(sum(b.get("geometry_s", 0.0) for b in batches), 1),
        "evaluate_s": round(sum(b.get("evaluate_s", 0.0) for b in batches), 1),
        "relaxation_s": round(meta["timings"].get("relaxation_s", 0.0), 1),
        "polish_relax_s": round(sum(b.get("polish_relax_s", 0.0) for b in batches), 1),
        "polish_optimize_s": round(sum(b.get("polish_optimize_s", 0.0) for b in batches), 1),
        "polished": sum(b.get("polished", 0) for b in batches),
        "polish_changed": sum(b.get("polish_changed", 0) for b in batches),
    }
    row = summary(out / "result_summary.csv")
    figures.update({key: row[key] for key in KEYS if key in row})
    return figures


def run_one(args: argparse.Namespace, physics: str) -> dict[str, object]:
    """One ``smoacs run`` and its figures."""
    out = args.out / f"{args.preset}-{args.target}-{physics}"
    command = [sys.executable, "-m", "smoacs.cli", "run", "--preset", args.preset, "--target", str(args.target),
               "--candidates", str(args.candidates), "--steps", str(args.steps), "--seed", str(args.seed),
               "--physics", physics, "--out", str(out), "--overwrite", "--no-progress"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    figures = run_figures(out, physics)
    figures["wall_s"] = round(time.perf_counter() - start, 1)
    if physics == "none" and args.relax_plain:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "smoacs.cli", "relax", str(out)], check=True, capture_output=True)
        relaxed = summary(out / "evaluation_summary.csv")
        figures["plain_after_smoacs_relax"] = {key: relaxed[key] for key in KEYS if key in relaxed}
        figures["plain_after_smoacs_relax"]["relax_wall_s"] = round(time.perf_counter() - start, 1)  # type: ignore[index]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="perovskite-bandgap")
    parser.add_argument("--target", type=float, default=2.5)
    parser.add_argument("--physics", nargs="+", default=["chgnet", "none"])
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--relax-plain", action="store_true", help="also `smoacs relax` the physics-none run")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-physics"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--summarize", type=Path, nargs="+", help="only report these finished run directories")
    args = parser.parse_args()
    if args.summarize:
        report = {"runs": [run_figures(out, json.loads((out / "run.json").read_text())["config"]["physics"]["potential"])
                           for out in args.summarize]}  # fmt: skip
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        return
    report = {"preset": args.preset, "target": args.target, "candidates": args.candidates, "steps": args.steps,
              "seed": args.seed, "runs": [run_one(args, physics) for physics in args.physics]}  # fmt: skip
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
