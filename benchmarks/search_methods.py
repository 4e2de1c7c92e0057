"""Search methods side by side: gradient, TPE, random, GA and enumeration on one preset, in one process.

Every method is a ``smoacs run`` (``runner.run``) of the same preset, target, seed, candidates and physics setting,
differing only in ``search.method`` and ``search.budget``; the table is ``smoacs compare``'s
(:mod:`smoacs.evaluate.compare`), with coverage of the ``enumerate`` run's successes (the ground truth of the
single-cell space: every single-anion composition, lattice scanned and relaxed).

1. **Equal budget**: gradient (``--steps``), random, tpe, ga at the same predictor evaluations per candidate;
   tpe also with single anions (``tpe-single``: the reference TPE's (A, B, X) space).
2. **Ground truth**: enumerate (``--enumerate-budget``), single anions.
3. **Equal wall time**: random, tpe, ga again with the budget that should take the gradient run's search time
   (each method's seconds per round measured in step 1; its actual time is reported, not the estimate).

    python benchmarks/search_methods.py --candidates 64 --threads 1 [--physics none] [--target 2.5]

Writes OUT/<label>/ run directories and ``benchmarks/results/search_methods_<preset>_<target>_<physics>.{md,csv,json}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_method(args: argparse.Namespace, label: str, method: str, budget: int, anions: str = "auto") -> Path:
    """One run of ``method`` at ``budget``; its directory (``--reuse LABEL``: the finished one already there)."""
    if label in getattr(args, "reuse", ()):
        meta = json.loads((args.out / label / "run.json").read_text())
        assert meta["status"] == "finished" and meta["search"]["budget"] == budget, f"{label}: cannot reuse"
        return args.out / label
    from smoacs.physics.settings import PhysicsSettings
    from smoacs.presets import build_config
    from smoacs.runner import run
    from smoacs.search import SearchSettings

    out = args.out / label
    config = build_config(args.preset, args.target, str(out))
    changes = {"steps": budget} if method == "gradient" else {}
    config = config.with_overrides(
        candidates=args.candidates, batch_size=args.candidates, seed=args.seed, threads=args.threads,
        physics=PhysicsSettings(args.physics) if args.physics == "none" else config.physics,
        search=SearchSettings(method, budget, anions), **changes,
    ).validate()  # fmt: skip
    start = time.perf_counter()
    run(config, progress=False, overwrite=True)
    print(f"{label}: {method} budget {budget} in {time.perf_counter() - start:.1f} s", flush=True)
    return out


def search_seconds(out: Path) -> float:
    """The run's search time (mini-batch wall time less evaluation), s."""
    batches = json.loads((out / "run.json").read_text())["timings"]["batches"]
    return sum(b["wall_s"] - b.get("evaluate_s", 0.0) for b in batches)


def main() -> None:
    from smoacs.evaluate.compare import compare_runs, markdown_table
    from smoacs.io.writers import csv_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="perovskite-bandgap")
    parser.add_argument("--target", type=float, default=2.5)
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200, help="the gradient's steps = the equal budget")
    parser.add_argument("--enumerate-budget", type=int, default=40)
    parser.add_argument("--physics", choices=("none", "chgnet"), default="none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-budget", type=int, default=5000, help="cap of the equal-wall-time budgets")
    parser.add_argument("--skip", nargs="*", default=(), help="labels to leave out (e.g. enumerate)")
    parser.add_argument("--reuse", nargs="*", default=(), help="labels whose finished run in OUT is kept, not rerun")
    parser.add_argument("--out", type=Path, default=Path("/tmp/search_methods"))
    args = parser.parse_args()
    plan = [("gradient", "gradient", args.steps, "auto"), ("random", "random", args.steps, "auto"),
            ("tpe", "tpe", args.steps, "auto"), ("tpe-single", "tpe", args.steps, "single"),
            ("ga", "ga", args.steps, "auto"), ("enumerate", "enumerate", args.enumerate_budget, "auto")]  # fmt: skip
    dirs: dict[str, Path] = {}
    warm = argparse.Namespace(**{**vars(args), "candidates": 2})
    if len(args.reuse) < len(plan):
        run_method(warm, "warm-up", "gradient", 1)  # imports and model files cached before the first timed run
    for label, method, budget, anions in plan:
        if label not in args.skip:
            dirs[label] = run_method(args, label, method, budget, anions)
    gradient_s = search_seconds(dirs["gradient"])
    budgets = {}
    for label in ("random", "tpe", "ga"):
        if label in dirs and f"{label}-wall" not in args.skip:
            per_round = search_seconds(dirs[label]) / args.steps
            if per_round <= 0:  # its mini-batch failed: nothing to scale
                continue
            budgets[label] = max(1, min(args.max_budget, round(gradient_s / per_round)))
            dirs[f"{label}-wall"] = run_method(args, f"{label}-wall", label, budgets[label])
    stem = HERE / "results" / f"search_methods_{args.preset}_{args.target:g}eV_{args.physics}_{args.candidates}"
    rows, md, table = compare_runs(list(dirs.values()), stem)
    for row, label in zip(rows, dirs, strict=True):
        row["run"] = label
    md.write_text(markdown_table(rows))
    table.write_text(csv_text(rows, list(rows[0]), header=True))
    meta = {"preset": args.preset, "target": args.target, "candidates": args.candidates, "steps": args.steps,
            "enumerate_budget": args.enumerate_budget, "physics": args.physics, "seed": args.seed,
            "threads": args.threads, "gradient_search_s": gradient_s, "equal_wall_budgets": budgets, "rows": rows}  # fmt: skip
    report = stem.parent / f"{stem.name}.json"
    report.write_text(json.dumps(meta, indent=2) + "\n")
    print(markdown_table(rows))
    print(f"wrote {md}, {table}, {report}")


if __name__ == "__main__":
    main()
