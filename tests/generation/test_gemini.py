"""The gemini backend end to end: the real google-genai client over HTTP against a local stand-in server."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pytest

from cie10.cli import main
from cie10.errors import ConfigError
from cie10.generation.config import GenerationConfig
from cie10.generation.pipeline import dry_run, generate
from tests.fixtures.gemini_standin import LLMStandIn

CODES = ["J45.909", "I10"]
LANGUAGES = ["es", "ca", "en"]


def _config(tmp_path: Path, standin: LLMStandIn | None = None, **overrides: object) -> GenerationConfig:
    settings: dict[str, object] = {
        "backend": "gemini",
        "codes": CODES,
        "languages": LANGUAGES,
        "mentions_per_code": 4,
        "base_url": standin.url if standin else None,
        "cache_dir": str(tmp_path / "cache"),
        "output_dir": str(tmp_path / "out"),
        "sources": [],  # the backend's rows only (the offline sources are tested on their own)
        "dedup": False,
        "exclude_codiesp": False,
        "retry_initial_delay": 0.01,
        "validation_fraction": 0.0,
        "test_fraction": 0.0,
        "show_progress_bar": False,
        **overrides,
    }
    return GenerationConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)


def test_structured_output_retry_and_malformed_reply(llm_standin: LLMStandIn, tmp_path: Path, api_key: None) -> None:
    llm_standin.plan[("J45.909", "es")] = ["429", "ok"]
    llm_standin.plan[("I10", "ca")] = ["malformed"]
    result = generate(_config(tmp_path, llm_standin))

    seen = llm_standin.requests("gemini")
    assert len(seen) == 7  # six prompts, one of them twice
    assert [s.status for s in seen if (s.code, s.language) == ("J45.909", "es")] == [429, 200]
    assert result.run is not None
    assert (result.run.requests, result.run.retries, result.run.completed) == (7, 1, 6)
    assert result.run.usage.prompt_tokens == 6 * 420 and result.run.usage.output_tokens == 6 * 130
    assert result.run.cost_usd == pytest.approx((6 * 420 * 0.30 + 6 * 130 * 2.50) / 1e6)

    assert result.curation.dropped["reply"] == {"malformed reply: not JSON": 1}
    rows = result.splits["train"]
    assert Counter(p.language for p in rows) == {"es": 8, "en": 8, "ca": 4}
    assert {p.source for p in rows} == {"gemini:gemini-2.5-flash"}
    asthma = [p for p in rows if p.code == "J45.909"]
    assert asthma and all(p.hard_negatives == ["J45.901"] for p in asthma)  # J45.99 was not a sibling shown
    assert result.curation.hard_negatives_removed["not a sibling shown in the prompt"] > 0

    folder = result.folder
    assert folder is not None
    catalan = datasets.load_dataset(str(folder), "ca")["train"]
    assert sorted(catalan["query"])[0] == "asma bronquial sense crisi actual"
    card = (folder / "README.md").read_text()
    assert "malformed reply: not JSON" in card and "cost of this run" in card

    again = generate(_config(tmp_path, llm_standin))
    assert len(llm_standin.requests("gemini")) == 7  # everything came from the cache, the malformed reply too
    assert again.run is not None and again.run.cached == 6 and again.run.requests == 0
    assert again.curation.dropped["reply"] == {"malformed reply: not JSON": 1}


def test_missing_key_is_refused_before_any_request(
    llm_standin: LLMStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="GEMINI_API_KEY is not set.*--dry-run"):
        generate(_config(tmp_path, llm_standin))
    argv = ["generate", "--backend", "gemini", "--codes", "I10", "--base_url", llm_standin.url]
    assert main(argv + ["--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "out")]) == 2
    assert "GEMINI_API_KEY is not set" in caplog.text
    assert llm_standin.seen == []


def test_dry_run_prints_prompts_and_cost_without_calling(
    llm_standin: LLMStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    out = io.StringIO()
    report = dry_run(_config(tmp_path, llm_standin), out, limit=2)
    text = out.getvalue()
    assert text.count("Target code:") == 2 and "# ... 4 more prompts" in text
    assert "estimated cost $" in text and "6 to request" in text
    assert report is not None and report.estimated_cost_usd > 0
    assert llm_standin.seen == []


def test_unreachable_service_is_one_clear_error(tmp_path: Path, api_key: None) -> None:
    config = _config(tmp_path, max_retries=1, codes=["I10"], languages=["es"])
    config.base_url = "http://127.0.0.1:9"  # the discard port: nothing listens
    with pytest.raises(Exception, match="unreachable after 2 attempts"):
        generate(config)


def test_estimate_above_the_cap_is_refused(llm_standin: LLMStandIn, tmp_path: Path, api_key: None) -> None:
    with pytest.raises(ConfigError, match="above max_cost_usd"):
        generate(_config(tmp_path, llm_standin, max_cost_usd=0.0001))
    assert llm_standin.seen == []


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_a_paid_request(
    llm_standin: LLMStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm_standin.hang_after = 3  # answer three prompts, then hold the fourth until the run is killed
    env = {**os.environ, "GEMINI_API_KEY": "test-key", "GOOGLE_GEMINI_BASE_URL": llm_standin.url}
    argv = [sys.executable, "-m", "cie10", "generate", "--backend", "gemini", "--codes", *CODES]
    argv += ["--languages", *LANGUAGES, "--mentions_per_code", "4", "--concurrency", "1", "--dedup", "false"]
    argv += ["--exclude_codiesp", "false", "--cache_dir", str(tmp_path / "cache")]
    argv += ["--output_dir", str(tmp_path / "out"), "--show_progress_bar", "false"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert llm_standin.hanging.wait(timeout=180), process.stderr.read().decode() if process.poll() else ""
    finally:
        process.kill()
        process.wait()
    first = llm_standin.requests("gemini")
    assert len(first) == 4 and not (tmp_path / "out").exists()
    answered = {s.prompt for s in first[:3]}

    llm_standin.hang_after = None
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", llm_standin.url)  # the client reads it itself
    result = generate(_config(tmp_path, None, concurrency=1))
    second = llm_standin.requests("gemini")[4:]
    assert len(second) == 3
    assert not answered & {s.prompt for s in second}
    assert len({s.prompt for s in llm_standin.requests("gemini") if s.status == 200}) == 6
    assert result.run is not None and result.run.cached == 3
    assert sum(len(rows) for rows in result.splits.values()) == 24


def test_batch_mode_submits_once_and_resumes_by_job(llm_standin: LLMStandIn, tmp_path: Path, api_key: None) -> None:
    submitted = generate(_config(tmp_path, llm_standin, gemini_batch=True, batch_wait=False))
    assert not submitted.complete and submitted.folder is None
    assert submitted.run is not None and submitted.run.batch_jobs == ["batches/job1"]
    assert len(llm_standin.requests("batch")) == 6

    result = generate(_config(tmp_path, llm_standin, gemini_batch=True, batch_poll_seconds=0.01))
    assert result.complete and result.folder is not None
    assert len(llm_standin.batches) == 1 and llm_standin.batches["job1"]["polls"] == 2
    assert llm_standin.requests("gemini") == []
    assert result.run is not None and result.run.completed == 6
    assert result.run.cost_usd == pytest.approx((6 * 420 * 0.15 + 6 * 130 * 1.25) / 1e6)
    assert sum(len(rows) for rows in result.splits.values()) == 24

    online = generate(_config(tmp_path, llm_standin))  # batch replies fill the same cache
    assert online.run is not None and online.run.cached == 6 and llm_standin.requests("gemini") == []
