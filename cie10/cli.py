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
    "search",
)
"""Each `cie10.commands.<name>` module defines `register(subparsers)`."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="cie10", description=__doc__)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, other libraries' INFO lines (HTTP requests, ...) too",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"cie10.commands.{name}").register(subparsers)
    return parser


QUIET_LOGGERS: tuple[str, ...] = (
    "httpx",
    "httpx2",
    "httpcore",
    "urllib3",
    "huggingface_hub",
    "filelock",
    "fsspec",
    "datasets",
    "sentence_transformers",
    "transformers",
    "gradio",
    "google_genai",
    "asyncio",
)
"""Third-party loggers kept at WARNING unless `-v`: their INFO lines (every HTTP request, ...) are not ours."""


def setup_logging(verbose: bool = False) -> None:
    """The kit's own INFO lines (or everything at DEBUG with `-v`); other libraries' only from WARNING up."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one subcommand; user errors become one message and exit code 2."""
    try:
        args = build_parser().parse_args(argv)
    except Cie10Error as error:  # an option out of range (see `cie10.ranges`), reported while parsing
        setup_logging()
        logger.error("%s", error)
        return error.exit_code
    setup_logging(args.verbose)
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
