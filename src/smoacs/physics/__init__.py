"""Physics on top of the predictors: batched relaxation with an interatomic potential.

Layering: ``physics`` imports ``crystal`` and ``predictors`` (``physics.polish`` also ``design``, ``objectives`` and
``optimize``, whose optimiser it drives); never ``search``, ``evaluate`` or the runner.
"""

from __future__ import annotations

from smoacs.physics.relax import RelaxOutcome, RelaxResult, RelaxSettings, RelaxStatus, relax, relax_in_chunks, relax_structures

__all__ = ["RelaxOutcome", "RelaxResult", "RelaxSettings", "RelaxStatus", "relax", "relax_in_chunks", "relax_structures"]
