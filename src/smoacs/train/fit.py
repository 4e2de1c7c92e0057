"""Training loop: L1 regression on standardised targets, AdamW, early stopping on the validation MAE, model card."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from smoacs.errors import ConfigError
from smoacs.predictors.card import ModelCard
from smoacs.runtime import DEVICES, resolve_device
from smoacs.train.arch import Architecture, Samples, architecture
from smoacs.train.data import Table, Transform, read_table

LOG = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Optimisation settings.

    Attributes:
        epochs: maximum epochs.
        batch_size: structures per step.
        lr: AdamW learning rate (decays as 1/sqrt(1 + step/4000), as the official Crystalformer schedule).
        weight_decay: AdamW weight decay.
        patience: stop after this many epochs without a better validation MAE.
        val_fraction: share of the training table held out for validation when no validation table is given.
        seed: seed of the split, initialisation and shuffling.
        clip_norm: gradient-norm clip.
        device: ``auto``, ``cpu`` or ``cuda``.
        threads: torch CPU threads (0: leave torch's default).
        loss: ``l1`` (MAE; early stopping on the validation MAE) or ``mse`` (early stopping on the validation RMSE;
            for zero-inflated targets such as perov-5 band gaps, where L1 collapses to the median 0).
    """

    epochs: int = 200
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 1e-5
    patience: int = 40
    val_fraction: float = 0.1
    seed: int = 0
    clip_norm: float = 1.0
    device: str = "auto"
    threads: int = 0
    loss: Literal["l1", "mse"] = "l1"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be ≥ 1, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be ≥ 0, got {self.weight_decay}")
        if not (math.isfinite(self.clip_norm) and self.clip_norm > 0):
            raise ConfigError(f"clip_norm must be > 0, got {self.clip_norm}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val-fraction must lie in (0, 1), got {self.val_fraction}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must lie in [0, 2**32 - 1], got {self.seed}")
        if self.threads < 0:
            raise ConfigError(f"threads must be ≥ 0 (0: torch's choice), got {self.threads}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.loss not in ("l1", "mse"):
            raise ConfigError(f"loss must be l1 or mse, got {self.loss!r}")


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`."""

    out: Path
    card: ModelCard
    history: list[dict[str, float]] = field(default_factory=list)


def _batches(n: int, size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, size):
        yield order[start : start + size]


def predict_samples(arch: Architecture, model: nn.Module, samples: Samples, device: torch.device, size: int = 64) -> Tensor:
    """``[n]`` normalised predictions of every sample (evaluation mode, no gradient)."""
    model.eval()
    out = []
    with torch.no_grad():
        for rows in _batches(len(samples), size, None):
            out.append(arch.forward(model, arch.collate(samples, rows, device)).cpu())
    return torch.cat(out)


def _split(table: Table, fraction: float, seed: int) -> tuple[Table, Table]:
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(table))
    n_val = max(1, round(fraction * len(table)))
    if n_val >= len(table):
        raise ConfigError(f"{table.path} has too few usable rows ({len(table)}) for a validation split")
    val = table.subset(np.sort(order[:n_val]))
    val.skipped = []  # reported once, with the training table
    return table.subset(np.sort(order[n_val:])), val


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, transient=False) as bar:
        yield (bar, bar.add_task("epochs", total=total, info=""))


def _fit(
    arch: Architecture, train: Samples, y_train: Tensor, val: Samples, y_val: Tensor, settings: TrainSettings,
    device: torch.device, progress: bool,
) -> tuple[nn.Module, list[dict[str, float]]]:  # fmt: skip
    """Train on normalised targets; returns the best-validation model and the per-epoch history."""
    model = arch.build(settings.seed).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.9, 0.98), weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1.0 + step / 4000.0) ** -0.5)
    rng = np.random.default_rng(settings.seed)
    best, best_mae, stale, history = copy.deepcopy(model.state_dict()), float("inf"), 0, []
    # Crystalformer: a fresh network stores the decay-logit statistics of its first training batch (as the official code)
    calibrate = getattr(model, "set_calibration", None) if not getattr(model, "is_calibrated", lambda: True)() else None
    with _progress(progress, settings.epochs) as bar:
        for epoch in range(settings.epochs):
            model.train()
            losses = []
            for rows in _batches(len(train), settings.batch_size, rng):
                if calibrate is not None and epoch == 0 and not losses:
                    calibrate(True)
                batch = arch.collate(train, rows, device)
                error = arch.forward(model, batch) - y_train[rows].to(device)
                loss = error.abs().mean() if settings.loss == "l1" else (error * error).mean()
                if calibrate is not None:
                    calibrate(False)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
                optimizer.step()
                schedule.step()
                losses.append(float(loss.detach()))
            val_error = predict_samples(arch, model, val, device) - y_val
            val_mae = float(val_error.abs().mean() if settings.loss == "l1" else val_error.square().mean().sqrt())
            history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_metric": val_mae})
            if val_mae < best_mae:
                best, best_mae, stale = copy.deepcopy(model.state_dict()), val_mae, 0
            else:
                stale += 1
            if bar is not None:
                bar[0].update(bar[1], advance=1, info=f"train {np.mean(losses):.3f}  val {val_mae:.3f}  best {best_mae:.3f}")
            LOG.info("epoch %d train %.4f val %.4f", epoch + 1, np.mean(losses), val_mae)
            if stale >= settings.patience:
                break
    model.load_state_dict(best)
    return model.eval(), history


def train_model(
    data: str | Path,
    out: str | Path,
    arch: str = "crystalformer",
    structure_column: str = "cif",
    target_column: str = "prop",
    transform: Transform = "none",
    property: str | None = None,
    unit: str = "",
    val: str | Path | None = None,
    test: str | Path | None = None,
    hyper: dict[str, Any] | None = None,
    init: str | None = None,
    settings: TrainSettings | None = None,
    licence: str = "",
    description: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train a predictor on a table and write ``out/`` (weights + ``model.json``); see ``smoacs train --help``.

    The MAE figures in the card are in the target's unit (after ``transform``; for ``log10`` in log10 units).
    """
    settings = settings or TrainSettings()
    out = _new_model_directory(out)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    model_arch = architecture(arch, hyper, init)
    start = time.perf_counter()
    columns = {"structure_column": structure_column, "target_column": target_column, "transform": transform}
    table = read_table(data, **columns)
    if val is not None:
        train_table, val_table = table, read_table(val, **columns)
    else:
        train_table, val_table = _split(table, settings.val_fraction, settings.seed)
    test_table = read_table(test, **columns) if test is not None else None
    mean, std = float(train_table.targets.mean()), float(train_table.targets.std()) or 1.0

    def normalised(t: Table) -> Tensor:
        return torch.tensor((t.targets - mean) / std, dtype=torch.float32)

    train_samples, val_samples = model_arch.prepare(train_table.structures), model_arch.prepare(val_table.structures)
    if getattr(model_arch, "closed_form", False):  # e.g. a kernel-ridge head: fitted directly, selected on val
        model, history = model_arch.fit(train_samples, normalised(train_table), val_samples, normalised(val_table), mean, std)
        model = model.to(device)
    else:
        model, history = _fit(model_arch, train_samples, normalised(train_table), val_samples, normalised(val_table),
                              settings, device, progress)  # fmt: skip
    elapsed = time.perf_counter() - start

    def errors(t: Table, samples: Samples | None = None) -> np.ndarray:
        pred = predict_samples(model_arch, model, samples or model_arch.prepare(t.structures), device).numpy()
        return pred * std + mean - t.targets

    def mae(t: Table, samples: Samples | None = None) -> float:
        return float(np.abs(errors(t, samples)).mean())

    metrics: dict[str, Any] = {
        "train_mae": mae(train_table, train_samples),
        "val_mae": mae(val_table, val_samples),
        "best_epoch": int(np.argmin([h["val_metric"] for h in history])) + 1,
        "epochs_run": len(history),
        "val_median_baseline_mae": float(np.abs(val_table.targets - np.median(train_table.targets)).mean()),
    }
    if settings.loss == "mse":
        metrics["val_rmse"] = float(np.sqrt(np.mean(errors(val_table, val_samples) ** 2)))
    if test_table is not None:
        test_errors = errors(test_table)
        metrics["test_mae"] = float(np.abs(test_errors).mean())
        metrics["test_rmse"] = float(np.sqrt(np.mean(test_errors**2)))
        metrics["test_median_baseline_mae"] = float(np.abs(test_table.targets - np.median(train_table.targets)).mean())
        nonzero = test_table.targets != 0
        if (train_table.targets == 0).mean() > 0.5 and nonzero.any():  # zero-inflated (e.g. band gaps): the rows that matter
            metrics["test_mae_nonzero"] = float(np.abs(test_errors[nonzero]).mean())
            metrics["test_zero_baseline_mae_nonzero"] = float(np.abs(test_table.targets[nonzero]).mean())
            metrics["test_n_nonzero"] = int(nonzero.sum())
    out.mkdir(parents=True, exist_ok=True)
    model_arch.save(out / model_arch.weights_file, model, mean, std)
    sign = {"none": "", "negate": "-", "log10": "log10 "}[transform]
    card = ModelCard(
        arch=model_arch.name, weights=model_arch.weights_file, property=property or target_column, unit=unit,
        target=f"{sign}{target_column}", output_transform="pow10" if transform == "log10" else "none",
        hyper_parameters={"architecture": model_arch.hyper, "init": init, "training": asdict(settings),
                          "target_mean": mean, "target_std": std},
        data={"name": Path(data).name, "train": _describe(table, train_table), "val": _describe(val_table, val_table),
              "test": _describe(test_table, test_table) if test_table is not None else None,
              "split": "explicit --val" if val is not None else f"random {settings.val_fraction:g} of train (seed {settings.seed})"},
        metrics=metrics, training_time_s=round(elapsed, 1), licence=licence, description=description,
    )  # fmt: skip
    card.write(out)
    (out / "history.json").write_text(__import__("json").dumps(history) + "\n")
    return TrainResult(out, card, history)


def _new_model_directory(out: str | Path) -> Path:
    """``out`` as a path, when it can become a new model directory (absent, or an empty directory); ConfigError
    otherwise, before any training: a model, a run or any other file there is never overwritten."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file; give a directory for the model")
    if path.is_dir() and any(path.iterdir()):
        raise ConfigError(f"--out {path} already exists and is not empty; choose a new directory (nothing is overwritten)")
    return path


def _describe(source: Table, used: Table) -> dict[str, Any]:
    return {"file": str(source.path), "sha256": source.sha256, "rows_used": len(used),
            "skipped": [{"row": row, "reason": reason} for row, reason in source.skipped]}  # fmt: skip
