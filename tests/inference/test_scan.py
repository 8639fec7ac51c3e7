"""The index's int8 scan on onnxruntime: the exact best codes survive it, whatever the query's own rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cie10.code_index import CodeIndex, build_code_index, encode_queries
from cie10.inference.scan import IntegerScan

CODIESP_TRAIN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "codiesp" / "train"


def test_integer_scan_matches_the_float_product() -> None:
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((5000, 64)).astype(np.float32) + 3.0  # a common direction, as e5's rows share
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    queries = rows[:3] + 0.01 * rng.standard_normal((3, 64)).astype(np.float32)
    scores = IntegerScan(rows).scores(queries)
    exact = queries @ rows.T
    assert scores.shape == (3, 5000)
    assert np.abs(scores - exact).mean() < 0.002
    assert [int(np.argmax(s)) for s in scores] == [int(np.argmax(e)) for e in exact]


@pytest.mark.slow
def test_search_gives_the_exact_best_codes(onnx_bi_encoder: Path) -> None:
    """Every name of 600 codes, 40 real CodiEsp train mentions, a shortlist of 50 codes: the index's top 10 equals
    brute force."""
    from cie10.catalog import load_catalog
    from cie10.eval_harness.codiesp import read_codiesp
    from cie10.inference import load_encoder

    catalog = load_catalog()
    encoder = load_encoder(str(onnx_bi_encoder), backend="onnx")
    codes = [entry.code for entry in catalog.select("quickstart")][:600]
    index: CodeIndex = build_code_index(encoder, catalog, "quickstart", names="all", codes=codes)
    mentions = list(dict.fromkeys(m.text for m in read_codiesp(CODIESP_TRAIN).mentions))[:40]
    queries = encode_queries(encoder, mentions)
    _, positions, _ = index.search(queries, 10, shortlist=50)
    exact = queries @ index.vectors.astype(np.float32).T
    for query, found in zip(exact, positions, strict=True):
        best = np.full(len(index), -np.inf, dtype=np.float32)
        np.maximum.at(best, index.row_code, query)
        assert [index.codes[p] for p in found] == [index.codes[p] for p in np.argsort(-best, kind="stable")[:10]]


def test_the_stored_scan_graph_is_the_one_onnx_builds() -> None:
    from cie10.inference.scan import SCAN_GRAPH, build_scan_graph

    assert SCAN_GRAPH == build_scan_graph()
