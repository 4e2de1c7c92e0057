"""smoacs: inverse design of crystals by gradient descent through pretrained property predictors.

The method is SMOACS (Fujii et al., arXiv 2410.08562): lattice, fractional coordinates and per-site element
probabilities are optimised together through differentiable predictors, with charge neutrality and structure
constraints built into the parametrisation.

Python API (mirrors ``smoacs run``)::

    import smoacs
    config = smoacs.build_config("perovskite-bandgap", target=2.5, out="runs/pbg")
    result = smoacs.run(config.with_overrides(candidates=32))
    print(result.summary["success_rate"], result.successes[0]["formula"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["RunConfig", "RunResult", "__version__", "build_config", "run"]

if TYPE_CHECKING:
    from smoacs.config import RunConfig
    from smoacs.presets import build_config
    from smoacs.runner import RunResult, run

_LAZY = {
    "RunConfig": "smoacs.config",
    "build_config": "smoacs.presets",
    "RunResult": "smoacs.runner",
    "run": "smoacs.runner",
}


def __getattr__(name: str) -> Any:
    # Heavy imports (torch, pymatgen) happen on first use, so `import smoacs` stays cheap.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'smoacs' has no attribute {name!r}")
