from __future__ import annotations

from pathlib import Path

import pytest

from cie10.catalog import load_catalog, normalize_code
from cie10.generation.codiesp_source import (
    CodiespSourceError,
    codiesp_pairs,
    codiesp_root,
    read_train_mentions,
    sentence_around,
)
from cie10.generation.curation import CurationReport
from cie10.generation.pairs import CODIESP_SOURCE

ROOT = codiesp_root()
pytestmark = pytest.mark.skipif(
    not (ROOT / "train" / "trainX.tsv").is_file(), reason=f"the shared CodiEsp copy is not at {ROOT}"
)


def test_train_mentions_become_spanish_queries_and_missing_codes_are_counted() -> None:
    catalog = load_catalog()
    mentions = read_train_mentions(ROOT)
    assert len(mentions) == 7209  # the DIAGNOSTICO rows of CodiEsp v4 train (its README)
    missing = [mention for mention in mentions if mention.code not in catalog]
    # CIE-10-ES 2018 placeholder codes such as w19.xxx (unspecified fall) have no ICD-10-CM 2026 code
    assert "w19.xxx" in {mention.code for mention in missing}
    report = CurationReport()
    pairs = codiesp_pairs(catalog, catalog.select("full"), report)
    assert len(pairs) == len(mentions) - len(missing)
    assert report.dropped["source"]["CodiEsp code not in ICD-10-CM 2026"] == len(missing)
    assert report.input_rows == len(missing)
    assert {pair.source for pair in pairs} == {CODIESP_SOURCE}
    assert {pair.language for pair in pairs} == {"es"} and {pair.kind for pair in pairs} == {"query"}
    first = next(pair for pair in pairs if pair.query == "teste derecho aumentado de tamaño")
    assert first.code == "N44.8" and first.query in (first.context or "")
    assert "PROCEDIMIENTO" not in {pair.query for pair in pairs}


def test_a_scope_keeps_only_its_codes_never_remapped() -> None:
    catalog = load_catalog()
    entries = catalog.select("quickstart")
    scope = {entry.code for entry in entries}
    report = CurationReport()
    pairs = codiesp_pairs(catalog, entries, report, context=False)
    assert pairs and all(pair.code in scope for pair in pairs)
    raw = {(m.text, normalize_code(m.code)) for m in read_train_mentions(ROOT)}
    assert all((pair.query, pair.code) in raw for pair in pairs)  # the file's own code, not an ancestor
    assert report.total("scope") > 0 and all(pair.context is None for pair in pairs)


def test_sentence_around_a_span() -> None:
    text = "Primera frase. Dolor torácico opresivo desde ayer.\nSin edemas."
    start = text.index("Dolor")
    assert sentence_around(text, start, start + 5) == "Dolor torácico opresivo desde ayer."
    assert sentence_around(text, text.index("edemas"), len(text) - 1) == "Sin edemas."


def _write(folder: Path, content: bytes) -> Path:
    (folder / "train").mkdir(parents=True, exist_ok=True)
    (folder / "train" / "trainX.tsv").write_bytes(content)
    return folder


def test_bad_input_is_one_clear_error_naming_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(CodiespSourceError, match="trainX.tsv does not exist"):
        read_train_mentions(tmp_path / "nowhere")
    good = "S1\tDIAGNOSTICO\tr60.9\tedemas\t1250 1256\n"
    folder = _write(tmp_path / "short", (good + "S1\tDIAGNOSTICO\tr52\tdolores\n").encode())
    with pytest.raises(CodiespSourceError, match=r"trainX.tsv, line 2: expected 5 tab-separated fields"):
        read_train_mentions(folder)
    latin1 = "S1\tDIAGNOSTICO\tr52\tdolor t\xf3rax\t1 2\n".encode("latin-1")
    folder = _write(tmp_path / "latin1", (good + good).encode() + latin1)
    with pytest.raises(CodiespSourceError, match=r"trainX.tsv, line 3: not UTF-8"):
        read_train_mentions(folder)
    folder = _write(tmp_path / "spans", (good + "S1\tDIAGNOSTICO\tr52\tdolores\tuno dos\n").encode())
    with pytest.raises(CodiespSourceError, match="line 2"):
        read_train_mentions(folder)
