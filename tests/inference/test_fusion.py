"""Score fusion of the two stages: the weight chosen on held-out shortlists, shipped with the reranker, applied."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cie10.fusion import (
    FUSION_FILE,
    choose_and_check,
    choose_bi_weight,
    fused_scores,
    read_bi_weight,
    reciprocal_rank,
    write_fusion,
)


def _shortlist(bi_scores, rerank_scores, gold: int) -> dict:
    return {
        "bi_scores": bi_scores,
        "rerank_scores": rerank_scores,
        "relevant": [i == gold for i in range(len(bi_scores))],
    }


def test_reciprocal_rank_orders_by_score_and_keeps_ties_in_list_order() -> None:
    assert reciprocal_rank(np.array([0.1, 0.9, 0.5]), [False, False, True]) == pytest.approx(1 / 2)
    assert reciprocal_rank(np.array([0.5, 0.5]), [False, True]) == pytest.approx(1 / 2)
    assert reciprocal_rank(np.array([0.5, 0.1]), [False, False]) == 0.0


def test_weight_small_when_the_reranker_is_right_and_large_when_the_bi_encoder_is() -> None:
    # The bi-encoder ranks the gold second by a margin of 0.05; the reranker puts it first with confidence.
    reranker_right = [_shortlist([0.95, 0.90, 0.80], [0.10, 0.90, 0.20], gold=1) for _ in range(5)]
    choice = choose_bi_weight(reranker_right)
    assert choice["mrr_at_10_by_weight"]["0.0"] == 1.0 and choice["mrr_at_10_by_weight"]["50.0"] == 0.5
    assert choice["bi_order_mrr_at_10"] == 0.5 and choice["mrr_at_10"] == 1.0
    assert choice["bi_weight"] == 10.0  # the largest weight that still lets the reranker decide (ties go up)
    # The bi-encoder's first hit is an exact name (cosine 1.0), the reranker prefers a look-alike title.
    bi_right = [_shortlist([1.0, 0.90, 0.85], [0.40, 0.90, 0.30], gold=0) for _ in range(5)]
    choice = choose_bi_weight(bi_right)
    assert choice["bi_weight"] >= 10.0 and choice["mrr_at_10_by_weight"]["0.0"] == pytest.approx(0.5)
    # A mix: the weight that keeps the exact names and still lets the reranker fix close calls.
    mixed = choose_bi_weight(reranker_right + bi_right)
    assert mixed["bi_weight"] == 10.0 and mixed["mrr_at_10_by_weight"]["10.0"] == 1.0
    assert mixed["mrr_at_10_by_weight"]["0.0"] == 0.75 and mixed["mrr_at_10_by_weight"]["50.0"] == 0.75
    with pytest.raises(ValueError, match="no held-out shortlists"):
        choose_bi_weight([])


def test_the_weight_is_scored_on_shortlists_it_was_not_chosen_on() -> None:
    reranker_right = [_shortlist([0.95, 0.90, 0.80], [0.10, 0.90, 0.20], gold=1) for _ in range(20)]
    bi_right = [_shortlist([1.0, 0.90, 0.85], [0.40, 0.90, 0.30], gold=0) for _ in range(20)]
    checked = choose_and_check(reranker_right + bi_right)
    assert checked["chosen_on_queries"] == checked["queries"] == 20
    assert checked["bi_weight"] == 10.0 and checked["mrr_at_10"] == 1.0 and checked["bi_order_mrr_at_10"] < 1.0
    low, high = checked["gain_ci"]
    assert 0 < low <= checked["mrr_at_10"] - checked["bi_order_mrr_at_10"] <= high  # a real gain: above the noise
    # the reranker right on a handful of queries only: a gain, but not one the interval can tell from noise
    few = choose_and_check(reranker_right[:2] + bi_right * 2)
    assert few["gain_ci"][0] <= 0.0
    assert choose_and_check(bi_right[:1])["gain_ci"] is None  # one shortlist: chosen, nothing left to check on


def test_fusion_file_round_trip(tmp_path: Path) -> None:
    assert read_bi_weight(tmp_path) == 0.0  # a reranker without the file keeps its own order
    write_fusion(tmp_path, {"bi_weight": 5.0, "queries": 3})
    assert read_bi_weight(tmp_path) == 5.0
    assert not list(tmp_path.glob("*.tmp"))
    assert fused_scores([0.2, 0.9], [1.0, 0.9], 5.0).tolist() == pytest.approx([5.2, 5.4])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_searcher_orders_the_shortlist_by_the_shipped_weight(
    onnx_cross_encoder: Path, base_model_path: Path, tmp_path: Path, backend: str
) -> None:
    from cie10.catalog import load_catalog
    from cie10.code_index import build_code_index
    from cie10.inference import load_cross_encoder, load_encoder
    from cie10.search import CodeSearcher

    folder = tmp_path / "rerank"
    shutil.copytree(onnx_cross_encoder, folder)
    bi_encoder = load_encoder(str(base_model_path), backend="torch")
    codes = ["J45.909", "K35.80", "I10", "R07.9", "E11.9"]
    catalog = load_catalog()
    index = build_code_index(bi_encoder, catalog, "full", names="title", codes=codes)

    def first_codes(reranker) -> tuple[list[str], list[str]]:
        result = CodeSearcher(bi_encoder, index, reranker, catalog).search("asma bronquial", top_k=5, rerank_top=5)
        fused = [hit.fused_score for hit in result.hits]
        assert fused == sorted(fused, reverse=True)  # the head is ordered by the fused score
        bi_order = sorted(result.hits, key=lambda hit: -hit.score)
        return [hit.code for hit in result.hits], [hit.code for hit in bi_order]

    untuned = load_cross_encoder(str(folder), backend=backend)  # no fusion file: the reranker's own order
    assert untuned.cie10_bi_weight == 0.0
    (folder / FUSION_FILE).write_text('{"bi_weight": 1000.0}\n')
    fused = load_cross_encoder(str(folder), backend=backend)
    assert fused.cie10_bi_weight == 1000.0
    reranked, bi_order = first_codes(fused)
    assert reranked == bi_order  # a weight this large keeps the bi-encoder's order
    own_order, _ = first_codes(untuned)
    assert sorted(own_order) == sorted(bi_order)


@pytest.mark.slow
def test_the_reranker_keeps_known_mentions_in_the_order_coders_gave_them(
    onnx_cross_encoder: Path, base_model_path: Path
) -> None:
    from cie10.catalog import load_catalog
    from cie10.code_index import build_code_index
    from cie10.inference import load_cross_encoder, load_encoder
    from cie10.known_mentions import KnownMentions
    from cie10.search import CodeSearcher

    bi_encoder = load_encoder(str(base_model_path), backend="torch")
    catalog = load_catalog()
    index = build_code_index(bi_encoder, catalog, "full", names="title", codes=["J45.909", "K35.80", "I10", "R07.9"])
    index.known = KnownMentions({"asma bronquial": {"train": {"I10": 3, "R07.9": 3, "K35.80": 1}}}, {"language": "es"})
    reranker = load_cross_encoder(str(onnx_cross_encoder), backend="onnx")  # no fusion file: its own order
    hits = CodeSearcher(bi_encoder, index, reranker, catalog).search("asma bronquial", top_k=4, rerank_top=4).hits

    assert [hit.times_coded for hit in hits] == [3, 3, 1, 0] and [hit.exact for hit in hits] == [True] * 3 + [False]
    assert {hit.code for hit in hits[:2]} == {"I10", "R07.9"} and hits[2].code == "K35.80"
    assert hits[0].fused_score >= hits[1].fused_score  # codes given equally often: the reranker's order
    assert hits[3].code == "J45.909"
