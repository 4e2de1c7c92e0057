"""The ``smoacs`` command: ``run`` (a config file or a preset), ``presets``, ``predictors``, ``predict``,
``evaluate``. Each subcommand is a small function of its args.

User errors (bad values, unreadable files, unknown names) print one line ``smoacs: error: …`` and exit with 2;
no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn
from dataclasses import replace
from pathlib import Path

from smoacs import __version__
from smoacs.errors import ConfigError, SmoacsError
from smoacs.predictors.registry import predictor_info
from smoacs.predict import add_predict_parser
from smoacs.train.cli import add_train_parser

EXIT_USAGE = 2


def _cmd_presets(args: argparse.Namespace) -> int:
    from smoacs.presets import PRESETS

    for preset in PRESETS.values():
        print(f"{preset.name:28s} {preset.description}  [--target: {preset.target_name}, default {preset.default_target:g}]")
    return 0


def _cmd_predictors(args: argparse.Namespace) -> int:
    from smoacs.predictors import available_predictors

    print(f"{'name':28s} {'property':18s} {'unit':8s} {'training data':48s} source")
    for info in available_predictors():
        print(f"{info.name:28s} {info.property:18s} {info.unit or '-':8s} {info.training_data:48s} {info.source}")
    return 0


def _run_config(args: argparse.Namespace):  # noqa: ANN202 - RunConfig
    """The run's configuration: a config file or a preset, then the command-line overrides, validated."""
    from smoacs.configfile import load_config
    from smoacs.presets import build_config

    if args.resume is not None:  # the run directory's own config unless a file or preset is given; its out always
        if args.out is not None and args.out != args.resume:
            raise ConfigError(f"--resume {args.resume} writes into that directory; drop --out {args.out}")
        args.out = args.resume
        if args.config is None and args.preset is None:
            if not Path(args.resume).is_dir():
                raise ConfigError(f"cannot resume: run directory {args.resume} does not exist")
            args.config = str(Path(args.resume) / "run.json")
    if (args.config is None) == (args.preset is None):
        given = "both a config file and --preset" if args.config is not None else "neither a config file nor --preset"
        args.usage_error(f"run needs exactly one of a config file (smoacs run FILE) or --preset NAME; got {given}")
    if args.config is not None:
        if args.target is not None:
            raise ConfigError("--target applies to --preset only; a config file sets its targets in `objectives`")
        config = load_config(args.config)
    else:
        config = build_config(args.preset, args.target, args.out)
    changes = {
        name: getattr(args, name)
        for name in ("candidates", "batch_size", "seed", "device", "out")
        if getattr(args, name) is not None
    }
    if args.steps is not None:
        try:
            changes["optimizer"] = replace(config.optimizer, steps=args.steps)
        except ValueError as exc:
            raise ConfigError(f"--steps: {exc}") from None
    if args.length_bounds is not None:
        changes["space"] = replace(config.space, length_bounds=tuple(args.length_bounds))
    if args.templates is not None:
        changes["templates"] = replace(config.templates, path=args.templates)
    if getattr(args, "relax", None):
        changes["evaluation"] = replace(config.evaluation, relax=args.relax)
    predictors, oracles = dict(config.predictors), dict(config.oracles)
    for prop, name in _assignments(args.predictor, "--predictor"):
        if prop not in predictors:
            raise ConfigError(f"--predictor {prop}={name}: this run has no property {prop!r} ({', '.join(predictors)})")
        if oracles.get(prop) == name:  # swapping models: the preset's model becomes the oracle
            oracles[prop] = predictors[prop]
        predictors[prop] = name
    for prop, name in _assignments(args.oracle, "--oracle"):
        oracles[prop] = name
    if args.no_oracle:
        oracles = {}
    for name in [*predictors.values(), *oracles.values()]:
        predictor_info(name)  # unknown names fail here, listing the known ones
    changes.update(predictors=predictors, oracles=oracles)
    return config.with_overrides(**changes).validate()


