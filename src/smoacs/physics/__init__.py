"""Physics on top of the predictors: batched relaxation with an interatomic potential.

Layering: ``physics`` imports ``crystal`` and ``predictors`` only.
"""

from __future__ import annotations

from smoacs.physics.relax import RelaxResult, RelaxSettings, RelaxStatus, relax

__all__ = ["RelaxResult", "RelaxSettings", "RelaxStatus", "relax"]
