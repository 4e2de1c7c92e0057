"""smoacs: inverse design of crystals by gradient descent through pretrained property predictors.

The method is SMOACS (Fujii et al., arXiv 2410.08562): lattice, fractional coordinates and per-site element
probabilities are optimised together through differentiable predictors, with charge neutrality and structure
constraints built into the parametrisation.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
