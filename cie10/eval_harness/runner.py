"""The runner: load the set and the systems by id, rank, score, compare, and write results JSON and markdown.

    run = run_evaluation(EvaluationConfig(model="cie10/cie10-bi", dataset="cie10/cie10-synth", revision="v1.0"))

Every system ranks the same codes for the same queries; the evaluated model is compared with each baseline by
paired bootstrap, and with the untuned base encoder in the learning-gain table.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cie10.catalog import Catalog, load_catalog
from cie10.eval_harness import bootstrap, metrics
from cie10.eval_harness.data import LANGUAGE_TAGS, EvalSet, EvaluationInputError, load_eval_set
from cie10.eval_harness.lookup import LOOKUP_BASELINE, LookupSystem
from cie10.eval_harness.report import render_markdown
from cie10.eval_harness.results import (
    PREDICTIONS_DIR,
    REPORT_FILE,
    EvaluationRun,
    SystemScores,
    git_state,
    now_iso,
    package_versions,
    write_predictions,
    write_text_atomic,
)
from cie10.eval_harness.systems import (
    BASE_MODEL,
    BM25_BASELINES,
    DERIVED_BASELINES,
    Ranking,
    RetrievalSystem,
    bm25_system,
    dense_system,
    derived_system,
    load_model,
    select_codes,
)

logger = logging.getLogger(__name__)

TASK_NAME = "CIE10Retrieval"
DEFAULT_BASELINES: tuple[str, ...] = ("bm25", BASE_MODEL)
DEFAULT_SCOPE = "quickstart"
COMPARE_METRICS: tuple[str, ...] = ("mrr_at_10", "recall_at_1", "recall_at_10", "ndcg_at_10", "category_recall_at_1")
"""Metrics of the paired comparisons (the main score is always added first)."""
GAIN_METRICS: tuple[str, ...] = ("recall_at_1", "recall_at_3", "recall_at_5", "recall_at_10", "mrr_at_10")
"""The learning-gain table: base → model at each rank cut-off."""


@dataclass
class EvaluationConfig:
    """What `cie10 evaluate` runs; `revision` is the default of the three specific revisions."""

    model: str
    dataset: str
    split: str = "test"
    reranker: str | None = None
    rerank_top: int = 20
    baselines: list[str] = field(default_factory=lambda: list(DEFAULT_BASELINES))
    revision: str | None = None
    model_revision: str | None = None
    reranker_revision: str | None = None
    dataset_revision: str | None = None
    dataset_config: str | None = None
    scope: str | None = None
    """None: the scope of the model's stored code index, else `quickstart`."""
    billable_only: bool = False
    chapters: list[str] | None = None
    languages: list[str] | None = None
    n_resamples: int = bootstrap.N_RESAMPLES
    seed: int = bootstrap.SEED
    out: Path | None = Path("results")
    index_names: str | None = None
    """Names each dense system's code index holds (`title`, `all`, `all+examples`); None: the model's stored
    index as it is, title-only when built on the fly."""
    lookup_train: str | None = None
    """CodiEsp training split folder of the `lookup` baseline (default beside a CodiEsp folder: `../train`)."""


def _system_name(model_id: str, reranker_id: str | None, taken: set[str]) -> str:
    name = Path(model_id.rstrip("/")).name or model_id
    if reranker_id:
        name += f"+{Path(reranker_id.rstrip('/')).name}"
    base, number = name, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    return name


def build_baselines(
    names: Sequence[str],
    catalog: Catalog,
    codes: Sequence[str],
    scope: str,
    taken: set[str],
    *,
    index_names: str | None = None,
    lookup_train: str | None = None,
) -> list[RetrievalSystem]:
    """`bm25`, `bm25-en-es`, `lookup` (CodiEsp train), `base` (the untuned embedded encoder) or a model id."""
    systems: list[RetrievalSystem] = []
    for name in dict.fromkeys(names):
        if name in BM25_BASELINES:
            system: RetrievalSystem = bm25_system(name, catalog, codes)
        elif name == LOOKUP_BASELINE:
            if not lookup_train:
                raise EvaluationInputError("the lookup baseline needs a CodiEsp training folder (--lookup-train)")
            system = LookupSystem.from_codiesp(lookup_train, catalog, codes)
        elif name == BASE_MODEL:
            system = dense_system(BASE_MODEL, BASE_MODEL, catalog, codes, scope, index_names=index_names)
        else:
            name_taken = _system_name(name, None, taken)
            system = dense_system(name_taken, name, catalog, codes, scope, index_names=index_names)
        taken.add(system.name)
        systems.append(system)
    return systems


