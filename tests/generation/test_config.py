from __future__ import annotations

from pathlib import Path

import pytest

from cie10.errors import ConfigError
from cie10.generation.config import GenerationConfig, load_config, parse_args


def test_flags_parse_into_the_config() -> None:
    config, actions = parse_args(
        ["--backend", "gemini", "--languages", "es", "ca", "--budget_pairs", "600", "--gemini-batch", "--dry-run"]
    )
    assert config.backend == "gemini"
    assert config.languages == ["es", "ca"]
    assert config.budget_pairs == 600
    assert config.gemini_batch is True
    assert config.resolved_scope == "billable"
    assert actions.dry_run is True and actions.publish is False


def test_yaml_file_with_flags_overriding_it(tmp_path: Path) -> None:
    file = tmp_path / "gen.yaml"
    file.write_text("backend: openai\nmodel: qwen2.5-7b\nlanguages: [pt, it]\nmentions_per_code: 3\n")
    config, _ = parse_args(["--config", str(file), "--mentions_per_code", "5"])
    assert (config.backend, config.model, config.languages, config.mentions_per_code) == (
        "openai",
        "qwen2.5-7b",
        ["pt", "it"],
        5,
    )
    assert load_config(file).mentions_per_code == 3


def test_bad_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported language.*de"):
        GenerationConfig(languages=["es", "de"])
    file = tmp_path / "gen.yaml"
    file.write_text("budget: 10\n")
    with pytest.raises(ConfigError, match="unknown field.*budget"):
        parse_args(["--config", str(file)])
    with pytest.raises(ConfigError, match="leave rows for train"):
        GenerationConfig(validation_fraction=0.5, test_fraction=0.5)


def test_batch_mode_halves_the_listed_price() -> None:
    assert GenerationConfig(backend="gemini").prices() == (0.30, 2.50)
    assert GenerationConfig(backend="gemini", gemini_batch=True).prices() == (0.15, 1.25)
    assert GenerationConfig(backend="openai").prices() == (0.0, 0.0)


def test_sources_default_to_every_offline_source_and_none_means_none() -> None:
    assert GenerationConfig().sources == ["terminology", "codiesp", "translate"]
    assert GenerationConfig(backend="openai", sources=["none"]).sources == []
    config, _ = parse_args(["--sources", "codiesp", "translate", "--translate_names_to", "ca"])
    assert config.sources == ["codiesp", "translate"] and config.translate_names_to == ["ca"]
    with pytest.raises(ConfigError, match="unknown source"):
        GenerationConfig(sources=["wikipedia"])
    with pytest.raises(ConfigError, match="needs at least one source"):
        GenerationConfig(sources=["none"])
    with pytest.raises(ConfigError, match="cannot translate into es"):
        GenerationConfig(translate_languages=["es"])
