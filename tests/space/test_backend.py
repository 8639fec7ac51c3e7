"""`SpaceBackend`: the search the Space draws, as plain Python, loaded from the local Hub by id and revision."""

from __future__ import annotations

import pytest

from cie10.errors import Cie10Error
from cie10.search import EmptyQueryError
from cie10.space_app import NonsenseQueryError, _load_codes, _load_reranker, _reranker_evidence

pytestmark = pytest.mark.slow


def test_loaded_by_hub_id_and_revision(space_backend, space_config) -> None:
    info = space_backend.info()
    assert set(info["sources"]) == {"bi_encoder", "reranker", "codes"}
    for source in info["sources"].values():
        assert source["revision"] == space_config.revision and len(source["sha"]) == 40
    assert info["sources"]["codes"]["repo_id"].endswith("/cie10-codes") and info["notes"] == []
    assert info["index"]["num_codes"] == len(space_backend.searcher.index) and info["reranker"]
    assert [value for _, value in space_backend.chapters()] == ["9", "10"]
    # the test reranker carries no run summary: nothing says it hurts, so the Space reranks by default
    assert space_backend.reranker_evidence is None and info["rerank_default"] is True


def test_reranking_is_off_by_default_when_the_reranker_measured_below_the_bi_encoder(space_backend, tmp_path) -> None:
    import dataclasses
    import json

    summary = {"main_metric": "mrr@10", "metrics": {"summary": {"mean": {"bi_encoder_order": 0.78, "reranked": 0.7}}}}
    (tmp_path / "run_summary.json").write_text(json.dumps(summary))
    evidence = _reranker_evidence(str(tmp_path), None)
    assert evidence is not None and not evidence.helps and "off by default" in evidence.describe()
    backend = dataclasses.replace(space_backend, reranker_evidence=evidence)
    assert backend.rerank_default is False
    assert backend.search("asthma attack")["reranked"] is False
    assert backend.search("asthma attack", rerank=True)["reranked"] is True
    assert space_backend.search("asthma attack")["reranked"] is True


def test_titles_in_the_chosen_language(space_backend) -> None:
    result = space_backend.search("acute myocardial infarction", rerank=False, display_language="fr")
    assert result["display_language"] == "fr"
    i21 = next(hit for hit in result["hits"] if hit["code"] == "I21")
    assert i21["title"] == "Infarctus aigu du myocarde" and i21["english_title"] == "Acute myocardial infarction"
    assert [step["code"] for step in i21["hierarchy"]] == ["9", "I20-I25"]
    catalan = space_backend.search("infart agut de miocardi", rerank=False, display_language="ca")
    assert all(hit["title"] == hit["english_title"] for hit in catalan["hits"])  # no Catalan labels: English


def test_filters_and_shortlist(space_backend) -> None:
    billable = space_backend.search("asthma attack", rerank=False, billable_only=True, top_k=20)
    assert len(billable["hits"]) == 20 and all(hit["billable"] for hit in billable["hits"])
    circulatory = space_backend.search("asthma attack", rerank=False, chapter="9")
    assert all(hit["chapter"] == "9" for hit in circulatory["hits"])
    reranked = space_backend.search("asthma attack", rerank=True, rerank_top=5, top_k=10)
    scores = [hit["rerank_score"] for hit in reranked["hits"]]
    assert all(score is not None for score in scores[:5]) and all(score is None for score in scores[5:])
    assert reranked["timings"]["rerank_s"] > 0


