"""The Space's plain-Python parts that need no model: input checks, language detection, batch files, catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from cie10.search import MAX_QUERY_CHARS, EmptyQueryError
from cie10.space_app import (
    BATCH_COLUMNS,
    BatchColumnError,
    NonsenseQueryError,
    NotTextFileError,
    SpaceConfig,
    batch_file_columns,
    catalog_from_parquet,
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
    detected = detect_language(text)
    assert detected.code == language and 0.0 < detected.confidence <= 1.0 and detected.supported
    assert detected.warning(text) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("akuter Myokardinfarkt mit Brustschmerzen", "German"),
        ("急性心肌梗死", "Chinese"),
        ("инфаркт миокарда", "Russian"),
    ],
)
def test_unsupported_language_is_named_not_guessed(text: str, language: str) -> None:
    detected = detect_language(text)
    assert detected.code is None and detected.unsupported == language and not detected.supported
    warning = detected.warning(text)
    assert f"{language} is not a supported language" in warning and f"“{text}” was searched as typed" in warning
    assert "English, Spanish, Catalan, Italian, Portuguese, French" in warning


def test_detect_language_without_letters() -> None:
    detected = detect_language("123 456")
    assert (detected.code, detected.confidence, detected.supported) == (None, 0.0, True)


def test_read_batch_queries(tmp_path: Path) -> None:
    with_header = tmp_path / "queries.csv"
    with_header.write_text('id,query\n1,asthma attack\n2,"infarto, agudo"\n3,\n\n', encoding="utf-8")
    one_column = tmp_path / "plain.csv"
    one_column.write_text("neumonía\nembolie pulmonaire\n", encoding="utf-8")
    lines = tmp_path / "lines.txt"
    lines.write_text("\ufefffibrillazione atriale\n\n", encoding="utf-8")
    assert read_batch_queries(" a \n\n b ") == ["a", "b"]
    # the empty query cell of row 3 stays, to be flagged; the blank line is skipped
    assert read_batch_queries("first", with_header) == ["first", "asthma attack", "infarto, agudo", ""]
    assert read_batch_queries(None, one_column) == ["neumonía", "embolie pulmonaire"]
    assert read_batch_queries("", lines) == ["fibrillazione atriale"]


def test_batch_csv_query_column_by_name_or_chosen(tmp_path: Path) -> None:
    named = tmp_path / "named.csv"
    named.write_text("patient_id;Diagnóstico\n17;asma bronquial\n18;neumonía\n", encoding="utf-8")
    assert read_batch_queries(None, named) == ["asma bronquial", "neumonía"]  # `;` and an accented name
    assert batch_file_columns(named) == (["patient_id", "Diagnóstico"], "Diagnóstico")
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("patient_id,note\n17,asthma attack\n", encoding="utf-8")
    with pytest.raises(BatchColumnError, match="its columns are “patient_id”, “note”. Choose") as error:
        read_batch_queries(None, unnamed)
    assert error.value.columns == ["patient_id", "note"] and batch_file_columns(unnamed)[1] is None
    assert read_batch_queries(None, unnamed, column="note") == ["asthma attack"]
    with pytest.raises(BatchColumnError, match="has no column “notes”"):
        read_batch_queries(None, unnamed, column="notes")


def test_batch_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "scan.csv"
    binary.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(NotTextFileError, match="scan.csv is not a text file"):
        read_batch_queries(None, binary)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("query\nasma\nneumonía\n".encode("latin-1"))
    with pytest.raises(NotTextFileError, match="latin1.csv is not UTF-8 text \\(line 3 has byte 0xed\\)"):
        read_batch_queries(None, latin1)


def test_write_batch_csv(tmp_path: Path) -> None:
    import csv

    rows = [dict.fromkeys(BATCH_COLUMNS, "") | {"query": "asma", "code": "J45", "rank": 1}]
    path = write_batch_csv(rows, tmp_path)
    with path.open(encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert path.name == "cie10-ranked-codes.csv" and read[0]["code"] == "J45" and list(read[0]) == list(BATCH_COLUMNS)


@pytest.mark.parametrize("read", ["records", "parquet"])
def test_catalog_from_records_matches_the_installed_catalogue(read: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cie10.catalog import load_catalog

    catalog = load_catalog()
    codes = ["J45.909", "I21.9", "I21.A1", "E11.9"]
    keep = set(codes)
    for code in codes:
        keep.update(catalog.ancestors(code))
    records = catalog.to_records([e for e in catalog if e.code in keep])
    if read == "records":
        rebuilt = catalog_from_records(records, "test")
    else:  # the Space's path: the codes dataset's parquet file, read in batches smaller than the file
        pq.write_table(pa.Table.from_pylist(records), tmp_path / "codes.parquet")
        rebuilt = catalog_from_parquet(tmp_path / "codes.parquet", "test", batch_size=2)
    assert len(rebuilt) == len(keep)
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
                "matched_name": "asma <b>",
                "exact": True,
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
    assert ">exact</span>" in table and "asma &lt;b&gt;" in table  # a query identical to a name is flagged


def test_serve_command_parses() -> None:
    from cie10.cli import build_parser

    args = build_parser().parse_args(["serve", "--revision", "v1.0", "--port", "7999", "--no-reranker"])
    assert (args.revision, args.port, args.host, args.no_reranker) == ("v1.0", 7999, "127.0.0.1", True)


def test_inherited_labels_show_the_codes_own_title_and_unsupported_languages_are_named() -> None:
    hit = {
        "rank": 1,
        "code": "I21.0",
        "title": "Enfarte agudo do miocárdio",
        "title_language": "pt",
        "title_inherited": True,
        "english_title": "ST elevation (STEMI) myocardial infarction of anterior wall",
        "score": 0.9,
        "rerank_score": None,
        "billable": False,
        "hierarchy": [{"code": "9", "title": "Circulatory"}],
    }
    payload = {
        "query": "Herzinfarkt",
        "language": None,
        "language_confidence": 0.9,
        "unsupported_language": "German",
        "display_language": "pt",
        "reranked": False,
        "warnings": ["German is not a supported language"],
        "timings": {"encode_s": 0.01, "retrieve_s": 0.001, "rerank_s": 0.0},
        "hits": [hit],
    }
    table = render_hits(payload)
    assert "pt, inherited" in table and "en: ST elevation (STEMI) myocardial infarction of anterior wall" in table
    assert "German (not supported)" in render_status(payload)


def test_sources_link_to_the_repo_at_its_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    from cie10.space_app import Source

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:8090/")
    model, codes = Source("acme/cie10-bi", "v1.0", "1" * 40), Source("acme/cie10-codes", "v1.0", kind="dataset")
    assert model.url() == "http://127.0.0.1:8090/acme/cie10-bi/tree/v1.0"
    assert codes.url() == "http://127.0.0.1:8090/datasets/acme/cie10-codes/tree/v1.0"
    assert model.link() == (
        '<a href="http://127.0.0.1:8090/acme/cie10-bi/tree/v1.0" target="_blank" rel="noopener">'
        "acme/cie10-bi&#64;v1.0 (1111111)</a>"
    )


def test_the_releases_codiesp_comparison_decides_the_reranking_default(tmp_path) -> None:
    import json

    from cie10.errors import Cie10Error
    from cie10.fusion import RERANK_EVIDENCE_FILE, rerank_comparison
    from cie10.space_app import _reranker_evidence

    summary = {"main_metric": "mrr@10", "metrics": {"summary": {"mean": {"bi_encoder_order": 0.5, "reranked": 0.4}}}}
    (tmp_path / "run_summary.json").write_text(json.dumps(summary))
    assert not _reranker_evidence(str(tmp_path), None).helps  # the training run alone: off

    def comparison(system: str, low: float, high: float) -> dict:
        return {
            "system": system,
            "baseline": "bi-order",
            "language": "all",
            "metric": "mrr_at_10",
            "system_score": 0.705,
            "baseline_score": 0.698,
            "ci_low": low,
            "ci_high": high,
            "num_queries": 3431,
        }

    results = {
        "name": "cie10-bi+cie10-rerank",
        "dataset": {"name": "CodiEsp", "split": "dev"},
        "comparisons": [comparison("other", -0.1, -0.05), comparison("cie10-bi+cie10-rerank", 0.005, 0.011)],
    }
    (tmp_path / RERANK_EVIDENCE_FILE).parent.mkdir()
    (tmp_path / RERANK_EVIDENCE_FILE).write_text(json.dumps(results))
    evidence = _reranker_evidence(str(tmp_path), None)  # the release's measurement wins over the training run
    assert evidence.helps and evidence.gain_ci == (0.005, 0.011)
    assert "on by default" in evidence.describe() and "CodiEsp dev (3,431 queries" in evidence.describe()
    results["comparisons"][1].update(ci_low=-0.001)
    (tmp_path / RERANK_EVIDENCE_FILE).write_text(json.dumps(results))
    assert not _reranker_evidence(str(tmp_path), None).helps  # a gain within the noise: off
    with pytest.raises(Cie10Error, match="compares no reranked system with its bi-order baseline"):
        rerank_comparison({"name": "x", "comparisons": results["comparisons"][:1]}, "results.json")
