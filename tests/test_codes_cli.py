"""`cie10 codes search|publish`: no match, a bad limit and an unreachable Hub each end with one clear line."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cie10.cli import main


def _run(caplog: pytest.LogCaptureFixture, argv: list[str]) -> tuple[int, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="cie10"):
        code = main(argv)
    return code, [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("query", ["🫀", "哮喘", "zzqx asthma"])
def test_search_without_a_match_says_so_and_exits_1(caplog, capsys, query: str) -> None:
    code, errors = _run(caplog, ["codes", "search", query])
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith(f"no match for {query!r}: give a code"), errors
    assert capsys.readouterr().out == ""


def test_search_limit_must_be_positive_and_a_match_still_prints(caplog, capsys) -> None:
    for limit in ("0", "-2"):
        code, errors = _run(caplog, ["codes", "search", "asthma", "--limit", limit])
        assert code == 2 and errors == [f"--limit must be at least 1 (got {limit})"]
    assert main(["codes", "search", "asthma", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("asthma" in line.lower() for line in lines)


def test_search_words_may_start_with_a_symbol(capsys) -> None:
    assert main(["codes", "search", "(acute)", "--limit", "1"]) == 0  # titles hold "(acute)"
    assert len(capsys.readouterr().out.splitlines()) == 1


def _dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("target", ["local", "hub"])
def test_publish_to_an_unreachable_hub_is_one_line_and_writes_nothing(tmp_path: Path, target: str) -> None:
    dead = _dead_endpoint()
    out = tmp_path / "cie10-codes"
    result = subprocess.run(
        [sys.executable, "-m", "cie10", "codes", "publish", "--target", target, "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_ENDPOINT": dead, "HF_TOKEN": "hf_unused"},
        timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"Hub endpoint {dead} is not reachable" in lines[0], result.stderr
    assert result.stdout == "" and not out.exists()


def test_publish_local_with_the_real_hub_as_endpoint_is_refused(caplog, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://huggingface.co")
    code, errors = _run(caplog, ["codes", "publish", "--out", str(tmp_path / "codes")])
    assert code == 2 and len(errors) == 1
    assert "target 'local' publishes to the local Hub, but HF_ENDPOINT is https://huggingface.co" in errors[0]
    assert not (tmp_path / "codes").exists()
