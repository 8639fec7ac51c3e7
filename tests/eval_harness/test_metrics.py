"""Each metric against hand-computed cases: ties, no gold, several gold codes, k larger than the list."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cie10.eval_harness import metrics
from cie10.eval_harness.metrics import ALL_METRICS, compute_metrics, per_query_scores


def _one(predictions, gold, scores=None) -> dict[str, float]:
    result = per_query_scores([predictions], [gold], [scores] if scores is not None else None)
    return {name: float(values[0]) for name, values in result.items()}


def test_names_state_every_cut_off() -> None:
    assert metrics.METRICS == (
        "mrr_at_10",
        "recall_at_1",
        "recall_at_3",
        "recall_at_5",
        "recall_at_10",
        "map_at_10",
        "ndcg_at_10",
    )
    assert all("_at_" in name for name in ALL_METRICS)
    assert set(ALL_METRICS) == set(metrics.METRICS) | {f"category_{name}" for name in metrics.METRICS}


def test_single_gold_at_rank_two() -> None:
    s = _one(["I10", "J45.909", "E11.9"], ["J45.909"])
    assert s["mrr_at_10"] == 0.5
    assert (s["recall_at_1"], s["recall_at_3"], s["recall_at_5"], s["recall_at_10"]) == (0.0, 1.0, 1.0, 1.0)
    assert s["map_at_10"] == 0.5  # precision 1/2 at the gold rank, one gold code
    assert s["ndcg_at_10"] == pytest.approx(1 / math.log2(3))


def test_gold_beyond_rank_ten_is_a_miss() -> None:
    predictions = [f"A{i:02d}" for i in range(10)] + ["J45.909"]
    s = _one(predictions, ["J45.909"])
    assert all(s[name] == 0.0 for name in metrics.METRICS)


def test_several_gold_codes() -> None:
    # gold A01, B02, C03; hits at ranks 1 and 3; C03 never retrieved
    s = _one(["A01", "X99", "B02", "Y98"], ["A01", "B02", "C03"])
    assert s["mrr_at_10"] == 1.0
    assert s["recall_at_1"] == pytest.approx(1 / 3)
    assert s["recall_at_3"] == pytest.approx(2 / 3)
    assert s["recall_at_10"] == pytest.approx(2 / 3)
    assert s["map_at_10"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert s["ndcg_at_10"] == pytest.approx(dcg / ideal)


def test_more_gold_than_the_cut_off() -> None:
    gold = [f"A{i:02d}" for i in range(12)]
    s = _one(gold[:10], gold)  # the 10 first ranks all gold: MAP and nDCG normalize by min(10, |gold|)
    assert s["map_at_10"] == 1.0
    assert s["ndcg_at_10"] == pytest.approx(1.0)
    assert s["recall_at_10"] == pytest.approx(10 / 12)


def test_k_larger_than_the_list() -> None:
    s = _one(["X99", "J45.909"], ["J45.909"])
    assert s["recall_at_1"] == 0.0
    assert s["recall_at_5"] == s["recall_at_10"] == 1.0
    assert s["mrr_at_10"] == 0.5
    empty = _one([], ["J45.909"])
    assert all(empty[name] == 0.0 for name in ALL_METRICS)


def test_ties_are_broken_by_code() -> None:
    # scores tie between C03 and B02: (-score, code) order puts B02 at rank 2, whatever the emitted order
    s = _one(["A01", "C03", "B02"], ["B02"], scores=[0.9, 0.5, 0.5])
    assert s["mrr_at_10"] == 0.5
    assert _one(["A01", "B02", "C03"], ["B02"], scores=[0.9, 0.5, 0.5])["mrr_at_10"] == 0.5
    # without scores the list order is the ranking
    assert _one(["A01", "C03", "B02"], ["B02"])["mrr_at_10"] == pytest.approx(1 / 3)
    # scores reorder a list given out of order
    assert _one(["A01", "B02"], ["B02"], scores=[0.1, 0.7])["mrr_at_10"] == 1.0


def test_no_gold_is_left_out_and_counted() -> None:
    result = compute_metrics([["J45.909"], ["I10"]], [["J45.909"], []], ["en", "en"])
    assert result["num_queries"] == 1
    assert result["num_queries_without_gold"] == 1
    assert result["mrr_at_10"] == 1.0  # the mean is over the one scorable query
    nothing = compute_metrics([["I10"]], [None], ["es"])
    assert nothing["mrr_at_10"] is None and nothing["num_queries"] == 0
    assert np.isnan(per_query_scores([["I10"]], [[]])["mrr_at_10"][0])


def test_repeated_codes_count_once_and_codes_are_normalized() -> None:
    s = _one(["j45909", "J45.909", " i10 "], ["I10"])
    assert s["mrr_at_10"] == 0.5  # J45.909 twice is one code, so I10 is second
    assert _one(["J45.909"], "j45.909")["recall_at_1"] == 1.0  # a bare string is one gold code


def test_normalize_code_matches_the_catalogue() -> None:
    from cie10.catalog import normalize_code

    for raw in ("j45909", " J45.909 ", "i10", "E11.9", "s72.00x", "A00-B99", "10", "m84.30x", "Z"):
        assert metrics.normalize_code(raw) == normalize_code(raw)


def test_category_level() -> None:
    # exact miss, right category at rank 1: a specificity error
    s = _one(["J45.909", "J45.20", "I10"], ["J45.30"])
    assert s["mrr_at_10"] == 0.0 and s["recall_at_10"] == 0.0
    assert s["category_mrr_at_10"] == 1.0 and s["category_recall_at_1"] == 1.0
    # distinct categories in order of first appearance: J45, I10 -> I10 is second
    s = _one(["J45.909", "J45.20", "I10"], ["I10"])
    assert s["mrr_at_10"] == pytest.approx(1 / 3)
    assert s["category_mrr_at_10"] == 0.5
    # several gold codes in one category are one gold category
    s = _one(["J45.909"], ["J45.909", "J45.20"])
    assert s["recall_at_1"] == 0.5 and s["category_recall_at_1"] == 1.0
    # only the top 10 predicted codes are cut to categories
    s = _one([f"A{i:02d}" for i in range(10)] + ["J45.909"], ["J45.20"])
    assert s["category_recall_at_10"] == 0.0


def test_per_language_keys() -> None:
    result = compute_metrics(
        [["J45.909", "J45.20"], ["I10"], ["E11.9"]],
        [["J45.20"], ["I10"], ["E10.9"]],
        ["en", "es", "es"],
    )
    assert result["num_queries"] == 3
    assert result["mrr_at_10"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert result["en/mrr_at_10"] == 0.5 and result["en/num_queries"] == 1
    assert result["es/recall_at_1"] == 0.5 and result["es/num_queries"] == 2
    assert result["es/category_recall_at_1"] == 0.5  # E11 is not E10
    assert {key.split("/")[0] for key in result if "/" in key} == {"en", "es"}


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        per_query_scores([["A00"], ["B00"]], [["A00"]])
    with pytest.raises(ValueError, match="3 predicted codes but 2 scores"):
        per_query_scores([["A00", "B00", "C00"]], [["A00"]], [[1.0, 0.5]])
