"""Time the batched CHGNet potential against chgnet's own serial ``predict_structure``.

Prints one line per case: seconds per call of ``CHGNetPotential.compute`` (energy + forces + stress) on a batch,
the graph rebuild, and ``CHGNet.predict_structure`` (efs) on the same structures one at a time, plus the largest
energy / force / stress differences between the two.

    PYTHONPATH=src python benchmarks/chgnet_batched.py            # 256 × 5-atom and 32 × 135-atom cells
    PYTHONPATH=src python benchmarks/chgnet_batched.py --quick    # 32 × 5 and 4 × 135, for a smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from smoacs.crystal import CrystalBatch
from smoacs.predictors.chgnet import CHGNetPotential, load_chgnet

SITES = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
COMPOSITIONS = [("Sr", "Ti", "O"), ("Ba", "Zr", "S"), ("Cs", "Pb", "I"), ("K", "Nb", "O"), ("Ca", "Sn", "Se")]


def perovskites(n: int, supercell: int, seed: int = 0) -> list[Structure]:
    """``n`` distorted ABX3 cells (lattice 3.9–4.5 Å, 3 % strain, 0.02 fractional noise), optionally supercells."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b, x = COMPOSITIONS[i % len(COMPOSITIONS)]
        lattice = np.eye(3) * rng.uniform(3.9, 4.5) @ (np.eye(3) + 0.03 * rng.normal(size=(3, 3)))
        cell = Structure(Lattice(lattice), [a, b, x, x, x], SITES + 0.02 * rng.normal(size=(5, 3)))
        out.append(cell.make_supercell([supercell] * 3, in_place=False) if supercell > 1 else cell)
    return out


def best_of(fn, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def case(label: str, structures: list[Structure], potential: CHGNetPotential, repeats: int, serial: int) -> None:
    batch = CrystalBatch.from_structures(structures)
    rebuild = best_of(lambda: potential.rebuild(batch), repeats)
    graph = potential.graph(batch)
    compute = best_of(lambda: potential.compute(batch), repeats)
    model = load_chgnet()
    chosen = structures[:serial]
    start = time.perf_counter()
    reference = [model.predict_structure(s, task="efs") for s in chosen]
    per_structure = (time.perf_counter() - start) / len(chosen)
    out = potential.compute(batch)
    forces = torch.split(out.forces, batch.n_atoms.tolist())
    de = max(abs(float(out.energy_per_atom[i]) - float(r["e"])) for i, r in enumerate(reference))
    df = max(float(np.abs(forces[i].numpy() - r["f"]).max()) for i, r in enumerate(reference))
    ds = max(float(np.abs(out.stress[i].numpy() - r["s"]).max()) for i, r in enumerate(reference))
    n = len(structures)
    print(
        f"{label}: {n} crystals, {len(graph.center)} directed edges, {len(graph.angle_edges)} angles | "
        f"rebuild {rebuild:.3f} s | compute (e+f+s) {compute:.3f} s/call = {compute / n * 1e3:.1f} ms/crystal | "
        f"predict_structure serial {per_structure * 1e3:.1f} ms/crystal (x{per_structure * n / compute:.1f}) | "
        f"max diff E {de:.1e} eV/atom, F {df:.1e} eV/Å, S {ds:.1e} GPa on {len(chosen)}"
    )


def main() -> None:
    warnings.simplefilter("ignore")  # chgnet's own pipeline warns about a tensor-to-scalar conversion
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batches for a smoke run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    potential = CHGNetPotential()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    small, large = (32, 4) if args.quick else (256, 32)
    case(f"{small} x 5-atom", perovskites(small, 1), potential, args.repeats, serial=min(small, 32))
    case(f"{large} x 135-atom", perovskites(large, 3), potential, args.repeats, serial=min(large, 4))


if __name__ == "__main__":
    main()
