"""The CodiEsp adapter on a small hand-written folder in CodiEsp's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cie10.eval_harness.codiesp import DEFAULT_DOCUMENT_RERANK_TOP, DocumentRanker, read_codiesp
from cie10.eval_harness.data import EvaluationInputError
from cie10.eval_harness.runner import evaluate_systems
from cie10.eval_harness.systems import DenseSystem, bm25_system, select_codes
from tests.eval_harness.conftest import CODIESP_FIXTURE

REAL_CODIESP = Path("/work/shared/data/codiesp/dev")


def test_parse_fixture() -> None:
    split = read_codiesp(CODIESP_FIXTURE)
    assert split.split == "dev"
    assert len(split.documents) == 4
    assert len(split.mentions) == 16
    assert sum(m.kind == "DIAGNOSTICO" for m in split.mentions) == 13
    assert split.document_codes["S0000-fixture-0001-1"] == ["I10", "E11.9", "R07.9", "I21.9"]  # normalized
    assert set(split.files) == {"devD.tsv", "devX.tsv"}
    mention = split.mentions[0]
    text = split.documents[mention.doc_id]
    start, end = (int(x) for x in mention.spans.split())
    assert text[start:end] == mention.text == "hipertensión arterial esencial"

    mentions = split.mention_set()
    assert len(mentions) == 13 and set(mentions.languages) == {"es"}
    assert mentions.gold[0] == ["I10"] and mentions.queries[0] == "hipertensión arterial esencial"
    assert mentions.main_score == "mrr_at_10"
    documents = split.document_set()
    assert len(documents) == 4 and documents.main_score == "map_at_10"
    assert documents.gold[2] == ["K80.20", "S72.00X", "W19"]


def test_document_codes_fall_back_to_x_diagnoses(tmp_path: Path) -> None:
    folder = tmp_path / "dev"
    (folder / "text_files").mkdir(parents=True)
    for path in (CODIESP_FIXTURE / "text_files").iterdir():
        (folder / "text_files" / path.name).write_bytes(path.read_bytes())
    (folder / "devX.tsv").write_bytes((CODIESP_FIXTURE / "devX.tsv").read_bytes())
    split = read_codiesp(folder)
    assert split.document_codes == read_codiesp(CODIESP_FIXTURE).document_codes


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(EvaluationInputError, match="does not exist"):
        read_codiesp(tmp_path / "missing")
    with pytest.raises(EvaluationInputError, match="not a CodiEsp split"):
        read_codiesp(tmp_path)
    (tmp_path / "devX.tsv").write_text("doc1\tDIAGNOSTICO\n")
    with pytest.raises(EvaluationInputError, match=r"devX\.tsv:1: expected at least 4"):
        read_codiesp(tmp_path)


class _FakeSystem:
    name = "fake"

    def describe(self) -> dict:
        return {"kind": "fake"}

    def rank(self, queries, top_k):
        table = {
            "fiebre alta.": [("R50.9", 0.9), ("R50.2", 0.4)],
            "tos seca.": [("R05.9", 0.7), ("R50.9", 0.95)],
            "fiebre alta y tos seca.": [("R50.9", 0.6), ("R05.9", 0.5)],
            "fiebre alta": [("R50.9", 0.92), ("R50.2", 0.8)],
        }
        return [table.get(query, [])[:top_k] for query in queries]


def test_document_ranker_keeps_each_codes_best_segment() -> None:
    ranker = DocumentRanker(_FakeSystem(), per_segment_k=5, segmentation="sentences")
    (ranking,) = ranker.rank(["fiebre alta. tos seca."], 10)
    assert ranking == [("R50.9", 0.95), ("R05.9", 0.7), ("R50.2", 0.4)]
    assert ranker.describe()["document_level"]["aggregation"] == "max over segments"


def test_document_ranker_takes_each_clauses_top_code_by_default() -> None:
    ranker = DocumentRanker(_FakeSystem())  # sentences and clauses, one code from each
    (ranking,) = ranker.rank(["fiebre alta y tos seca."], 10)
    # R50.9 scores 0.95 as the second code of "tos seca." and R50.2 is no segment's top code: neither counts
    assert ranking == [("R50.9", 0.92), ("R05.9", 0.7)]
    described = ranker.describe()["document_level"]
    assert described["segmentation"] == "sentences+clauses" and described["per_segment_k"] == 1


def _candidate_codes(catalog, split) -> list[str]:
    """Every category, plus every code under the fixture's gold categories: distractors without 98k codes."""
    gold_categories = {code[:3] for codes in split.document_codes.values() for code in codes}
    categories = select_codes(catalog, "categories")
    under = [e.code for e in catalog.select("full") if e.code[:3] in gold_categories and e.code not in categories]
    return categories + under