def _ordered(ranking: Ranking) -> tuple[list[str], list[float] | None]:
    """Codes and scores; scores only when they decrease along the list (so ties can be broken by code)."""
    codes = [code for code, _ in ranking]
    scores = [score for _, score in ranking]
    monotone = all(a >= b for a, b in zip(scores, scores[1:], strict=False))
    return codes, (scores if monotone else None)


def gold_coverage(eval_set: EvalSet, catalog: Catalog, codes: Sequence[str]) -> tuple[dict[str, Any], list[list[str]]]:
    """Counts of gold codes outside the catalogue or the searched codes, and the gold restricted to retrievable."""
    searched = set(codes)
    not_in_catalogue: dict[str, int] = {}
    out_of_scope: dict[str, int] = {}
    retrievable: list[list[str]] = []
    affected = 0
    for gold in eval_set.gold:
        kept = []
        for code in gold:
            if code not in catalog:
                not_in_catalogue[code] = not_in_catalogue.get(code, 0) + 1
            elif code not in searched:
                out_of_scope[code] = out_of_scope.get(code, 0) + 1
            else:
                kept.append(code)
        affected += len(kept) < len(gold)
        retrievable.append(kept)

    def summary(counter: dict[str, int]) -> dict[str, Any]:
        top = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        return {"distinct": len(counter), "occurrences": sum(counter.values()), "examples": [c for c, _ in top[:20]]}

    coverage = {
        "num_queries": len(eval_set),
        "gold_occurrences": sum(len(gold) for gold in eval_set.gold),
        "distinct_gold_codes": len({code for gold in eval_set.gold for code in gold}),
        "not_in_catalogue": summary(not_in_catalogue),
        "outside_searched_codes": summary(out_of_scope),
        "queries_with_unretrievable_gold": affected,
        "queries_without_gold": sum(1 for gold in eval_set.gold if not gold),
        "policy": "gold codes outside the catalogue or the searched codes stay in the gold set and count as misses; "
        "`retrievable_gold_only` scores drop them (and queries left without gold)",
    }
    return coverage, retrievable


def _subset_entries(
    scores: dict[str, np.ndarray],
    retrievable_scores: dict[str, np.ndarray],
    languages: Sequence[str],
    main_score: str,
) -> list[dict[str, Any]]:
    language_array = np.array(list(languages), dtype=object)
    subsets = [(metrics.OVERALL, None)] + [(lang, language_array == lang) for lang in sorted(set(languages))]
    entries = []
    for subset, mask in subsets:
        means = metrics.mean_scores(scores, mask)
        tags = [LANGUAGE_TAGS.get(lang, lang) for lang in (sorted(set(languages)) if mask is None else [subset])]
        entry = {"hf_subset": subset, "languages": tags, "main_score": means[main_score], **means}
        entry["retrievable_gold_only"] = metrics.mean_scores(retrievable_scores, mask)
        entries.append(entry)
    return entries


@dataclass
class ScoredSystem:
    """A system's rankings and per-query scores on one set."""

    system: RetrievalSystem
    rankings: list[Ranking]
    scores: dict[str, np.ndarray]
    retrievable_scores: dict[str, np.ndarray]
    seconds: float


