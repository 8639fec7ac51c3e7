"""`cie10 generate`: build the synthetic mention dataset `<org>/cie10-synth` (and publish it with `--publish`).

Flags and `--config gen.yaml` are `GenerationConfig` fields, parsed by `transformers.HfArgumentParser` when the
command runs (so that `cie10 --help` stays fast); `cie10 generate --help` lists them all.
"""

from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger(__name__)

EPILOG = """examples:
  cie10 generate --publish --version v1.0                               # offline: labels, CodiEsp, Apertium
  cie10 generate --sources terminology                                  # official labels only
  cie10 generate --backend gemini --dry-run                              # prompts and cost, no call, no key
  GEMINI_API_KEY=... cie10 generate --backend gemini --budget_pairs 19500 --publish --version v1.0
  cie10 generate --backend openai --base_url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
  cie10 generate --config gen.yaml --languages es ca                     # a YAML file, flags override it"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `generate`; its arguments are parsed by `_run` with the config's HfArgumentParser."""
    parser = subparsers.add_parser(
        "generate",
        help="build (and publish) the synthetic mention dataset <org>/cie10-synth",
        description="Build the synthetic mention dataset; `cie10 generate --help` lists every option.",
        add_help=False,
        prefix_chars="\0",  # every token goes to `_run`, which parses them with the config's parser
    )
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cie10.generation.config import build_parser, parse_args
    from cie10.generation.pipeline import dry_run, generate, publish

    argv = list(args.arguments)
    if any(token in ("-h", "--help") for token in argv):
        parser = build_parser()
        parser.epilog = EPILOG
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.print_help()
        return 0
    config, actions = parse_args(argv)
    if actions.dry_run:
        dry_run(config, sys.stdout, limit=actions.dry_run_limit)
        return 0
    result = generate(config)
    if not result.complete:
        jobs = ", ".join(result.run.batch_jobs) if result.run else ""
        print(f"batch jobs running: {jobs}; run the same command again to collect them")
        return 0
    print(result.table(config.languages))
    print(f"dataset folder: {result.folder}")
    if actions.publish:
        publish(result.folder, version=actions.version, target=actions.target)
    elif actions.version:
        logger.warning("--version is only used with --publish")
    return 0
