"""Command-line entry point ``smoacs`` (argparse subcommands; each a function of the parsed namespace)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from smoacs import __version__
from smoacs.predict import add_predict_parser


def build_parser() -> argparse.ArgumentParser:
    """The ``smoacs`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="smoacs", description="Inverse design of crystals (SMOACS).")
    parser.add_argument("--version", action="version", version=f"smoacs {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_predict_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
