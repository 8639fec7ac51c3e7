"""Bad training inputs end with one clear line before anything is written; a fresh run never destroys an earlier one."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cie10.cli import main
from cie10.training.config import BiEncoderConfig
from cie10.training.runs import prepare_run_dir, promote_run

EARLIER_RUN = {
    "config.yaml": b"run_name: earlier\n",
    "checkpoints/checkpoint-50/model.safetensors": bytes(range(256)) * 8,
    "final/model.safetensors": bytes(range(255, -1, -1)) * 8,
    "final/README.md": b"# the earlier model\n",
    "run_summary.json": b'{"kind": "bi-encoder"}\n',
}


def _earlier_run(folder: Path) -> Path:
    for name, data in EARLIER_RUN.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fails(caplog: pytest.LogCaptureFixture, argv: list[str], expected: str) -> str:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="cie10"):
        assert main(argv) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and expected in errors[0], errors
    return errors[0]


@pytest.mark.parametrize("kind", ["bi-encoder", "reranker"])
def test_a_typo_in_the_base_model_leaves_the_earlier_run_byte_identical(
    kind: str, caplog, local_hub, terminology_dataset: Path, tmp_path: Path
) -> None:
    run = _earlier_run(tmp_path / "run")
    bi_encoder = _earlier_run(tmp_path / "bi")  # a folder, as `--bi_encoder` takes
    argv = ["train", kind, "--output_dir", str(tmp_path), "--run_name", "run", "--dataset", str(terminology_dataset)]
    if kind == "reranker":
        argv += ["--bi_encoder", str(bi_encoder)]
    line = _fails(caplog, [*argv, "--base_model", "cie10-test/no-such-base"], "base model cie10-test/no-such-base")
    assert "not found" in line
    _fails(caplog, [*argv, "--base_model", str(tmp_path / "no-such-folder")], "no-such-folder: no such folder")
    _fails(caplog, [*argv, "--base_model", "./models/typo/final"], "base model ./models/typo/final: no such folder")
    assert _files(run) == EARLIER_RUN
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bi", "run"]  # no staging folder either


def test_missing_dataset_folder_and_bi_encoder_are_refused_before_writing(
    caplog, local_hub, terminology_dataset: Path, tmp_path: Path
) -> None:
    run = _earlier_run(tmp_path / "run")
    base = ["--output_dir", str(tmp_path), "--run_name", "run"]
    missing = tmp_path / "data" / "missing"
    _fails(caplog, ["train", "bi-encoder", *base, "--dataset", str(missing)], f"dataset {missing}: no such folder")
    _fails(caplog, ["train", "reranker", *base, "--dataset", str(missing)], f"dataset {missing}: no such folder")
    reranker = ["train", "reranker", *base, "--dataset", str(terminology_dataset)]
    _fails(caplog, [*reranker, "--bi_encoder", str(tmp_path / "no-bi")], "train one with `cie10 train bi-encoder`")
    line = _fails(caplog, [*reranker, "--bi_encoder", "cie10-test/no-such-bi"], "bi-encoder cie10-test/no-such-bi")
    assert "not found" in line
    # the default bi-encoder is <output_dir>/cie10-bi/final, which this output_dir lacks
    _fails(caplog, reranker, f"bi-encoder {tmp_path / 'cie10-bi' / 'final'}: no such folder")
    assert _files(run) == EARLIER_RUN


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--batch_size", "0", "--batch_size must be at least 1 (got 0)"),
        ("--max_steps", "0", "--max_steps must be at least 1 (or -1: train for num_train_epochs) (got 0)"),
        ("--learning_rate", "0", "--learning_rate must be more than 0 (got 0.0)"),
        ("--warmup_ratio", "1.5", "--warmup_ratio must be at least 0 and less than 1 (got 1.5)"),
        ("--max_eval_queries", "0", "--max_eval_queries must be at least 1 (got 0)"),
        ("--num_hard_negatives", "-1", "--num_hard_negatives must be at least 0 (got -1)"),
    ],
)
def test_numeric_settings_out_of_range_are_refused(
    caplog, tmp_path: Path, flag: str, value: str, expected: str
) -> None:
    _fails(caplog, ["train", "bi-encoder", "--output_dir", str(tmp_path), flag, value], expected)
    assert list(tmp_path.iterdir()) == []


def test_reranker_mini_batch_size_takes_minus_one_only(caplog, tmp_path: Path) -> None:
    argv = ["train", "reranker", "--output_dir", str(tmp_path), "--mini_batch_size"]
    _fails(caplog, [*argv, "-3"], "--mini_batch_size must be at least 1 (or -1: every pair of a step at once) (got -3)")


def test_a_fresh_run_is_built_beside_an_earlier_one_and_replaces_it_once_saved(tmp_path: Path) -> None:
    run = _earlier_run(tmp_path / "cie10-bi")
    config = BiEncoderConfig(output_dir=str(tmp_path))
    assert prepare_run_dir(config) == tmp_path / "cie10-bi.tmp"
    assert config.final_dir == tmp_path / "cie10-bi.tmp" / "final"
    assert _files(run) == EARLIER_RUN  # untouched while the new run trains
    (config.final_dir).mkdir()
    (config.final_dir / "model.safetensors").write_bytes(b"new weights")

    # interrupted before its model was saved: --resume continues the staging folder, the earlier run still intact
    resumed = BiEncoderConfig(output_dir=str(tmp_path), resume=True)
    assert prepare_run_dir(resumed) == tmp_path / "cie10-bi.tmp"
    assert _files(run) == EARLIER_RUN

    assert promote_run(resumed) == tmp_path / "cie10-bi"
    assert resumed.final_dir == tmp_path / "cie10-bi" / "final"
    assert (run / "final" / "model.safetensors").read_bytes() == b"new weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cie10-bi"]


def test_a_fresh_run_into_an_empty_folder_and_a_resume_write_in_place(tmp_path: Path) -> None:
    config = BiEncoderConfig(output_dir=str(tmp_path))
    assert prepare_run_dir(config) == tmp_path / "cie10-bi"
    assert promote_run(config) == tmp_path / "cie10-bi"
    resumed = BiEncoderConfig(output_dir=str(tmp_path), resume=True)
    assert prepare_run_dir(resumed) == tmp_path / "cie10-bi"
    assert (tmp_path / "cie10-bi" / "config.yaml").is_file()


def test_push_to_an_unreachable_hub_is_refused_before_training(caplog, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    argv = ["train", "bi-encoder", "--output_dir", str(tmp_path), "--push", "--version", "v1.0"]
    _fails(caplog, argv, "Hub endpoint http://127.0.0.1:9 is not reachable")
    assert list(tmp_path.iterdir()) == []
