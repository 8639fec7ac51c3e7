"""The lookup baseline: a query's code is the most frequent code of the identical (normalised) train mentions."""

from __future__ import annotations

from pathlib import Path

from cie10.catalog import load_catalog
from cie10.eval_harness.lookup import LookupSystem
from cie10.eval_harness.systems import select_codes

TRAIN_X = [
    ("S1", "DIAGNOSTICO", "r07.9", "Dolor torácico", "10 24"),
    ("S1", "DIAGNOSTICO", "i20.9", "dolor  torácico.", "40 55"),
    ("S2", "DIAGNOSTICO", "r07.9", "DOLOR TORÁCICO", "3 17"),
    ("S2", "PROCEDIMIENTO", "bw03zzz", "Rx tórax", "20 28"),
    ("S3", "DIAGNOSTICO", "x99.99", "código inexistente", "1 19"),
]


def _train_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "trainX.tsv").write_text("\n".join("\t".join(row) for row in TRAIN_X) + "\n", encoding="utf-8")
    return folder


def test_lookup_returns_the_train_code_or_nothing(tmp_path: Path) -> None:
    catalog = load_catalog()
    lookup = LookupSystem.from_codiesp(_train_folder(tmp_path), catalog, select_codes(catalog, "full"))
    seen, unseen = lookup.rank(["dolor torácico", "fiebre de origen desconocido"], 10)
    assert seen[0] == ("R07.9", 2 / 3) and [code for code, _ in seen] == ["R07.9", "I20.9"]
    assert unseen == []
    described = lookup.describe()
    assert described["kind"] == "lookup" and described["num_mentions"] == 3 and described["distinct_texts"] == 1
    assert described["dropped"] == {"not in catalogue": 1}


def test_lookup_keeps_only_the_searched_codes(tmp_path: Path) -> None:
    catalog = load_catalog()
    lookup = LookupSystem.from_codiesp(_train_folder(tmp_path), catalog, ["I20.9"])
    assert lookup.rank(["Dolor torácico"], 10) == [[("I20.9", 1.0)]]
