"""What DFT already knows about the successes (issue 16), and how the shipped band-gap models fare on perov-5's DFT gaps.

Two parts, both written to ``benchmarks/results/known_values.json`` (merged, so either can be rerun alone):

* ``runs``: ``perovskite-bandgap`` at 0.5 and 2.5 eV, plain (``physics: none``) and with CHGNet in the loop (the
  default physics), and ``superconductor-tc`` (plain and physics); per run: successes, successes with a known value,
  matched by structure vs composition, and per property how many the reference value confirms / contradicts.
* ``calibration``: each shipped band-gap model on the perov-5 test split (3,785 cells; GLLB-SC gaps, Castelli et al.):
  MAE, MAE over DFT metals and over DFT semiconductors, and how often a DFT metal (gap 0) is called a semiconductor
  (predicted gap > 0.1 eV, and > 0.5 eV).

    python benchmarks/known_values.py runs [--candidates 256] [--physics-candidates 256] [--steps 200]
    python benchmarks/known_values.py calibration [--limit N]
    python benchmarks/known_values.py every-candidate   # known values of every candidate of the finished runs
    python benchmarks/known_values.py report            # results/known_values.md from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "known_values.json"
#: The shared data directory: $SMOACS_SHARED_DATA, else ``../shared/data`` beside the checkout, else /work/shared/data.
DATA = next(
    (p for p in (Path(os.environ.get("SMOACS_SHARED_DATA", "")), HERE.parent.parent / "shared" / "data",
                 Path("/work/shared/data")) if str(p) != "." and (p / "perov5_test.csv.gz").is_file()),
    HERE.parent.parent / "shared" / "data",
)  # fmt: skip
BAND_GAP_MODELS = (
    "cgcnn-band-gap",
    "megnet-band-gap",
    "megnet-mf-band-gap:fidelity=pbe",
    "megnet-mf-band-gap:fidelity=gllb",
    "megnet-mf-band-gap:fidelity=hse",
    "megnet-mf-band-gap:fidelity=exp",
)
METAL_THRESHOLDS = (0.1, 0.5)  # eV: a prediction above this is "a semiconductor"
RUNS = (
    ("perovskite-bandgap", 0.5, "none"),
    ("perovskite-bandgap", 2.5, "none"),
    ("perovskite-bandgap", 0.5, "chgnet"),
    ("perovskite-bandgap", 2.5, "chgnet"),
    ("superconductor-tc", 5.0, "none"),
    ("superconductor-tc", 5.0, "chgnet"),
)
KEYS = ("n_candidates", "n_success", "n_novel_success", "n_success_known", "n_success_known_structure",
        "n_success_known_composition", "n_success_known_contradicted")  # fmt: skip


def _merge(part: str, payload: object) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[part] = payload
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def runs(args: argparse.Namespace) -> None:
    """The preset runs and their known-value counts."""
    import smoacs
    from smoacs.physics.settings import PhysicsSettings
    from smoacs.runner import run

    out = []
    for preset, target, physics in RUNS:
        candidates = args.candidates if physics == "none" else args.physics_candidates
        config = smoacs.build_config(preset, target, f"{args.out}/{preset}-{target:g}-{physics}")
        config = config.with_overrides(
            candidates=candidates, batch_size=min(candidates, config.batch_size), steps=args.steps, seed=0,
            threads=args.threads, physics=PhysicsSettings(potential=physics) if physics == "none"
            else config.physics,
        )  # fmt: skip
        start = time.perf_counter()
        result = run(config, progress=False, overwrite=True)
        wall = time.perf_counter() - start
        summary = result.summary
        entry = {"preset": preset, "target": target, "physics": physics, "wall_s": round(wall, 1)}
        entry.update({k: summary.get(k) for k in KEYS})
        entry.update({k: v for k, v in summary.items() if "_reference_" in k or k.endswith("_oracle_agreement")})
        known = [r for r in result.rows if r["success"] and r.get("reference_match")]
        entry["known_successes"] = [
            {k: r.get(k) for k in ("id", "formula", "reference_id", "reference_match", *(c for c in r if "_reference" in c))}
            for r in known if any(isinstance(r.get(c), float) for c in r if c.endswith("_reference"))
        ]
        out.append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k != "known_successes"}), flush=True)
        _merge("runs", out)


def calibration(args: argparse.Namespace) -> None:
    """Band-gap models against perov-5 test-split GLLB-SC gaps."""
    import numpy as np
    import pandas as pd
    from pymatgen.core import Structure

    from smoacs.predict import load_predictors, predict_structures

    frame = pd.read_csv(DATA / "perov5_test.csv.gz")
    if args.limit:
        frame = frame.iloc[: args.limit]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = [(str(m), Structure.from_str(c, fmt="cif")) for m, c in zip(frame["material_id"], frame["cif"], strict=True)]
    dft = frame["ind_gap"].to_numpy(dtype=float)  # the fundamental gap (indirect ≤ direct)
    metal = dft <= 0.0
    out = {"n": len(items), "n_dft_metals": int(metal.sum()), "thresholds_eV": list(METAL_THRESHOLDS), "models": []}
    for spec in BAND_GAP_MODELS:
        start = time.perf_counter()
        predictors = load_predictors([spec])
        rows = predict_structures(predictors, items, batch_size=256)
        pred = np.array([row.values.get(spec, np.nan) for row in rows], dtype=float)
        ok = np.isfinite(pred)
        error = np.abs(pred - dft)
        entry = {
            "model": spec,
            "n_predicted": int(ok.sum()),
            "mae": float(np.mean(error[ok])),
            "mae_dft_metals": float(np.mean(error[ok & metal])),
            "mae_dft_semiconductors": float(np.mean(error[ok & ~metal])),
            "median_pred_dft_metals": float(np.median(pred[ok & metal])),
            "wall_s": round(time.perf_counter() - start, 1),
        }
        for threshold in METAL_THRESHOLDS:
            entry[f"metal_called_semiconductor_{threshold:g}"] = float(np.mean(pred[ok & metal] > threshold))
            entry[f"semiconductor_called_metal_{threshold:g}"] = float(np.mean(pred[ok & ~metal] <= threshold))
        out["models"].append(entry)
        print(json.dumps(entry), flush=True)
        _merge("calibration", out)


def every_candidate(args: argparse.Namespace) -> None:
    """Known values of *every* candidate of the finished plain runs (``known_values: all``; no re-prediction: the
    judged structures are read back and matched)."""
    from smoacs.config import RunConfig
    from smoacs.evaluate.known import known_summary
    from smoacs.evaluate.matching import match_and_order
    from smoacs.evaluate.rerun import run_known_values, run_references
    from smoacs.io.rundir import RunDirectory

    out = []
    for preset, target, physics in RUNS:
        path = Path(f"{args.out}/{preset}-{target:g}-{physics}")
        if not (path / "result.csv").is_file():
            continue
        directory = RunDirectory(path)
        files = directory.read_run()
        config = RunConfig.from_dict(files.config).with_overrides(known_values="all")
        sizes = files.arrays["n_atoms"]
        rows = [{"id": r["id"], "success": r["success"] == "True", "formula": r["formula"]} for r in files.rows]
        structures = [directory.read_structure(r, int(n)) for r, n in zip(files.rows, sizes, strict=True)]
        references = run_references(config.templates.path, config.evaluation.references)
        rows = match_and_order(rows, structures, references, known=run_known_values(config, references))
        candidates = [{**r, "success": True} for r in rows]  # counts over every candidate
        summary = known_summary(candidates)
        entry = {"preset": preset, "target": target, "physics": physics, "n_candidates": len(rows)}
        entry.update({k: v for k, v in summary.items() if k.startswith("n_") or k.endswith(("_n", "_contradicted"))})
        out.append(entry)
        print(json.dumps(entry), flush=True)
    _merge("every_candidate", out)


def _pct(value: object) -> str:
    return "–" if value in (None, "") else f"{100 * float(value):.0f} %"  # type: ignore[arg-type]


def report(args: argparse.Namespace) -> None:  # noqa: ARG001
    """``results/known_values.md`` from ``results/known_values.json``."""
    data = json.loads(RESULTS.read_text())
    lines = ["# What DFT already knows about the successes (`benchmarks/known_values.py`)", ""]
    if "runs" in data:
        lines += ["| preset | target | physics | candidates | successes | with a known value | by structure | by "
                  "composition | contradicted | band gap: confirmed / contradicted / undecided | E_f (heat of formation):"
                  " confirmed / contradicted / undecided | Tc: confirmed / contradicted / undecided | oracle agreement "
                  "(gap or Tc) | wall s |", "|" + "---|" * 14]  # fmt: skip
        for e in data["runs"]:
            cells = []
            for p in ("band_gap", "formation_energy", "tc"):
                n = e.get(f"{p}_reference_n")
                cells.append("–" if n is None else f"{e[f'{p}_reference_confirmed']} / {e[f'{p}_reference_contradicted']}"
                             f" / {e[f'{p}_reference_undecided']} of {n}")  # fmt: skip
            oracle = e.get("band_gap_oracle_agreement", e.get("tc_oracle_agreement"))
            lines.append(f"| {e['preset']} | {e['target']:g} | {e['physics']} | {e['n_candidates']} | {e['n_success']} | "
                         f"{e['n_success_known']} | {e['n_success_known_structure']} | {e['n_success_known_composition']}"
                         f" | {e['n_success_known_contradicted']} | {' | '.join(cells)} | {_pct(oracle)} | {e['wall_s']} |")  # fmt: skip
        lines += ["", "Known successes (reference entry, match, reference values):", ""]
        for e in data["runs"]:
            for k in e["known_successes"]:
                values = ", ".join(f"{c[: -len('_reference')]} {k[c]:.3g} ({k.get(c + '_theory', '')}"
                                   f"{', ok' if k.get(c + '_ok') is True else ', contradicted' if k.get(c + '_ok') is False else ''})"
                                   for c in k if c.endswith("_reference") and isinstance(k[c], float))  # fmt: skip
                lines.append(f"- {e['preset']} {e['target']:g} {e['physics']}: {k['id']} {k['formula']} = "
                             f"{k['reference_id']} ({k['reference_match']}): {values}")  # fmt: skip
        lines.append("")
    if "calibration" in data:
        c = data["calibration"]
        t = c["thresholds_eV"]
        lines += [f"Band-gap models on the perov-5 test split ({c['n']} cells, {c['n_dft_metals']} DFT metals; "
                  "GLLB-SC gaps, Castelli et al.):", "",
                  "| model | MAE (eV) | MAE on DFT metals | MAE on DFT semiconductors | median prediction for DFT metals "
                  f"| DFT metal called a semiconductor (> {t[0]:g} eV) | (> {t[1]:g} eV) | DFT semiconductor called a "
                  f"metal (≤ {t[0]:g} eV) |", "|" + "---|" * 8]  # fmt: skip
        for m in c["models"]:
            lines.append(f"| `{m['model']}` | {m['mae']:.3f} | {m['mae_dft_metals']:.3f} | {m['mae_dft_semiconductors']:.3f}"
                         f" | {m['median_pred_dft_metals']:.3f} | {_pct(m[f'metal_called_semiconductor_{t[0]:g}'])} | "
                         f"{_pct(m[f'metal_called_semiconductor_{t[1]:g}'])} | {_pct(m[f'semiconductor_called_metal_{t[0]:g}'])} |")  # fmt: skip
        lines.append("")
    (RESULTS.parent / "known_values.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    r = sub.add_parser("runs")
    r.add_argument("--candidates", type=int, default=256)
    r.add_argument("--physics-candidates", type=int, default=256)
    r.add_argument("--steps", type=int, default=200)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--out", default="runs/bench-known")
    c = sub.add_parser("calibration")
    c.add_argument("--limit", type=int, default=0)
    e = sub.add_parser("every-candidate")
    e.add_argument("--out", default="runs/bench-known")
    sub.add_parser("report")
    args = parser.parse_args()
    {"runs": runs, "calibration": calibration, "every-candidate": every_candidate, "report": report}[args.part](args)


if __name__ == "__main__":
    main()
