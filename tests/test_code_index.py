"""The code index: every name of a code as a row, best row per code, float16 on disk, old indexes still load; a
loaded index reads its float16 rows from the files and holds its row descriptions compactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cie10.catalog import load_catalog
from cie10.code_index import CodeIndex, IndexRow, IndexSettingError, build_code_index, code_rows, encode_queries
from cie10.index_storage import IndexRows, RowFile
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


MENTIONS = [
    "angina de pecho inestable",
    "infarto agudo de miocardio",
    "Chronische ischämische Herzkrankheit",
    "cardiopathie ischémique",
    "dolor torácico",
]


def assert_same_search(got: CodeIndex, expected: CodeIndex, queries: np.ndarray, k: int = 10) -> None:
    """The same codes, scores and matched rows (with their descriptions), query by query and as one batch."""
    for batch in [queries, *queries[:, None]]:
        found, wanted = got.search(batch, k), expected.search(batch, k)
        for got_part, expected_part in zip(found, wanted, strict=True):
            np.testing.assert_array_equal(got_part, expected_part)
        assert [got.row(int(r)) for r in found[2].reshape(-1)] == [expected.row(int(r)) for r in wanted[2].reshape(-1)]


def test_saved_index_loads_back_identically(all_names, model, tmp_path: Path) -> None:
    folder = all_names.save(tmp_path)
    assert np.load(folder / "embeddings.npy").dtype == np.float16
    assert json.loads((folder / "meta.json").read_text())["names"] == "all"
    assert (folder / "rows.npz").is_file() and not (folder / "rows.json").exists()
    loaded = CodeIndex.load(tmp_path)
    assert loaded.codes == all_names.codes and loaded.rows == all_names.rows
    assert loaded.vectors.dtype == np.float16 and np.array_equal(loaded.vectors, all_names.vectors)
    # the float16 rows stay in their files: mapped read-only, the search reads them with preadv
    assert isinstance(loaded.embeddings, np.memmap) and isinstance(loaded.name_embeddings, np.memmap)
    assert all(isinstance(file, RowFile) for file in loaded._files)
    assert all(file is None for file in all_names._files)
    assert_same_search(loaded, all_names, encode_queries(model, MENTIONS))
    assert loaded.titles_only().rows == all_names.titles_only().rows
    codes = ["I25.1", "I24.1", "I21.4"]
    subset, expected = loaded.subset(codes), all_names.subset(codes)
    assert subset.codes == codes and subset.rows == expected.rows and np.array_equal(subset.vectors, expected.vectors)
    assert {row.code for row in subset.rows} == set(codes)


def test_an_index_saved_with_rows_json_still_loads(all_names, model, tmp_path: Path) -> None:
    """The layout before `rows.npz`: `rows.json` lists every row as [code, text, language, source]."""
    folder = tmp_path / "code_index"
    folder.mkdir()
    np.save(folder / "embeddings.npy", all_names.embeddings)
    np.save(folder / "names.npy", all_names.name_embeddings)
    described = [[row.code, row.text, row.language, row.source] for row in all_names.rows]
    (folder / "rows.json").write_text(json.dumps(described, ensure_ascii=False), encoding="utf-8")
    (folder / "codes.json").write_text(json.dumps(all_names.codes))
    (folder / "meta.json").write_text(json.dumps(all_names.meta))
    old = CodeIndex.load(tmp_path)
    assert old.rows == all_names.rows and old.num_rows == all_names.num_rows
    queries = encode_queries(model, MENTIONS)
    assert_same_search(old, all_names, queries)
    resaved = CodeIndex.load(old.save(tmp_path / "resaved"))  # saving again writes the new layout
    assert (tmp_path / "resaved" / "code_index" / "rows.npz").is_file()
    assert_same_search(resaved, all_names, queries)


def test_index_rows_are_compact_and_behave_as_a_list(all_names) -> None:
    rows = all_names.rows
    listed = list(rows)
    assert isinstance(rows, IndexRows) and len(rows) == len(listed) == all_names.num_rows
    assert rows == listed and listed == list(IndexRows.from_rows(listed, all_names.codes))
    assert rows[-1] == listed[-1] and rows[len(all_names)] == listed[len(all_names)]
    assert list(rows[3:9]) == listed[3:9] and list(rows[::-1]) == listed[::-1]
    with pytest.raises(IndexError):
        rows[len(rows)]
    assert rows.counts("language") == {lang: sum(r.language == lang for r in listed) for lang in rows.languages}
    assert sum(rows.counts("source").values()) == len(rows)
    assert rows.nbytes < sum(len(row.text.encode()) + 16 for row in listed)
    # taken rows point into a new list of codes
    taken = rows.take([len(all_names) + 2, 1], ["X", all_names.codes[1], listed[len(all_names) + 2].code])
    assert list(taken) == [listed[len(all_names) + 2], listed[1]]
    with pytest.raises(IndexSettingError, match="outside the codes given"):
        rows.take([1], ["X"])
    with pytest.raises(IndexSettingError, match="does not hold"):
        IndexRows.from_rows([IndexRow("Z99.9", "text", "en", "x")], all_names.codes)
    with pytest.raises(IndexSettingError, match="inconsistent"):
        IndexRows(rows.codes, rows.code[:-1], rows.language, rows.languages, rows.source, rows.sources,
                  rows.offsets, rows.text)  # fmt: skip
    with pytest.raises(IndexSettingError, match="titles"):
        CodeIndex(all_names.codes[::-1], all_names.embeddings[::-1], {}, list(rows), all_names.name_embeddings)


def test_row_files_read_what_the_map_holds(tmp_path: Path) -> None:
    matrix = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float16)
    np.save(tmp_path / "m.npy", matrix)
    mapped = np.load(tmp_path / "m.npy", mmap_mode="r")
    file = RowFile.of(mapped)
    assert file is not None and len(file) == 50 and file.shape == (50, 8)
    rows = np.array([3, 4, 5, 0, 49, 10, 11, 7, 7])
    np.testing.assert_array_equal(file.take(rows), matrix[rows])
    np.testing.assert_array_equal(file[10:20], matrix[10:20])
    assert file.take(np.zeros(0, dtype=np.int64)).shape == (0, 8) and file[60:70].shape == (0, 8)
    with pytest.raises(IndexError):
        file.take(np.array([50]))
    # only a whole read-only map of a file: not an array in memory, a view of a map, a copy-on-write map
    assert RowFile.of(matrix) is None and RowFile.of(mapped[5:]) is None
    assert RowFile.of(np.load(tmp_path / "m.npy", mmap_mode="c")) is None


def test_the_scan_of_the_parts_is_the_scan_of_the_stacked_rows(all_names, tmp_path: Path, monkeypatch) -> None:
    """Block by block, from the files, bit for bit what one float32 matrix of every row gives."""
    from cie10.inference import scan

    monkeypatch.setattr(scan, "SCAN_BLOCK", 7)  # many blocks, a last one short
    loaded = CodeIndex.load(all_names.save(tmp_path))
    stacked = all_names.vectors
    parts = scan.IntegerScan(loaded._parts())
    whole = scan.IntegerScan(stacked)
    assert parts.mean.tobytes() == np.asarray(stacked, dtype=np.float32).mean(axis=0).tobytes()
    for name in ("mean", "rows", "scales"):
        assert getattr(parts, name).tobytes() == getattr(whole, name).tobytes()
    assert parts.rows.shape == (stacked.shape[1], len(stacked)) and parts.rows.flags.c_contiguous


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
