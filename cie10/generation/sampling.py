"""Which (code, language) prompts an LLM run makes: stratified by chapter and language, within a pair budget."""

from __future__ import annotations

import math
import random
from collections import defaultdict

from cie10.catalog import Catalog
from cie10.generation.config import GenerationConfig
from cie10.generation.prompts import Task


def allocate(total: int, weights: dict[str, float], caps: dict[str, int] | None = None) -> dict[str, int]:
    """Split `total` over keys in proportion to `weights` (largest remainders), never above `caps`."""
    quotas = {key: 0 for key in weights}
    remaining = total
    active = {key for key, weight in weights.items() if weight > 0 and (caps is None or caps[key] > 0)}
    while remaining > 0 and active:
        weight_sum = sum(weights[key] for key in active)
        shares = {key: remaining * weights[key] / weight_sum for key in active}
        room = {key: (caps[key] - quotas[key]) if caps else remaining for key in active}
        given = {key: min(room[key], math.floor(shares[key])) for key in active}
        leftover = remaining - sum(given.values())
        for key in sorted(active, key=lambda k: (-(shares[k] - math.floor(shares[k])), k)):
            if leftover <= 0:
                break
            if given[key] < room[key]:
                given[key] += 1
                leftover -= 1
        for key, count in given.items():
            quotas[key] += count
        handed = sum(given.values())
        remaining -= handed
        active = {key for key in active if caps is None or quotas[key] < caps[key]}
        if handed == 0:
            break
    return quotas


def prompt_count(config: GenerationConfig) -> int:
    """Prompts needed for the pair budget: budget * oversample / mentions per prompt."""
    return math.ceil(config.budget_pairs * config.oversample / config.mentions_per_code)


def sample_tasks(catalog: Catalog, config: GenerationConfig) -> list[Task]:
    """The run's tasks: `config.codes` x languages, or a stratified sample of the scope.

    Each language gets an equal share of the prompts; within a language, chapters get shares proportional to
    the square root of their code count (small chapters are not starved, large ones still dominate). Within a
    chapter the codes are shuffled once (seeded) and languages take consecutive slices, so a code is written in
    a second language only after every code of its chapter has one.
    """
    n = config.mentions_per_code
    if config.codes:
        codes = list(dict.fromkeys(catalog[code].code for code in config.codes))
        return [Task(code, language, n) for code in codes for language in config.languages]

    by_chapter: dict[str, list[str]] = defaultdict(list)
    for entry in catalog.select(config.resolved_scope):
        by_chapter[entry.chapter].append(entry.code)
    chapters = sorted(by_chapter, key=lambda c: (len(c), c))
    order = {}
    for chapter in chapters:
        codes = sorted(by_chapter[chapter])
        random.Random(f"{config.seed}-{chapter}").shuffle(codes)
        order[chapter] = codes

    total = prompt_count(config)
    per_language = allocate(total, {language: 1.0 for language in config.languages})
    weights = {chapter: math.sqrt(len(order[chapter])) for chapter in chapters}
    # a language may revisit codes other languages used, never its own: cap each chapter at its size
    caps = {chapter: len(order[chapter]) for chapter in chapters}
    offsets = dict.fromkeys(chapters, 0)
    tasks: list[Task] = []
    for language in config.languages:
        quotas = allocate(per_language[language], weights, caps)
        for chapter in chapters:
            codes, start = order[chapter], offsets[chapter]
            for i in range(quotas[chapter]):
                tasks.append(Task(codes[(start + i) % len(codes)], language, n))
            offsets[chapter] = (start + quotas[chapter]) % max(1, len(codes))
    return tasks
