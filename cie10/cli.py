"""The one `cie10` command: subcommands registered by the modules in `cie10.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from cie10.errors import Cie10Error

logger = logging.getLogger("cie10")

COMMAND_MODULES: tuple[str, ...] = (
    "codes",
    "models",
    "hub",
    "generate",
    "train",
    "evaluate",
    "release",
    "serve",
)
"""Each `cie10.commands.<name>` module defines `register(subparsers)`."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="cie10", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"cie10.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one subcommand; user errors become one message and exit code 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        result = args.func(args)
    except Cie10Error as error:
        logger.error("%s", error)
        return error.exit_code
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
