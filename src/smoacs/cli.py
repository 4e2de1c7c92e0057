"""The ``smoacs`` command: ``run`` (a config file or a preset), ``presets``, ``predictors``, ``predict``,
``evaluate``, ``relax``, ``compare``. Each subcommand is a small function of its args.

User errors (bad values, unreadable files, unknown names, an output directory that holds another run, a failed
mini-batch — out of memory suggests a smaller ``--batch-size``) print one line ``smoacs: error: …`` and exit with 2;
no traceback (``-v`` logs the stages with their timings, and a failed mini-batch's traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn
from pathlib import Path

from smoacs import __version__
from smoacs.campaign.cli import add_campaign_parsers
from smoacs.errors import ConfigError, SmoacsError
from smoacs.io.rundir import EVALUATION_CSV, EVALUATION_SUMMARY_CSV, REPORT_MD, RunDirectory
from smoacs.predict import add_predict_parser
from smoacs.train.cli import add_train_parser

EXIT_USAGE = 2
REFERENCE_HELP = (
    "novelty and known-value reference: perov5 (band gap, heat of formation), supercon (Tc), prototypes, a directory of "
    "CIF/POSCAR files or a CSV with a cif column, with property columns declared as CSV:COLUMN=UNIT@THEORY[,...] (e.g. "
    "refs.csv:band_gap=eV@PBE); repeatable; default: every built-in set whose data is present (evaluate: the run's); "
    "the run's template files always count"
)
KNOWN_HELP = "which candidates get reference values of a matched entry (default successes; see docs/KNOWN_VALUES.md)"
VERBOSE_HELP = "log each stage (problem set-up, search, evaluation, writing, finishing) with its wall time, to stderr"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print an aligned plain-text table (rich, no box characters: it stays greppable and pipes cleanly)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200).print(table)


def _cmd_presets(args: argparse.Namespace) -> int:
    from smoacs.presets import PRESETS

    rows = [(p.name, p.target_name, f"{p.default_target:g}", p.description) for p in PRESETS.values()]
    _table(("preset", "--target", "default", "description"), rows)
    return 0


def _cmd_predictors(args: argparse.Namespace) -> int:
    from smoacs.predictors import available_predictors

    rows = [(i.name, i.property, i.unit or "-", i.training_data, i.source) for i in available_predictors()]
    _table(("name", "property", "unit", "training data", "source"), rows)
    return 0


def _run_config(args: argparse.Namespace):  # noqa: ANN202 - RunConfig
    """The run's configuration: a config file or a preset, then the command-line overrides, validated
    (:func:`smoacs.options.run_config`, which campaigns use too)."""
    from smoacs.options import RunOptions, run_config

    if args.resume is not None:  # the run directory's own config unless a file or preset is given; its out always
        if args.out is not None and args.out != args.resume:
            raise ConfigError(f"--resume {args.resume} writes into that directory; drop --out {args.out}")
        args.out = args.resume
        if args.config is None and args.preset is None:
            if not Path(args.resume).is_dir():
                raise ConfigError(f"cannot resume: run directory {args.resume} does not exist")
            args.config = str(RunDirectory(args.resume).run_json)
    if (args.config is None) == (args.preset is None):
        given = "both a config file and --preset" if args.config is not None else "neither a config file nor --preset"
        args.usage_error(f"run needs exactly one of a config file (smoacs run FILE) or --preset NAME; got {given}")
    return run_config(RunOptions.from_namespace(args))


def _out_dir(args: argparse.Namespace, config):  # noqa: ANN001, ANN202 - RunConfig
    """The config with its run directory decided: ``--out`` as given; without it the default (a preset:
    ``runs/<preset>-<target>-s<seed>``; a file: its ``out``, default ``runs/<name>``) is a base name, made unique
    with ``-2``, ``-3``, … so that no earlier run is touched (``--overwrite`` reuses the base name)."""
    from smoacs.io.rundir import unique_path

    if args.resume is not None or args.out is not None:
        return config
    base = f"{config.out}-s{config.seed}" if args.preset is not None else config.out
    return config.with_overrides(out=str(base if args.overwrite else unique_path(base)))


def _cmd_run(args: argparse.Namespace) -> int:
    from smoacs.configfile import dump_config
    from smoacs.runner import run

    config = _run_config(args)
    if args.dump_config:
        source = f"config file {args.config}" if args.config is not None else f"preset {config.preset}"
        sys.stdout.write(dump_config(config, header=f"resolved from {source} by smoacs {__version__}"))
        return 0
    if args.overwrite and args.resume is not None:
        raise ConfigError("--overwrite and --resume exclude each other: --resume continues the run, --overwrite replaces it")
    config = _out_dir(args, config)
    try:
        result = run(config, progress=not args.no_progress, resume=args.resume is not None, overwrite=args.overwrite)
    except KeyboardInterrupt:
        print(f"smoacs: interrupted; finished mini-batches are in {config.out}/ "
              f"(`smoacs run --resume {config.out}` continues)", file=sys.stderr)  # fmt: skip
        return 130
    summary = result.summary
    print(f"wrote {result.out_dir}/ ({summary['n_candidates']} candidates)")
    _print_summary(summary)
    best = sorted(result.successes, key=lambda row: row["id"])[:10]
    if best:
        props = list(config.predictors)
        print("first successes:")
        for row in best:
            values = " ".join(f"{p}={row[p]:.3f}" for p in props)
            tolerance = f" t={row['tolerance']:.3f}" if row["tolerance"] == row["tolerance"] else ""  # NaN: no roles
            print(f"  {row['id']} {row['formula']:14s} {values}{tolerance}  {row['cif']}")
    elif summary.get("n_candidates"):
        print("no successes")
    for index, message in result.failures.items():
        print(f"smoacs: error: mini-batch {index} failed: {message}", file=sys.stderr)
    return 0 if not result.failures else EXIT_USAGE


def _print_summary(summary: dict) -> None:  # noqa: ANN001 - one summary row
    """The summary row, one aligned ``key value`` line each (floats to 3 decimals)."""
    width = max(map(len, summary), default=0)
    for key, value in summary.items():
        print(f"  {key:{width}s} {value:.3f}" if isinstance(value, float) else f"  {key:{width}s} {value}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from smoacs.evaluate.rerun import evaluate_run

    result = evaluate_run(
        args.run_dir, references=args.reference, device=args.device or "auto", relax=args.relax,
        known_values=getattr(args, "known_values", None),
    )  # fmt: skip
    summary = result.summary
    print(f"evaluated {result.run_dir}/ ({summary['n_candidates']} candidates; novelty references: "
          f"{result.references or 'none'})")  # fmt: skip
    _print_summary(summary)
    print(f"wrote {result.run_dir}/{EVALUATION_CSV}, {EVALUATION_SUMMARY_CSV}, {REPORT_MD}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from smoacs.evaluate.compare import compare_runs, markdown_table

    rows, md, table = compare_runs(args.run_dirs, args.out)
    sys.stdout.write(markdown_table(rows))
    print(f"wrote {md}, {table}")
    return 0


def _cmd_relax(args: argparse.Namespace) -> int:
    args.relax = args.potential
    return _cmd_evaluate(args)


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error format of the rest of the CLI (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        print(f"smoacs: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``smoacs`` command."""
    parser = _Parser(prog="smoacs", description="Inverse design of crystals through pretrained predictors.")
    parser.add_argument("--version", action="version", version=f"smoacs {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    common = argparse.ArgumentParser(add_help=False)  # -v also after the subcommand (default kept from the top)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run", parents=[common], help="optimise candidates for a config file or a preset and write a run directory"
    )
    run.add_argument(
        "config", nargs="?", metavar="CONFIG",
        help="run configuration file (.yaml, .yml, .toml, or a run.json; see docs/CONFIG.md); or use --preset",
    )  # fmt: skip
    run.add_argument("--preset", help="task preset (see `smoacs presets`), instead of a config file")
    run.add_argument("--target", type=float, help="main target value, in the preset's unit (with --preset)")
    run.add_argument("--candidates", type=int, help="number of candidates (default 256)")
    run.add_argument(
        "--batch-size", type=int,
        help="candidates optimised together (default 256). Results depend on it as on --seed: copy-and-mutate acts "
        "within a mini-batch, so another batch size gives other candidates (and --resume refuses a change). "
        "Lower it after an out-of-memory error",
    )  # fmt: skip
    run.add_argument("--steps", type=int, help="gradient steps (default 200)")
    run.add_argument(
        "--method", choices=("gradient", "tpe", "random", "ga", "enumerate"),
        help="search method (default gradient, the SMOACS optimiser); tpe, random, ga: baselines over the same design "
        "space; enumerate: every composition of the first template with a short lattice relaxation (see docs/DESIGN.md)",
    )  # fmt: skip
    run.add_argument(
        "--budget", type=int, metavar="N",
        help="predictor evaluations per candidate (gradient: its steps; tpe/random/ga: trials; enumerate: scan points "
        "+ relaxation steps). Default: --steps for gradient, 200 for tpe/random/ga, 40 for enumerate",
    )  # fmt: skip
    run.add_argument(
        "--anions", choices=("single", "mixed"),
        help="baselines: all anion sites of a crystal one element (single; enumerate's default) or each site free (mixed)",
    )  # fmt: skip
    run.add_argument("--seed", type=int, help="random seed (default 0)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: CUDA when available")
    run.add_argument(
        "--threads", type=int,
        help="torch CPU threads (default 0: the cores this process may use); recorded in run.json",
    )  # fmt: skip
    run.add_argument(
        "--out",
        help="output directory; it must not hold another run (see --overwrite, --resume). Default: "
        "runs/<preset>-<target>-s<seed> (a file: its out), with -2, -3, … appended when that already holds a run",
    )  # fmt: skip
    run.add_argument(
        "--overwrite", action="store_true",
        help="replace the run in the output directory (its run files are deleted first)",
    )  # fmt: skip
    run.add_argument("--templates", help="CIF/POSCAR file or directory to use as templates")
    run.add_argument(
        "--length-bounds", type=float, nargs=2, metavar=("MIN", "MAX"),
        help="lattice length bounds, Å (the generated templates' initial range is narrowed to fit inside)",
    )  # fmt: skip
    run.add_argument(
        "--max-species", metavar="GROUP=N,…",
        help="at most N distinct elements per sublattice (A, B, X of perovskites; a general template's own elements), "
        "e.g. A=1,B=2,X=1: a host and substituents sharing each sublattice (docs/DESIGN.md)",
    )  # fmt: skip
    run.add_argument(
        "--dopant-fraction", metavar="GROUP=MIN:MAX,…",
        help="window on each sublattice's minority fraction (sites not held by its most common element), e.g. "
        "B=0.0:0.25; needs --max-species GROUP≥2",
    )  # fmt: skip
    run.add_argument(
        "--allowed-elements", action="append", metavar="GROUP=El,…",
        help="elements a sublattice may hold, e.g. X=Cl,Br,I (repeatable, one sublattice each)",
    )  # fmt: skip
    run.add_argument(
        "--predictor", action="append", metavar="PROP=NAME",
        help="optimise PROP through predictor NAME (e.g. band_gap=megnet-band-gap); the preset's model becomes its judge",
    )  # fmt: skip
    run.add_argument(
        "--ensemble", action="append", metavar="PROP=NAME,NAME[,…]",
        help="optimise PROP through an ensemble of these predictors (e.g. band_gap=cgcnn-band-gap,megnet-band-gap): "
        "value = their mean, spread = max − min (<PROP>_spread); objectives on PROP require every member "
        "(docs/CONFIG.md: ensembles)",
    )  # fmt: skip
    run.add_argument(
        "--judge", action="append", metavar="PROP=NAME",
        help="held-out judge: re-check PROP with predictor NAME, never seen by the optimiser (<PROP>_judge, "
        "<PROP>_judge_ok, <PROP>_judge_agreement); e.g. band_gap=megnet-mf-band-gap:fidelity=pbe",
    )  # fmt: skip
    run.add_argument("--no-judge", action="store_true", help="no held-out judge")
    run.add_argument("--oracle", action="append", metavar="PROP=NAME", help=argparse.SUPPRESS)  # deprecated: --judge
    run.add_argument("--no-oracle", action="store_true", help=argparse.SUPPRESS)  # deprecated: --no-judge
    run.add_argument(
        "--physics", choices=("chgnet", "none"),
        help="chgnet (default): the geometry follows CHGNet's energy, every candidate is relaxed (batched) and success "
        "is judged on the relaxed cell; none: plain SMOACS (nothing relaxed unless --relax)",
    )  # fmt: skip
    run.add_argument(
        "--relax", choices=("chgnet",),
        help="with --physics none: also relax every candidate and report the relaxed verdict (relaxed_success)",
    )  # fmt: skip
    run.add_argument(
        "--polish-rounds", type=int, metavar="N",
        help="with physics: after the gradient search, N rounds of relax + composition-only steps at the relaxed "
        "geometry for the candidates that miss an objective there (physics.polish_rounds; default 2, 0: off)",
    )  # fmt: skip
    run.add_argument(
        "--polish-replace", action=argparse.BooleanOptionalAction, default=None,
        help="with physics: in each polish round a candidate whose relaxed cell left its template's bounds restarts "
        "from the composition of a stable candidate that meets every objective, one site mutated, on that "
        "candidate's relaxed cell (physics.polish_replace; default on)",
    )  # fmt: skip
    run.add_argument(
        "--max-copies", type=int, metavar="K",
        help="copy-and-mutate diversity rule when receivers copy the donor's composition (physics on): a "
        "composition already held by K candidates is copied no further (optimizer.max_composition_copies; 0: no limit)",
    )  # fmt: skip
    run.add_argument(
        "--screen", type=float, metavar="FRACTION",
        help="with physics: start up to this fraction of the candidates from a screen of the template's "
        "single-anion compositions at their equilibrium lattice constant (those meeting every objective there), "
        "kept out of the gradient search and the polish (physics.screen; perovskite-bandgap: 0.125, 0: off)",
    )  # fmt: skip
    run.add_argument("--reference", action="append", metavar="SET", help=REFERENCE_HELP)
    run.add_argument("--known-values", choices=("successes", "all"), help=KNOWN_HELP)
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

    presets = sub.add_parser("presets", parents=[common], help="list presets")
    presets.set_defaults(func=_cmd_presets)
    predictors = sub.add_parser("predictors", parents=[common], help="list predictors")
    predictors.set_defaults(func=_cmd_predictors)
    add_predict_parser(sub, parents=[common])
    add_train_parser(sub)
    add_campaign_parsers(sub, parents=[common])

    evaluate = sub.add_parser(
        "evaluate", parents=[common], help="recompute criteria, uniqueness, novelty and the summary of a run directory from its files"
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="directory written by `smoacs run`")
    evaluate.add_argument("--reference", action="append", metavar="SET", help=REFERENCE_HELP)
    evaluate.add_argument("--known-values", choices=("successes", "all"), help=KNOWN_HELP)
    evaluate.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: CUDA when available")
    evaluate.add_argument(
        "--relax", choices=("chgnet",),
        help="relax every design with CHGNet (batched) and judge the relaxed cells (default: the run's own physics)",
    )  # fmt: skip
    evaluate.set_defaults(func=_cmd_evaluate)

    compare = sub.add_parser(
        "compare", parents=[common],
        help="one table across run directories (any method): success, criteria, distinct, unique, novel, per second, "
        "coverage of an enumerate run's successes",
    )  # fmt: skip
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="directories written by `smoacs run`")
    compare.add_argument("--out", default="compare", help="write OUT.md and OUT.csv (default: compare.md, compare.csv)")
    compare.set_defaults(func=_cmd_compare)

    relax = sub.add_parser(
        "relax", help="relax every structure of a run (batched, CHGNet) and re-check it; writes evaluation.csv, relaxed/"
    )
    relax.add_argument("run_dir", metavar="RUN_DIR", help="directory written by `smoacs run`")
    relax.add_argument("--potential", choices=("chgnet",), default="chgnet", help="universal potential (default chgnet)")
    relax.add_argument("--reference", action="append", metavar="SET", help="novelty reference (as for evaluate)")
    relax.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: CUDA when available")
    relax.set_defaults(func=_cmd_relax)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("smoacs").setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.func(args)
    except SmoacsError as exc:
        print(f"smoacs: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("smoacs: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
