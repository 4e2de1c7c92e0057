"""CGCNN fused convolution stack (issue 15): parity and speed against the autograd path, in one process.

One optimisation step's predictor work (realise the soft batch, both CGCNN predictors = three networks, backward)
on the real design spaces, with ``CGCNNNet.fused`` (and ``bond_floor``) toggled between repetitions A B A B …, so
machine load affects both sides alike. Reports CPU-time (``time.process_time``) and wall medians and their ratio,
and the parity of predictions and gradients (lattice, coordinates, species probabilities) on the same inputs.

    python benchmarks/cgcnn_fused.py [--threads 1] [--reps 8] [--out benchmarks/results/cgcnn_fused.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from smoacs.design import DesignSpace
from smoacs.predictors import load_predictor
from smoacs.predictors.cgcnn import CGCNNNet
from smoacs.templates import perovskite_templates

HERE = Path(__file__).resolve().parent
VARIANTS = {"autograd": (False, 0.0), "fused": (True, 0.0), "fused+columns": (True, CGCNNNet.bond_floor)}
CASES = {"unit cells 256": (256, 1), "3x3x3 x 32": (32, 3)}


def _set(variant: str) -> None:
    CGCNNNet.fused, CGCNNNet.bond_floor = VARIANTS[variant]


def _step(space: DesignSpace, predictors: list) -> tuple[torch.Tensor, ...]:
    """Values and input gradients of one step (``sum`` of both predictors' outputs)."""
    crystals = space.realize(1e-2).crystals.with_cache()
    leaves = [crystals.lattice, crystals.frac_coords, crystals.species_probs]
    values = [p(crystals) for p in predictors]
    grads = torch.autograd.grad(sum(v.sum() for v in values), leaves)
    return (*(v.detach() for v in values), *grads)


def run_case(n: int, supercell: int, reps: int) -> dict:
    space = DesignSpace(perovskite_templates(n, seed=0, supercell=supercell), seed=0)
    predictors = [load_predictor("cgcnn-band-gap"), load_predictor("cgcnn-formation-energy")]
    start = space.realize(1e-2).crystals.detach().with_cache()
    for predictor in predictors:
        predictor.rebuild(start)
    outputs = {}
    for variant in VARIANTS:
        _set(variant)
        outputs[variant] = _step(space, predictors)
    names = ["band_gap", "formation_energy", "d/d lattice", "d/d frac_coords", "d/d species_probs"]
    parity = {
        variant: {name: float((a - b).abs().max() / b.abs().max()) for name, a, b in
                  zip(names, outputs[variant], outputs["autograd"], strict=True)}  # fmt: skip
        for variant in VARIANTS if variant != "autograd"
    }
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for _ in range(reps):
        for variant in VARIANTS:
            _set(variant)
            cpu, wall = time.process_time(), time.perf_counter()
            _step(space, predictors)
            times[variant].append((time.process_time() - cpu, time.perf_counter() - wall))
    _set("fused+columns")
    median = {v: {"cpu_s": statistics.median(t[0] for t in ts), "wall_s": statistics.median(t[1] for t in ts)}
              for v, ts in times.items()}  # fmt: skip
    ratio = {v: median[v]["cpu_s"] / median["autograd"]["cpu_s"] for v in VARIANTS}
    return {"atoms": n * 5 * supercell**3, "median": median, "cpu_ratio_to_autograd": ratio, "parity": parity}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cgcnn_fused.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"threads": args.threads, "reps": args.reps, "load_at_start": os.getloadavg()}
    for name, (n, supercell) in CASES.items():
        report[name] = run_case(n, supercell, args.reps)
        print(name, json.dumps(report[name]["cpu_ratio_to_autograd"]), json.dumps(report[name]["parity"]), flush=True)
    report["load_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
