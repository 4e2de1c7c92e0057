"""Element feature tables used to embed soft compositions (``species_probs @ features``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import numpy as np

from smoacs.chem.elements import N_ELEMENTS


@cache
def cgcnn_features() -> np.ndarray:
    """``[98, 92]`` CGCNN element features (one-hot encoded group, period, electronegativity, …), float32."""
    table = json.loads((resources.files("smoacs.chem") / "data" / "cgcnn_features.json").read_text())
    features = np.array([table[str(z)] for z in range(1, N_ELEMENTS + 1)], dtype=np.float32)
    features.setflags(write=False)
    return features
