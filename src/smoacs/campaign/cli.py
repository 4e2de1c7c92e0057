"""``smoacs campaign FILE`` and ``smoacs bench``: argparse wiring of :mod:`smoacs.campaign`."""

from __future__ import annotations

import argparse
from typing import Any

from smoacs.campaign.executor import BACKENDS


def _cmd_campaign(args: argparse.Namespace) -> int:
    from smoacs.campaign.orchestrate import run_campaign
    from smoacs.campaign.spec import load_campaign

    spec = load_campaign(args.file, out=args.out)
    result = run_campaign(spec, resume=args.resume, backend=args.backend, address=args.address, workers=args.workers)
    return 0 if not result.failed else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from smoacs.campaign.bench import run_bench

    size = "quick" if args.quick else args.size
    results = args.results or ("benchmarks/RESULTS_quick.md" if size == "quick" else "benchmarks/RESULTS.md")
    result = run_bench(size=size, out=args.out, results=results, methods=args.method, seeds=args.seeds,
                       backend=args.backend, workers=args.workers, resume=args.resume, only=args.only,
                       ehull_model=args.ehull_model)  # fmt: skip
    return 0 if not result.failed else 1


def _scheduling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", help="an existing Ray cluster (ray://HOST:10001, or auto); default: a local Ray instance"
    )  # fmt: skip
    parser.add_argument("--workers", type=int, help="runs at a time (default: the CPUs ÷ threads, within the memory)")
    parser.add_argument(
        "--backend", choices=BACKENDS, default="auto",
        help="ray (one task per run), local (worker processes; in-process with --workers 1), or auto: ray when installed",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true", help="skip finished runs, resume interrupted or failed ones (same campaign file)"
    )  # fmt: skip


def add_campaign_parsers(sub: Any, parents: list[argparse.ArgumentParser]) -> None:  # noqa: ANN401 - subparsers
    """Add ``campaign`` and ``bench`` to the ``smoacs`` subcommands."""
    campaign = sub.add_parser(
        "campaign", parents=parents,
        help="run a grid of runs (a campaign file: base, grid, out) on Ray; writes campaign.csv and campaign.md",
    )  # fmt: skip
    campaign.add_argument("file", metavar="FILE", help="campaign file (.yaml, .yml, .toml, .json; see docs/CAMPAIGNS.md)")
    campaign.add_argument("--out", help="campaign directory (default: the file's out, else campaigns/<file stem>)")
    _scheduling(campaign)
    campaign.set_defaults(func=_cmd_campaign)

    bench = sub.add_parser(
        "bench", parents=parents, help="the original paper's protocols (Tables 2–7) as a campaign; writes RESULTS.md"
    )  # fmt: skip
    bench.add_argument(
        "--quick", action="store_true",
        help="= --size quick: 16 candidates × 20 steps, no physics, one target per table (≤ 10 min on 2 cores)",
    )  # fmt: skip
    bench.add_argument(
        "--size", choices=("quick", "medium", "full"), default="full",
        help="full: the presets' own sizes and physics (hours); medium: 16 candidates × 40 steps, no physics, every "
        "target (41 min on 2 cores shared with other jobs); quick: see --quick (default %(default)s)",
    )  # fmt: skip
    bench.add_argument("--out", help="campaign directory (default campaigns/bench, or campaigns/bench-SIZE)")
    bench.add_argument(
        "--results", help="the results file written (default benchmarks/RESULTS.md; --quick: benchmarks/RESULTS_quick.md)"
    )  # fmt: skip
    bench.add_argument(
        "--method", action="append",
        help="search method to benchmark (repeatable; default: every method in smoacs.search.METHODS)",
    )  # fmt: skip
    bench.add_argument("--seeds", type=int, default=3, help="seeds per protocol (default %(default)s)")
    bench.add_argument("--only", action="append", metavar="TABLE", help="only these tables (e.g. T4; repeatable)")
    bench.add_argument(
        "--ehull-model", metavar="SPEC",
        help="E_hull predictor for Table 6 (e.g. alignn:/path/jv_ehull.zip); without it Table 6 is skipped",
    )  # fmt: skip
    _scheduling(bench)
    bench.set_defaults(func=_cmd_bench)
