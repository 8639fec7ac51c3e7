"""`cie10 serve`: not built yet (placeholder so the CLI loads)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser("serve", help="(not built yet)")
    parser.set_defaults(func=lambda args: parser.error("not built yet"))
