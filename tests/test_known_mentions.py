"""Known mentions read from the CodiEsp train folder: counts, ambiguous texts, splits by category, loose matches."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from cie10.catalog import load_catalog
from cie10.code_index import build_code_index
from cie10.known_mentions import OUTSIDE_DATASET, KnownMentions, known_mentions_of, loose_key
from cie10.search import CodeSearcher
from cie10.training.data import TrainingData

CHEST_PAIN = "dolor torácico opresivo"
TRAIN_LINES = [  # CodiEsp v4 trainX.tsv rows: article, type, code, mention, spans
    ("S1", "DIAGNOSTICO", "i20.9", CHEST_PAIN, "10 33"),
    ("S2", "DIAGNOSTICO", "i20.9", "Dolor torácico opresivo", "5 28"),
    ("S2", "DIAGNOSTICO", "i25.9", CHEST_PAIN, "40 63"),  # an ambiguous text: curation drops it from training pairs
    ("S3", "DIAGNOSTICO", "j96.90", "insuficiencia respiratoria", "0 26"),
    ("S3", "DIAGNOSTICO", "w19.xxx", "caída", "30 35"),  # no such code in ICD-10-CM 2026 (no 7th character)
    ("S3", "PROCEDIMIENTO", "bw03zzz", "radiografía de tórax", "40 60"),  # a procedure: not a diagnosis
]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture()
def codiesp_dir(tmp_path: Path) -> Path:
    (tmp_path / "train").mkdir()
    lines = ["\t".join(fields) for fields in TRAIN_LINES]
    (tmp_path / "train" / "trainX.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


@pytest.fixture()
def training_data() -> TrainingData:
    """A dataset whose CodiEsp rows put category I20 in train, I25 in test (J96 is in no split)."""

    def row(query: str, code: str, source: str = "codiesp-train") -> dict[str, str]:
        return {"query": query, "code": code, "source": source, "language": "es", "category": code[:3]}

    splits = {
        "train": [row(CHEST_PAIN, "I20.9"), row("Chest pain, crushing", "I20.9", "icd10cm-2026")],
        "test": [row("cardiopatía isquémica crónica", "I25.9")],
    }
    return TrainingData(
        datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}),
        "org/cie10-synth",
        "abc123",
    )


def test_loose_key_ignores_accents_articles_plurals_and_word_order() -> None:
    assert loose_key("Lesiones hepáticas de la mama") == loose_key("lesión mama hepática") == "hepatica lesion mama"
    assert loose_key("Tumores del riñón") == loose_key("tumor riñon") != loose_key("tumor sin riñón")
    assert loose_key("de la") == ""


def test_the_codiesp_folder_gives_every_coded_mention_counted_by_category_split(
    codiesp_dir: Path, training_data: TrainingData, catalog
) -> None:
    from_dataset = known_mentions_of(training_data, catalog)
    assert from_dataset.codes(CHEST_PAIN) == [("I20.9", 1)] and "from" not in from_dataset.meta

    known = known_mentions_of(training_data, catalog, codiesp_dir)
    assert known.meta["from"].startswith("CodiEsp train/trainX.tsv (sha256 ")
    assert known.meta["mentions"] == 4  # caída's code is not in the catalogue, the procedure is no diagnosis
    assert known.codes(CHEST_PAIN) == [("I20.9", 2), ("I25.9", 1)]  # counts and the ambiguous code kept
    assert known.counts[CHEST_PAIN] == {"train": {"I20.9": 2}, "test": {"I25.9": 1}}
    assert known.counts["insuficiencia respiratoria"] == {OUTSIDE_DATASET: {"J96.90": 1}}
    assert known.codes("caída") == []
    # holding out the test split holds out its categories' codes, not the texts of other categories
    assert known.without_split("test").codes(CHEST_PAIN) == [("I20.9", 2)]

    missing = known_mentions_of(training_data, catalog, codiesp_dir / "nowhere")
    assert missing.counts == from_dataset.counts


def test_a_loose_match_is_a_known_mention_only_when_no_verbatim_one_exists(catalog) -> None:
    counts = {
        "dolor torácico opresivo": {"train": {"I20.9": 3}},
        "dolores torácicos opresivos": {"train": {"I20.8": 1}},
        "lesión hepática": {"train": {"K76.9": 2}},
        "lesiones hepáticas": {"train": {"K76.89": 1}},
    }
    known = KnownMentions(counts, {"language": "es"})
    assert known.match("Dolor torácico opresivo.") == ("dolor torácico opresivo", [("I20.9", 3)])
    assert known.match("opresivo dolor torácico") == ("dolor torácico opresivo", [("I20.9", 3), ("I20.8", 1)])
    assert known.match("la lesion hepatica") == ("lesión hepática", [("K76.9", 2), ("K76.89", 1)])
    assert known.match("lesión renal") is None and known.match("  ") is None


def test_a_loosely_matched_query_ranks_the_known_codes_first_and_names_the_mention(catalog, base_model_path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base_model_path), device="cpu")
    codes = [entry.code for entry in catalog.select("quickstart") if entry.code[:3] in ("I20", "I25")]
    index = build_code_index(model, catalog, "quickstart", names="all", codes=codes)
    index.known = KnownMentions({"dolor precordial de esfuerzo": {"train": {"I20.8": 2}}}, {"language": "es"})
    query = "Dolores precordiales, de esfuerzo"
    plain = CodeSearcher(model, index, catalog=catalog, known_mentions=False).search(query, top_k=5)
    hits = CodeSearcher(model, index, catalog=catalog).search(query, top_k=5).hits
    assert plain.hits[0].code != "I20.8" and not any(hit.exact for hit in plain.hits)
    assert (hits[0].code, hits[0].exact, hits[0].matched_name) == ("I20.8", True, "dolor precordial de esfuerzo")
    assert not any(hit.exact for hit in hits[1:])
