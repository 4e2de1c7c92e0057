"""How many of the equilibrium ground-truth compositions a run returns among its successes.

The ground truth is the output of ``equilibrium_ground_truth.py`` (``meeting_criteria_at_equilibrium``: the
single-anion ideal-cubic ABX3 compositions that meet the criteria at their CHGNet equilibrium lattice constant);
a run's successes (``success`` column of ``result.csv``: with physics on, the verdict on the relaxed cell) are matched
by reduced formula. Several run directories may be given (e.g. the seeds of one setting): each is reported, and so is
their union.

    python benchmarks/ground_truth_coverage.py runs/pbg-s0 runs/pbg-s1 \\
        [--truth benchmarks/results/equilibrium_ground_truth_2.5.json] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from pymatgen.core import Composition

TRUTH = Path(__file__).parent / "results" / "equilibrium_ground_truth_2.5.json"


def successes(run: Path) -> tuple[set[str], int, int]:
    """(reduced formulas of the run's successes, number of successes, number of candidates)."""
    with open(run / "result.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    found = [Composition(r["formula"]).reduced_formula for r in rows if r.get("success") == "True"]
    return set(found), len(found), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories (result.csv)")
    parser.add_argument("--truth", type=Path, default=TRUTH, help="equilibrium_ground_truth.py's JSON")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    truth = set(json.loads(args.truth.read_text())["meeting_criteria_at_equilibrium"])
    report: dict[str, object] = {"truth": str(args.truth), "n_truth": len(truth), "runs": []}
    union: set[str] = set()
    for run in args.runs:
        found, n_success, n = successes(run)
        union |= found
        report["runs"].append({  # type: ignore[union-attr]
            "run": str(run), "n_candidates": n, "n_success": n_success, "distinct_success_formulas": len(found),
            "returned": sorted(found & truth), "n_returned": len(found & truth),
        })  # fmt: skip
    report["union_returned"] = sorted(union & truth)
    report["n_union_returned"] = len(union & truth)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
