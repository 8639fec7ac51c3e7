"""`cie10 train bi-encoder|reranker|throughput`: fine-tune the retriever and the reranker, measure CPU speed.

Settings come from a YAML file (`--config FILE`, or a shipped preset such as `quickstart-bi-encoder`) and/or
flags named as the config fields (`--base_model`, `--scope full`, `--max_steps 100`, ...); flags win.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from cie10.ranges import AT_LEAST_ONE, NOT_NEGATIVE, int_option
from cie10.training.config import (
    STUDY_BASE_MODEL,
    BiEncoderConfig,
    RerankerConfig,
    TrainingRunConfig,
    load_config,
)

logger = logging.getLogger(__name__)

KINDS: dict[str, type[TrainingRunConfig]] = {"bi-encoder": BiEncoderConfig, "reranker": RerankerConfig}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand and its actions."""
    from transformers import HfArgumentParser

    parser = subparsers.add_parser("train", help="fine-tune the bi-encoder or the reranker (sentence-transformers)")
    actions = parser.add_subparsers(
        dest="train_command", required=True, metavar="ACTION", parser_class=HfArgumentParser
    )
    helps = {
        "bi-encoder": "fine-tune a bi-encoder on (mention, code title) pairs; saves models/<run>/final + code index",
        "reranker": "fine-tune a cross-encoder on the bi-encoder's candidates plus sibling codes",
    }
    for kind, cls in KINDS.items():
        action = actions.add_parser(
            kind,
            help=helps[kind],
            description=f"{helps[kind]}. With a network, the study's base model is `--base_model {STUDY_BASE_MODEL}`.",
            dataclass_types=[cls],
        )
        _only_explicit_flags(action, cls)
        action.add_argument(
            "--config", default=None, help="YAML settings file, or a shipped preset (quickstart-bi-encoder, ...)"
        )
        action.set_defaults(func=_train, train_kind=kind)

    throughput = actions.add_parser("throughput", help="measure bi-encoder training pairs/s for CPU settings")
    throughput.add_argument("--base_model", default="default")
    throughput.add_argument("--threads", type=int_option("--threads", AT_LEAST_ONE), nargs="+", default=[1, 2])
    throughput.add_argument("--freeze_layers", type=int_option("--freeze_layers", NOT_NEGATIVE), nargs="+", default=[0])
    throughput.add_argument("--batch_size", type=int_option("--batch_size", AT_LEAST_ONE), default=32)
    throughput.add_argument("--steps", type=int_option("--steps", AT_LEAST_ONE), default=4)
    throughput.set_defaults(func=_throughput)


def _only_explicit_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """Leave unset flags out of the namespace, so a YAML file's values hold unless a flag is given."""
    names = {field.name for field in dataclasses.fields(cls)}
    for action in parser._actions:
        if action.dest in names:
            if action.default is not argparse.SUPPRESS and action.help and "default:" not in action.help:
                action.help = f"{action.help} (default: {action.default})"
            action.default = argparse.SUPPRESS


def config_from_args(args: argparse.Namespace) -> TrainingRunConfig:
    """The run's config: defaults, then the YAML file, then the flags given."""
    cls = KINDS[args.train_kind]
    overrides = {
        field.name: getattr(args, field.name) for field in dataclasses.fields(cls) if hasattr(args, field.name)
    }
    return load_config(cls, args.config, **overrides)


def _train(args: argparse.Namespace) -> int:
    from cie10.catalog import SCOPES

    config = config_from_args(args)
    chapters = f", chapters {', '.join(config.chapters)}" if config.chapters else ""
    print(f"cie10 train {args.train_kind}: run {config.run_name} -> {config.final_dir}")
    print(f"  base model: {config.base_model}    dataset: {config.dataset_id}")
    print(f"  catalogue scope: {config.scope} ({SCOPES[config.scope]}){chapters}")
    sys.stdout.flush()
    if args.train_kind == "bi-encoder":
        from cie10.training.bi_encoder import train_bi_encoder

        summary = train_bi_encoder(config)
    else:
        from cie10.training.reranker import train_reranker

        summary = train_reranker(config)
    if not summary:  # not the main process of a multi-GPU run
        return 0
    print(json.dumps(_short(summary), indent=2))
    return 0


def _short(summary: dict) -> dict:
    """What the terminal shows: per-language scores, wall time, where the model is, where it was published."""
    metrics = summary["metrics"]
    if summary["kind"] == "bi-encoder":
        metric = summary["main_metric"]
        scores = {
            language: {
                "base": round(metrics["base"].get(language, {}).get(metric, float("nan")), 4),
                "trained": round(values.get(metric, float("nan")), 4),
            }
            for language, values in metrics["trained"].items()
        }
    else:
        scores = metrics["summary"]
    return {
        "run": summary["run_name"],
        "metric": summary["main_metric"],
        "scores": scores,
        "catalog": f"{summary['catalog']['version']}, scope {summary['catalog']['scope']}: "
        f"{summary['catalog']['num_codes']} codes",
        "wall_time_s": summary["wall_time_s"],
        "final": str(Path(summary["config"]["output_dir"]) / summary["run_name"] / "final"),
        "published": summary.get("published"),
    }


def _throughput(args: argparse.Namespace) -> int:
    from cie10.training.throughput import measure_throughput

    rows = []
    for threads in args.threads:
        for freeze_layers in args.freeze_layers:
            for freeze_embeddings in (False, True) if freeze_layers == 0 else (True,):
                result = measure_throughput(
                    args.base_model,
                    threads=threads,
                    freeze_embeddings=freeze_embeddings,
                    freeze_layers=freeze_layers,
                    batch_size=args.batch_size,
                    steps=args.steps,
                )
                rows.append(result.to_dict())
                print(json.dumps(result.to_dict()))
                sys.stdout.flush()
    return 0
