"""Bad input ends with one clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cie10.cli import main
from tests.eval_harness.conftest import CODIESP_FIXTURE, TINY_ROWS, error_lines, run_cli, save_dataset


def _fails(caplog, argv: list[str], expected: str) -> str:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="cie10"):
        assert main(argv) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and expected in errors[0], errors
    return errors[0]


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


def _latin1_copy(folder: Path, *, line: int, in_text_file: bool = False) -> Path:
    """The CodiEsp fixture with one line of one file re-encoded as Latin-1 (a common export mistake)."""
    import shutil

    copy = folder / "dev"
    shutil.copytree(CODIESP_FIXTURE, copy)
    target = sorted((copy / "text_files").glob("*.txt"))[0] if in_text_file else copy / "devX.tsv"
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].encode("latin-1").decode("utf-8", errors="surrogateescape")
    target.write_bytes(b"".join(text.encode("utf-8", errors="surrogateescape") for text in lines))
    return copy


def test_codiesp_file_not_in_utf8_names_the_file_and_line(caplog, tmp_path: Path) -> None:
    base = ["evaluate", "codiesp", "--model", "default", "--no-baselines"]
    folder = _latin1_copy(tmp_path / "x", line=1)  # "hipertensión": the "ó" becomes the byte 0xf3
    message = _fails(caplog, [*base, "--folder", str(folder)], f"{folder / 'devX.tsv'}:1: not UTF-8 (byte 0xf3")
    assert "iconv" in message
    text_folder = _latin1_copy(tmp_path / "t", line=1, in_text_file=True)
    text_file = sorted((text_folder / "text_files").glob("*.txt"))[0]
    _fails(caplog, [*base, "--folder", str(text_folder)], f"{text_file}:1: not UTF-8")


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--rerank-top", "0", "--rerank-top must be at least 1 (got 0)"),
        ("--rerank-top", "-3", "--rerank-top must be at least 1 (got -3)"),
        ("--rerank-top", "x", "--rerank-top must be an integer at least 1 (got 'x')"),
        ("--resamples", "0", "--resamples must be at least 1 (got 0)"),
        ("--seed", "-1", "--seed must be at least 0 (got -1)"),
    ],
)
def test_numeric_options_out_of_range_are_refused(caplog, tmp_path: Path, flag: str, value: str, expected: str) -> None:
    out = tmp_path / "results"
    argv = ["evaluate", "--model", "default", "--reranker", "default", "--dataset", str(tmp_path), "--out", str(out)]
    _fails(caplog, [*argv, flag, value], expected)
    assert not out.exists()  # refused before anything ran


def test_subprocess_rerank_top_zero_is_one_line(tmp_path: Path) -> None:
    result = run_cli("evaluate", "--model", "default", "--dataset", str(tmp_path), "--rerank-top", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == error_lines(result)
    assert "--rerank-top must be at least 1 (got 0)" in error_lines(result)[0]
    assert "Traceback" not in result.stderr + result.stdout and result.stdout == ""
