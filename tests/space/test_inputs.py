"""The Space's plain-Python parts that need no model: input checks, language detection, batch files, catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from cie10.search import MAX_QUERY_CHARS, EmptyQueryError
from cie10.space_app import (
    BATCH_COLUMNS,
    NonsenseQueryError,
    SpaceConfig,
    catalog_from_records,
    detect_language,
    read_batch_queries,
    render_hits,
    render_status,
    validate_query,
    write_batch_csv,
)


@pytest.mark.parametrize("query", ["", "   ", "\n\t", None])
def test_empty_query_has_a_message(query) -> None:
    with pytest.raises(EmptyQueryError, match="Empty query: type a diagnosis"):
        validate_query(query)


@pytest.mark.parametrize("query", ["12345", "!!! ???", "😀😀", "3.14 / 42 %"])
def test_query_without_letters_is_nonsense(query: str) -> None:
    with pytest.raises(NonsenseQueryError, match="has no words to search for"):
        validate_query(query)


def test_overlong_query_is_cut_with_a_warning() -> None:
    text, warnings = validate_query("dolor torácico " * 100)
    assert len(text) == MAX_QUERY_CHARS
    assert len(warnings) == 1 and f"only the first {MAX_QUERY_CHARS}" in warnings[0]
    assert validate_query("  asma\n  bronquial ") == ("asma bronquial", [])


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("shortness of breath and chest pain on exertion", "en"),
        ("dolor torácico opresivo irradiado al brazo izquierdo", "es"),
        ("dolor al pit i dificultat per respirar des d'ahir", "ca"),
        ("dolore toracico e difficoltà a respirare da ieri sera", "it"),
        ("dor no peito e falta de ar desde ontem à noite", "pt"),
        ("douleur thoracique et essoufflement depuis hier soir", "fr"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    detected, confidence = detect_language(text)
    assert detected == language and 0.0 < confidence <= 1.0


def test_detect_language_without_letters() -> None:
    assert detect_language("123 456") == (None, 0.0)


def test_read_batch_queries(tmp_path: Path) -> None:
    with_header = tmp_path / "queries.csv"
    with_header.write_text('id,query\n1,asthma attack\n2,"infarto, agudo"\n3,\n', encoding="utf-8")
    without_header = tmp_path / "plain.csv"
    without_header.write_text("neumonía,x\nembolie pulmonaire,y\n", encoding="utf-8")
    lines = tmp_path / "lines.txt"
    lines.write_text("\ufefffibrillazione atriale\n\n", encoding="utf-8")
    assert read_batch_queries(" a \n\n b ") == ["a", "b"]
    assert read_batch_queries("first", with_header) == ["first", "asthma attack", "infarto, agudo"]
    assert read_batch_queries(None, without_header) == ["neumonía", "embolie pulmonaire"]
    assert read_batch_queries("", lines) == ["fibrillazione atriale"]


def test_write_batch_csv(tmp_path: Path) -> None:
    import csv

    rows = [dict.fromkeys(BATCH_COLUMNS, "") | {"query": "asma", "code": "J45", "rank": 1}]
    path = write_batch_csv(rows, tmp_path)
    with path.open(encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert path.name == "cie10-ranked-codes.csv" and read[0]["code"] == "J45" and list(read[0]) == list(BATCH_COLUMNS)


def test_catalog_from_records_matches_the_installed_catalogue() -> None:
    from cie10.catalog import load_catalog

    catalog = load_catalog()
    codes = ["J45.909", "I21.9", "I21.A1", "E11.9"]
    keep = set(codes)
    for code in codes:
        keep.update(catalog.ancestors(code))
    rebuilt = catalog_from_records(catalog.to_records([e for e in catalog if e.code in keep]), "test")
    for code in codes:
        assert rebuilt.path(code) == catalog.path(code)
        assert rebuilt[code].billable == catalog[code].billable and rebuilt[code].chapter == catalog[code].chapter
        for language in ("en", "es", "fr", "pt", "it", "ca"):
            assert rebuilt.display_title(code, language) == catalog.display_title(code, language), (code, language)


def test_config_defaults_follow_the_org(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIE10_ORG", "acme")
    config = SpaceConfig(revision="v1.0")
    assert (config.model_id, config.reranker_id, config.codes_id) == (
        "acme/cie10-bi",
        "acme/cie10-rerank",
        "acme/cie10-codes",
    )
    assert config.reranker_revision == config.codes_revision == "v1.0"
    monkeypatch.setenv("CIE10_SPACE_RERANKER", "none")
    monkeypatch.setenv("CIE10_SPACE_REVISION", "v2.0")
    config = SpaceConfig.from_env()
    assert config.reranker_id is None and config.revision == "v2.0" and config.model_id == "acme/cie10-bi"


def test_rendering_escapes_and_reports() -> None:
    payload = {
        "query": "x",
        "language": "es",
        "language_confidence": 0.3,
        "display_language": "es",
        "reranked": False,
        "warnings": ["careful <b>"],
        "timings": {"encode_s": 0.012, "retrieve_s": 0.0004, "rerank_s": 0.0},
        "hits": [
            {
                "rank": 1,
                "code": "J45",
                "title": "Asma <script>",
                "title_language": "es",
                "title_inherited": False,
                "english_title": "Asthma",
                "score": 0.9,
                "rerank_score": None,
                "billable": False,
                "hierarchy": [{"code": "10", "title": "Respiratory"}, {"code": "J40-J4A", "title": "Chronic"}],
            }
        ],
    }
    status = render_status(payload)
    assert "Español (es)" in status and "uncertain" in status and "rerank off" in status and "careful" in status
    table = render_hits(payload)
    assert "&lt;script&gt;" in table and "<script>" not in table and 'data-code="J45"' in table
    assert "Ch. 10" in table and "Rerank" not in table


def test_serve_command_parses() -> None:
    from cie10.cli import build_parser

    args = build_parser().parse_args(["serve", "--revision", "v1.0", "--port", "7999", "--no-reranker"])
    assert (args.revision, args.port, args.host, args.no_reranker) == ("v1.0", 7999, "127.0.0.1", True)
