"""`cie10 release`: publish the codes, the synthetic data, both models, the metric and the Space as one version.

cie10 release --version v1.0                  # to the local Hub (HF_ENDPOINT), from where the quickstart left
cie10 release --version v1.1 --target hub     # to the real Hub (needs HF_TOKEN)
cie10 release --version v1.0 --dry-run --stage-dir release-v1.0   # stage and check the cards, publish nothing
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    from cie10.release import ReleaseConfig, release

    defaults_elsewhere = {"synth": args.synth, "harness": args.harness}  # None: the config's own default
    config = ReleaseConfig(
        version=args.version,
        target=args.target,
        bi=args.bi,
        reranker=args.reranker,
        results=list(args.results or []),
        rerank_evidence=args.rerank_evidence,
        space=args.space,
        codes=args.codes,
        citation=args.citation,
        stage_dir=args.stage_dir,
        dry_run=args.dry_run,
        **{name: value for name, value in defaults_elsewhere.items() if value is not None},
    )
    result = release(config)
    print(result.table())
    if config.dry_run:
        where = f" in {result.stage_dir}" if result.stage_dir else ""
        print(f"dry run: every card is valid{where}; nothing was published")
    elif result.unchanged:
        print(f"release {config.version} was already published with this content: nothing changed")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `release` subcommand."""
    parser = subparsers.add_parser(
        "release",
        help="publish codes, synthetic data, both models, the metric and the Space as one tagged version",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", required=True, help="the release's tag on every repo, e.g. v1.0")
    parser.add_argument(
        "--target", choices=("local", "hub"), default="local", help="local Hub (default) or the real Hub (token)"
    )
    artifacts = parser.add_argument_group("artifacts (defaults: where `make quickstart` leaves them)")
    artifacts.add_argument(
        "--bi", type=Path, default=Path("models/cie10-bi/final"), help="bi-encoder folder with code_index/"
    )
    artifacts.add_argument("--reranker", type=Path, default=Path("models/cie10-rerank/final"), help="reranker folder")
    artifacts.add_argument("--synth", type=Path, default=None, help="synthetic dataset folder (`cie10 generate`)")
    artifacts.add_argument(
        "--results",
        type=Path,
        action="append",
        default=None,
        metavar="PATH",
        help="harness results.json, or a folder searched for them (repeatable; default: runs under results/ "
        "that scored these models on this dataset)",
    )
    artifacts.add_argument(
        "--rerank-evidence",
        type=Path,
        default=None,
        metavar="PATH",
        help="harness results.json of CodiEsp dev mentions scoring the two-stage system beside its bi-order "
        "baseline: shipped with the reranker, the Space reranks by default only when its paired interval is above 0",
    )
    artifacts.add_argument("--space", type=Path, default=Path("space"), help="Gradio Space folder")
    artifacts.add_argument("--harness", type=Path, default=None, help="evaluate module folder (the metric Space)")
    artifacts.add_argument(
        "--codes", type=Path, default=None, help="a `cie10 codes export` folder (default: written from the catalogue)"
    )
    artifacts.add_argument("--citation", type=Path, default=None, help="BibTeX of the study, shown on every card")
    parser.add_argument("--stage-dir", type=Path, default=None, help="keep the staged repos (cards included) here")
    parser.add_argument("--dry-run", action="store_true", help="stage and validate the cards; publish nothing")
    parser.set_defaults(func=_run)
