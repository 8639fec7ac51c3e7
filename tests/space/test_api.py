"""The Space on loopback, queried through `gradio_client` like any API user would."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(space_url: str):
    from gradio_client import Client

    return Client(space_url, verbose=False)


def _codes(result: dict) -> list[str]:
    return [hit["code"] for hit in result["hits"]]


def test_search_endpoint_is_documented(client) -> None:
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/search", "/search_batch", "/search_note", "/info"} <= set(endpoints)
    parameters = [p["parameter_name"] for p in endpoints["/search"]["parameters"]]
    assert parameters[:3] == ["query", "top_k", "rerank"]


@pytest.mark.parametrize(
    ("query", "language", "category"),
    [("asthma attack", "en", "J45"), ("infarto agudo de miocardio", "es", "I21")],
)
def test_expected_code_in_top_5(client, query: str, language: str, category: str) -> None:
    result = client.predict(query=query, top_k=5, rerank=False, api_name="/search")
    assert result["language"] == language
    assert any(code.startswith(category) for code in _codes(result)), _codes(result)
    hit = result["hits"][0]
    assert hit["rank"] == 1 and hit["hierarchy"][0]["code"] in ("9", "10") and isinstance(hit["billable"], bool)
    assert set(result["timings"]) == {"encode_s", "retrieve_s", "rerank_s"}


def test_spanish_titles_and_reranking(client) -> None:
    result = client.predict(
        query="infarto agudo de miocardio", top_k=10, rerank=True, rerank_top=10, api_name="/search"
    )
    assert result["reranked"] and all(hit["rerank_score"] is not None for hit in result["hits"])
    assert "I21" in _codes(result)  # the test reranker's head is untrained: it reorders, rank not asserted
    i21 = next(hit for hit in result["hits"] if hit["code"] == "I21")
    assert i21["title"] == "Infarto agudo del miocardio" and i21["title_language"] == "es"


def test_filters(client) -> None:
    result = client.predict(query="asthma attack", billable_only=True, rerank=False, api_name="/search")
    assert result["hits"] and all(hit["billable"] for hit in result["hits"])
    result = client.predict(query="asthma attack", chapter="9", rerank=False, api_name="/search")
    assert result["hits"] and all(hit["chapter"] == "9" for hit in result["hits"])


@pytest.mark.parametrize(("query", "message"), [("   ", "Empty query"), ("12345 !!", "no words")])
def test_bad_input_is_a_clear_error(client, query: str, message: str) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(query=query, api_name="/search")


def test_batch_endpoint(client) -> None:
    rows = client.predict(
        queries=["asthma attack", "", "???", "bronquitis aguda"], top_k=3, rerank=False, api_name="/search_batch"
    )
    assert [row["query"] for row in rows if row["code"]] == ["asthma attack"] * 3 + ["bronquitis aguda"] * 3
    assert any("no words" in row["message"] for row in rows if row["query"] == "???")
    assert any(row["code"].startswith("J20") for row in rows if row["query"] == "bronquitis aguda")


def test_info_endpoint_records_the_revisions(client, space_config) -> None:
    info = client.predict(api_name="/info")
    assert info["sources"]["codes"]["revision"] == space_config.revision
    assert info["sources"]["bi_encoder"]["repo_id"] == space_config.model_id and info["reranker"]
    assert info["coverage"].startswith(f"This index searches {info['index']['num_codes']:,} of the ")
    assert "an aid for coders, not a coding decision" in info["coverage"]


def test_unsupported_language_is_searched_and_said(client) -> None:
    result = client.predict(query="急性心肌梗死", top_k=3, rerank=False, api_name="/search")
    assert result["hits"] and result["language"] is None and result["unsupported_language"] == "Chinese"
    assert "Chinese is not a supported language" in result["warnings"][0] and "“急性心肌梗死”" in result["warnings"][0]


def test_a_long_batch_does_not_hold_back_another_users_short_query(client, space_url: str) -> None:
    from gradio_client import Client
    from gradio_client.utils import Status

    queries = [f"{term} {number}" for number in range(50) for term in ("insuficiencia cardiaca", "asthma attack")]
    long_batch = client.submit(queries=queries, top_k=2, rerank=True, rerank_top=5, api_name="/search_batch")
    while long_batch.status().code != Status.PROCESSING:  # the batch holds the models before the others ask
        assert not long_batch.done(), long_batch.exception()
        time.sleep(0.05)
    other_user = Client(space_url, verbose=False)
    one_query = other_user.predict(queries=["bronquitis aguda"], top_k=2, rerank=True, api_name="/search_batch")
    search = other_user.predict(query="asthma attack", top_k=2, rerank=True, rerank_top=5, api_name="/search")
    assert not long_batch.done()  # both answered while the long batch still runs
    assert [row["query"] for row in one_query] == ["bronquitis aguda"] * 2 and search["reranked"]
    rows = long_batch.result(timeout=600)
    assert len(rows) == 2 * len(queries) and all(row["rerank_score"] != "" for row in rows)


def test_note_endpoint(client) -> None:
    note = "Ingresa por embolia pulmonar y fibrilación auricular."
    result = client.predict(note=note, top_k=10, rerank=False, api_name="/search_note")
    found = {hit["code"][:3]: hit["segment"] for hit in result["hits"]}
    assert {"I26", "I48"} <= set(found), found
    assert "embolia pulmonar" in found["I26"] and "fibrilación auricular" in found["I48"]  # the passage that found it
    assert all(hit["negation"] is None for hit in result["hits"])  # nothing in this note is named as absent
