"""Forward + backward time of the differentiable predictors on design-sized batches (MEGNet, CGCNN, the Tc head).

Two batches, both with soft species (softmax of random logits over 98 elements) and gradients requested on the
lattice, the fractional coordinates and the logits:

* ``perovskite``: 256 cubic ABX3 cells, 5 atoms each, a ∈ [3.8, 4.2] Å, coordinates jittered by 0.01;
* ``supercell``: 32 perovskite 3×3×3 supercells, 135 atoms each;
* ``supercon``: the 105 structures of the JARVIS supercon test split (``--supercon-csv``), their one-hot species
  turned into soft ones the same way (logit +6 on the true element over 0.5 · normal noise).

For every predictor the neighbour list is built (timed separately as "rebuild", minimum over repeats), then
``predictor(batch).sum().backward()`` is timed: minimum and median of ``--repeats`` calls after one warm-up call.

Usage::

    python benchmarks/predictor_timing.py [--threads 1] [--repeats 5] [--device cpu] [--predictors a,b,...] [--batches perovskite]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from smoacs.crystal.batch import CrystalBatch
from smoacs.predictors import load_predictor

DEFAULT_PREDICTORS = (
    "megnet-band-gap",
    "megnet-formation-energy",
    "megnet-formation-energy-2018",
    "megnet-mf-band-gap",
    "cgcnn-band-gap",
    "cgcnn-formation-energy",
    "chgnet-head-supercon-tc",
)
SUPERCON_CSV = "../shared/data/supercon_test.csv.gz"
PEROVSKITE_FRAC = torch.tensor([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
A_SITES = [19, 37, 55, 56, 57]  # K Sr Cs Ba La (Z)
B_SITES = [22, 23, 26, 40, 41]  # Ti V Fe Zr Nb
X_SITES = [8, 9, 7]  # O F N


def perovskite_batch(n_crystals: int, repeats: int, seed: int = 0, device: str = "cpu") -> tuple[CrystalBatch, Tensor]:
    """Soft-species perovskite ``repeats``³ supercells; returns the batch and its leaf logits ``[n_atoms, 98]``."""
    gen = torch.Generator().manual_seed(seed)
    a = 3.8 + 0.4 * torch.rand(n_crystals, generator=gen)
    cells = torch.cartesian_prod(*[torch.arange(repeats, dtype=torch.float32)] * 3)  # [r³, 3]
    frac_one = (PEROVSKITE_FRAC[None, :, :] + cells[:, None, :]).reshape(-1, 3) / repeats  # [5 r³, 3]
    n_per = frac_one.shape[0]
    frac = frac_one.repeat(n_crystals, 1) + 0.01 / repeats * torch.randn(n_crystals * n_per, 3, generator=gen)
    lattice = torch.eye(3)[None] * (a * repeats)[:, None, None]
    site = torch.arange(5).repeat(repeats**3).repeat(n_crystals)
    pick = lambda table: torch.tensor(table)[torch.randint(len(table), (len(site),), generator=gen)]  # noqa: E731
    z = torch.where(site == 0, pick(A_SITES), torch.where(site == 1, pick(B_SITES), pick(X_SITES)))
    logits = 0.5 * torch.randn(len(site), 98, generator=gen)
    logits[torch.arange(len(site)), z - 1] += 6.0
    n_atoms = torch.full((n_crystals,), n_per)
    crystal_idx = torch.repeat_interleave(torch.arange(n_crystals), n_atoms)
    logits = logits.to(device).requires_grad_(True)
    batch = CrystalBatch(
        lattice.to(device).requires_grad_(True),
        frac.to(device).requires_grad_(True),
        torch.softmax(logits, dim=-1),
        crystal_idx.to(device),
        n_atoms.to(device),
    )
    return batch, logits


def supercon_batch(path: str, seed: int = 0, device: str = "cpu") -> tuple[CrystalBatch, Tensor]:
    """Soft-species batch of the structures in a supercon CSV (``cif`` column); returns the batch and its leaf logits."""
    from smoacs.train.data import read_table

    hard = CrystalBatch.from_structures(read_table(path).structures, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    logits = 0.5 * torch.randn(hard.species_probs.shape, generator=gen) + 6.0 * hard.species_probs
    logits = logits.to(device).requires_grad_(True)
    batch = CrystalBatch(hard.lattice.to(device).requires_grad_(True), hard.frac_coords.to(device).requires_grad_(True),
                         torch.softmax(logits, dim=-1), hard.crystal_idx.to(device), hard.n_atoms.to(device))  # fmt: skip
    return batch, logits


def _time(fn: Callable[[], None], repeats: int, device: str) -> tuple[float, float]:
    """(minimum, median) seconds of ``repeats`` calls after one warm-up (the minimum is robust on a busy machine)."""
    def once() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()  # warm-up
    samples = [once() for _ in range(repeats)]
    return min(samples), statistics.median(samples)


BATCHES = {"perovskite": ("perovskite 256×5", 256, 1), "supercell": ("supercell 32×135", 32, 3),
           "supercon": ("supercon test 105", 0, 0)}  # fmt: skip


def benchmark(names: list[str], repeats: int, device: str, which: tuple[str, ...] = tuple(BATCHES),
              supercon_csv: str = SUPERCON_CSV) -> list[dict[str, object]]:  # fmt: skip
    """One result dict per (batch, predictor): edges, rebuild and forward+backward seconds (predictors interleaved)."""
    batches = {BATCHES[key][0]: BATCHES[key][1:] for key in which}
    results = []
    predictors = {name: load_predictor(name, device=device) for name in names}
    for label, (n_crystals, reps) in batches.items():
        for name, predictor in predictors.items():
            if n_crystals:
                batch, logits = perovskite_batch(n_crystals, reps, device=device)
            else:
                batch, logits = supercon_batch(supercon_csv, device=device)
            rebuild, _ = _time(lambda: predictor.rebuild(batch), repeats, device)  # noqa: B023
            leaves = (batch.lattice, batch.frac_coords, logits)

            def step() -> None:
                for leaf in leaves:  # noqa: B023
                    leaf.grad = None
                fresh = CrystalBatch(batch.lattice, batch.frac_coords, torch.softmax(logits, -1),  # noqa: B023
                                     batch.crystal_idx, batch.n_atoms)  # noqa: B023  # fmt: skip
                predictor(fresh).sum().backward()  # noqa: B023

            seconds, median = _time(step, repeats, device)
            edges = predictor._graph.n_edges if getattr(predictor, "_graph", None) is not None else -1
            results.append(
                {"batch": label, "predictor": name, "edges": edges, "rebuild_s": rebuild, "fwd_bwd_s": seconds,
                 "fwd_bwd_median_s": median}
            )  # fmt: skip
            print(f"{label:18s} {name:30s} edges {edges:8d}  rebuild {rebuild * 1e3:8.1f} ms  "
                  f"fwd+bwd min {seconds * 1e3:8.1f} ms  median {median * 1e3:8.1f} ms", flush=True)  # fmt: skip
    return results


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictors", default=",".join(DEFAULT_PREDICTORS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", default=",".join(BATCHES), help="perovskite, supercell, supercon (default: all)")
    parser.add_argument("--supercon-csv", default=SUPERCON_CSV, help="CSV of the supercon batch (cif column)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads {torch.get_num_threads()},"
          f" device {args.device}")  # fmt: skip
    benchmark(args.predictors.split(","), args.repeats, args.device, tuple(args.batches.split(",")), args.supercon_csv)


if __name__ == "__main__":
    main()
