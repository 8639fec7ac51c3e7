"""Baselines made of the evaluated system's own parts: its bi-encoder order, its English-title rows alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cie10.code_index import IndexRow, build_code_index
from cie10.eval_harness.runner import EvaluationConfig, run_evaluation
from tests.eval_harness.conftest import make_tiny_bi_encoder


@pytest.mark.slow
def test_bi_order_and_titles_baselines(catalog, tiny_dataset: Path, tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    bi_encoder = make_tiny_bi_encoder(tmp_path / "tiny-bi", catalog, index_scope=None)
    model = SentenceTransformer(str(bi_encoder), device="cpu")
    # every name of chapter 10's categories: titles first, then WHO labels and inclusion terms
    index = build_code_index(model, catalog, "categories", names="all", model_id="tiny-bi")
    index.save(bi_encoder)
    assert index.num_rows > len(index)
    reranker = tmp_path / "tiny-rerank"
    CrossEncoder(str(bi_encoder.parent / "tiny-bi-hf"), num_labels=1).save(str(reranker))

    config = EvaluationConfig(
        model=str(bi_encoder),
        reranker=str(reranker),
        rerank_top=10,
        dataset=str(tiny_dataset),
        chapters=["10"],
        baselines=["bi-order", "titles"],
        n_resamples=100,
        out=None,
    )
    run = run_evaluation(config)
    names = [system.name for system in run.baselines]
    assert names == ["bi-order", "titles"]
    bi_order, titles = run.baselines
    assert bi_order.model["reranker"] is None and titles.model["reranker"] is None
    assert titles.model["code_index"]["names"] == "title"
    # the paired comparison the release needs: reranked vs the bi-encoder's own order, same queries
    assert any(c["baseline"] == "bi-order" for c in run.to_dict()["comparisons"])

    titles_only = index.titles_only()
    assert titles_only.num_rows == len(index) == len(titles_only)
    assert all(isinstance(row, IndexRow) and row.source == index.rows[0].source for row in titles_only.rows)
    queries = model.encode(["asma", "neumonía"], normalize_embeddings=True)
    _, _, rows = titles_only.search(queries, 5)
    assert np.all(rows < len(index))  # only title rows can match