def score_system(system: RetrievalSystem, eval_set: EvalSet, retrievable_gold: list[list[str]]) -> ScoredSystem:
    """Rank every query (top 10) and score the rankings against all gold and against retrievable gold."""
    logger.info("%s: ranking %d queries", system.name, len(eval_set))
    started = time.perf_counter()
    rankings = system.rank(eval_set.queries, metrics.DEPTH)
    seconds = time.perf_counter() - started
    ordered = [_ordered(ranking) for ranking in rankings]
    predictions = [codes for codes, _ in ordered]
    score_lists = [scores for _, scores in ordered]
    return ScoredSystem(
        system,
        rankings,
        metrics.per_query_scores(predictions, eval_set.gold, score_lists),
        metrics.per_query_scores(predictions, retrievable_gold, score_lists),
        seconds,
    )


def evaluate_systems(
    eval_set: EvalSet,
    systems: Sequence[RetrievalSystem],
    *,
    catalog: Catalog,
    codes: Sequence[str],
    code_selection: dict[str, Any] | None = None,
    task_name: str = TASK_NAME,
    settings: dict[str, Any] | None = None,
    base_name: str | None = BASE_MODEL,
    n_resamples: int = bootstrap.N_RESAMPLES,
    seed: int = bootstrap.SEED,
    out: Path | None = None,
) -> EvaluationRun:
    """Score `systems` (the first is the evaluated model) on `eval_set`; compare; write to `out` if given."""
    if not systems:
        raise EvaluationInputError("no system to evaluate")
    started = time.perf_counter()
    coverage, retrievable = gold_coverage(eval_set, catalog, codes)
    if coverage["queries_with_unretrievable_gold"]:
        logger.warning(
            "%d of %d queries have gold codes that cannot be retrieved (%d not in the catalogue, %d outside the "
            "searched codes): kept as misses; see `retrievable_gold_only`",
            coverage["queries_with_unretrievable_gold"],
            len(eval_set),
            coverage["not_in_catalogue"]["distinct"],
            coverage["outside_searched_codes"]["distinct"],
        )
    scored = []
    for system in systems:
        holding_out = getattr(system, "holding_out", None)
        with holding_out(eval_set.source) if holding_out else contextlib.nullcontext():
            scored.append(score_system(system, eval_set, retrievable))
    split = eval_set.source.get("split") or "test"
    main = eval_set.main_score
    results = [
        SystemScores(
            item.system.name,
            item.system.describe(),
            {split: _subset_entries(item.scores, item.retrievable_scores, eval_set.languages, main)},
            round(item.seconds, 2),
        )
        for item in scored
    ]
    compare_metrics = list(dict.fromkeys((main, *COMPARE_METRICS)))
    primary = scored[0]
    comparisons = [
        c.to_dict()
        for other in scored[1:]
        for c in bootstrap.compare(
            primary.system.name,
            other.system.name,
            primary.scores,
            other.scores,
            eval_set.languages,
            compare_metrics,
            n_resamples=n_resamples,
            seed=seed,
        )
    ]
    base = next((item for item in scored[1:] if item.system.name == base_name), None)
    gain = (
        [
            c.to_dict()
            for c in bootstrap.compare(
                primary.system.name,
                base.system.name,
                primary.scores,
                base.scores,
                eval_set.languages,
                GAIN_METRICS,
                n_resamples=n_resamples,
                seed=seed,
            )
        ]
        if base is not None
        else []
    )
    versions = package_versions()
    commit, dirty = git_state()
    run = EvaluationRun(
        task_name=task_name,
        main_score=main,
        dataset={**eval_set.source, "languages": eval_set.language_list(), "num_queries": len(eval_set)},
        catalog={"version": catalog.version, "num_codes_searched": len(codes), **(code_selection or {})},
        name=results[0].name,
        model=results[0].model,
        scores=results[0].scores,
        evaluation_time=round(time.perf_counter() - started, 2),
        baselines=results[1:],
        comparisons=comparisons,
        learning_gain=gain,
        gold_coverage=coverage,
        settings={**(settings or {}), "top_k": metrics.DEPTH, "n_resamples": n_resamples, "seed": seed},
        date=now_iso(),
        versions=versions,
        git_commit=commit,
        git_dirty=dirty,
    )
    if out is not None:
        write_run(run, scored, eval_set, Path(out))
    return run


