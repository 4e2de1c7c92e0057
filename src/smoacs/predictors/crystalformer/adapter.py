"""Crystalformer behind the `Predictor` protocol, and loading it from a checkpoint or a trained-model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from smoacs.crystal.batch import CrystalBatch
from smoacs.errors import PredictorError
from smoacs.predictors.base import PredictorInfo
from smoacs.predictors.card import ModelCard, OutputTransform, apply_output_transform
from smoacs.predictors.crystalformer.checkpoint import LoadedCrystalformer, read_checkpoint

DEFAULT_CHUNK = 2048  # atom pairs per chunk of the image sums: ≈ chunk·125·64 floats of scratch per chunk


class CrystalformerPredictor(nn.Module):
    """A Crystalformer model; output = transform(raw · target_std + target_mean) in ``info.unit``.

    Atoms are fed as ``species_probs`` (so soft compositions are a weighted sum of embedding columns) at Cartesian
    positions ``wrap(frac) @ L`` with ``wrap(f) = f - floor(f)`` (gradient 1), which centres the fixed image window
    as the official loader does. Crystalformer has no neighbour list, so :meth:`rebuild` does nothing and the
    prediction is smooth in the geometry everywhere.

    Args:
        info: name, property and unit.
        loaded: network and normaliser from :func:`read_checkpoint`.
        output_transform: ``"pow10"`` for models trained on a log10 target.
        target_index: which output of a multi-target model to report.
        chunk: atom pairs per chunk of the image sums (memory ∝ chunk).
    """

    def __init__(
        self,
        info: PredictorInfo,
        loaded: LoadedCrystalformer,
        output_transform: OutputTransform = "none",
        target_index: int = 0,
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        super().__init__()
        self.info = info
        self.net = loaded.net
        self.config = loaded.config
        if not 0 <= target_index < loaded.config.n_targets:
            raise PredictorError(f"target_index {target_index} out of range (model has {loaded.config.n_targets})")
        self.register_buffer("target_mean", loaded.target_mean.clone())
        self.register_buffer("target_std", loaded.target_std.clone())
        self.output_transform: OutputTransform = output_transform
        self.target_index = target_index
        self.chunk = int(chunk)

    def raw(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals, n_targets]`` normalised network output."""
        dtype = self.net.input_embeddings.weight.dtype
        frac = crystals.frac_coords.to(dtype)
        frac = frac - torch.floor(frac.detach())
        lattice = crystals.lattice.to(dtype)
        pos = torch.einsum("ni,nij->nj", frac, lattice[crystals.crystal_idx])
        x = crystals.species_probs.to(dtype)
        return self.net(x, pos, lattice, crystals.crystal_idx, crystals.n_atoms, chunk=self.chunk)

    def forward(self, crystals: CrystalBatch) -> Tensor:
        """``[n_crystals]`` prediction in ``info.unit``."""
        t = self.target_index
        value = self.raw(crystals)[:, t] * self.target_std[t] + self.target_mean[t]
        return apply_output_transform(value, self.output_transform)

    def final(self, crystals: CrystalBatch) -> Tensor:
        """Value for discrete crystals (same as the forward pass)."""
        return self(crystals)

    def rebuild(self, crystals: CrystalBatch) -> None:
        """Nothing to rebuild: every pair and image within the window is always used."""


def _freeze(predictor: CrystalformerPredictor) -> CrystalformerPredictor:
    predictor.eval()
    for parameter in predictor.parameters():
        parameter.requires_grad_(False)
    return predictor


def from_checkpoint(
    path: str | Path,
    property: str | None = None,
    unit: str = "",
    name: str | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> CrystalformerPredictor:
    """Predictor from an official-format ``.ckpt`` file; ``property`` defaults to the config's ``targets``."""
    loaded = read_checkpoint(path, config=config)
    targets = loaded.config.extra.get("targets", "y")
    prop = property or (targets if isinstance(targets, str) else "y")
    info = PredictorInfo(
        name or f"crystalformer:{path}", prop, unit, "unknown (user checkpoint)", f"{path}", "Crystalformer checkpoint"
    )
    return _freeze(CrystalformerPredictor(info, loaded, **options))


def from_directory(
    path: str | Path, property: str | None = None, name: str | None = None, **options: Any
) -> CrystalformerPredictor:
    """Predictor from a directory written by ``smoacs train --arch crystalformer`` (``model.json`` + weights)."""
    card = ModelCard.read(path)
    if card.arch != "crystalformer":
        raise PredictorError(f"{path} holds a {card.arch!r} model, not a Crystalformer")
    loaded = read_checkpoint(card.weights_path(path))
    data = card.data.get("name", "") or str(card.data.get("train", ""))
    info = PredictorInfo(
        name or f"crystalformer:{path}", property or card.property, card.unit, data,
        f"{path} ({card.licence})" if card.licence else str(path), card.description or f"Crystalformer, {card.target}",
    )  # fmt: skip
    return _freeze(CrystalformerPredictor(info, loaded, output_transform=card.output_transform, **options))


def from_path(path: str, property: str | None = None, **options: Any) -> CrystalformerPredictor:
    """A Crystalformer predictor from a ``.ckpt`` file or a trained-model directory.

    Args:
        path: official-format checkpoint, or a directory with ``model.json``.
        property: property key of the output (defaults: the card's property, or the checkpoint's ``targets``).
        options: ``unit``, ``config`` (official JSON for checkpoints without hyper-parameters), ``chunk``,
            ``target_index``, ``output_transform``, ``name``.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        return from_directory(target, property, **options)
    if target.is_file():
        return from_checkpoint(target, property, **options)
    raise PredictorError(f"Crystalformer model not found: {path} (expected a .ckpt file or a trained model directory)")
