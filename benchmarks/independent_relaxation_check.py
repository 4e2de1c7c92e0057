"""Independent re-relaxation of a run's successes with CHGNet's own serial optimiser (ASE FIRE + cell filter).

For every success of a run (or a seeded random sample of ``--n``), the structure its verdict is about (the ``cif``
column: the relaxed cell for physics runs) is displaced by ``--perturb`` Å per atom in a random direction (seeded,
independent of the run's own perturbation), relaxed with ``chgnet.model.StructOptimizer`` (fmax 0.05 eV/Å, 300
steps, cell and positions), and re-checked by ``smoacs evaluate`` on a copy of the run directory with physics off,
so every criterion (windows re-predicted, tolerance, neutrality, minimum distance, perovskite geometry) is judged by
the package's own code on the independently relaxed cells.

    python benchmarks/independent_relaxation_check.py runs/pbg [--n 40] [--json benchmarks/results/x.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def perturbed(structure, distance: float, rng: np.random.Generator):  # noqa: ANN001, ANN201
    """A copy with every site displaced by ``distance`` Å in a random direction."""
    out = structure.copy()
    vectors = rng.normal(size=(len(out), 3))
    vectors *= distance / np.linalg.norm(vectors, axis=1, keepdims=True)
    for i, vector in enumerate(vectors):
        out.translate_sites([i], vector, frac_coords=False, to_unit_cell=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--n", type=int, help="check a seeded random sample of this many successes")
    parser.add_argument("--perturb", type=float, default=0.02, help="Å per atom before relaxing (default 0.02)")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from chgnet.model import StructOptimizer

    from smoacs.evaluate.rerun import evaluate_run
    from smoacs.evaluate.summary import criterion_columns
    from smoacs.io.rundir import read_cif
    from smoacs.io.writers import to_cif

    with open(args.run_dir / "result.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    successes = [row for row in rows if row["success"] == "True"]
    rng = np.random.default_rng(args.seed)
    if args.n is not None and args.n < len(successes):
        successes = [successes[i] for i in sorted(rng.choice(len(successes), args.n, replace=False))]
    work = Path(tempfile.mkdtemp(prefix="independent-"))
    copy = work / "run"
    shutil.copytree(args.run_dir, copy, ignore=shutil.ignore_patterns("evaluation*", "report.md"))
    meta = json.loads((copy / "run.json").read_text())
    meta["config"].setdefault("physics", {})["potential"] = "none"  # judge the given cells, do not relax again
    (copy / "run.json").write_text(json.dumps(meta))

    optimizer = StructOptimizer()
    start = time.perf_counter()
    converged, volume = {}, {}
    for row in successes:
        structure = read_cif(args.run_dir / row["cif"], int(row["n_atoms"]))  # sites in the run's order
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = optimizer.relax(perturbed(structure, args.perturb, rng), fmax=0.05, steps=300, relax_cell=True, verbose=False)
        final = result["final_structure"]
        converged[row["id"]] = len(result["trajectory"].energies) < 301
        volume[row["id"]] = final.volume / structure.volume - 1
        (copy / row["cif"]).write_text(to_cif(final))  # the package's writer keeps the site order
    relax_s = time.perf_counter() - start
    evaluation = evaluate_run(copy, device="cpu", write=False)
    by_id = {row["id"]: row for row in evaluation.rows}
    kept = [i for i in converged if by_id[i]["success"] and converged[i]]
    report = {
        "run": str(args.run_dir),
        "successes_checked": len(successes),
        "still_successes": len(kept),
        "kept_fraction": len(kept) / len(successes) if successes else None,
        "converged": sum(converged.values()),
        "median_abs_volume_change": float(np.median(np.abs(list(volume.values())))) if volume else None,
        "failing_criteria": {
            key: sum(not by_id[i][key] for i in converged)
            for key in criterion_columns(list(evaluation.rows[0]))
        },
        "serial_relaxation_s": round(relax_s, 1),
        "perturb_A": args.perturb,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
