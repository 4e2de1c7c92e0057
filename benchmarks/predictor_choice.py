"""Which predictor should `perovskite-bandgap` optimise through by default? (issue: MEGNet port, item 7)

Runs the preset (256 candidates × 200 steps, seed 0, target 2.5 eV) twice — optimising through CGCNN with MEGNet as
the independent oracle, and the other way round — and reports success, criterion rates, oracle agreement and wall
time. Writes ``benchmarks/results/predictor_choice.json``.

    python benchmarks/predictor_choice.py [--target 2.5] [--candidates 256] [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHOICES = {
    "cgcnn": {"band_gap": "cgcnn-band-gap", "formation_energy": "cgcnn-formation-energy"},
    "megnet": {"band_gap": "megnet-band-gap", "formation_energy": "megnet-formation-energy"},
}


def main() -> None:
    import smoacs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=2.5)
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default="runs/bench-choice")
    args = parser.parse_args()
    report = []
    for label, predictors in CHOICES.items():
        other = next(v for k, v in CHOICES.items() if k != label)
        config = smoacs.build_config("perovskite-bandgap", args.target, f"{args.out}/{label}")
        config = config.with_overrides(
            candidates=args.candidates,
            predictors=predictors,
            judge=other,
            optimizer=replace(config.optimizer, steps=args.steps),
        )
        start = time.perf_counter()
        result = smoacs.run(config, progress=False)
        wall = time.perf_counter() - start
        s = result.summary
        report.append({"optimised_through": label, "oracle": next(k for k in CHOICES if k != label), "wall_s": wall, **s})
        print(
            f"{label:6s} success {s['success_rate']:.3f} (gap {s['band_gap_rate']:.3f}, E_f {s['formation_energy_rate']:.3f},"
            f" t {s['tolerance_rate']:.3f}) | oracle agreement: gap {s['band_gap_judge_agreement']:.3f}"
            f" (MAE {s['band_gap_judge_mae']:.2f} eV), E_f {s['formation_energy_judge_agreement']:.3f}"
            f" (MAE {s['formation_energy_judge_mae']:.2f} eV/atom) | distinct {s['distinct_success_formulas']}"
            f" | wall {wall:.0f} s",
            flush=True,
        )
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "predictor_choice.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
