"""Paired bootstrap confidence intervals on the difference between two systems, per language.

Both systems ranked the same queries, so we resample queries (with replacement, seeded) and recompute the mean
per-query difference each time; the 95% interval of those means says whether a gap is larger than the noise of
which queries happened to be in the set. A gap whose interval contains 0 is not reported as a win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from cie10.eval_harness.metrics import OVERALL

N_RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class Comparison:
    """`system` minus `baseline` on `metric` over the queries of `language` (`all`: every language)."""

    system: str
    baseline: str
    language: str
    metric: str
    system_score: float
    baseline_score: float
    mean_diff: float
    ci_low: float
    ci_high: float
    excludes_zero: bool
    num_queries: int
    n_resamples: int = N_RESAMPLES
    confidence: float = CONFIDENCE
    seed: int = SEED

    @property
    def verdict(self) -> str:
        """`better`, `worse`, or `no significant difference`."""
        if not self.excludes_zero:
            return "no significant difference"
        return "better" if self.mean_diff > 0 else "worse"

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def bootstrap_indices(num_queries: int, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(n_resamples × num_queries) query indices drawn with replacement, the same for every metric."""
    return np.random.default_rng(seed).integers(0, num_queries, size=(n_resamples, num_queries))


def paired_interval(
    system: np.ndarray, baseline: np.ndarray, indices: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(observed mean difference, CI low, CI high) of `system - baseline` per query, percentile method."""
    diff = np.asarray(system, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    means = diff[indices].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(diff.mean()), float(low), float(high)


def compare(
    system_name: str,
    baseline_name: str,
    system_scores: dict[str, np.ndarray],
    baseline_scores: dict[str, np.ndarray],
    languages: Sequence[str],
    metrics: Sequence[str],
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> list[Comparison]:
    """Paired comparisons on each metric, over all queries and per language (queries without gold left out)."""
    language_array = np.array([str(language) for language in languages], dtype=object)
    scorable = ~np.isnan(system_scores[metrics[0]])
    subsets = [(OVERALL, scorable)] + [
        (language, scorable & (language_array == language)) for language in sorted(set(language_array))
    ]
    comparisons = []
    for language, mask in subsets:
        count = int(mask.sum())
        if count == 0:
            continue
        indices = bootstrap_indices(count, n_resamples, seed)
        for metric in metrics:
            ours, theirs = system_scores[metric][mask], baseline_scores[metric][mask]
            mean_diff, low, high = paired_interval(ours, theirs, indices, confidence)
            comparisons.append(
                Comparison(
                    system=system_name,
                    baseline=baseline_name,
                    language=language,
                    metric=metric,
                    system_score=float(ours.mean()),
                    baseline_score=float(theirs.mean()),
                    mean_diff=mean_diff,
                    ci_low=low,
                    ci_high=high,
                    excludes_zero=bool(low > 0 or high < 0),
                    num_queries=count,
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                )
            )
    return comparisons
