"""Loading the converted MEGNet weights shipped with smoacs (``predictors/weights/megnet``).

The files were produced from the megnet 1.3.2 source distribution (``mvl_models/``, BSD-3-Clause, see
``weights/megnet/LICENSE-megnet.txt`` and ``SOURCE.md``) by ``scripts/convert_megnet.py``. Each ``.pt`` file holds
``{"format": 1, "config": {...}, "state_dict": {...}}`` with float32 tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from smoacs.errors import PredictorError
from smoacs.predictors.megnet.network import MEGNetNet

# Model keys are the mvl_models/ paths without ".hdf5" (and without "/best_model" for the multi-fidelity ones).
MP_2018 = ("formation_energy", "band_gap_regression", "band_classification", "log10K", "log10G")
MP_2019 = ("formation_energy", "efermi", "log10K", "log10G")
MODEL_KEYS: tuple[str, ...] = (
    *(f"mp-2018.6.1/{name}" for name in MP_2018),
    *(f"mp-2019.4.1/{name}" for name in MP_2019),
    *(f"mf_2020/pbe_gllb_hse_exp/{i}" for i in range(6)),
)


@dataclass(frozen=True)
class MEGNetConfig:
    """Graph settings and output transform of one converted model.

    Attributes:
        model: original path under ``mvl_models/`` (e.g. ``"mp-2019.4.1/efermi.hdf5"``).
        cutoff: neighbour cutoff radius, Å (4 or 5).
        gaussian_start: first Gaussian centre, Å.
        gaussian_stop: last Gaussian centre, Å (5 for 4-Å models, 6 for 5-Å models).
        n_gaussians: number of centres (100).
        gaussian_width: Gaussian width w, Å (0.5); features are ``exp(−(d − μ)² / w²)``.
        set2set_steps: Set2Set iterations T.
        final_activation: ``"linear"`` or ``"sigmoid"``.
        state: ``"zeros"`` (MP models) or ``"fidelity"`` (multi-fidelity models).
        scaler_mean: target scaler offset (output = raw · std + mean; intensive, never multiplied by atom count).
        scaler_std: target scaler scale.
        sha256: checksum of the source HDF5 file.
    """

    model: str
    cutoff: float
    gaussian_start: float
    gaussian_stop: float
    n_gaussians: int
    gaussian_width: float
    set2set_steps: int
    final_activation: str
    state: str
    scaler_mean: float
    scaler_std: float
    sha256: str

    def centers(self) -> torch.Tensor:
        """``[n_gaussians]`` float64 Gaussian centres, equal to ``numpy.linspace(start, stop, n)``."""
        return torch.linspace(self.gaussian_start, self.gaussian_stop, self.n_gaussians, dtype=torch.float64)


def weights_dir() -> Path:
    """Folder of the shipped MEGNet weight files."""
    return Path(str(resources.files("smoacs.predictors") / "weights" / "megnet"))


def weight_path(key: str) -> Path:
    """Weight file of a model key such as ``"mp-2018.6.1/formation_energy"``."""
    if key not in MODEL_KEYS:
        raise PredictorError(f"unknown MEGNet model {key!r}; known: {', '.join(MODEL_KEYS)}")
    return weights_dir() / f"{key}.pt"


def load_megnet(key: str) -> tuple[MEGNetNet, MEGNetConfig]:
    """Load one converted model in evaluation mode (float32, CPU) with its configuration."""
    path = weight_path(key)
    if not path.is_file():
        raise PredictorError(f"MEGNet weights not found: {path} (re-create them with scripts/convert_megnet.py)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != 1:
        raise PredictorError(f"{path}: unsupported weight file format {payload.get('format')!r}")
    raw = payload["config"]
    config = MEGNetConfig(**{name: raw[name] for name in MEGNetConfig.__dataclass_fields__})
    net = MEGNetNet(config.set2set_steps, state=config.state, final_activation=config.final_activation)
    net.load_state_dict(payload["state_dict"], strict=True)
    return net.eval(), config
