"""Ensembles, disagreement-aware objectives and a held-out judge (issue 13): measurements.

Two parts, each writing ``benchmarks/results/ensembles_<part>.json``:

* ``matrix`` — every band-gap model the package ships, on the perov-5 test split (3,785 five-site cubic perovskites,
  GLLB-SC DFT gaps, ``/work/shared/data/perov5_test.csv.gz``): for every pair of models (and each model against the
  DFT gap) the mean absolute difference, the Pearson correlation and the fraction of structures on which they agree
  within 0.2 eV (the band-gap windows' evaluation margin).
* ``runs`` — ``perovskite-bandgap`` at 2.5 eV and ``wide-bandgap`` at 4.0 eV, single model vs ensemble, all judged
  by ``megnet-mf-band-gap:fidelity=pbe`` (in no ensemble): success, judge agreement on the successes, distinct
  successes, wall time. Variants are run one after another in one process so that machine load affects them alike.

    python benchmarks/ensembles.py matrix
    python benchmarks/ensembles.py runs [--candidates 256] [--steps 200] [--physics none] [--threads 1]
    python benchmarks/ensembles.py report      # benchmarks/results/ensembles.md from the JSON files
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path("/work/shared/data/perov5_test.csv.gz")
#: Every band-gap model the package ships (spec → label).
BAND_GAP_MODELS = {
    "cgcnn-band-gap": "CGCNN (MP)",
    "megnet-band-gap": "MEGNet 2018 (MP, gated)",
    "megnet-mf-band-gap:fidelity=pbe": "MEGNet MF, PBE",
    "megnet-mf-band-gap:fidelity=gllb": "MEGNet MF, GLLB-SC",
    "megnet-mf-band-gap:fidelity=hse": "MEGNet MF, HSE",
    "megnet-mf-band-gap:fidelity=exp": "MEGNet MF, exp.",
}
JUDGE = "megnet-mf-band-gap:fidelity=pbe"
#: Optimised band-gap predictor of each variant and the band-gap window's agreement (the other properties keep the
#: preset's models). ``all``: every member inside the window (the default); ``value``: the ensemble mean only.
VARIANTS = {
    "single-cgcnn": ("cgcnn-band-gap", "all"),
    "ensemble-all": ("ensemble[cgcnn-band-gap,megnet-band-gap]", "all"),
    "ensemble-mean": ("ensemble[cgcnn-band-gap,megnet-band-gap]", "value"),
}
AGREE_EV = 0.2


def _matrix(limit: int | None, batch: int, threads: int) -> dict:
    import numpy as np
    import pandas as pd
    import torch
    from pymatgen.core import Structure

    from smoacs.crystal.batch import CrystalBatch
    from smoacs.predictors.registry import load_predictor

    torch.set_num_threads(threads)
    frame = pd.read_csv(DATA)
    if limit:
        frame = frame.iloc[:limit]
    structures = [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]
    values: dict[str, np.ndarray] = {"DFT (GLLB-SC, min of direct/indirect)": np.minimum(frame["dir_gap"], frame["ind_gap"]).to_numpy()}
    timings = {}
    for spec, label in BAND_GAP_MODELS.items():
        predictor = load_predictor(spec)
        start = time.perf_counter()
        out = []
        for i in range(0, len(structures), batch):
            crystals = CrystalBatch.from_structures(structures[i : i + batch])
            predictor.rebuild(crystals)
            with torch.no_grad():
                out.append(predictor.final(crystals).double().numpy())
        values[label] = np.concatenate(out)
        timings[label] = time.perf_counter() - start
        print(f"{label}: {timings[label]:.1f} s", flush=True)
    labels = list(values)
    dft = values[labels[0]]
    subsets = {"all": np.ones(len(dft), dtype=bool), "dft_gap_ge_0.5": dft >= 0.5, "dft_gap_2.3_2.7": np.abs(dft - 2.5) <= 0.2}
    pairs = []
    for subset, mask in subsets.items():
        for a in labels:
            for b in labels:
                x, y = values[a], values[b]
                ok = np.isfinite(x) & np.isfinite(y) & mask
                diff = np.abs(x[ok] - y[ok])
                pairs.append({
                    "subset": subset, "a": a, "b": b, "n": int(ok.sum()), "mae_ev": float(diff.mean()),
                    "agree_0.2": float((diff <= AGREE_EV).mean()),
                    "pearson": float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 else math.nan,
                })  # fmt: skip
    np.savez_compressed(HERE / "results" / "ensembles_matrix_predictions.npz", material_id=frame["material_id"].to_numpy(),
                        **{label: value for label, value in values.items()})  # fmt: skip
    return {"n_structures": len(structures), "models": labels, "pairs": pairs, "predict_s": timings,
            "threads": threads, "agree_within_ev": AGREE_EV,
            "subset_sizes": {k: int(v.sum()) for k, v in subsets.items()}}  # fmt: skip


def _runs(args: argparse.Namespace) -> list[dict]:
    import smoacs

    cases = [("perovskite-bandgap", 2.5), ("wide-bandgap", 4.0)]
    report = []
    for preset, target in cases:
        if args.presets and preset not in args.presets:
            continue
        for label, (spec, agreement) in VARIANTS.items():
            if args.only and label not in args.only:
                continue
            config = smoacs.build_config(preset, target, f"{args.out}/{preset}-{target:g}-{label}")
            objectives = tuple(replace(o, agreement=agreement) if o.key == "band_gap" else o for o in config.objectives)
            config = config.with_overrides(
                candidates=args.candidates, batch_size=args.candidates, steps=args.steps, threads=args.threads,
                predictors={**config.predictors, "band_gap": spec}, judge={**config.judge, "band_gap": JUDGE},
                objectives=objectives,
            )  # fmt: skip
            config = config.with_overrides(physics={"potential": args.physics})
            start = time.perf_counter()
            result = smoacs.run(config, progress=False, overwrite=True)
            wall = time.perf_counter() - start
            s = result.summary
            entry = {"preset": preset, "target": target, "variant": label, "band_gap_predictor": spec,
                     "agreement": agreement, "judge": JUDGE,
                     "candidates": args.candidates, "steps": args.steps, "physics": args.physics,
                     "threads": args.threads, "wall_s": wall, **s}  # fmt: skip
            report.append(entry)
            print(
                f"{preset} {target:g} {label:14s} success {s['success_rate']:.3f} | judge agreement "
                f"{s.get('band_gap_judge_agreement', '')} (MAE {s.get('band_gap_judge_mae', '')}) | distinct "
                f"{s['distinct_success_formulas']} | wall {wall:.0f} s",
                flush=True,
            )
            (HERE / "results" / f"ensembles_runs{args.tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _fmt(value: object, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and not isinstance(value, bool) else (str(value) or "–")


def _report() -> str:
    """Markdown tables of the measured files (``benchmarks/results/ensembles_*.json``)."""
    lines = ["# Ensembles and the held-out judge: measured figures", "",
             "Generated by `python benchmarks/ensembles.py report` from the JSON files next to this one.", ""]  # fmt: skip
    for tag, title in (("", "physics none"), ("_physics", "physics chgnet (the default)")):
        path = HERE / "results" / f"ensembles_runs{tag}.json"
        if not path.is_file():
            continue
        runs = json.loads(path.read_text())
        lines += [f"## Runs, {title}", "",
                  "| preset, target | optimised band gap | agreement | candidates × steps | success | judge agreement "
                  "(on successes) | judge MAE, eV | median spread, eV | distinct formulas | wall s | wall / single |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        single = {(r["preset"], r["target"]): r["wall_s"] for r in runs if r["variant"] == "single-cgcnn"}
        for r in runs:
            ratio = r["wall_s"] / single[(r["preset"], r["target"])] if (r["preset"], r["target"]) in single else ""
            lines.append(
                f"| {r['preset']} {r['target']:g} | `{r['band_gap_predictor']}` | {r['agreement']} | "
                f"{r['candidates']} × {r['steps']} | {_fmt(r['success_rate'], 3)} | "
                f"{_fmt(r.get('band_gap_judge_agreement'), 3)} | {_fmt(r.get('band_gap_judge_mae'))} | "
                f"{_fmt(r.get('band_gap_spread_median', '–'))} | {r['distinct_success_formulas']} | {r['wall_s']:.0f} | "
                f"{_fmt(ratio, 1)} |"
            )
        lines += ["", f"Judge: `{JUDGE}` (held out from every variant). Threads: {runs[0]['threads']}.", ""]
    path = HERE / "results" / "ensembles_matrix.json"
    if path.is_file():
        matrix = json.loads(path.read_text())
        labels = matrix["models"]
        sizes = matrix.get("subset_sizes", {"all": matrix["n_structures"]})
        for subset, size in sizes.items():
            if size < 20:
                lines += [f"Subset `{subset}`: only {size} structures, too few for a matrix (in the JSON file).", ""]
                continue
            pairs = [p for p in matrix["pairs"] if p.get("subset", "all") == subset]
            lines += [f"## Agreement matrix, perov-5 test split, subset `{subset}` ({size} structures)", "",
                      "Upper triangle: fraction within 0.2 eV; lower triangle: mean |difference|, eV.", "",
                      "| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]  # fmt: skip
            for i, a in enumerate(labels):
                cells = []
                for j, b in enumerate(labels):
                    pair = next(p for p in pairs if p["a"] == a and p["b"] == b)
                    cells.append("–" if i == j else _fmt(pair["agree_0.2"]) if j > i else _fmt(pair["mae_ev"]))
                lines.append(f"| {a} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("matrix", "runs", "report"))
    parser.add_argument("--limit", type=int, help="matrix: only the first N structures")
    parser.add_argument("--batch", type=int, default=256, help="matrix: structures per prediction batch")
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--physics", choices=("none", "chgnet"), default="none")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="runs: only these variants")
    parser.add_argument("--presets", nargs="*", help="runs: only these presets")
    parser.add_argument("--tag", default="", help="runs: suffix of the result file")
    parser.add_argument("--out", default="runs/bench-ensembles")
    args = parser.parse_args()
    (HERE / "results").mkdir(exist_ok=True)
    if args.part == "report":
        (HERE / "results" / "ensembles.md").write_text(_report() + "\n")
    elif args.part == "matrix":
        report = _matrix(args.limit, args.batch, args.threads)
        (HERE / "results" / "ensembles_matrix.json").write_text(json.dumps(report, indent=2) + "\n")
    else:
        _runs(args)


if __name__ == "__main__":
    main()
