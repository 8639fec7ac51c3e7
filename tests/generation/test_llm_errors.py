"""A refused connection is not a 429: the request loop gives up after one quick retry, not the long backoff."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cie10.cli import main
from cie10.generation.config import GenerationConfig
from cie10.generation.llm import LLMServiceError
from cie10.generation.pipeline import generate
from tests.fixtures.gemini_standin import LLMStandIn

DEAD = "http://127.0.0.1:9"
"""The discard port: nothing listens, every connection is refused."""


def _config(tmp_path: Path, backend: str, base_url: str, **overrides: object) -> GenerationConfig:
    settings: dict[str, object] = {
        "backend": backend,
        "model": "gemini-2.5-flash" if backend == "gemini" else "qwen",
        "codes": ["I10"],
        "languages": ["es"],
        "mentions_per_code": 4,
        "base_url": base_url,
        "cache_dir": str(tmp_path / "cache"),
        "output_dir": str(tmp_path / "out"),
        "dedup": False,
        "exclude_codiesp": False,
        "validation_fraction": 0.0,
        "test_fraction": 0.0,
        "show_progress_bar": False,
        # a 429 would wait 30 s, 60 s, ... six times: a refused connection must not
        "max_retries": 6,
        "retry_initial_delay": 30.0,
        "retry_max_delay": 600.0,
        **overrides,
    }
    return GenerationConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)


@pytest.mark.parametrize("backend", ["gemini", "openai"])
def test_a_refused_connection_gives_up_after_one_quick_retry(backend: str, tmp_path: Path, api_key: None) -> None:
    url = DEAD if backend == "gemini" else f"{DEAD}/v1"
    with pytest.raises(LLMServiceError, match=f"{backend} is unreachable after 2 attempts: network: "):
        generate(_config(tmp_path, backend, url))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_refused_connection_is_one_line(caplog, tmp_path: Path, api_key: None) -> None:
    argv = ["generate", "--backend", "gemini", "--codes", "I10", "--languages", "es", "--base_url", DEAD]
    argv += ["--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "out"), "--no_dedup"]
    argv += ["--no_exclude_codiesp", "--retry_initial_delay", "30", "--show_progress_bar", "false"]
    with caplog.at_level(logging.ERROR, logger="cie10"):
        assert main(argv) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "gemini is unreachable after 2 attempts" in errors[0], errors


def test_a_busy_server_is_still_retried_with_backoff(llm_standin: LLMStandIn, tmp_path: Path, api_key: None) -> None:
    """429 then a reply: retried (the quick give-up is for refused connections only)."""
    llm_standin.plan[("I10", "es")] = ["429", "ok"]
    result = generate(_config(tmp_path, "gemini", llm_standin.url, retry_initial_delay=0.01))
    assert result.run is not None and result.run.retries == 1
    assert result.run.completed == 1


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--request_timeout", "0", "--request_timeout must be more than 0 (got 0.0)"),
        ("--max_retries", "-1", "--max_retries must be at least 0 (got -1)"),
        ("--temperature", "3", "--temperature must be at least 0 and at most 2 (got 3.0)"),
        ("--dedup_threshold", "1.5", "--dedup_threshold must be at least 0 and at most 1 (got 1.5)"),
        ("--dry-run-limit", "-2", "--dry-run-limit must be at least 0 (got -2)"),
    ],
)
def test_numeric_options_out_of_range_are_refused(caplog, tmp_path: Path, flag: str, value: str, expected: str) -> None:
    argv = ["generate", "--backend", "terminology", "--output_dir", str(tmp_path / "out"), flag, value]
    with caplog.at_level(logging.ERROR, logger="cie10"):
        assert main(argv) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [expected]
    assert not (tmp_path / "out").exists()
