"""Score fusion of the two stages: the reranker's order keeps a measured share of the bi-encoder's evidence.

A cross-encoder reads (mention, English title) pairs; the bi-encoder matched the mention against every name of a
code, coded example mentions included. Where the bi-encoder's evidence is strong (the mention is one of a code's
names) the reranker alone can only lose it, so a shortlist is ordered by

    rerank_score + bi_weight * bi_score

(`rerank_score` the cross-encoder's probability, `bi_score` the bi-encoder's cosine). `bi_weight` is chosen when the
reranker is trained, on half of its held-out groups (never on CodiEsp dev), and measured on the other half against
the bi-encoder's order with a paired bootstrap interval (`choose_and_check`): a weight picked as the best of eight
on the same queries it is then scored on looks better than it is. It ships with the reranker as
`cie10_fusion.json`; 0 is the reranker's own order, a large weight the bi-encoder's order with the reranker breaking
near-ties.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cie10.errors import Cie10Error

logger = logging.getLogger(__name__)

FUSION_FILE = "cie10_fusion.json"
BI_WEIGHT_GRID: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
MRR_DEPTH = 10


def fused_scores(rerank_scores: Sequence[float], bi_scores: Sequence[float], bi_weight: float) -> np.ndarray:
    """The score a shortlist is ordered by (see the module docstring)."""
    return np.asarray(rerank_scores, dtype=np.float64) + bi_weight * np.asarray(bi_scores, dtype=np.float64)


def reciprocal_rank(scores: np.ndarray, relevant: Sequence[bool], depth: int = MRR_DEPTH) -> float:
    """1/rank of the first relevant item when `scores` order the list (stable: ties keep the list order)."""
    order = np.argsort(-scores, kind="stable")[:depth]
    for rank, position in enumerate(order, start=1):
        if relevant[position]:
            return 1.0 / rank
    return 0.0


def bi_order_rank(shortlist: dict[str, Any]) -> float:
    """The reciprocal rank of a shortlist in its own order: the bi-encoder's."""
    return reciprocal_rank(-np.arange(len(shortlist["relevant"]), dtype=np.float64), shortlist["relevant"])


def choose_bi_weight(shortlists: Sequence[dict[str, Any]], grid: Sequence[float] = BI_WEIGHT_GRID) -> dict[str, Any]:
    """The grid weight with the best MRR@10 over `shortlists` (`rerank_scores`, `bi_scores`, `relevant` lists).

    Ties go to the larger weight (closer to the bi-encoder's order, the safer default).
    """
    if not shortlists:
        raise ValueError("no held-out shortlists to choose the fusion weight on")
    table = {}
    for weight in grid:
        ranks = [
            reciprocal_rank(fused_scores(s["rerank_scores"], s["bi_scores"], weight), s["relevant"]) for s in shortlists
        ]
        table[weight] = round(float(np.mean(ranks)), 4)
    best = max(table, key=lambda weight: (table[weight], weight))
    bi_order = [bi_order_rank(s) for s in shortlists]
    logger.info("fusion: bi_weight %s (MRR@%d by weight: %s)", best, MRR_DEPTH, table)
    return {
        "bi_weight": best,
        "mrr_at_10": table[best],
        "bi_order_mrr_at_10": round(float(np.mean(bi_order)), 4),
        "mrr_at_10_by_weight": {str(weight): mrr for weight, mrr in table.items()},
        "queries": len(shortlists),
    }


def choose_and_check(
    shortlists: Sequence[dict[str, Any]], grid: Sequence[float] = BI_WEIGHT_GRID, seed: int = 0
) -> dict[str, Any]:
    """`choose_bi_weight` on one half of `shortlists` (a seeded split), then the chosen weight against the
    bi-encoder's order on the other half: `mrr_at_10` and `bi_order_mrr_at_10` are that half's, `gain_ci` the 95%
    paired bootstrap interval of their difference (`cie10.eval_harness.bootstrap`). Fewer than 2 shortlists: the
    choice alone, unchecked (`gain_ci` None)."""
    from cie10.eval_harness.bootstrap import bootstrap_indices, paired_interval

    if len(shortlists) < 2:
        return {**choose_bi_weight(shortlists, grid), "gain_ci": None}
    order = np.random.default_rng(seed).permutation(len(shortlists))
    choosing, checking = [shortlists[i] for i in order[::2]], [shortlists[i] for i in order[1::2]]
    choice = choose_bi_weight(choosing, grid)
    fused = [
        reciprocal_rank(fused_scores(s["rerank_scores"], s["bi_scores"], choice["bi_weight"]), s["relevant"])
        for s in checking
    ]
    bi_order = [bi_order_rank(s) for s in checking]
    gain, low, high = paired_interval(np.array(fused), np.array(bi_order), bootstrap_indices(len(checking), seed=seed))
    logger.info(
        "fusion checked on %d held-out queries: gain %.4f, 95%% CI [%.4f, %.4f]", len(checking), gain, low, high
    )
    return {
        **choice,
        "mrr_at_10": round(float(np.mean(fused)), 4),
        "bi_order_mrr_at_10": round(float(np.mean(bi_order)), 4),
        "gain_ci": [round(low, 4), round(high, 4)],
        "chosen_on_queries": len(choosing),
        "queries": len(checking),
    }


def write_fusion(folder: Path, choice: dict[str, Any]) -> Path:
    """`cie10_fusion.json` in the reranker's folder (written, then renamed)."""
    from cie10.training.summary import write_json_atomic

    return write_json_atomic(Path(folder) / FUSION_FILE, choice)


def read_bi_weight(folder: Path | None) -> float:
    """The shipped `bi_weight` of a reranker folder; 0 (its own order) when it ships none."""
    if folder is None or not (Path(folder) / FUSION_FILE).is_file():
        return 0.0
    return float(json.loads((Path(folder) / FUSION_FILE).read_text(encoding="utf-8"))["bi_weight"])


RERANK_EVIDENCE_FILE = "eval/rerank_evidence.json"
"""Where a release ships, in the reranker repo, the harness JSON (CodiEsp dev mentions) that decides the Space's
reranking default."""
BI_ORDER = "bi-order"
"""The harness's baseline name for the evaluated bi-encoder's own order."""


def rerank_comparison(results: dict[str, Any], where: Any = "the harness results") -> dict[str, Any]:
    """The paired comparison of the evaluated (two-stage) system with its `bi-order` baseline, all languages,
    MRR@10, from a harness `results.json`; a Cie10Error when it holds none."""
    system = results.get("name")
    for comparison in results.get("comparisons") or []:
        wanted = (comparison.get("baseline"), comparison.get("language"), comparison.get("metric"))
        if wanted == (BI_ORDER, "all", "mrr_at_10") and comparison.get("system") == system:
            return comparison
    raise Cie10Error(
        f"{where} compares no reranked system with its {BI_ORDER} baseline (MRR@10, all languages): evaluate with "
        f"--reranker and --baseline {BI_ORDER}"
    )
