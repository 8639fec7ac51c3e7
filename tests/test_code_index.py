"""The code index: every name of a code as a row, best row per code, float16 on disk, old indexes still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cie10.catalog import load_catalog
from cie10.code_index import CodeIndex, IndexRow, IndexSettingError, build_code_index, code_rows, encode_queries
from cie10.search import CodeSearcher

ISCHAEMIC = ("I20", "I21", "I22", "I23", "I24", "I25")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def model(base_model_path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(base_model_path), device="cpu")


@pytest.fixture(scope="module")
def all_names(model, catalog) -> CodeIndex:
    """Every name of the ischaemic heart disease codes of the quickstart scope (about 40 codes), base model."""
    codes = [entry.code for entry in catalog.select("quickstart") if entry.code[:3] in ISCHAEMIC]
    return build_code_index(model, catalog, "quickstart", names="all", codes=codes)


def test_code_rows_title_first_deduplicated(catalog) -> None:
    rows = code_rows(catalog["I21"], "all", extra=[("Infart agut de miocardi", "ca", "apertium:spa-cat")])
    assert rows[0] == IndexRow("I21", "Acute myocardial infarction", "en", "icd10cm-2026")
    assert {row.language for row in rows} >= {"es", "fr", "pt", "de", "ca"}
    duplicate = code_rows(catalog["I21"], "all", extra=[("infarto AGUDO del miocardio.", "es", "other")])
    assert [row.text for row in duplicate].count("Infarto agudo del miocardio") == 1
    assert all(row.source != "other" for row in duplicate)  # the same normalised text is kept once
    assert code_rows(catalog["J45.909"], "title") == [code_rows(catalog["J45.909"], "all")[0]]
    with pytest.raises(IndexSettingError, match="choose one of title, all, all\\+examples"):
        code_rows(catalog["I21"], "everything")


def test_a_foreign_name_finds_the_code_the_title_index_misses(all_names, model, catalog) -> None:
    assert all_names.meta["names"] == "all" and all_names.num_rows > 4 * len(all_names)
    query = "Postmyokardinfarkt-Syndrom"  # I24.1's German WHO label; its English title is "Dressler's syndrome"
    titles = CodeSearcher(model, all_names.titles_only(), catalog=catalog).search(query, top_k=5)
    assert "I24.1" not in [hit.code for hit in titles.hits]
    hit = CodeSearcher(model, all_names, catalog=catalog).search(query, top_k=5).hits[0]
    assert (hit.code, hit.matched_name, hit.matched_language) == ("I24.1", query, "de")


def test_top_k_returns_distinct_codes(all_names, model) -> None:
    queries = encode_queries(model, ["infarto agudo de miocardio", "Chronische ischämische Herzkrankheit"])
    scores, positions, rows = all_names.search(queries, 10)
    for query_scores, query_positions, query_rows in zip(scores, positions, rows, strict=True):
        assert len(set(query_positions.tolist())) == 10
        assert np.all(np.diff(query_scores) <= 0)
        assert [all_names.rows[row].code for row in query_rows] == [all_names.codes[p] for p in query_positions]
    exact = queries @ all_names.vectors.astype(np.float32).T  # the best row of each code, by brute force
    best = {
        code: max(exact[0, r] for r, row in enumerate(all_names.rows) if row.code == code) for code in all_names.codes
    }
    assert [all_names.codes[p] for p in positions[0]] == sorted(best, key=lambda code: -best[code])[:10]


def test_saved_index_loads_back_identically(all_names, model, tmp_path: Path) -> None:
    folder = all_names.save(tmp_path)
    assert np.load(folder / "embeddings.npy").dtype == np.float16
    assert json.loads((folder / "meta.json").read_text())["names"] == "all"
    loaded = CodeIndex.load(tmp_path)
    assert loaded.codes == all_names.codes and loaded.rows == all_names.rows
    assert loaded.vectors.dtype == np.float16 and np.array_equal(loaded.vectors, all_names.vectors)
    queries = encode_queries(model, ["angina de pecho inestable"])
    for got, expected in zip(loaded.search(queries, 5), all_names.search(queries, 5), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_an_old_title_only_index_still_loads(all_names, model, catalog, tmp_path: Path) -> None:
    folder = tmp_path / "code_index"
    folder.mkdir()
    titles = all_names.embeddings.astype(np.float32)  # the layout before names: float32, one row per code
    np.save(folder / "embeddings.npy", titles)
    (folder / "codes.json").write_text(json.dumps(all_names.codes))
    (folder / "meta.json").write_text(json.dumps({"scope": "quickstart", "num_codes": len(all_names.codes)}))
    old = CodeIndex.load(tmp_path)
    assert old.rows is None and old.num_rows == len(old.codes) and old.vectors.dtype == np.float16
    hit = CodeSearcher(model, old, catalog=catalog).search("Dressler's syndrome", top_k=3).hits[0]
    assert (hit.code, hit.matched_name, hit.matched_language) == ("I24.1", "Dressler's syndrome", "en")
    subset = old.subset(["I25.1", "I24.1"])
    assert subset.codes == ["I25.1", "I24.1"] and subset.num_rows == 2


def test_a_known_mention_ranks_its_codes_first(all_names, model, catalog, tmp_path: Path) -> None:
    from cie10.known_mentions import KnownMentions

    def coded(text: str, code: str) -> dict[str, str]:
        return {"query": text, "code": code, "source": "codiesp-train", "language": "es"}

    chest_pain = "dolor torácico opresivo irradiado"
    splits = {
        "train": [coded(chest_pain, "I20.9"), coded(chest_pain.upper(), "I25.9"), coded("lo de siempre", "I25.2")],
        "test": [coded(chest_pain, "I20.9"), coded("cardiopatía de la abuela", "I25.9")],
        "validation": [{**coded("angor", "I20.9"), "source": "apertium:spa-cat<-codiesp-train"}],  # not coded by hand
    }
    known = KnownMentions.from_splits(splits, catalog, meta={"dataset": "org/cie10-synth", "language": "es"})
    assert len(known) == 3 and known.codes("Dolor torácico, opresivo  irradiado.") == [("I20.9", 2), ("I25.9", 1)]
    assert known.codes("angor") == [] and known.meta["mentions"] == 5
    index = CodeIndex(all_names.codes, all_names.embeddings, all_names.meta, all_names.rows, all_names.name_embeddings)
    index.known = known
    searcher = CodeSearcher(model, index, catalog=catalog)
    plain = CodeSearcher(model, index, catalog=catalog, known_mentions=False)

    result = searcher.search("Dolor torácico, opresivo  irradiado.", top_k=5)
    assert [(hit.code, hit.exact) for hit in result.hits[:2]] == [("I20.9", True), ("I25.9", True)]
    assert not any(hit.exact for hit in result.hits[2:])  # most often given first; the models rank the rest
    assert (
        result.hits[0].matched_name == chest_pain  # the known mention matched, normalised
        and result.hits[0].matched_language == "es"
    )
    before = plain.search("lo de siempre", top_k=10)
    after = searcher.search("lo de siempre", top_k=10)
    assert before.hits[0].code != "I25.2" and not any(hit.exact for hit in before.hits)
    assert after.hits[0].code == "I25.2" and after.hits[0].exact
    assert [hit.code for hit in after.hits[1:]] == [hit.code for hit in before.hits if hit.code != "I25.2"][:9]
    billable = searcher.search(chest_pain, top_k=5, billable_only=True)  # a filter applies to known codes too
    assert [hit.code for hit in billable.hits if hit.exact] == [c for c in ("I20.9", "I25.9") if catalog[c].billable]

    # a split evaluated as held out leaves the table; the table travels with the saved index
    held_out = known.without_split("test")
    assert (
        held_out.codes(chest_pain) == [("I20.9", 1), ("I25.9", 1)] and held_out.codes("cardiopatía de la abuela") == []
    )
    assert known.holds_dataset("org/cie10-synth") and known.holds_dataset("/data/cie10-synth")
    assert not known.holds_dataset("/work/shared/data/codiesp/dev")
    loaded = CodeIndex.load(index.save(tmp_path))
    assert loaded.known is not None and loaded.known.counts == known.counts
    assert CodeIndex.load(all_names.save(tmp_path / "plain")).known is None
