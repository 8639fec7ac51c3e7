from __future__ import annotations

import pytest

from cie10.catalog import load_catalog
from cie10.generation.codiesp_source import codiesp_pairs, codiesp_root
from cie10.generation.curation import CurationReport
from cie10.generation.pairs import Pair, normalize_text
from cie10.generation.splits import catalog_names, split_pairs
from cie10.generation.terminology import terminology_pairs

ROOT = codiesp_root()


@pytest.mark.skipif(not (ROOT / "train" / "trainX.tsv").is_file(), reason=f"no shared CodiEsp copy at {ROOT}")
def test_held_out_splits_are_queries_that_equal_no_training_row_and_no_code_name() -> None:
    catalog = load_catalog()
    entries = catalog.select("full")
    report = CurationReport()
    queries = codiesp_pairs(catalog, entries, report, context=False)
    labelled = sorted({pair.code for pair in queries})[:300]
    names_rows = terminology_pairs(catalog, [catalog[code] for code in labelled], ["es", "en"])
    names = catalog_names(catalog)
    assert normalize_text("Hipertensión esencial (primaria)") in names  # a Spanish label of I10
    splits = split_pairs(queries + names_rows, catalog, report=report, names=names)
    train_texts = {normalize_text(pair.query) for pair in splits["train"]}
    for split in ("validation", "test"):
        assert splits[split] and {pair.kind for pair in splits[split]} == {"query"}
        for pair in splits[split]:
            key = normalize_text(pair.query)
            assert key not in names and key not in train_texts, (split, pair)
    assert {pair.kind for pair in splits["train"]} == {"name", "query"}  # names still train
    # real CodiEsp mentions that are a code's name ("neumonía", "asma", ...) are dropped from test and counted
    assert report.dropped["split_leak"]["test query equal to a code name"] > 0
    assert report.total("held_out_name") > 0
    test_categories = {pair.category for pair in splits["test"]}
    assert not test_categories & {pair.category for pair in splits["train"]}


def test_without_names_the_old_behaviour_holds() -> None:
    catalog = load_catalog()
    rows = [Pair("Asma", "J45", "es", "terminology:gnuhealth-who"), Pair("asma", "J45", "pt", "gemini:x")]
    splits = split_pairs(rows, catalog, validation_fraction=0.0, test_fraction=0.0)
    assert [pair.query for pair in splits["train"]] == ["Asma", "asma"]
    assert rows[0].kind == "name" and rows[1].kind == "query"
