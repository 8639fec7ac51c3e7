"""`cie10 evaluate` on a model, a reranker and a dataset published to the local Hub, with BM25 and the base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cie10 import hub
from cie10.eval_harness.results import load_run
from cie10.settings import get_settings
from tests.eval_harness.conftest import TINY_ROWS


def _publish_dataset(folder: Path, repo_id: str) -> str:
    """Per-language configs and no default one, like `<org>/cie10-synth`."""
    import datasets

    lines = ["---", "configs:"]
    for language in ("en", "es"):
        rows = [
            {**row, "source": "hand", "hard_negatives": ["J98.4"]} for row in TINY_ROWS if row["language"] == language
        ]
        (folder / language).mkdir(parents=True)
        datasets.Dataset.from_list(rows).to_parquet(str(folder / language / "test.parquet"))
        datasets.Dataset.from_list(rows[:1]).to_parquet(str(folder / language / "train.parquet"))
        lines += [f"- config_name: {language}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {language}/{split}.parquet" for split in ("train", "test")]
    (folder / "README.md").write_text("\n".join([*lines, "---", "# tiny synthetic set", ""]))
    return hub.publish_folder(folder, repo_id, "dataset", version="v1.0")


def _tiny_reranker(bi_encoder: Path, folder: Path) -> Path:
    from sentence_transformers import CrossEncoder

    CrossEncoder(str(bi_encoder.parent / f"{bi_encoder.name}-hf"), num_labels=1).save(str(folder))
    return folder


@pytest.mark.slow
def test_evaluate_published_model_and_dataset(
    local_hub, tiny_bi_encoder: Path, base_model_path: Path, tmp_path: Path, capsys
) -> None:
    from cie10.cli import main

    settings = get_settings()
    model_id, reranker_id, dataset_id = (settings.repo_id(n) for n in ("tiny-bi", "tiny-rerank", "tiny-synth"))
    model_sha = hub.publish_folder(tiny_bi_encoder, model_id, "model", version="v1.0")
    reranker_sha = hub.publish_folder(_tiny_reranker(tiny_bi_encoder, tmp_path / "rerank"), reranker_id, "model",
                                      version="v1.0")  # fmt: skip
    dataset_sha = _publish_dataset(tmp_path / "dataset", dataset_id)

    out = tmp_path / "results"
    argv = ["evaluate", "--model", model_id, "--reranker", reranker_id, "--rerank-top", "15",
            "--dataset", dataset_id, "--split", "test", "--revision", "v1.0", "--chapter", "10",
            "--out", str(out), "--resamples", "200"]  # fmt: skip
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    # the per-language table, BM25 and the base model beside the model
    assert "| language | n | tiny-bi+tiny-rerank | bm25 | base |" in stdout
    for language in ("all", "en", "es"):
        assert f"| {language} | " in stdout
    assert "## Learning gain (base → model" in stdout

    run_dir = out / "cie10-test__tiny-bi__cie10-test__tiny-synth__test"
    run = load_run(run_dir)
    data = json.loads((run_dir / "results.json").read_text())
    assert run.to_dict() == data  # the JSON round-trips
    assert data["model"]["id"] == model_id and data["model"]["resolved_revision"] == model_sha
    assert data["model"]["reranker"]["id"] == reranker_id
    assert data["model"]["reranker"]["resolved_revision"] == reranker_sha
    assert data["model"]["code_index"]["origin"] == "stored"  # its own index, cut to the searched codes
    assert data["dataset"] == {
        "id": dataset_id,
        "split": "test",
        "config": None,
        "revision": dataset_sha,
        "requested_revision": "v1.0",
        "languages": ["en", "es"],
        "num_queries": len(TINY_ROWS),
    }
    # scope from the model's index (categories), chapter 10 only: 64 codes for every system
    assert data["catalog"]["scope"] == "categories" and data["catalog"]["num_codes_searched"] == 64
    assert [b["name"] for b in data["baselines"]] == ["bm25", "base"]
    base = data["baselines"][1]["model"]
    assert base["id"] == "default" and base["code_index"]["origin"] == "built"
    assert base["code_index"]["num_codes"] == 64
    assert data["versions"]["sentence-transformers"] and data["date"]
    assert {e["hf_subset"] for e in data["scores"]["test"]} == {"all", "en", "es"}
    assert data["gold_coverage"]["outside_searched_codes"]["examples"] == ["J96.00"]
    gains = {(g["language"], g["metric"]) for g in data["learning_gain"]}
    assert ("es", "recall_at_1") in gains and ("all", "mrr_at_10") in gains
    # the base model reads Spanish: it finds some of these respiratory codes
    base_scores = next(e for e in data["baselines"][1]["scores"]["test"] if e["hf_subset"] == "all")
    assert base_scores["recall_at_10"] > 0.5
    assert (run_dir / "results.md").read_text().startswith("# CIE10Retrieval: tiny-bi+tiny-rerank")
    assert sorted(p.name for p in (run_dir / "predictions").iterdir()) == [
        "base.jsonl", "bm25.jsonl", "tiny-bi_tiny-rerank.jsonl",
    ]  # fmt: skip


@pytest.mark.slow
def test_unknown_revision_is_one_clear_error(local_hub, tiny_dataset: Path, caplog) -> None:
    import logging

    from cie10.cli import main

    repo_id = get_settings().repo_id("tiny-bi-versions")
    folder = tiny_dataset.parent / "empty-model"
    folder.mkdir()
    (folder / "README.md").write_text("placeholder\n")
    hub.publish_folder(folder, repo_id, "model", version="v1.0")
    with caplog.at_level(logging.ERROR, logger="cie10"):
        assert main(["evaluate", "--model", repo_id, "--revision", "v9.9", "--dataset", str(tiny_dataset)]) == 2
    (message,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "version v9.9 not found" in message and "published: v1.0" in message
