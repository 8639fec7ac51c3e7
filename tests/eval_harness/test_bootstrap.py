"""Paired bootstrap: identical systems are never a win, a clearly better one is, small noisy gaps are not."""

from __future__ import annotations

import numpy as np

from cie10.eval_harness.bootstrap import bootstrap_indices, compare, paired_interval


def _scores(values) -> dict[str, np.ndarray]:
    return {"mrr_at_10": np.asarray(values, dtype=float)}


def test_identical_systems_ci_contains_zero() -> None:
    rng = np.random.default_rng(1)
    values = rng.random(300)
    languages = ["en"] * 150 + ["es"] * 150
    comparisons = compare("a", "b", _scores(values), _scores(values), languages, ["mrr_at_10"])
    assert [c.language for c in comparisons] == ["all", "en", "es"]
    for c in comparisons:
        assert c.mean_diff == 0.0 and c.ci_low <= 0.0 <= c.ci_high
        assert not c.excludes_zero and c.verdict == "no significant difference"


def test_clearly_better_system_ci_excludes_zero() -> None:
    rng = np.random.default_rng(2)
    baseline = (rng.random(400) < 0.3).astype(float)
    better = np.maximum(baseline, (rng.random(400) < 0.5).astype(float))
    languages = ["en", "es"] * 200
    comparisons = compare("tuned", "base", _scores(better), _scores(baseline), languages, ["mrr_at_10"])
    for c in comparisons:
        assert c.mean_diff > 0.2 and c.ci_low > 0 and c.excludes_zero and c.verdict == "better"
    reverse = compare("base", "tuned", _scores(baseline), _scores(better), languages, ["mrr_at_10"])
    assert all(c.verdict == "worse" and c.ci_high < 0 for c in reverse)


def test_small_gap_on_few_queries_is_noise() -> None:
    rng = np.random.default_rng(3)
    a = (rng.random(60) < 0.50).astype(float)
    b = a.copy()
    b[:1] = 1 - b[:1]  # one query flips: a gap of 1/60 ≈ 0.017
    (overall,) = [
        c for c in compare("a", "b", _scores(a), _scores(b), ["en"] * 60, ["mrr_at_10"]) if c.language == "all"
    ]
    assert abs(overall.mean_diff) == 1 / 60
    assert not overall.excludes_zero


def test_seeded_and_paired() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random(100), rng.random(100)
    indices = bootstrap_indices(100, 500, seed=0)
    assert np.array_equal(indices, bootstrap_indices(100, 500, seed=0))
    first = paired_interval(a, b, indices)
    assert first == paired_interval(a, b, bootstrap_indices(100, 500, seed=0))
    # pairing: a constant shift has zero-width interval, however noisy the queries are
    mean, low, high = paired_interval(a + 0.1, a, indices)
    assert mean == low == high or abs(high - low) < 1e-12
    assert abs(mean - 0.1) < 1e-12


def test_queries_without_gold_are_left_out() -> None:
    a = np.array([1.0, np.nan, 0.0, 1.0])
    b = np.array([0.0, np.nan, 0.0, 1.0])
    comparisons = compare("a", "b", _scores(a), _scores(b), ["en"] * 4, ["mrr_at_10"])
    assert comparisons[0].num_queries == 3
    assert comparisons[0].mean_diff == 1 / 3
