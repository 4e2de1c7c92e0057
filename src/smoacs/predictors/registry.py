"""Predictor registry: names → factories. Adding a predictor is one module plus one :func:`register` call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from smoacs.errors import PredictorError
from smoacs.predictors.base import Predictor, PredictorInfo


@dataclass(frozen=True)
class _Entry:
    info: PredictorInfo
    factory: Callable[..., Predictor]


_REGISTRY: dict[str, _Entry] = {}


def register(info: PredictorInfo, factory: Callable[..., Predictor]) -> None:
    """Register a predictor factory under ``info.name`` (factories take keyword options only)."""
    if info.name in _REGISTRY:
        raise PredictorError(f"predictor {info.name!r} is registered twice")
    _REGISTRY[info.name] = _Entry(info, factory)


def _ensure_builtin() -> None:
    # Importing the adapter modules registers them; kept lazy so `import smoacs` stays light.
    import smoacs.predictors.cgcnn  # noqa: F401
    import smoacs.predictors.megnet  # noqa: F401
    import smoacs.predictors.shipped  # noqa: F401


def available_predictors() -> list[PredictorInfo]:
    """Info of every registered predictor, sorted by name."""
    _ensure_builtin()
    return [_REGISTRY[name].info for name in sorted(_REGISTRY)]


def predictor_info(name: str) -> PredictorInfo:
    """Info of one registered predictor; raises :class:`PredictorError` naming the known ones."""
    _ensure_builtin()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise PredictorError(f"unknown predictor {name!r}; known predictors: {known}")
    return _REGISTRY[name].info


def load_predictor(name: str, device: torch.device | str = "cpu", **options: object) -> Predictor:
    """Instantiate a registered predictor in evaluation mode on ``device``."""
    predictor_info(name)
    predictor = _REGISTRY[name].factory(**options)
    predictor = predictor.to(device)
    if isinstance(predictor, torch.nn.Module):
        predictor.eval()
        for parameter in predictor.parameters():
            parameter.requires_grad_(False)
    return predictor
