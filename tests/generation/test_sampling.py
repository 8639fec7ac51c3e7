from __future__ import annotations

from collections import Counter

from cie10.catalog import load_catalog
from cie10.generation.config import GenerationConfig
from cie10.generation.sampling import allocate, prompt_count, sample_tasks


def test_allocate_is_proportional_and_capped() -> None:
    assert allocate(10, {"a": 1.0, "b": 1.0}) == {"a": 5, "b": 5}
    assert allocate(10, {"a": 3.0, "b": 1.0}, {"a": 4, "b": 100}) == {"a": 4, "b": 6}
    assert sum(allocate(97, {str(i): float(i + 1) for i in range(7)}).values()) == 97


def test_sample_is_stratified_by_language_and_chapter_and_reproducible() -> None:
    catalog = load_catalog()
    config = GenerationConfig(backend="gemini", budget_pairs=1200, mentions_per_code=6, oversample=1.0)
    tasks = sample_tasks(catalog, config)
    assert len(tasks) == prompt_count(config) == 200
    per_language = Counter(task.language for task in tasks)
    assert set(per_language) == set(config.languages) and max(per_language.values()) - min(per_language.values()) <= 1
    chapters = Counter(catalog[task.code].chapter for task in tasks)
    assert len(chapters) >= 20  # every chapter of the billable scope gets prompts
    assert all(catalog[task.code].billable for task in tasks)
    assert len({(task.code, task.language) for task in tasks}) == len(tasks)
    assert sample_tasks(catalog, config) == tasks
    assert sample_tasks(catalog, GenerationConfig(backend="gemini", budget_pairs=1200, seed=7)) != tasks


def test_explicit_codes_times_languages() -> None:
    config = GenerationConfig(backend="gemini", codes=["j45.909", "I10"], languages=["es", "ca"], mentions_per_code=4)
    tasks = sample_tasks(load_catalog(), config)
    assert [(t.code, t.language, t.n) for t in tasks] == [
        ("J45.909", "es", 4),
        ("J45.909", "ca", 4),
        ("I10", "es", 4),
        ("I10", "ca", 4),
    ]
