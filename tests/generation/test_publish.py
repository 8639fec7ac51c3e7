"""`cie10 generate --publish` builds a real dataset offline and the local Hub serves it."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import pytest

from cie10.catalog import load_catalog
from cie10.cli import main
from cie10.generation.pairs import normalize_text
from cie10.generation.splits import catalog_names
from cie10.hub import LocalHubServer, list_tags
from cie10.settings import get_settings


@pytest.mark.slow
def test_offline_dataset_published_and_loaded_per_language(
    local_hub: LocalHubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a namespace of its own: the release tests publish <org>/cie10-synth in the same session's Hub
    monkeypatch.setenv("CIE10_ORG", "cie10-generation-test")
    out = tmp_path / "cie10-synth"
    argv = ["generate", "--scope", "quickstart", "--dedup", "false"]  # default sources: labels, CodiEsp, Apertium
    argv += ["--output_dir", str(out), "--show_progress_bar", "false", "--publish", "--version", "v0.1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"dataset folder: {out}" in printed
    assert printed.splitlines()[0].split() == ["split", "en", "es", "ca", "it", "pt", "fr", "total"]
    assert {"README.md", "generation_report.json"} <= {p.name for p in out.iterdir()}

    repo_id = get_settings().repo_id("cie10-synth")
    assert list_tags(repo_id, "dataset") == ["v0.1"]
    languages = {"en", "es", "fr", "it", "pt"} | ({"ca"} if shutil.which("apertium") else set())
    assert set(datasets.get_dataset_config_names(repo_id, revision="v0.1")) == {"all", *languages}
    everything = datasets.load_dataset(repo_id, revision="v0.1")
    assert set(everything) == {"train", "validation", "test"}
    assert everything["train"].column_names == [
        "query", "code", "language", "source", "category", "hard_negatives", "kind", "context"
    ]  # fmt: skip
    total = sum(len(split) for split in everything.values())
    assert total > 7000
    per_language = 0
    for language in sorted(languages):
        part = datasets.load_dataset(repo_id, language, revision="v0.1")
        assert set(part["train"]["language"]) == {language}
        per_language += sum(len(split) for split in part.values())
    assert per_language == total
    catalog = load_catalog()
    spanish = datasets.load_dataset(repo_id, "es", revision="v0.1", split="train")
    official = spanish.filter(lambda row: row["source"].startswith("terminology:"))
    for row in official.select(range(0, len(official), 97)):
        assert row["kind"] == "name" and row["hard_negatives"] == catalog.siblings(row["code"])[:10]
        assert not catalog.label(row["code"], "es").inherited
    codiesp = spanish.filter(lambda row: row["source"] == "codiesp-train")
    assert len(codiesp)
    for row in codiesp:  # the sentence(s) around the mention hold its words (a mention may be discontinuous)
        assert all(word in row["context"].casefold() for word in row["query"].casefold().split()), row
    quickstart = {entry.code for entry in catalog.select("quickstart")}
    assert set(everything["train"]["code"]) <= quickstart  # the scope's codes only, never remapped
    train_categories = set(everything["train"]["category"])
    assert not train_categories & set(everything["test"]["category"])
    # held-out splits are queries, none equal to a code name or a training row
    names = catalog_names(catalog)
    train_texts = {normalize_text(text) for text in everything["train"]["query"]}
    for split in ("validation", "test"):
        assert set(everything[split]["kind"]) == {"query"}
        assert not {normalize_text(text) for text in everything[split]["query"]} & (names | train_texts)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| es | `codiesp-train` | query |" in card and "CC BY 4.0" in card
