"""The original SMOACS demo through the Python API: perovskites with a 2.5 ± 0.2 eV band gap and a formation energy
below −0.5 eV/atom, 16 candidates (about a minute on a laptop CPU).

    python examples/demo.py                                   # 16 candidates, 200 steps, runs/demo (-2, -3, …)
    python examples/demo.py --candidates 4 --steps 10 --out /tmp/demo
"""

from __future__ import annotations

import argparse
import smoacs
from smoacs.io.rundir import unique_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", help="output directory (default: runs/demo, or runs/demo-2, … if that holds a run)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # The preset sets the objectives: band gap window 2.5 ± 0.2 eV (trained inside ± 0.04), E_f < −0.5 eV/atom,
    # Goldschmidt tolerance in [0.8, 1.0], no atoms closer than 0.5 Å; charge neutrality is built in.
    out = args.out or str(unique_path("runs/demo"))  # never over an earlier run
    config = smoacs.build_config("perovskite-bandgap", target=2.5, out=out)
    config = config.with_overrides(
        candidates=args.candidates,
        batch_size=args.candidates,
        seed=args.seed,
        steps=args.steps,  # copy-and-mutate steps beyond it are dropped
    )
    result = smoacs.run(config, progress=False)

    summary = result.summary
    print(f"{summary['n_success']}/{summary['n_candidates']} candidates succeeded "
          f"(success rate {summary['success_rate']:.2f}); files in {result.out_dir}/")  # fmt: skip
    for row in result.successes:
        print(f"{row['id']}  {row['formula']:12s}  band gap {row['band_gap']:.3f} eV  "
              f"E_f {row['formation_energy']:.3f} eV/atom  {row['oxidation_states']:24s}  "
              f"{result.out_dir / row['cif']}")  # fmt: skip


if __name__ == "__main__":
    main()
