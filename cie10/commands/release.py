"""`cie10 release`: not built yet (placeholder so the CLI loads)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `release` subcommand."""
    parser = subparsers.add_parser("release", help="(not built yet)")
    parser.set_defaults(func=lambda args: parser.error("not built yet"))
