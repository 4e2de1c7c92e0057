"""Sublattice limits on `perovskite3x3x3-bandgap` (issue 18): what a chemist would make vs. free per-site choice.

For each variant — ``A=1,B=2,X=1`` (one A, one X, a B-site host with at most one substituent) and no limit — runs
the preset at the target (default 4.0 eV, 32 candidates × 200 steps, ``--physics none``, 1 thread, seed 0) and
records success, criterion rates, distinct formulas and host compositions among successes, MEGNet oracle agreement
and wall time. The no-limit run's designs are also checked against the limits afterwards (how many of them a
chemist would accept). Then the first ``--relax`` successes of each variant are relaxed with CHGNet through
``smoacs evaluate --relax chgnet`` on a copy of the run holding only those candidates (a reduced count: a 135-atom
relaxation costs minutes per cell on this CPU), giving the success rate after relaxation.

Writes ``benchmarks/results/alloys_<target>.json`` and prints a Markdown table. On a shared machine the two
variants can run as two processes (``--variant limited`` / ``--variant free``, each writing its own part) and be
merged with ``--collect``.

    python benchmarks/alloys.py [--target 4.0] [--candidates 32] [--steps 200] [--relax 3] [--relax-steps 100]
    python benchmarks/alloys.py --variant limited & python benchmarks/alloys.py --variant free; python benchmarks/alloys.py --collect
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VARIANTS = {"A=1,B=2,X=1": {"max_species": "A=1,B=2,X=1"}, "no limit": {}}
SLUGS = {"A=1,B=2,X=1": "limited", "no limit": "free"}


def run_variant(name: str, target: float, candidates: int, steps: int, out: Path) -> dict:
    """One preset run (physics none, 1 thread); its summary and wall time."""
    from smoacs.cli import main

    argv = ["run", "--preset", "perovskite3x3x3-bandgap", "--target", str(target), "--physics", "none",
            "--candidates", str(candidates), "--batch-size", str(candidates), "--steps", str(steps), "--threads", "1",
            "--out", str(out), "--overwrite", "--no-progress"]  # fmt: skip
    if VARIANTS[name]:
        argv += ["--max-species", VARIANTS[name]["max_species"]]
    start = time.perf_counter()
    assert main(argv) == 0
    wall = time.perf_counter() - start
    summary = next(csv.DictReader(open(out / "result_summary.csv")))
    return {"wall_s": wall, "summary": summary}


def limits_check(out: Path, spec: str) -> dict:
    """How many designs of a run meet ``spec`` (e.g. ``A=1,B=2,X=1``), checked on the discrete cells."""
    from smoacs.design.sublattices import parse_limits
    from smoacs.evaluate.composition import composition_check, describe_designs

    from smoacs.chem.elements import ELEMENTS

    arrays = np.load(out / "result.npz")
    sizes, species, groups = arrays["n_atoms"], arrays["species"], arrays["site_groups"]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    symbols = [[ELEMENTS[e] for e in species[a:b]] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    labels = [list(groups[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    _, designs, compositions = describe_designs(symbols, labels)
    ok, reasons = composition_check(compositions, parse_limits({}, spec))
    success = arrays["success"]
    species_per_group = {g: [len({s for s, lab in zip(sym, lab_, strict=True) if lab == g})
                             for sym, lab_ in zip(symbols, labels, strict=True)] for g in "ABX"}  # fmt: skip
    return {
        "meets_limits": float(ok.mean()),
        "successes_meeting_limits": int((ok & success).sum()),
        "median_elements_per_sublattice": {g: float(np.median(v)) for g, v in species_per_group.items()},
        "example_designs": designs[:3],
        "example_reasons": [r for r in reasons if r][:3],
    }


def subset_run(source: Path, ids: list[str], dest: Path, relax_steps: int) -> None:
    """A copy of run ``source`` holding only candidates ``ids`` (result.csv rows, structures, result.npz slices),
    with ``physics.max_steps = relax_steps`` for the relaxation check."""
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "structures").mkdir(parents=True)
    meta = json.loads((source / "run.json").read_text())
    meta["config"]["physics"]["max_steps"] = relax_steps
    meta["config"]["candidates"] = meta["config"]["batch_size"] = len(ids)
    (dest / "run.json").write_text(json.dumps(meta))
    with open(source / "result.csv") as handle:
        reader = csv.DictReader(handle)
        rows = [row for row in reader if row["id"] in ids]
        columns = reader.fieldnames
    with open(dest / "result.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        shutil.copy(source / row["cif"], dest / row["cif"])
    arrays = dict(np.load(source / "result.npz"))
    keep = np.isin(arrays["id"], ids)
    offsets = np.concatenate([[0], np.cumsum(arrays["n_atoms"])])
    sites = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in np.nonzero(keep)[0]])
    n_candidates, n_sites = len(keep), offsets[-1]
    out = {}
    for key, value in arrays.items():
        if key.startswith("history_"):
            out[key] = value[:, keep]
        elif len(value) == n_sites and key not in ("id",) and n_sites != n_candidates:
            out[key] = value[sites]
        else:
            out[key] = value[keep]
    np.savez(dest / "result.npz", **out)


def relax_successes(out: Path, n: int, relax_steps: int) -> dict:
    """``smoacs evaluate --relax chgnet`` on the first ``n`` successes of a run (a subset copy)."""
    from smoacs.evaluate.rerun import evaluate_run

    rows = list(csv.DictReader(open(out / "result.csv")))
    ids = [row["id"] for row in rows if row["success"] == "True"][:n]
    if not ids:
        return {"relaxed": 0}
    subset = out.with_name(out.name + "-relaxed-subset")
    subset_run(out, ids, subset, relax_steps)
    start = time.perf_counter()
    result = evaluate_run(subset, references=[], device="cpu", relax="chgnet")
    wall = time.perf_counter() - start
    judged = result.rows
    return {
        "relaxed": len(ids),
        "max_steps": relax_steps,
        "success_after_relaxation": sum(bool(r["success"]) for r in judged) / len(judged),
        "converged": sum(r.get("relax_status") == "converged" for r in judged) / len(judged),
        "unrelaxed_criteria_after_relaxation": sum(bool(r.get("band_gap_ok")) for r in judged) / len(judged),
        "designs": [r["design"] for r in judged],
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=4.0)
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--relax", type=int, default=3, help="successes per variant relaxed with CHGNet (0: none)")
    parser.add_argument("--relax-steps", type=int, default=100, help="FIRE steps at most per relaxation")
    parser.add_argument("--runs", default="runs/bench-alloys", help="where the run directories go")
    parser.add_argument("--variant", choices=sorted(SLUGS.values()), help="run one variant only (its own part file)")
    parser.add_argument("--collect", action="store_true", help="merge the variants' part files and print the table")
    args = parser.parse_args()
    if args.collect:
        parts = [json.loads(_path(args.target, slug).read_text()) for slug in SLUGS.values()]
        results = {**parts[0], "variants": {k: v for part in parts for k, v in part["variants"].items()}}
        _path(args.target).write_text(json.dumps(results, indent=2, default=str))
        _table(results)
        return
    import torch

    torch.set_num_threads(1)
    results: dict = {"target": args.target, "candidates": args.candidates, "steps": args.steps, "threads": 1,
                     "physics": "none", "variants": {}}  # fmt: skip
    names = [name for name in VARIANTS if args.variant in (None, SLUGS[name])]
    for name in names:
        out = Path(args.runs) / SLUGS[name]
        record = run_variant(name, args.target, args.candidates, args.steps, out)
        record["limits_check"] = limits_check(out, "A=1,B=2,X=1")
        results["variants"][name] = record
        _path(args.target, args.variant).write_text(json.dumps(results, indent=2, default=str))
    for name in names:
        if args.relax:
            out = Path(args.runs) / SLUGS[name]
            results["variants"][name]["relaxation"] = relax_successes(out, args.relax, args.relax_steps)
            results["variants"][name]["relaxation"]["max_steps"] = args.relax_steps
            _path(args.target, args.variant).write_text(json.dumps(results, indent=2, default=str))
    _table(results)


def _path(target: float, part: str | None = None) -> Path:
    return HERE / "results" / (f"alloys_{target:g}.json" if part is None else f"alloys_{target:g}_{part}.json")


def _table(results: dict) -> None:
    print("| limits | success | distinct formulas | distinct hosts | gap oracle agrees | meets A=1,B=2,X=1 | "
          "success after relaxation | wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, record in results["variants"].items():
        s = record["summary"]
        relax = record.get("relaxation", {})
        after = f"{relax['success_after_relaxation']:.2f} of {relax['relaxed']}" if relax.get("relaxed") else "–"
        print(f"| {name} | {float(s['success_rate']):.3f} | {s['distinct_success_formulas']} | "
              f"{s.get('distinct_success_hosts', '–')} | {s.get('band_gap_oracle_agreement', '–')} | "
              f"{record['limits_check']['meets_limits']:.3f} | {after} | {record['wall_s']:.0f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