@pytest.mark.parametrize(
    ("query", "options", "error", "message"),
    [
        ("", {}, EmptyQueryError, "Empty query"),
        ("--- 123 ---", {}, NonsenseQueryError, "no words"),
        ("asma", {"chapter": "99"}, Cie10Error, "unknown chapter"),
        ("asma", {"top_k": 0}, Cie10Error, "top_k must be"),
        ("asma", {"rerank_top": "many"}, Cie10Error, "shortlist must be"),
    ],
)
def test_clear_errors(space_backend, query: str, options: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        space_backend.search(query, **options)


def test_warnings(space_backend) -> None:
    long = space_backend.search("insuficiencia cardiaca " * 40, rerank=False)
    assert long["hits"] and "only the first" in long["warnings"][0]
    code = space_backend.search("j459", rerank=False)
    assert any("is itself a code: J45.9 Other and unspecified asthma" in warning for warning in code["warnings"])


def test_batch(space_backend) -> None:
    rows, timings = space_backend.search_batch(
        ["bronquitis aguda con fiebre y tos", "!!!", "embolie pulmonaire"], top_k=3, rerank=False
    )
    assert [row["query"] for row in rows] == ["bronquitis aguda con fiebre y tos"] * 3 + ["!!!"] + [
        "embolie pulmonaire"
    ] * 3
    assert rows[3]["code"] == "" and "no words" in rows[3]["message"]
    assert rows[0]["language"] == "es" and rows[4]["language"] == "fr" and timings["per_query_s"] > 0
    with pytest.raises(EmptyQueryError, match="No queries"):
        space_backend.search_batch([])


def test_batch_runs_in_chunks_with_progress_and_a_cap(space_backend) -> None:
    from cie10.space_app import BATCH_CHUNK, MAX_BATCH_QUERIES, BatchTooLargeError

    queries = ["asthma attack", "", "Herzinfarkt"] + ["bronquitis aguda"] * BATCH_CHUNK
    seen: list[tuple[int, int]] = []
    rows, _ = space_backend.search_batch(queries, top_k=2, rerank=False, progress=lambda *done: seen.append(done))
    assert seen == [(BATCH_CHUNK, len(queries)), (len(queries), len(queries))]
    assert [row["query"] for row in rows] == ["asthma attack"] * 2 + [""] + ["Herzinfarkt"] * 2 + [
        "bronquitis aguda"
    ] * (2 * BATCH_CHUNK)
    assert "Empty query" in rows[2]["message"] and rows[2]["code"] == ""
    german = rows[3]
    assert german["language"] == "german" and "German is not a supported language" in german["message"]
    assert german["title"] == german["english_title"]
    with pytest.raises(BatchTooLargeError, match=f"the Space ranks at most {MAX_BATCH_QUERIES:,} per batch"):
        space_backend.search_batch(["asma"] * (MAX_BATCH_QUERIES + 1))


def test_unsupported_language_is_searched_with_a_warning(space_backend) -> None:
    result = space_backend.search("akuter Myokardinfarkt mit Brustschmerzen", rerank=False)
    assert result["language"] is None and result["language_supported"] is False
    assert result["unsupported_language"] == "German" and result["display_language"] == "en" and result["hits"]
    assert "German is not a supported language" in result["warnings"][0]
    assert "“akuter Myokardinfarkt mit Brustschmerzen” was searched as typed" in result["warnings"][0]
    spanish = space_backend.search("infarto agudo de miocardio", rerank=False)
    assert spanish["language_supported"] and spanish["unsupported_language"] is None


def test_inherited_labels_come_with_the_codes_own_title(space_backend) -> None:
    result = space_backend.search("asma intermitente leve", rerank=False, top_k=10, display_language="pt")
    inherited = [hit for hit in result["hits"] if hit["title_inherited"]]
    assert len(inherited) >= 2 and len({hit["english_title"] for hit in inherited}) == len(inherited)


def test_coverage_says_how_much_of_the_catalogue_is_searched(space_backend) -> None:
    total = len(space_backend.catalog.select("full"))
    assert space_backend.coverage().startswith(
        f"This index searches {len(space_backend.searcher.index):,} of the {total:,} codes of ICD-10-CM 2026"
    )
    assert "an aid for coders, not a coding decision" in space_backend.coverage()


def test_missing_parts_fall_back_with_a_note(local_hub) -> None:
    catalog, source, note = _load_codes("cie10-test/no-such-codes", "v9.9", ["J45"])
    assert source is None and "not used" in note and "installed catalogue" in note and "J45" in catalog.entries
    reranker, note = _load_reranker("cie10-test/no-such-reranker", None)
    assert reranker is None and "reranking is off" in note


NOTE = "Mujer de 70 años con fibrilación auricular, que ingresa por embolia pulmonar y bronquitis aguda. Sin alergias."


def test_note_finds_each_findings_code_and_the_passage_that_found_it(space_backend) -> None:
    result = space_backend.search_note(NOTE, top_k=10, rerank=False)
    found = {hit["code"][:3]: hit for hit in result["hits"]}
    assert {"I48", "I26", "J20"} <= set(found), list(found)
    assert found["I48"]["segment"] == "fibrilación auricular" and found["I26"]["segment"] == "embolia pulmonar"
    assert result["segments"] == 7 and result["language"] == "es"
    assert [hit["rank"] for hit in result["hits"]] == list(range(1, len(result["hits"]) + 1))
    assert len({hit["code"] for hit in result["hits"]}) == len(result["hits"])  # each code once
    # a passage naming a finding as absent is kept and flagged with its negation word
    assert {hit["segment"]: hit["negation"] for hit in result["hits"]}["Sin alergias."] == "sin"
    assert found["I48"]["negation"] is None and found["I26"]["negation"] is None
    # the same note as one query: its single embedding does not find both findings
    whole = {hit["code"][:3] for hit in space_backend.search(NOTE, top_k=10, rerank=False)["hits"]}
    assert not {"I48", "I26", "J20"} <= whole, whole


def test_note_errors_and_cap(space_backend) -> None:
    from cie10.space_app import MAX_NOTE_SEGMENTS, BatchTooLargeError

    with pytest.raises(EmptyQueryError, match="Empty note"):
        space_backend.search_note("  \n ")
    with pytest.raises(NonsenseQueryError, match="no words"):
        space_backend.search_note("120/80. 37,5 - 98 %.")
    with pytest.raises(BatchTooLargeError, match=f"at most {MAX_NOTE_SEGMENTS}"):
        space_backend.search_note("Fiebre. " * (MAX_NOTE_SEGMENTS + 1))
    reranked = space_backend.search_note(NOTE, top_k=3, rerank=True)
    assert reranked["reranked"] and len(reranked["hits"]) == 3
