"""Ranking metrics for code retrieval: the single source of truth for every score the harness reports.

Pure Python + numpy, with no import from the rest of `cie10`: the `evaluate` module (`cie10_retrieval/`) ships
this very file (a symlink there) so that its metric Space runs without the package installed.

Conventions (the same as sentence-transformers' `InformationRetrievalEvaluator` and pytrec_eval):

* A prediction is a ranked list of codes, best first; codes are normalized (`j45909` → `J45.909`) and a code
  listed twice counts once, at its first rank. With per-code scores, the list is re-sorted by score, ties
  broken by code ascending, so a score tie cannot be won by the order a system happened to emit it in.
* Gold codes are a set; a query without any gold code cannot be scored and is left out of every mean
  (counted in `num_queries_without_gold`).
* Recall@k = |gold ∩ top k| / |gold|; MRR@10 = 1 / rank of the first gold code (0 beyond 10);
  MAP@10 = Σ precision@i at gold ranks i ≤ 10 / min(10, |gold|); nDCG@10 with binary gains, the ideal
  ranking having min(10, |gold|) gold codes. k larger than the list just sees the whole list.
* Category level: every code is cut to its 3-character category (`J45.909` → `J45`); the predicted list is the
  distinct categories of the top 10 predicted codes, in order of first appearance. A category-level hit that is
  not a code-level hit is a specificity error: right disease, wrong subcode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

RECALL_AT: tuple[int, ...] = (1, 3, 5, 10)
"""Cut-offs of Recall@k."""
DEPTH = 10
"""Cut-off of MRR, MAP and nDCG, and how many predicted codes the category level looks at."""
METRICS: tuple[str, ...] = ("mrr_at_10", *(f"recall_at_{k}" for k in RECALL_AT), "map_at_10", "ndcg_at_10")
"""Code-level metric names (every cut-off is in the name)."""
CATEGORY_PREFIX = "category_"
ALL_METRICS: tuple[str, ...] = METRICS + tuple(CATEGORY_PREFIX + name for name in METRICS)
"""Code-level then category-level metric names."""
MAIN_SCORE = "mrr_at_10"
OVERALL = "all"
"""The subset name of the scores over every language together."""


def normalize_code(code: str) -> str:
    """`j45909` / ` J45.909` → `J45.909` (the same rule as `cie10.catalog.normalize_code`)."""
    cleaned = str(code).strip().upper()
    if "-" in cleaned or cleaned.isdigit():
        return cleaned
    cleaned = cleaned.replace(".", "")
    return cleaned if len(cleaned) <= 3 else f"{cleaned[:3]}.{cleaned[3:]}"


def category_of(code: str) -> str:
    """The 3-character category of a normalized code (`J45.909` → `J45`)."""
    return code[:3]


def ranked_codes(codes: Sequence[str], scores: Sequence[float] | None = None) -> list[str]:
    """Normalized, de-duplicated codes in rank order; with `scores`, sorted by score, ties by code ascending."""
    normalized = [normalize_code(code) for code in codes]
    if scores is not None:
        if len(scores) != len(normalized):
            raise ValueError(f"{len(normalized)} predicted codes but {len(scores)} scores")
        order = sorted(range(len(normalized)), key=lambda i: (-float(scores[i]), normalized[i]))
        normalized = [normalized[i] for i in order]
    return list(dict.fromkeys(code for code in normalized if code))


def gold_set(codes: Iterable[str] | str | None) -> set[str]:
    """Normalized gold codes; a bare string is one code, None or empty is no gold."""
    if codes is None:
        return set()
    if isinstance(codes, str):
        codes = [codes]
    return {normalize_code(code) for code in codes if str(code).strip()}


def _relevance(ranked: list[list[str]], gold: list[set[str]]) -> np.ndarray:
    """(queries × DEPTH) 0/1 matrix: is the code at rank i a gold code."""
    matrix = np.zeros((len(ranked), DEPTH), dtype=np.float64)
    for row, (codes, relevant) in enumerate(zip(ranked, gold, strict=True)):
        for rank, code in enumerate(codes[:DEPTH]):
            if code in relevant:
                matrix[row, rank] = 1.0
    return matrix


def _scores_from_relevance(relevance: np.ndarray, num_gold: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    """Per-query metrics from the relevance matrix; NaN where a query has no gold code."""
    ranks = np.arange(1, DEPTH + 1, dtype=np.float64)
    no_gold = num_gold == 0
    safe_gold = np.where(no_gold, 1, num_gold).astype(np.float64)
    found = relevance.any(axis=1)
    first = relevance.argmax(axis=1)
    scores = {f"{prefix}mrr_at_10": np.where(found, 1.0 / (first + 1), 0.0)}
    for k in RECALL_AT:
        scores[f"{prefix}recall_at_{k}"] = relevance[:, :k].sum(axis=1) / safe_gold
    precision_at_rank = np.cumsum(relevance, axis=1) / ranks
    scores[f"{prefix}map_at_10"] = (precision_at_rank * relevance).sum(axis=1) / np.minimum(DEPTH, safe_gold)
    discounts = 1.0 / np.log2(ranks + 1)
    ideal = np.cumsum(discounts)[np.minimum(DEPTH, safe_gold).astype(int) - 1]
    scores[f"{prefix}ndcg_at_10"] = (relevance * discounts).sum(axis=1) / ideal
    for name in list(scores):
        scores[name] = np.where(no_gold, np.nan, scores[name])
    return {name: scores[name] for name in (prefix + metric for metric in METRICS)}


def per_query_scores(
    predictions: Sequence[Sequence[str]],
    references: Sequence[Iterable[str] | str | None],
    prediction_scores: Sequence[Sequence[float] | None] | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of `ALL_METRICS` for each query (NaN for a query without gold), code and category level."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if prediction_scores is not None and len(prediction_scores) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions but {len(prediction_scores)} score lists")
    ranked = [
        ranked_codes(codes, prediction_scores[i] if prediction_scores is not None else None)
        for i, codes in enumerate(predictions)
    ]
    gold = [gold_set(codes) for codes in references]
    num_gold = np.array([len(codes) for codes in gold], dtype=np.int64)
    scores = _scores_from_relevance(_relevance(ranked, gold), num_gold)

    ranked_categories = [list(dict.fromkeys(category_of(code) for code in codes[:DEPTH])) for codes in ranked]
    gold_categories = [{category_of(code) for code in codes} for codes in gold]
    num_categories = np.array([len(codes) for codes in gold_categories], dtype=np.int64)
    category_relevance = _relevance(ranked_categories, gold_categories)
    scores.update(_scores_from_relevance(category_relevance, num_categories, CATEGORY_PREFIX))
    return scores


def mean_scores(scores: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, float | int | None]:
    """Means over the scorable queries (those with gold) selected by `mask`; None when there is none."""
    any_metric = next(iter(scores.values()))
    selected = np.ones(len(any_metric), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    scorable = selected & ~np.isnan(any_metric)
    result: dict[str, float | int | None] = {
        name: (float(values[scorable].mean()) if scorable.any() else None) for name, values in scores.items()
    }
    result["num_queries"] = int(scorable.sum())
    result["num_queries_without_gold"] = int((selected & np.isnan(any_metric)).sum())
    return result


def compute_metrics(
    predictions: Sequence[Sequence[str]],
    references: Sequence[Iterable[str] | str | None],
    languages: Sequence[str] | None = None,
    prediction_scores: Sequence[Sequence[float] | None] | None = None,
) -> dict[str, float | int | None]:
    """Flat dict: every metric overall (`mrr_at_10`, `category_recall_at_1`, ...) and per language
    (`es/mrr_at_10`, ...), with `num_queries` and `num_queries_without_gold` for each."""
    scores = per_query_scores(predictions, references, prediction_scores)
    result = mean_scores(scores)
    if languages is not None:
        if len(languages) != len(predictions):
            raise ValueError(f"{len(predictions)} predictions but {len(languages)} languages")
        language_array = np.array([str(language) for language in languages], dtype=object)
        for language in sorted(set(language_array)):
            for name, value in mean_scores(scores, language_array == language).items():
                result[f"{language}/{name}"] = value
    return result
