"""`cie10 evaluate`: score a retriever against BM25 and the base encoder; CodiEsp; MTEB export; the metric Space.

    cie10 evaluate --model cie10/cie10-bi --reranker cie10/cie10-rerank --dataset cie10/cie10-synth \\
        --split test --revision v1.0 --scope full
    cie10 evaluate codiesp --folder ../shared/data/codiesp/dev --model cie10/cie10-bi --scope full
    cie10 evaluate export-mteb --dataset cie10/cie10-synth --split test --out mteb/cie10-synth
    cie10 evaluate report results/<run>/results.json
    cie10 evaluate publish-module cie10/cie10-retrieval --version v1.0
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from cie10.catalog import SCOPES
from cie10.ranges import AT_LEAST_ONE, NOT_NEGATIVE, int_option
from cie10.segments import DEFAULT_DOCUMENT_RERANK_TOP, DEFAULT_PER_SEGMENT_K, SEGMENTATIONS
from cie10.settings import BACKENDS, DEFAULT_BACKEND

logger = logging.getLogger(__name__)


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _add_system_options(parser: argparse.ArgumentParser, *, default_baselines: str) -> None:
    group = parser.add_argument_group("systems")
    group.add_argument("--model", help="bi-encoder: Hub id, local folder, or `default` (the embedded base model)")
    group.add_argument("--reranker", default=None, help="cross-encoder reranker: Hub id or local folder")
    group.add_argument(
        "--rerank-top",
        type=int_option("--rerank-top", AT_LEAST_ONE),
        default=20,
        help="codes the reranker reorders (default %(default)s)",
    )
    group.add_argument(
        "--revision", default=None, help="version (git tag such as v1.0) of the model, reranker and dataset"
    )
    group.add_argument("--model-revision", default=None, help="overrides --revision for the model")
    group.add_argument("--reranker-revision", default=None, help="overrides --revision for the reranker")
    group.add_argument(
        "--baseline",
        dest="baselines",
        action="append",
        default=None,
        metavar="NAME",
        help=f"bm25, bm25-en-es, lookup (identical CodiEsp train mentions), base (the untuned encoder), bi-order "
        f"(the model without its reranker), titles (the model over its English titles alone), no-exact (the "
        f"system without its known mentions) or a model id; "
        f"repeatable (default: {default_baselines})",
    )
    group.add_argument(
        "--index-names",
        choices=("title", "all", "all+examples"),  # cie10.code_index.NAME_SETTINGS (not imported: a light CLI)
        default=None,
        help="what each dense system's code index holds: title, all (every name) or all+examples (default: the "
        "model's stored index as it is; an index built on the fly is title-only)",
    )
    group.add_argument(
        "--lookup-train",
        default=None,
        metavar="FOLDER",
        help="CodiEsp training split folder of the lookup baseline (default beside a CodiEsp --folder: ../train)",
    )
    group.add_argument("--no-baselines", action="store_true", help="score the model alone")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help=f"inference backend of the dense systems (default: CIE10_BACKEND, else {DEFAULT_BACKEND})",
    )
    codes = parser.add_argument_group("codes searched (the same for every system)")
    codes.add_argument(
        "--scope",
        choices=list(SCOPES),
        default=None,
        help="catalogue scope (default: the model's code index scope, else quickstart; `full` for real runs)",
    )
    codes.add_argument("--billable-only", action="store_true", help="search billable codes only")
    codes.add_argument(
        "--chapter", dest="chapters", action="append", default=None, help="only codes of this chapter (repeatable)"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path("results"), help="results folder (default %(default)s)")
    output.add_argument(
        "--resamples",
        type=int_option("--resamples", AT_LEAST_ONE),
        default=1000,
        help="bootstrap resamples (default %(default)s)",
    )
    output.add_argument(
        "--seed", type=int_option("--seed", NOT_NEGATIVE), default=0, help="bootstrap seed (default %(default)s)"
    )


def _add_dataset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("evaluation set")
    group.add_argument("--dataset", help="dataset: Hub id (such as <org>/cie10-synth) or local folder")
    group.add_argument("--split", default="test", help="split (default %(default)s)")
    group.add_argument("--dataset-revision", default=None, help="overrides --revision for the dataset")
    group.add_argument("--config", dest="dataset_config", default=None, help="dataset config (default: all)")
    group.add_argument("--languages", type=_csv, default=None, help="comma-separated languages, e.g. es,en")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` subcommand (the runner) and its actions."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a retriever (+ reranker) beside BM25 and the base encoder; CodiEsp; MTEB export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_system_options(parser, default_baselines="bm25 and base")
    _add_dataset_options(parser)
    parser.set_defaults(func=_run)
    actions = parser.add_subparsers(dest="evaluate_command", required=False, metavar="ACTION")

    codiesp = actions.add_parser("codiesp", help="score on a CodiEsp-format folder (mention and document level)")
    codiesp.add_argument("--folder", type=Path, required=True, help="a CodiEsp split folder, e.g. .../codiesp/dev")
    codiesp.add_argument(
        "--level",
        dest="levels",
        action="append",
        choices=("mentions", "documents"),
        default=None,
        help="mentions, documents (default: both)",
    )
    codiesp.add_argument(
        "--per-segment-k",
        "--per-sentence-k",
        dest="per_segment_k",
        type=int_option("--per-segment-k", AT_LEAST_ONE),
        default=DEFAULT_PER_SEGMENT_K,
        help="codes a document keeps from each searched sentence or clause (default %(default)s)",
    )
    codiesp.add_argument(
        "--segmentation",
        choices=SEGMENTATIONS,
        default=SEGMENTATIONS[0],
        help="document level: search each sentence and its clauses, or sentences alone (default %(default)s)",
    )
    codiesp.add_argument(
        "--document-rerank-top",
        type=int_option("--document-rerank-top", AT_LEAST_ONE),
        default=DEFAULT_DOCUMENT_RERANK_TOP,
        help="document level: codes the reranker reorders per sentence or clause (default %(default)s)",
    )
    _add_system_options(codiesp, default_baselines="bm25, bm25-en-es and base")
    codiesp.set_defaults(func=_codiesp)

    export = actions.add_parser("export-mteb", help="write an evaluation set in MTEB retrieval layout")
    _add_dataset_options(export)
    export.add_argument("--revision", default=None, help="dataset version")
    export.add_argument("--scope", choices=list(SCOPES), default="quickstart", help="corpus (default %(default)s)")
    export.add_argument("--billable-only", action="store_true", help="corpus of billable codes only")
    export.add_argument("--name", default="CIE10Retrieval", help="task name (default %(default)s)")
    export.add_argument("--out", type=Path, required=True, help="folder to write")
    export.set_defaults(func=_export)

    report = actions.add_parser("report", help="print the markdown tables of a results.json")
    report.add_argument("results", type=Path, help="results.json or its folder")
    report.set_defaults(func=_report)

    publish = actions.add_parser("publish-module", help="publish the evaluate module as a metric Space")
    publish.add_argument("repo_id", help="<org>/<name>, e.g. cie10/cie10-retrieval")
    publish.add_argument("--version", default=None, help="git tag such as v1.0")
    publish.add_argument("--target", choices=("local", "hub"), default="local")
    publish.set_defaults(func=_publish)


def _config(args: argparse.Namespace, dataset: str, default_baselines: tuple[str, ...]):
    if args.backend:  # read by every model loader of the run (`cie10.inference`)
        os.environ["CIE10_BACKEND"] = args.backend
    from cie10.eval_harness.data import EvaluationInputError
    from cie10.eval_harness.runner import EvaluationConfig

    if not args.model:
        raise EvaluationInputError("give the model to evaluate with --model (a Hub id, a folder, or `default`)")
    baselines = [] if args.no_baselines else list(args.baselines or default_baselines)
    return EvaluationConfig(
        model=args.model,
        dataset=dataset,
        split=getattr(args, "split", "test"),
        reranker=args.reranker,
        rerank_top=args.rerank_top,
        baselines=baselines,
        revision=args.revision,
        model_revision=args.model_revision,
        reranker_revision=args.reranker_revision,
        dataset_revision=getattr(args, "dataset_revision", None),
        dataset_config=getattr(args, "dataset_config", None),
        scope=args.scope,
        billable_only=args.billable_only,
        chapters=args.chapters,
        languages=getattr(args, "languages", None),
        n_resamples=args.resamples,
        seed=args.seed,
        out=args.out,
        index_names=args.index_names,
        lookup_train=args.lookup_train or _beside_train(dataset),
    )


def _beside_train(dataset: str) -> str | None:
    """`<folder>/../train` when `dataset` is a local CodiEsp split folder that has one beside it."""
    folder = Path(dataset).expanduser()
    train = folder.parent / "train"
    return str(train) if folder.is_dir() and train.is_dir() and train.resolve() != folder.resolve() else None


def _print(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _run(args: argparse.Namespace) -> int:
    from cie10.eval_harness.data import EvaluationInputError
    from cie10.eval_harness.report import render_markdown
    from cie10.eval_harness.runner import DEFAULT_BASELINES, run_evaluation, run_folder

    if not args.dataset:
        raise EvaluationInputError("give the evaluation set with --dataset (a Hub id or a folder)")
    config = _config(args, args.dataset, DEFAULT_BASELINES)
    run = run_evaluation(config)
    _print(render_markdown(run))
    _print(f"results: {run_folder(config)}")
    return 0


def _codiesp(args: argparse.Namespace) -> int:
    from cie10.eval_harness.codiesp import DEFAULT_BASELINES, LEVELS, evaluate_codiesp
    from cie10.eval_harness.report import render_markdown
    from cie10.eval_harness.runner import run_folder

    config = _config(args, str(args.folder), DEFAULT_BASELINES)
    config.split = Path(args.folder).name
    runs = evaluate_codiesp(
        config,
        args.levels or LEVELS,
        per_segment_k=args.per_segment_k,
        segmentation=args.segmentation,
        document_rerank_top=args.document_rerank_top,
    )
    for run in runs.values():
        _print(render_markdown(run))
    _print(f"results: {run_folder(config)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from cie10.catalog import load_catalog
    from cie10.eval_harness.data import EvaluationInputError, load_eval_set
    from cie10.eval_harness.mteb_export import export_mteb
    from cie10.eval_harness.systems import select_codes

    if not args.dataset:
        raise EvaluationInputError("give the evaluation set with --dataset (a Hub id or a folder)")
    eval_set = load_eval_set(
        args.dataset,
        args.split,
        revision=args.dataset_revision or args.revision,
        config=args.dataset_config,
        languages=args.languages,
    )
    catalog = load_catalog()
    codes = select_codes(catalog, args.scope, billable_only=args.billable_only)
    _print(str(export_mteb(eval_set, catalog, codes, args.out, name=args.name, scope=args.scope)))
    return 0


def _report(args: argparse.Namespace) -> int:
    from cie10.eval_harness.data import EvaluationInputError
    from cie10.eval_harness.report import render_markdown
    from cie10.eval_harness.results import RESULTS_FILE, load_run

    path = args.results / RESULTS_FILE if args.results.is_dir() else args.results
    if not path.is_file():
        raise EvaluationInputError(f"no results file at {path}")
    _print(render_markdown(load_run(path)))
    return 0


def _publish(args: argparse.Namespace) -> int:
    from cie10.eval_harness import publish_module

    _print(publish_module(args.repo_id, version=args.version, target=args.target))
    return 0
