"""The MTEB retrieval layout: corpus, queries and qrels per language, loadable with `datasets`."""

from __future__ import annotations

import json
from pathlib import Path

from cie10.eval_harness.data import from_records, load_eval_set
from cie10.eval_harness.mteb_export import export_mteb
from cie10.eval_harness.systems import select_codes
from tests.eval_harness.conftest import TINY_ROWS


def test_export_layout(catalog, tmp_path: Path) -> None:
    rows = [*TINY_ROWS, {"query": "tos y fiebre", "code": ["R05.9", "R50.9"], "language": "es"}]
    eval_set = from_records(rows, {"id": "cie10-test/tiny", "revision": "abc123", "split": "test"})
    codes = select_codes(catalog, "categories", chapters=["10"])
    out = export_mteb(eval_set, catalog, codes, tmp_path / "mteb", scope="categories")

    for language, count in (("en", 4), ("es", 5)):
        folder = out / language
        corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
        assert [doc["_id"] for doc in corpus] == codes
        assert corpus[0] == {"_id": codes[0], "title": "", "text": catalog[codes[0]].title}
        queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
        assert len(queries) == count and set(queries[0]) == {"_id", "text"}
        qrels = (folder / "qrels" / "test.tsv").read_text().splitlines()
        assert qrels[0] == "query-id\tcorpus-id\tscore"
    es_qrels = (out / "es" / "qrels" / "test.tsv").read_text().splitlines()[1:]
    assert "8\tR05.9\t1" in es_qrels and "8\tR50.9\t1" in es_qrels  # several gold codes: several qrels

    metadata = json.loads((out / "task_metadata.json").read_text())
    assert metadata["eval_langs"] == {"en": ["eng-Latn"], "es": ["spa-Latn"]}
    assert metadata["eval_splits"] == ["test"] and metadata["main_score"] == "mrr_at_10"
    assert metadata["dataset"]["revision"] == "abc123"
    assert metadata["languages"]["es"]["gold_outside_corpus"] == 3  # J96.00, R05.9, R50.9 are not categories

    # the card's configs make the folder loadable with datasets
    import datasets

    assert datasets.get_dataset_config_names(str(out)) == [
        "en-corpus", "en-queries", "en-qrels", "es-corpus", "es-queries", "es-qrels",
    ]  # fmt: skip
    qrels = datasets.load_dataset(str(out), "es-qrels", split="test")
    assert set(qrels.column_names) == {"query-id", "corpus-id", "score"} and len(qrels) == 6
    assert len(datasets.load_dataset(str(out), "en-corpus", split="corpus")) == len(codes)


def test_cli_export(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    from cie10.cli import main

    out = tmp_path / "exported"
    args = ["evaluate", "export-mteb", "--dataset", str(tiny_dataset), "--languages", "es", "--out", str(out)]
    assert main([*args, "--scope", "categories"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "es", "task_metadata.json"]
    assert len(load_eval_set(str(tiny_dataset), languages=["es"])) == 4
