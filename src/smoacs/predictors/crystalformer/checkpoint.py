"""Reading and writing Crystalformer checkpoints in the official (Lightning ``RegressionModel``) layout.

A checkpoint is a ``torch.save`` dict with ``hyper_parameters`` (the official config) and ``state_dict``, whose keys
are ``target_std``, ``target_mean``, ``model.<name>`` and optionally the SWA copy ``swa_model.module.<name>`` (preferred
when present, as in the official test loader). Models trained by ``smoacs train`` are written the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from smoacs.errors import PredictorError
from smoacs.predictors.crystalformer.network import CrystalformerConfig, CrystalformerNet

_PREFIXES = ("swa_model.module.", "model.")


@dataclass
class LoadedCrystalformer:
    """A network with its target normaliser (output = raw · std + mean)."""

    net: CrystalformerNet
    target_mean: Tensor
    target_std: Tensor
    config: CrystalformerConfig


def _hyper_parameters(checkpoint: dict[str, Any]) -> dict[str, Any]:
    params = checkpoint.get("hyper_parameters")
    if params is None:
        raise PredictorError("Crystalformer checkpoint has no hyper_parameters; pass config=PATH/TO/config.json")
    if not isinstance(params, dict):
        params = vars(params)
    if "params" in params and not isinstance(params["params"], (int, float, str)):
        inner = params["params"]
        params = inner if isinstance(inner, dict) else vars(inner)
    return dict(params)


def _model_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    for prefix in _PREFIXES:
        picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if picked:
            return picked
    return {k: v for k, v in state.items() if k not in ("target_std", "target_mean")}


def read_checkpoint(path: str | Path, config: str | Path | dict[str, Any] | None = None) -> LoadedCrystalformer:
    """Load an official-format checkpoint (a ``.ckpt``/``.pt`` file); ``config`` overrides its hyper-parameters."""
    path = Path(path)
    if not path.is_file():
        raise PredictorError(f"Crystalformer checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - Lightning checkpoints may pickle a Namespace; the file is the user's own
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            raise PredictorError(f"cannot read Crystalformer checkpoint {path}: {exc}") from exc
    if not isinstance(checkpoint, dict):
        raise PredictorError(f"{path} is not a Crystalformer checkpoint (expected a dict)")
    if isinstance(config, (str, Path)):
        import json

        config = json.loads(Path(config).read_text())
    params = dict(config) if config is not None else _hyper_parameters(checkpoint)
    state = checkpoint.get("state_dict", checkpoint)
    cfg = CrystalformerConfig.from_official(params)
    net = CrystalformerNet(cfg)
    model_state = _model_state(state)
    try:
        net.load_state_dict(model_state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise PredictorError(f"{path} does not match its Crystalformer config: {first}") from exc
    n_targets = cfg.n_targets
    std = state.get("target_std", torch.ones(n_targets)).reshape(-1).float()
    mean = state.get("target_mean", torch.zeros(n_targets)).reshape(-1).float()
    if not bool((net.encoder.layers[0].self_attn.gauss_scale[0] != 0).item()) and cfg.normalize_gauss:
        raise PredictorError(f"{path}: gauss_scale is not calibrated (zero); the model was never trained")
    return LoadedCrystalformer(net.eval(), mean, std, cfg)


def write_checkpoint(path: str | Path, net: CrystalformerNet, target_mean: Tensor, target_std: Tensor, **extra: Any) -> None:
    """Save ``net`` in the official layout (``model.*`` keys, normaliser, ``hyper_parameters``)."""
    state: dict[str, Tensor] = {
        "target_std": target_std.detach().reshape(-1).float().cpu(),
        "target_mean": target_mean.detach().reshape(-1).float().cpu(),
    }
    state.update({f"model.{k}": v.detach().float().cpu() for k, v in net.state_dict().items()})
    torch.save({"state_dict": state, "hyper_parameters": net.config.to_official(), **extra}, Path(path))
