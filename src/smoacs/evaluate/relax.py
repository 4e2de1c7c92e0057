"""Relaxation check: relax every success with CHGNet, re-predict, and re-check the objectives.

A gradient search through a property predictor is easily satisfied by an unphysical cell (e.g. a lattice constant
the structure would never keep). This check relaxes cell and positions of every success with the universal
potential CHGNet (PyPI ``chgnet``, weights inside its wheel, offline), re-predicts the optimised properties on the
relaxed structure and reports:

* ``relaxed_<property>``: predictions of the run's predictors on the relaxed structure;
* ``volume_change``: (V_relaxed − V) / V;
* ``structure_survived``: the relaxed structure still matches the candidate under loose ``StructureMatcher``
  tolerances (ltol 0.3, stol 0.5, angle_tol 10°) — the structure type survived, whatever the volume;
* ``relaxed_success``: every objective criterion holds on the relaxed structure (minimum distance recomputed) and
  the structure survived;
* ``relax_error``: why a relaxation failed (the row is then not a relaxed success); a failure never stops the run.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smoacs.crystal.batch import CrystalBatch
from smoacs.crystal.neighbors import min_distances
from smoacs.errors import ConfigError
from smoacs.io.rundir import RunDirectory
from smoacs.objectives.terms import Objective
from smoacs.predictors.base import Predictor

log = logging.getLogger(__name__)
RELAXERS = ("chgnet",)


def check_relaxer(name: str | None) -> None:
    """Raise :class:`ConfigError` for an unknown relaxer or a missing optional dependency."""
    if name is None:
        return
    if name not in RELAXERS:
        raise ConfigError(f"evaluation.relax: unknown relaxer {name!r}; allowed: {', '.join(RELAXERS)}")
    try:
        import chgnet  # noqa: F401
    except ImportError:
        raise ConfigError('relaxation with chgnet needs the chgnet package: pip install "smoacs[relax]"') from None


def _relax_one(optimizer: Any, structure: Any, steps: int, fmax: float) -> Any:  # noqa: ANN401
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = optimizer.relax(structure, fmax=fmax, steps=steps, relax_cell=True, verbose=False)
    relaxed = result["final_structure"]
    if not np.all(np.isfinite(relaxed.lattice.matrix)) or not np.all(np.isfinite(relaxed.frac_coords)):
        raise ValueError("relaxation produced non-finite coordinates")
    return relaxed


def relax_successes(
    rows: list[dict[str, Any]],
    structures: Sequence[Any],
    predictors: Sequence[Predictor],
    objectives: Sequence[Objective],
    out_dir: Path,
    steps: int = 200,
    fmax: float = 0.1,
) -> float:
    """Relax every success in place (adds the columns listed in the module docstring); returns seconds spent."""
    import time

    from chgnet.model import StructOptimizer
    from pymatgen.analysis.structure_matcher import StructureMatcher

    start = time.perf_counter()
    optimizer = StructOptimizer()
    matcher = StructureMatcher(ltol=0.3, stol=0.5, angle_tol=10)
    run_dir = RunDirectory(out_dir)
    for row, structure in zip(rows, structures, strict=True):
        row.update(volume_change="", structure_survived="", relaxed_success=False, relax_error="")
        row.update({f"relaxed_{p.info.property}": "" for p in predictors})
        if not row["success"]:
            continue
        try:
            relaxed = _relax_one(optimizer, structure, steps, fmax)
            batch = CrystalBatch.from_structures([relaxed], dtype=torch.float64)
            values = {}
            with torch.no_grad():
                for predictor in predictors:
                    predictor.rebuild(batch)
                    values[predictor.info.property] = predictor.final(batch)
            values["tolerance"] = torch.tensor([row["tolerance"]])
            values["min_distance"] = min_distances(batch.lattice, batch.frac_coords, batch.crystal_idx, batch.n_atoms)
        except Exception as exc:  # noqa: BLE001 - a failed relaxation is reported, never fatal
            row["relax_error"] = f"{type(exc).__name__}: {exc}"
            log.warning("relaxation of %s failed: %s", row["id"], exc)
            continue
        survived = bool(matcher.fit(structure, relaxed))
        satisfied = all(bool(o.satisfied(values)[0]) for o in objectives if o.key in values)
        row.update({f"relaxed_{key}": float(value[0]) for key, value in values.items() if key in {p.info.property for p in predictors}})
        row.update(
            volume_change=float(relaxed.volume / structure.volume - 1.0),
            structure_survived=survived,
            relaxed_success=bool(satisfied and survived),
        )
        relaxed.to(filename=str(run_dir.relaxed_cif(row["id"])))
    return time.perf_counter() - start