def test_score_fixture_with_bm25(catalog, tmp_path: Path) -> None:
    split = read_codiesp(CODIESP_FIXTURE)
    codes = _candidate_codes(catalog, split)
    systems = [bm25_system("bm25-en-es", catalog, codes), bm25_system("bm25", catalog, codes)]
    mentions = evaluate_systems(split.mention_set(), systems, catalog=catalog, codes=codes, out=tmp_path / "m")
    coverage = mentions.gold_coverage
    assert coverage["not_in_catalogue"] == {"distinct": 1, "occurrences": 1, "examples": ["S72.00X"]}
    assert coverage["queries_with_unretrievable_gold"] == 1
    (overall, es) = mentions.scores["dev"]
    assert overall["hf_subset"] == "all" and es["hf_subset"] == "es" and es["languages"] == ["spa-Latn"]
    assert overall["num_queries"] == 13  # the unknown code is kept, as a miss
    assert overall["retrievable_gold_only"]["num_queries"] == 12
    assert overall["retrievable_gold_only"]["mrr_at_10"] >= overall["mrr_at_10"]
    assert overall["mrr_at_10"] > 0  # Spanish titles let BM25 find some codes

    documents = evaluate_systems(
        split.document_set(),
        [DocumentRanker(system) for system in systems],
        catalog=catalog,
        codes=codes,
        task_name="CodiEsp-documents",
        out=tmp_path / "d",
    )
    assert documents.main_score == "map_at_10"
    assert documents.scores["dev"][0]["main_score"] == documents.scores["dev"][0]["map_at_10"]
    assert documents.gold_coverage["queries_with_unretrievable_gold"] == 1
    written = json.loads((tmp_path / "d" / "results.json").read_text())
    assert written["task_name"] == "CodiEsp-documents"
    assert written["dataset"]["files_sha256"].keys() == {"devD.tsv", "devX.tsv"}
    assert "S72.00X" in (tmp_path / "d" / "results.md").read_text()


@pytest.mark.skipif(not REAL_CODIESP.is_dir(), reason="the CodiEsp dev set is not on this machine")
def test_parser_reads_the_real_dev_folder() -> None:
    """Only a parsing check: nothing is scored or tuned on the real data."""
    split = read_codiesp(REAL_CODIESP)
    assert len(split.documents) == 250
    assert len(split.document_codes) == 250
    assert sum(m.kind == "DIAGNOSTICO" for m in split.mentions) > 3000
    assert all(code == code.upper() for codes in split.document_codes.values() for code in codes)


@pytest.mark.slow
def test_cli_codiesp(tiny_bi_encoder: Path, tmp_path: Path, capsys) -> None:
    from cie10.cli import main

    code = main(
        [
            "evaluate", "codiesp", "--folder", str(CODIESP_FIXTURE), "--model", str(tiny_bi_encoder),
            "--baseline", "bm25-en-es", "--scope", "categories", "--out", str(tmp_path), "--resamples", "50",
            "--segmentation", "sentences", "--per-segment-k", "3",
        ]
    )  # fmt: skip
    assert code == 0
    stdout = capsys.readouterr().out
    assert "# CodiEsp-mentions: tiny-bi" in stdout and "# CodiEsp-documents: tiny-bi" in stdout
    run_dir = tmp_path / "tiny-bi__dev__dev"
    for level in ("mentions", "documents"):
        data = json.loads((run_dir / level / "results.json").read_text())
        assert data["catalog"]["scope"] == "categories"
        assert [b["name"] for b in data["baselines"]] == ["bm25-en-es"]
        # at scope `categories` most gold codes are outside the searched codes: counted, kept as misses
        assert data["gold_coverage"]["outside_searched_codes"]["distinct"] > 0
    documents = json.loads((run_dir / "documents" / "results.json").read_text())
    assert documents["settings"]["segmentation"] == "sentences" and documents["settings"]["per_segment_k"] == 3


def test_unseen_mentions_are_the_dev_mentions_no_train_mention_matches() -> None:
    from cie10.eval_harness.codiesp import UNSEEN_LEVEL, training_mention_texts, unseen_mentions
    from cie10.generation.pairs import normalize_text

    train = REAL_CODIESP.parent / "train"
    mentions = read_codiesp(REAL_CODIESP).mention_set()
    unseen = unseen_mentions(mentions, train)
    seen_texts = training_mention_texts(train)
    assert not any(normalize_text(query) in seen_texts for query in unseen.queries)
    assert sum(normalize_text(query) in seen_texts for query in mentions.queries) == len(mentions) - len(unseen)
    assert 0.3 < len(unseen) / len(mentions) < 0.5  # 59% of dev mentions occur among the train mentions
    assert unseen.source["level"] == UNSEEN_LEVEL and unseen.source["unseen_of"] == len(mentions)


def test_document_ranker_reranks_fewer_candidates_per_segment() -> None:
    reranked = DenseSystem("bi+rerank", searcher=None, model_info={}, reranker_info={"id": "r"}, rerank_top=20)
    assert DocumentRanker(reranked).describe()["rerank_top"] == DEFAULT_DOCUMENT_RERANK_TOP
    assert DocumentRanker(reranked, rerank_top=None).describe()["rerank_top"] == 20
    assert reranked.rerank_top == 20  # the mention-level system is left as it was
    plain = DenseSystem("bi", searcher=None, model_info={})
    assert DocumentRanker(plain).describe()["rerank_top"] is None  # nothing to rerank
