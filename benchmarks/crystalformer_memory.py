"""Peak memory and time of one Crystalformer forward+backward on 135-atom cells (official-size fixture model).

Each measurement runs in a fresh subprocess (peak RSS from ``resource.getrusage``) on ``n`` soft-species perovskite
3×3×3 supercells (135 atoms) with gradients on lattice, coordinates and logits, float32, the default pair chunk.
Memory grows linearly in the number of cells (pairs × layers × heads for the stored attention terms, plus one
chunk's scratch), so the figure for 32 cells is extrapolated from the measured ones when not measured directly.

    python benchmarks/crystalformer_memory.py [--cells 1 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests" / "files" / "crystalformer" / "model.ckpt"

CHILD = r"""
import json, resource, sys, time, torch
sys.path.insert(0, {bench!r})
from predictor_timing import perovskite_batch
from smoacs.predictors.crystalformer import from_path
torch.set_num_threads({threads})
predictor = from_path({ckpt!r})
batch, logits = perovskite_batch({cells}, 3)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
predictor(batch).sum().backward()
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"cells": {cells}, "seconds": elapsed, "peak_rss_mb": peak / 1024, "before_mb": base / 1024,
                  "grad_ok": bool(torch.isfinite(batch.lattice.grad).all()) if batch.lattice.grad is not None else None}}))
"""


def measure(cells: int, threads: int) -> dict:
    """One forward+backward in a subprocess; returns its timing and peak memory."""
    code = CHILD.format(bench=str(HERE), threads=threads, ckpt=str(FIXTURE), cells=cells)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = [measure(n, args.threads) for n in args.cells]
    for row in rows:
        print(f"{row['cells']:3d} cells x 135 atoms: {row['seconds']:.1f} s forward+backward, peak RSS {row['peak_rss_mb']:.0f} MB "
              f"(before the pass {row['before_mb']:.0f} MB)")  # fmt: skip
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        slope = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["cells"] - a["cells"])
        est = a["peak_rss_mb"] + slope * (32 - a["cells"])
        print(f"linear extrapolation to 32 cells: {est:.0f} MB peak RSS ({slope:.0f} MB per cell)")
        rows.append({"cells": 32, "extrapolated_peak_rss_mb": est, "mb_per_cell": slope})
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "crystalformer_memory.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
