"""Our metrics against sentence-transformers' InformationRetrievalEvaluator on the same runs."""

from __future__ import annotations

import numpy as np
import pytest

from cie10.eval_harness.metrics import per_query_scores

K = 10


def _evaluator(queries: dict[str, str], corpus: dict[str, str], relevant: dict[str, set[str]]):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    return InformationRetrievalEvaluator(
        queries,
        corpus,
        relevant,
        mrr_at_k=[K],
        ndcg_at_k=[K],
        accuracy_at_k=[1, 3, 5, 10],
        precision_recall_at_k=[1, 3, 5, 10],
        map_at_k=[K],
        write_csv=False,
    )


def _ours(rankings: list[list[tuple[str, float]]], gold: list[set[str]]) -> dict[str, float]:
    scores = per_query_scores(
        [[code for code, _ in ranking] for ranking in rankings],
        [sorted(g) for g in gold],
        [[score for _, score in ranking] for ranking in rankings],
    )
    return {name: float(np.nanmean(values)) for name, values in scores.items()}


def _assert_same(ours: dict[str, float], theirs: dict) -> None:
    assert ours["mrr_at_10"] == pytest.approx(theirs["mrr@k"][K])
    assert ours["map_at_10"] == pytest.approx(theirs["map@k"][K])
    assert ours["ndcg_at_10"] == pytest.approx(theirs["ndcg@k"][K])
    for k in (1, 3, 5, 10):
        assert ours[f"recall_at_{k}"] == pytest.approx(theirs["recall@k"][k])


def test_random_runs_with_ties_and_several_gold_codes() -> None:
    rng = np.random.default_rng(7)
    corpus = {f"C{i:02d}": f"code {i}" for i in range(40)}
    codes = list(corpus)
    queries, relevant, rankings = {}, {}, []
    for q in range(200):
        qid = f"q{q}"
        queries[qid] = f"query {q}"
        relevant[qid] = set(rng.choice(codes, size=int(rng.integers(1, 13)), replace=False))
        retrieved = rng.choice(codes, size=int(rng.integers(0, 16)), replace=False)
        scores = np.round(rng.random(len(retrieved)), 1)  # one decimal: many ties
        order = np.argsort(-scores, kind="stable")
        rankings.append([(str(retrieved[i]), float(scores[i])) for i in order])
    evaluator = _evaluator(queries, corpus, relevant)
    theirs = evaluator.compute_metrics([[{"corpus_id": c, "score": s} for c, s in r] for r in rankings])
    _assert_same(_ours(rankings, [relevant[qid] for qid in queries]), theirs)


def test_bm25_run_on_the_catalogue(catalog) -> None:
    from cie10.eval_harness.systems import bm25_system, select_codes
    from tests.eval_harness.conftest import TINY_ROWS

    codes = select_codes(catalog, "full", chapters=["10"])
    system = bm25_system("bm25-en-es", catalog, codes)
    queries = {f"q{i}": row["query"] for i, row in enumerate(TINY_ROWS)}
    relevant = {f"q{i}": {row["code"]} for i, row in enumerate(TINY_ROWS)}
    rankings = system.rank(list(queries.values()), K)
    assert any(rankings), "BM25 should retrieve something for these queries"
    evaluator = _evaluator(queries, {code: catalog[code].title for code in codes}, relevant)
    theirs = evaluator.compute_metrics([[{"corpus_id": c, "score": s} for c, s in r] for r in rankings])
    _assert_same(_ours(rankings, list(relevant.values())), theirs)


@pytest.mark.slow
def test_dense_run_matches_the_evaluator_end_to_end(catalog, base_model_path) -> None:
    """The evaluator encodes and ranks by itself; our runner goes through the code index and CodeSearcher."""
    from sentence_transformers import SentenceTransformer

    from cie10.eval_harness.data import from_records
    from cie10.eval_harness.runner import evaluate_systems
    from cie10.eval_harness.systems import dense_system, select_codes

    codes = select_codes(catalog, "categories", chapters=["10"])
    rows = [
        {"query": "asthma attack", "code": "J45", "language": "en"},
        {"query": "pneumonia", "code": "J18", "language": "en"},
        {"query": "neumonía por influenza", "code": ["J10", "J11"], "language": "es"},
        {"query": "enfermedad pulmonar obstructiva crónica", "code": "J44", "language": "es"},
        {"query": "insuficiencia respiratoria", "code": "J96", "language": "es"},
        {"query": "bronchite aiguë", "code": "J20", "language": "fr"},
    ]
    eval_set = from_records(rows, {"id": "hand", "split": "test"})
    from cie10.eval_harness.systems import load_model

    # float32 on both sides: the same numbers to 1e-6 (the int8 default moves a near-tie or two)
    loaded = load_model(str(base_model_path), backend="onnx")
    system = dense_system("base", str(base_model_path), catalog, codes, "categories", loaded=loaded)
    run = evaluate_systems(eval_set, [system], catalog=catalog, codes=codes, n_resamples=10)
    ours = run.scores["test"][0]
    assert ours["hf_subset"] == "all" and ours["num_queries"] == len(rows)
    assert 0 < ours["mrr_at_10"] < 1 and 0 < ours["recall_at_1"] < ours["recall_at_10"], ours  # not a trivial run

    model = SentenceTransformer(str(base_model_path))
    evaluator = _evaluator(
        {f"q{i}": row["query"] for i, row in enumerate(rows)},
        {code: catalog[code].title for code in codes},
        {f"q{i}": set(row["code"]) if isinstance(row["code"], list) else {row["code"]} for i, row in enumerate(rows)},
    )
    evaluator.query_prompt_name, evaluator.corpus_prompt_name = "query", "document"
    theirs = evaluator(model)
    prefix = next(iter(theirs)).split("_")[0]
    assert ours["mrr_at_10"] == pytest.approx(theirs[f"{prefix}_mrr@10"], abs=1e-6)
    assert ours["map_at_10"] == pytest.approx(theirs[f"{prefix}_map@10"], abs=1e-6)
    assert ours["ndcg_at_10"] == pytest.approx(theirs[f"{prefix}_ndcg@10"], abs=1e-6)
    for k in (1, 3, 5, 10):
        assert ours[f"recall_at_{k}"] == pytest.approx(theirs[f"{prefix}_recall@{k}"], abs=1e-6)
