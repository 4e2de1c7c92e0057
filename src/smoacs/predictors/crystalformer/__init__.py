"""Crystalformer (Taniai et al., ICLR 2024): a pure-PyTorch, exactly differentiable port of the real-space model.

* :class:`CrystalformerNet` — the network, with the official parameter names, so official checkpoints load as is.
* :func:`from_path` — a predictor from an official ``.ckpt`` file or a directory written by ``smoacs train``
  (used by the path form ``crystalformer:PATH``).
* Shipped models (package data, trained by ``smoacs train`` on the JARVIS BCS superconductor set) are registered in
  :mod:`smoacs.predictors.crystalformer.shipped`.
"""

from __future__ import annotations

from smoacs.predictors.crystalformer.adapter import CrystalformerPredictor, from_checkpoint, from_directory, from_path
from smoacs.predictors.crystalformer.checkpoint import LoadedCrystalformer, read_checkpoint, write_checkpoint
from smoacs.predictors.crystalformer.network import CrystalformerConfig, CrystalformerNet

__all__ = [
    "CrystalformerConfig",
    "CrystalformerNet",
    "CrystalformerPredictor",
    "LoadedCrystalformer",
    "from_checkpoint",
    "from_directory",
    "from_path",
    "read_checkpoint",
    "write_checkpoint",
]
