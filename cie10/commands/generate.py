"""`cie10 generate`: build the synthetic mention dataset `<org>/cie10-synth` (and publish it with `--publish`).

Flags and `--config gen.yaml` are `GenerationConfig` fields, parsed by `transformers.HfArgumentParser` when the
command runs (so that `cie10 --help` stays fast); `cie10 generate --help` lists them all.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cie10.ranges import AT_LEAST_ONE, NOT_NEGATIVE, POSITIVE, SHARE, Range, check_range, check_ranges

logger = logging.getLogger(__name__)

EPILOG = """examples:
  cie10 generate --publish --version v1.0                               # offline: labels, CodiEsp, Apertium
  cie10 generate --sources terminology                                  # official labels only
  cie10 generate --backend gemini --dry-run                              # prompts and cost, no call, no key
  GEMINI_API_KEY=... cie10 generate --backend gemini --budget_pairs 19500 --publish --version v1.0
  cie10 generate --backend openai --base_url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
  cie10 generate --config gen.yaml --languages es ca                     # a YAML file, flags override it"""


GENERATION_RANGES: dict[str, Range] = {
    "budget_pairs": AT_LEAST_ONE,
    "mentions_per_code": AT_LEAST_ONE,
    "oversample": Range(minimum=1),
    "max_siblings": NOT_NEGATIVE,
    "max_hard_negatives": NOT_NEGATIVE,
    "temperature": Range(minimum=0, maximum=2),
    "thinking_budget": Range(minimum=-1),
    "concurrency": AT_LEAST_ONE,
    "requests_per_minute": NOT_NEGATIVE,
    "max_retries": NOT_NEGATIVE,
    "retry_initial_delay": NOT_NEGATIVE,
    "retry_max_delay": NOT_NEGATIVE,
    "request_timeout": POSITIVE,
    "batch_max_requests": AT_LEAST_ONE,
    "batch_poll_seconds": POSITIVE,
    "price_input_per_mtok": NOT_NEGATIVE,
    "price_output_per_mtok": NOT_NEGATIVE,
    "max_cost_usd": NOT_NEGATIVE,
    "translate_max_unknown": NOT_NEGATIVE,
    "translate_batch_size": AT_LEAST_ONE,
    "max_rows_per_source": AT_LEAST_ONE,
    "min_chars": AT_LEAST_ONE,
    "max_chars": AT_LEAST_ONE,
    "langid_min_words": NOT_NEGATIVE,
    "langid_floor": Range(minimum=0, maximum=1),
    "dedup_threshold": Range(minimum=0, maximum=1),
    "dedup_prefilter": Range(minimum=0, maximum=1),
    "validation_fraction": SHARE,
    "test_fraction": SHARE,
    "seed": NOT_NEGATIVE,
}
"""Allowed range of each numeric `GenerationConfig` field, checked once the flags are parsed (fields a version of
the config lacks are skipped)."""


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
    check_ranges(config, {name: allowed for name, allowed in GENERATION_RANGES.items() if hasattr(config, name)})
    check_range("--dry-run-limit", actions.dry_run_limit, NOT_NEGATIVE)
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