def _assignments(values: list[str] | None, flag: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values or []:
        prop, sep, name = value.partition("=")
        if not sep or not prop or not name:
            raise ConfigError(f"{flag} expects PROPERTY=PREDICTOR (e.g. band_gap=megnet-band-gap), got {value!r}")
        pairs.append((prop.strip(), name.strip()))
    return pairs


def _cmd_run(args: argparse.Namespace) -> int:
    from smoacs.configfile import dump_config
    from smoacs.runner import run

    config = _run_config(args)
    if args.dump_config:
        source = f"config file {args.config}" if args.config is not None else f"preset {config.preset}"
        sys.stdout.write(dump_config(config, header=f"resolved from {source} by smoacs {__version__}"))
        return 0
    result = run(config, progress=not args.no_progress, resume=args.resume is not None)
    summary = result.summary
    print(f"wrote {result.out_dir}/ ({summary['n_candidates']} candidates)")
    for key, value in summary.items():
        print(f"  {key:28s} {value:.3f}" if isinstance(value, float) else f"  {key:28s} {value}")
    best = sorted(result.successes, key=lambda row: row["id"])[:10]
    if best:
        props = list(config.predictors)
        print("first successes:")
        for row in best:
            values = " ".join(f"{p}={row[p]:.3f}" for p in props)
            tolerance = f" t={row['tolerance']:.3f}" if row["tolerance"] == row["tolerance"] else ""  # NaN: no roles
            print(f"  {row['id']} {row['formula']:14s} {values}{tolerance}  {row['cif']}")
    for index, message in result.failures.items():
        print(f"mini-batch {index} failed: {message}", file=sys.stderr)
    return 0 if not result.failures else 1


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from smoacs.evaluate.rerun import evaluate_run

    result = evaluate_run(args.run_dir, references=args.reference, device=args.device or "auto", relax=args.relax)
    summary = result.summary
    print(f"evaluated {result.run_dir}/ ({summary['n_candidates']} candidates; novelty references: "
          f"{result.references or 'none'})")  # fmt: skip
    for key, value in summary.items():
        print(f"  {key:28s} {value:.3f}" if isinstance(value, float) else f"  {key:28s} {value}")
    print(f"wrote {result.run_dir}/evaluation.csv, evaluation_summary.csv, report.md")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error format of the rest of the CLI (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        print(f"smoacs: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``smoacs`` command."""
    parser = _Parser(prog="smoacs", description="Inverse design of crystals through pretrained predictors.")
    parser.add_argument("--version", action="version", version=f"smoacs {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="optimise candidates for a config file or a preset and write a run directory")
    run.add_argument(
        "config", nargs="?", metavar="CONFIG",
        help="run configuration file (.yaml, .yml, .toml, or a run.json; see docs/CONFIG.md); or use --preset",
    )  # fmt: skip
    run.add_argument("--preset", help="task preset (see `smoacs presets`), instead of a config file")
    run.add_argument("--target", type=float, help="main target value, in the preset's unit (with --preset)")
    run.add_argument("--candidates", type=int, help="number of candidates (default 256)")
    run.add_argument("--batch-size", type=int, help="candidates optimised together (default 256)")
    run.add_argument("--steps", type=int, help="gradient steps (default 200)")
    run.add_argument("--seed", type=int, help="random seed (default 0)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: CUDA when available")
    run.add_argument("--out", help="output directory (default runs/<preset>-<target>, or the file's out)")
    run.add_argument("--templates", help="CIF/POSCAR file or directory to use as templates")
    run.add_argument("--length-bounds", type=float, nargs=2, metavar=("MIN", "MAX"), help="lattice length bounds, Å")
    run.add_argument(
        "--predictor", action="append", metavar="PROP=NAME",
        help="optimise PROP through predictor NAME (e.g. band_gap=megnet-band-gap); the preset's model becomes its oracle",
    )  # fmt: skip
    run.add_argument("--oracle", action="append", metavar="PROP=NAME", help="re-check PROP with predictor NAME")
    run.add_argument("--no-oracle", action="store_true", help="skip the independent-oracle re-check")
    run.add_argument("--relax", choices=("chgnet",), help="relax every success with CHGNet and re-check it")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--resume", metavar="RUN_DIR",
        help="continue an interrupted run in RUN_DIR: finished mini-batches are kept, the rest run with the same "
        "seeds (config: RUN_DIR/run.json, or the given file/preset, which must equal it)",
    )  # fmt: skip
    run.add_argument(
        "--dump-config", action="store_true",
        help="print the resolved configuration as a YAML config file and exit without running",
    )  # fmt: skip
    run.set_defaults(func=_cmd_run, usage_error=run.error)

    presets = sub.add_parser("presets", help="list presets")
    presets.set_defaults(func=_cmd_presets)
    predictors = sub.add_parser("predictors", help="list predictors")
    predictors.set_defaults(func=_cmd_predictors)
    add_predict_parser(sub)
    add_train_parser(sub)

    evaluate = sub.add_parser(
        "evaluate", help="recompute criteria, uniqueness, novelty and the summary of a run directory from its files"
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="directory written by `smoacs run`")
    evaluate.add_argument(
        "--reference", action="append", metavar="SET",
        help="novelty reference: perov5, supercon, prototypes, a directory of CIF/POSCAR files or a CSV with a cif "
        "column (repeatable; default: every built-in set whose data is present); the run's template files always count",
    )  # fmt: skip
    evaluate.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: CUDA when available")
    evaluate.add_argument("--relax", choices=("chgnet",), help="relax every success with CHGNet and re-check it")
    evaluate.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except SmoacsError as exc:
        print(f"smoacs: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("smoacs: interrupted; finished mini-batches are on disk (`smoacs run --resume RUN_DIR` continues)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
