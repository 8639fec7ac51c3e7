"""The openai backend against the stand-in's /v1/chat/completions (no real LLM)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cie10.errors import ConfigError
from cie10.generation.config import GenerationConfig
from cie10.generation.pipeline import generate
from tests.fixtures.gemini_standin import LLMStandIn


def _config(tmp_path: Path, base_url: str | None, **overrides: object) -> GenerationConfig:
    settings: dict[str, object] = {
        "backend": "openai",
        "model": "qwen2.5-7b-instruct",
        "base_url": base_url,
        "codes": ["I10"],
        "languages": ["es", "en"],
        "mentions_per_code": 4,
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


def test_chat_completions_with_a_json_schema(llm_standin: LLMStandIn, tmp_path: Path) -> None:
    llm_standin.plan[("I10", "en")] = ["503", "ok"]
    result = generate(_config(tmp_path, llm_standin.url + "/v1"))
    seen = llm_standin.requests("openai")
    assert [s.path for s in seen] == ["/v1/chat/completions"] * 3
    assert result.run is not None and result.run.retries == 1 and result.run.usage.prompt_tokens == 800
    rows = result.splits["train"]
    assert len(rows) == 8 and {p.source for p in rows} == {"openai:qwen2.5-7b-instruct"}
    assert all(p.hard_negatives == ["I11"] for p in rows)


def test_llm_rows_mix_with_an_offline_source(llm_standin: LLMStandIn, tmp_path: Path) -> None:
    from cie10.generation.codiesp_source import codiesp_root

    if not (codiesp_root() / "train" / "trainX.tsv").is_file():
        pytest.skip("no shared CodiEsp copy")
    result = generate(_config(tmp_path, llm_standin.url + "/v1", sources=["codiesp"], codiesp_context=False))
    rows = result.splits["train"]
    sources = Counter(p.source for p in rows)
    assert sources["openai:qwen2.5-7b-instruct"] == 8 and sources["codiesp-train"] > 1000
    assert {p.kind for p in rows if p.source == "codiesp-train"} == {"query"}


def test_a_base_url_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs --base_url"):
        generate(_config(tmp_path, None))
