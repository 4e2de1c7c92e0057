"""One optimisation step's predictor work, this tree against another ``src`` tree, alternating processes A B A B.

Each child process realises the soft batch of the real design space, runs both CGCNN predictors (band gap =
regression + classifier, formation energy: three networks) and the backward to lattice, coordinates and species
probabilities, and reports the median CPU time (``time.process_time``) and wall time per step after one warm-up.
Alternating the two trees round after round lets machine load hit both alike; the ratio is the figure.
``--retain`` (default ``auto``) makes each child call ``smoacs.runtime.retain_freed_memory`` first, as ``smoacs run``
does, where its tree has it; ``off`` never does (to see the allocator setting's share).

    python benchmarks/step_ab.py --before-src /tmp/old/src [--threads 2] [--rounds 3] [--steps 5] [--retain off]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = {"unit cells 256": (256, 1), "3x3x3 x 32": (32, 3)}


def child(n: int, supercell: int, steps: int, threads: int, retain: str) -> None:
    import resource
    import time

    import torch

    from smoacs import runtime

    retained = retain == "auto" and hasattr(runtime, "retain_freed_memory") and bool(runtime.retain_freed_memory())

    from smoacs.design import DesignSpace
    from smoacs.predictors import load_predictor
    from smoacs.templates import perovskite_templates

    torch.set_num_threads(threads)
    space = DesignSpace(perovskite_templates(n, seed=0, supercell=supercell), seed=0)
    predictors = [load_predictor("cgcnn-band-gap"), load_predictor("cgcnn-formation-energy")]
    start = space.realize(1e-2).crystals.detach().with_cache()
    for predictor in predictors:
        predictor.rebuild(start)
    times = []
    for _ in range(steps + 1):
        cpu, wall = time.process_time(), time.perf_counter()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        crystals = space.realize(1e-2).crystals.with_cache()
        leaves = [crystals.lattice, crystals.frac_coords, crystals.species_probs]
        torch.autograd.grad(sum(p(crystals).sum() for p in predictors), leaves)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        times.append((time.process_time() - cpu, time.perf_counter() - wall, faults))
    times = times[1:]
    medians = {key: statistics.median(t[i] for t in times) for i, key in enumerate(("cpu_s", "wall_s", "minor_faults"))}
    print(json.dumps({**medians, "retained": retained}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-src", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--retain", choices=("auto", "off"), default="auto")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "step_ab.json")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.steps, args.threads, args.retain)
        return
    trees = {"before": str(args.before_src.resolve()), "after": str(HERE.parent / "src")}
    report: dict = {"threads": args.threads, "steps": args.steps, "retain": args.retain, "load_at_start": os.getloadavg()}
    for name, (n, supercell) in CASES.items():
        runs: dict[str, list[dict]] = {tree: [] for tree in trees}
        for _ in range(args.rounds):
            for tree, src in trees.items():
                env = {**os.environ, "PYTHONPATH": src}
                command = [sys.executable, __file__, "--before-src", "-", "--child", str(n), str(supercell),
                           "--steps", str(args.steps), "--threads", str(args.threads), "--retain", args.retain]  # fmt: skip
                out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
                runs[tree].append(json.loads(out.strip().splitlines()[-1]))
        keys = ("cpu_s", "wall_s", "minor_faults")
        median = {t: {k: statistics.median(r[k] for r in rs) for k in keys} for t, rs in runs.items()}
        ratio = {k: median["after"][k] / median["before"][k] for k in ("cpu_s", "wall_s")}
        report[name] = {"runs": runs, "median": median, "after_over_before": ratio}
        print(name, json.dumps(median), json.dumps(ratio), flush=True)
    report["load_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