def write_run(run: EvaluationRun, scored: Sequence[ScoredSystem], eval_set: EvalSet, folder: Path) -> Path:
    """`results.json`, `results.md` and `predictions/<system>.jsonl` in `folder` (older predictions removed)."""
    shutil.rmtree(folder / PREDICTIONS_DIR, ignore_errors=True)
    for item in scored:
        rows = [
            {"id": qid, "language": lang, "query": query, "gold": gold, "ranking": [[c, s] for c, s in ranking]}
            for qid, lang, query, gold, ranking in zip(
                eval_set.ids, eval_set.languages, eval_set.queries, eval_set.gold, item.rankings, strict=True
            )
        ]
        write_predictions(folder, item.system.name, rows)
    path = run.save(folder)
    write_text_atomic(folder / REPORT_FILE, render_markdown(run))
    logger.info("wrote %s and %s", path, folder / REPORT_FILE)
    return path


def _slug(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in text.strip("/").replace("/", "__"))


def run_folder(config: EvaluationConfig) -> Path:
    """`<out>/<model>__<dataset>__<split>` (a local folder counts by its name)."""
    assert config.out is not None

    def part(value: str) -> str:
        return _slug(Path(value).name if Path(value).expanduser().exists() else value)

    return Path(config.out) / "__".join((part(config.model), part(config.dataset), _slug(config.split)))


def build_systems(
    config: EvaluationConfig, catalog: Catalog
) -> tuple[list[RetrievalSystem], list[str], dict[str, Any]]:
    """(the model first, then the baselines; the codes they all search; how those codes were chosen)."""
    model_revision = config.model_revision or config.revision
    primary = load_model(config.model, model_revision)
    stored_scope = primary.stored_index.meta.get("scope") if primary.stored_index is not None else None
    scope = config.scope or stored_scope or DEFAULT_SCOPE
    codes = select_codes(catalog, scope, billable_only=config.billable_only, chapters=config.chapters)
    logger.info("searching %d codes (scope %s%s)", len(codes), scope, ", billable only" if config.billable_only else "")
    taken: set[str] = set(BM25_BASELINES) | {BASE_MODEL} | set(DERIVED_BASELINES)
    name = _system_name(config.model, config.reranker, taken)
    taken.add(name)
    systems: list[RetrievalSystem] = [
        dense_system(
            name,
            config.model,
            catalog,
            codes,
            scope,
            reranker_id=config.reranker,
            reranker_revision=config.reranker_revision or config.revision,
            rerank_top=config.rerank_top,
            loaded=primary,
            index_names=config.index_names,
        )
    ]
    derived = [name for name in dict.fromkeys(config.baselines) if name in DERIVED_BASELINES]
    systems += [derived_system(systems[0], name) for name in derived]
    systems += build_baselines(
        [name for name in config.baselines if name not in DERIVED_BASELINES],
        catalog,
        codes,
        scope,
        taken,
        index_names=config.index_names,
        lookup_train=config.lookup_train,
    )
    selection = {"scope": scope, "billable_only": config.billable_only, "chapters": config.chapters}
    return systems, codes, selection


def run_evaluation(config: EvaluationConfig) -> EvaluationRun:
    """Load the set, the model (+ reranker) and the baselines by id, then `evaluate_systems`."""
    eval_set = load_eval_set(
        config.dataset,
        config.split,
        revision=config.dataset_revision or config.revision,
        config=config.dataset_config,
        languages=config.languages,
    )
    catalog = load_catalog()
    systems, codes, selection = build_systems(config, catalog)
    return evaluate_systems(
        eval_set,
        systems,
        catalog=catalog,
        codes=codes,
        code_selection=selection,
        settings=config_settings(config),
        n_resamples=config.n_resamples,
        seed=config.seed,
        out=run_folder(config) if config.out is not None else None,
    )


def config_settings(config: EvaluationConfig) -> dict[str, Any]:
    """The config as JSON-ready settings."""
    return asdict(config) | {"out": str(config.out) if config.out is not None else None}
