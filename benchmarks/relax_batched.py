"""Batched relaxation benchmark: the batched FIRE + Fréchet cell filter vs CHGNet's serial StructOptimizer.

Starts like the design loop produces: perovskite ABX3 cells with independent random lattice lengths in 3–7 Å
(``smoacs.templates.perovskite``), random A/B/X elements, fractional coordinates displaced by up to ±0.03; and
3×3×3 supercells (135 atoms) of the same kind. Reports wall time, where it goes (potential calls, graph rebuilds,
optimiser), statuses, steps, and the agreement of final energies with ASE FIRE + FrechetCellFilter driving
CHGNet's own calculator (``StructOptimizer``) on the first few structures.

    PYTHONPATH=src python benchmarks/relax_batched.py --n-unit 256 --n-super 32 --serial 6
    PYTHONPATH=src python benchmarks/relax_batched.py --potential reference --n-unit 16 --n-super 0

``--potential chgnet`` is the batched adapter (``smoacs.predictors.chgnet.CHGNetPotential``), ``reference`` is
CHGNet through ``predict_structure`` (graphs one structure at a time). Timings on a shared CPU are inflated; the
ratios measured in one process are the figures to quote.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from smoacs.crystal.batch import CrystalBatch
from smoacs.physics.relax import RelaxSettings, relax
from smoacs.runtime import retain_freed_memory
from smoacs.templates.perovskite import perovskite_templates

A_SITE = ["Na", "K", "Rb", "Cs", "Ca", "Sr", "Ba", "La"]
B_SITE = ["Ti", "Zr", "Sn", "Mg", "Pb", "Nb", "Hf", "Ge", "Ta", "Al"]
X_SITE = ["O", "F", "Cl", "Br", "S"]


def perovskite_starts(n: int, seed: int, supercell: int = 1, jitter: float = 0.03) -> list[Structure]:
    """Strained ABX3 starts: random lengths 3–7 Å (per unit cell), random elements, jittered coordinates."""
    rng = np.random.default_rng(seed)
    out = []
    for template in perovskite_templates(n, seed=seed, supercell=supercell):
        a, b = rng.choice(A_SITE), rng.choice(B_SITE)
        x = list(rng.choice(X_SITE, 3))
        species = [[a, b, *x][role if role < 2 else 2 + k % 3] for k, role in enumerate(template.site_roles)]
        frac = template.frac_coords + rng.uniform(-jitter, jitter, template.frac_coords.shape) / supercell
        out.append(Structure(Lattice.from_parameters(*template.lengths, *template.angles), species, frac))
    return out


def load_potential(name: str, skin: float):  # noqa: ANN201
    if name == "chgnet":
        from smoacs.predictors.chgnet import CHGNetPotential

        return CHGNetPotential(skin=skin)
    if name == "reference":
        from smoacs.physics.reference import CHGNetReferencePotential

        return CHGNetReferencePotential(batch_size=64)
    raise SystemExit(f"unknown potential {name!r}")


def batched(structures: list[Structure], potential, settings: RelaxSettings) -> dict:  # noqa: ANN001
    batch = CrystalBatch.from_structures(structures, dtype=torch.float32)
    start = time.perf_counter()
    result = relax(batch, potential, settings)
    wall = time.perf_counter() - start
    statuses = {s: result.status.count(s) for s in ("converged", "step_limit", "failed")}
    return {
        "n": len(structures),
        "atoms_each": len(structures[0]),
        "wall_s": round(wall, 2),
        "potential_s": round(result.timings["potential"], 2),
        "rebuild_s": round(result.timings["rebuild"], 2),
        "optimiser_s": round(wall - result.timings["potential"] - result.timings["rebuild"], 2),
        "status": statuses,
        "steps_median": float(result.steps.double().median()),
        "steps_max": int(result.steps.max()),
        "median_abs_volume_change": float(result.volume_change.abs().median()),
        "energy_per_atom": result.energy_per_atom.tolist(),
        "steps": result.steps.tolist(),
        "failures": sorted({r for r in result.reason if r}),
    }


def serial(structures: list[Structure], fmax: float, steps: int) -> dict:
    """CHGNet's StructOptimizer (ASE FIRE + FrechetCellFilter, CHGNet calculator), one structure at a time."""
    from chgnet.model import StructOptimizer

    with contextlib.redirect_stdout(io.StringIO()):
        optimizer = StructOptimizer()
    energies, n_steps, times = [], [], []
    for structure in structures:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = optimizer.relax(structure, fmax=fmax, steps=steps, relax_cell=True, verbose=False)
        times.append(time.perf_counter() - start)
        trajectory = out["trajectory"]
        energies.append(float(trajectory.energies[-1]) / len(structure))
        n_steps.append(len(trajectory.energies) - 1)
    return {"n": len(structures), "seconds_each": times, "energy_per_atom": energies, "steps": n_steps}


def compare(batch_result: dict, serial_result: dict) -> dict:
    ours = np.array(batch_result["energy_per_atom"][: serial_result["n"]])
    ase = np.array(serial_result["energy_per_atom"])
    diff = np.abs(ours - ase) * 1000
    return {"abs_diff_meV_per_atom": diff.round(3).tolist(), "max_meV_per_atom": float(diff.max()),
            "within_2meV": int((diff <= 2.0).sum()), "batched_steps": batch_result["steps"][: serial_result["n"]],
            "ase_steps": serial_result["steps"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--potential", choices=["chgnet", "reference"], default="chgnet")
    parser.add_argument("--n-unit", type=int, default=256)
    parser.add_argument("--n-super", type=int, default=32)
    parser.add_argument("--serial", type=int, default=6, help="structures also relaxed by StructOptimizer")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--skin", type=float, default=0.0, help="graph skin, Å (with --rebuild-every > 1)")
    parser.add_argument("--rebuild-every", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-retain", action="store_true",
                        help="leave glibc's allocator as it is (default: retain freed memory, as smoacs run/relax do)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/relax_batched.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retained = 0 if args.no_retain else retain_freed_memory()
    potential = load_potential(args.potential, args.skin)
    settings = RelaxSettings(fmax=args.fmax, max_steps=args.max_steps, rebuild_every=args.rebuild_every)
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "mmap_threshold": retained}
    for label, n, supercell in (("unit", args.n_unit, 1), ("supercell", args.n_super, 3)):
        if n <= 0:
            continue
        structures = perovskite_starts(n, args.seed, supercell)
        report[label] = batched(structures, potential, settings)
        print(label, {k: v for k, v in report[label].items() if k not in ("energy_per_atom", "steps")}, flush=True)
        k = min(args.serial, n) if supercell == 1 else min(args.serial // 3, n)
        if k > 0:
            report[f"{label}_serial"] = serial(structures[:k], args.fmax, args.max_steps)
            report[f"{label}_ase_agreement"] = compare(report[label], report[f"{label}_serial"])
            each = np.mean(report[f"{label}_serial"]["seconds_each"])
            report[f"{label}_serial"]["projected_total_s"] = round(each * n, 1)
            print(label, "serial s/structure", round(each, 2), report[f"{label}_ase_agreement"], flush=True)
        write(args.out, report)
    write(args.out, report)


def write(path: Path, report: dict) -> None:
    """Write the report so far (after every stage, so an interrupted run keeps what it measured)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
