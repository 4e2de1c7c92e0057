"""Whether the physics pipeline keeps the equilibrium ground truth when a run starts *at* it.

Each of the 14 compositions of ``equilibrium_ground_truth.py`` (``results/equilibrium_ground_truth_2.5.json``) is
set, twice, as a candidate of a ``perovskite-bandgap --target 2.5`` mini-batch (ideal cubic cell at its CHGNet
equilibrium lattice constant, logits one-hot with margin 1), and then goes through the run's own stages:

* ``--stages relax``: the final relaxation (0.02 Å perturbation, FIRE, fmax 0.05 eV/Å) and the relaxed verdict;
* ``--stages polish``: the composition polish (the preset's 2 rounds), then that relaxation and verdict;
* ``--stages loop``: the whole gradient search (200 steps, CHGNet geometry, copy-and-mutate), polish, relaxation.

It reports, per candidate, the returned formula and verdict, and how many of the 14 come back as successes: an
upper bound on what any search can cover under the relaxed verdict. Nothing here seeds a real run.

    python benchmarks/ground_truth_reachability.py --stages relax|polish|loop [--max-copies K] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from pymatgen.core import Composition

import smoacs.runner as runner
from smoacs.chem.elements import ELEMENTS
from smoacs.design.space import DesignSpace
from smoacs.optimize.loop import OptimizationResult
from smoacs.physics.polish import polish
from smoacs.presets import build_config
from smoacs.search.base import SearchResult

TRUTH = Path(__file__).parent / "results" / "equilibrium_ground_truth_2.5.json"
ANIONS_1 = ("F", "Cl", "Br", "I")


def _site_species(space: DesignSpace, crystal: int, formula: str) -> tuple[int, list[int]]:
    """(pattern index, element index of each site) that make ``crystal`` the ABX3 ``formula``."""
    comp = Composition(formula)
    x = next(str(e) for e in comp.elements if comp[e] == 3)
    a_b = [str(e) for e in comp.elements if str(e) != x]
    start = int(space.n_atoms[:crystal].sum())
    sites = torch.arange(start, start + int(space.n_atoms[crystal]))
    roles = space.site_roles[sites].tolist()
    for pattern in range(space.n_combos):
        if not space.combo_valid[crystal, pattern]:
            continue
        for a, b in ((a_b[0], a_b[1]), (a_b[1], a_b[0])):
            by_role = [ELEMENTS.index(a), ELEMENTS.index(b), ELEMENTS.index(x)]
            species = [by_role[r] for r in roles]
            if bool(space.element_mask[sites, pattern, torch.tensor(species)].all()):
                return pattern, species
    raise ValueError(f"{formula}: no admissible pattern in this template")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", choices=("relax", "polish", "loop"), default="relax")
    parser.add_argument("--copies", type=int, default=2, help="candidates per composition")
    parser.add_argument("--max-copies", type=int, default=0, help="optimizer.max_composition_copies (loop)")
    parser.add_argument("--fmax", type=float, help="physics.fmax of the final relaxation (default: the preset's)")
    parser.add_argument("--perturb", type=float, help="physics.perturb, Å (default: the preset's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    truth = json.loads(TRUTH.read_text())
    names, a_eq = truth["meeting_criteria_at_equilibrium"], truth["lattice_constants"]
    n = len(names) * args.copies
    config = build_config("perovskite-bandgap", 2.5, "unused").with_overrides(
        candidates=n, batch_size=n, threads=1, max_composition_copies=args.max_copies
    )
    physics = {k: v for k, v in (("fmax", args.fmax), ("perturb", args.perturb)) if v is not None}
    if physics:
        config = config.with_overrides(physics=physics)
    problem = runner.build_problem(config)
    space = DesignSpace(problem.batches[0], config.space, seed=config.seed, device=problem.device)
    chosen = [_site_species(space, c, names[c % len(names)]) for c in range(n)]
    space.set_composition(torch.tensor([p for p, _ in chosen]), torch.tensor([s for _, ss in chosen for s in ss]))
    lattice = torch.stack([torch.eye(3) * a_eq[names[c % len(names)]] for c in range(n)])
    space.set_geometry(lattice.float(), torch.as_tensor(space.frac0).float())
    start = time.perf_counter()
    if args.stages == "loop":
        with mock.patch.object(runner, "DesignSpace", lambda *a, **k: space):
            _, result = runner.search_batch(problem, 0, [])
    else:
        if args.stages == "polish":
            assert problem.polish is not None and problem.potential is not None
            polish(space, problem.predictors, config.objectives, problem.potential, problem.polish, config.seed, config.optimizer)
        provenance = OptimizationResult(history={}, quarantine={}, template_index=np.arange(n), copied_from=np.full(n, -1))
        result = SearchResult(provenance, {})
    rows = runner.evaluate_batch(problem, 0, space, result).rows
    out = []
    for c, row in enumerate(rows):
        out.append({
            "start": names[c % len(names)], "returned": Composition(row["formula"]).reduced_formula,
            "success": bool(row["success"]), "unrelaxed_success": bool(row["unrelaxed_success"]),
            "band_gap": round(float(row["band_gap"]), 3), "unrelaxed_band_gap": round(float(row["unrelaxed_band_gap"]), 3),
            "perovskite_ok": bool(row["perovskite_ok"]), "volume_change": round(float(row["volume_change"]), 4),
        })  # fmt: skip
    kept = sorted({o["start"] for o in out if o["success"] and o["returned"] == o["start"]})
    report = {
        "stages": args.stages, "fmax": config.physics.fmax, "perturb": config.physics.perturb, "copies": args.copies, "max_composition_copies": args.max_copies, "wall_s": round(time.perf_counter() - start, 1),
        "kept_composition": sum(o["returned"] == o["start"] for o in out), "successes": sum(o["success"] for o in out),
        "truth_returned": kept, "n_truth_returned": len(kept), "candidates": out,
    }  # fmt: skip
    print(json.dumps({k: v for k, v in report.items() if k != "candidates"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
