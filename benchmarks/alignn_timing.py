"""ALIGNN forward + backward time per optimisation step, graph rebuild included, next to CGCNN.

Batches (from ``predictor_timing.perovskite_batch``: soft species, gradients on lattice, coordinates and logits):

* ``perovskite``: 256 cubic ABX3 cells, 5 atoms each;
* ``supercell``: 3×3×3 perovskite supercells, 135 atoms each (32 by default; ``--supercells`` to change it, since
  the legacy line graph of 32 such cells needs tens of GB in the backward pass).

Models: the ALIGNN fixture checkpoints (``../shared/fixtures/alignn/{legacy,pure}_model.zip``; random weights but the
published architecture: 4 + 4 layers, 256 hidden features), or any ``--legacy`` / ``--pure`` model path, and
``cgcnn-band-gap`` for comparison. Per model: graph + line graph rebuild (minimum over repeats), then
``predictor(batch).sum().backward()`` (minimum and median), and "step" = rebuild + forward + backward, the cost of a
step on which the optimiser rebuilds (it rebuilds every 10 steps by default). Peak resident memory is printed.

Usage::

    python benchmarks/alignn_timing.py [--threads 2] [--repeats 3] [--supercells 32] [--legacy ZIP] [--pure ZIP]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
from pathlib import Path

import torch

from predictor_timing import _time, perovskite_batch
from smoacs.crystal.batch import CrystalBatch
from smoacs.predictors import load_predictor
from smoacs.predictors.alignn import from_path

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "alignn"
FIXTURES = Path(os.environ.get("SMOACS_ALIGNN_FIXTURES", _SHARED))


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def measure(label: str, name: str, predictor: object, n_crystals: int, reps: int, repeats: int) -> dict[str, object]:
    """Rebuild and forward+backward seconds of one predictor on one batch."""
    batch, logits = perovskite_batch(n_crystals, reps)
    rebuild, _ = _time(lambda: predictor.rebuild(batch), repeats, "cpu")
    leaves = (batch.lattice, batch.frac_coords, logits)

    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        fresh = CrystalBatch(batch.lattice, batch.frac_coords, torch.softmax(logits, -1), batch.crystal_idx, batch.n_atoms)
        predictor(fresh).sum().backward()

    seconds, median = _time(step, repeats, "cpu")
    graph = getattr(predictor, "_graph", None)
    edges = graph.n_edges if graph is not None else -1
    triplets = getattr(graph, "n_triplets", 0)
    row = {"batch": label, "predictor": name, "edges": edges, "triplets": triplets, "rebuild_s": rebuild,
           "fwd_bwd_s": seconds, "fwd_bwd_median_s": median, "step_with_rebuild_s": rebuild + seconds,
           "peak_rss_gb": _peak_gb()}  # fmt: skip
    print(f"{label:20s} {name:14s} edges {edges:8d} triplets {triplets:9d}  rebuild {rebuild * 1e3:8.1f} ms  "
          f"fwd+bwd min {seconds * 1e3:9.1f} ms  median {median * 1e3:9.1f} ms  "
          f"step+rebuild {(rebuild + seconds) * 1e3:9.1f} ms  peak RSS {row['peak_rss_gb']:.1f} GB", flush=True)  # fmt: skip
    return row


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legacy", default=str(FIXTURES / "legacy_model.zip"))
    parser.add_argument("--pure", default=str(FIXTURES / "pure_model.zip"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--supercells", type=int, default=32)
    parser.add_argument("--perovskites", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads {torch.get_num_threads()}")
    models = {
        "cgcnn-band-gap": load_predictor("cgcnn-band-gap"),
        "alignn-legacy": from_path(args.legacy),
        "alignn-pure": from_path(args.pure),
    }
    batches = {
        f"perovskite {args.perovskites}×5": (args.perovskites, 1),
        f"supercell {args.supercells}×135": (args.supercells, 3),
    }
    rows = [
        measure(label, name, model, n, reps, args.repeats)
        for label, (n, reps) in batches.items()
        for name, model in models.items()
    ]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
