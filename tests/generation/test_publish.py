"""`cie10 generate --backend terminology --publish` builds a real dataset offline and the local Hub serves it."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from cie10.catalog import load_catalog
from cie10.cli import main
from cie10.hub import LocalHubServer, list_tags
from cie10.settings import get_settings


@pytest.mark.slow
def test_terminology_dataset_published_and_loaded_per_language(
    local_hub: LocalHubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a namespace of its own: the release tests publish <org>/cie10-synth in the same session's Hub
    monkeypatch.setenv("CIE10_ORG", "cie10-generation-test")
    out = tmp_path / "cie10-synth"
    argv = ["generate", "--backend", "terminology", "--scope", "quickstart", "--dedup", "false"]
    argv += ["--output_dir", str(out), "--show_progress_bar", "false", "--publish", "--version", "v0.1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"dataset folder: {out}" in printed
    assert {"README.md", "generation_report.json"} <= {p.name for p in out.iterdir()}

    repo_id = get_settings().repo_id("cie10-synth")
    assert list_tags(repo_id, "dataset") == ["v0.1"]
    assert set(datasets.get_dataset_config_names(repo_id, revision="v0.1")) == {"all", "en", "es", "fr", "it", "pt"}
    everything = datasets.load_dataset(repo_id, revision="v0.1")
    assert set(everything) == {"train", "validation", "test"}
    assert everything["train"].column_names == ["query", "code", "language", "source", "category", "hard_negatives"]
    total = sum(len(split) for split in everything.values())
    assert total > 7000
    per_language = 0
    for language in ("en", "es", "fr", "it", "pt"):
        part = datasets.load_dataset(repo_id, language, revision="v0.1")
        assert set(part["train"]["language"]) == {language}
        assert all(source.startswith("terminology:") for source in part["train"]["source"])
        per_language += sum(len(split) for split in part.values())
    assert per_language == total
    catalog = load_catalog()
    spanish = datasets.load_dataset(repo_id, "es", revision="v0.1", split="train")
    for row in spanish.select(range(0, len(spanish), 97)):
        assert row["hard_negatives"] == catalog.siblings(row["code"])[:10]
        assert not catalog.label(row["code"], "es").inherited
    train_categories = set(everything["train"]["category"])
    assert not train_categories & set(everything["test"]["category"])
