"""Bad input ends with one clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cie10.cli import main
from tests.eval_harness.conftest import CODIESP_FIXTURE, TINY_ROWS, error_lines, run_cli, save_dataset


def _fails(caplog, argv: list[str], expected: str) -> None:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="cie10"):
        assert main(argv) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and expected in errors[0], errors


def test_subprocess_dataset_without_needed_columns(tmp_path: Path) -> None:
    folder = save_dataset(tmp_path / "bad", {"test": [{"query": "asma", "label": "J45"}]})
    result = run_cli("evaluate", "--model", "default", "--dataset", str(folder))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = error_lines(result)
    assert "lacks the column(s) code, language (has: query, label)" in line
    assert result.stderr.strip().splitlines()[-1] == line  # the error is the last word


def test_subprocess_unknown_model_id(local_hub, tiny_dataset: Path) -> None:
    result = run_cli("evaluate", "--model", "cie10-test/no-such-model", "--dataset", str(tiny_dataset))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = error_lines(result)
    assert "model repo cie10-test/no-such-model" in line and "not found" in line


def test_bad_dataset_inputs(caplog, tmp_path: Path, tiny_dataset: Path) -> None:
    empty = save_dataset(tmp_path / "empty", {"test": [], "train": TINY_ROWS[:1]})
    base = ["evaluate", "--model", "default", "--no-baselines"]
    _fails(caplog, [*base, "--dataset", str(empty)], "split 'test' of dataset")
    _fails(caplog, [*base, "--dataset", str(tiny_dataset), "--split", "dev"], "split 'dev' not in dataset")
    _fails(caplog, [*base, "--dataset", str(tiny_dataset), "--languages", "es,xx"], "language xx not in")
    _fails(caplog, [*base, "--dataset", str(tmp_path / "missing")], "does not exist")
    _fails(caplog, ["evaluate", "--dataset", str(tiny_dataset)], "give the model to evaluate with --model")
    _fails(caplog, ["evaluate", "--model", "default"], "give the evaluation set with --dataset")


def test_bad_model_and_folder_inputs(caplog, tmp_path: Path, tiny_dataset: Path) -> None:
    base = ["evaluate", "--dataset", str(tiny_dataset), "--no-baselines"]
    _fails(caplog, [*base, "--model", str(tmp_path / "no-model")], "model folder")
    (tmp_path / "not-a-model").mkdir()
    _fails(caplog, [*base, "--model", str(tmp_path / "not-a-model")], "cannot load")
    _fails(caplog, ["evaluate", "codiesp", "--folder", str(tmp_path), "--model", "default"], "not a CodiEsp split")
    _fails(caplog, ["evaluate", "report", str(tmp_path)], "no results file")


def test_unknown_hub_dataset(caplog, local_hub) -> None:
    _fails(caplog, ["evaluate", "--model", "default", "--dataset", "cie10-test/no-such-set"], "not found")


@pytest.mark.parametrize("folder", [CODIESP_FIXTURE])
def test_unknown_baseline_model_fails_cleanly(caplog, folder: Path, tmp_path: Path) -> None:
    _fails(
        caplog,
        ["evaluate", "codiesp", "--folder", str(folder), "--model", str(tmp_path / "gone"), "--no-baselines"],
        "does not exist",
    )
