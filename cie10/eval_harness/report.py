"""Markdown tables of a run: per language with the baselines beside the model, comparisons, learning gain."""

from __future__ import annotations

from typing import Any

from cie10.eval_harness.metrics import OVERALL, RECALL_AT
from cie10.eval_harness.results import EvaluationRun

COLUMNS: tuple[tuple[str, str], ...] = (
    ("mrr_at_10", "MRR@10"),
    *((f"recall_at_{k}", f"R@{k}") for k in RECALL_AT),
    ("map_at_10", "MAP@10"),
    ("ndcg_at_10", "nDCG@10"),
)
LABELS: dict[str, str] = dict(COLUMNS) | {f"category_{key}": f"cat. {label}" for key, label in COLUMNS}


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _entries(run: EvaluationRun) -> tuple[str, list[str], dict[tuple[str, str], dict[str, Any]]]:
    """(split, subsets in order, {(system, subset): entry})."""
    split = next(iter(run.scores))
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    subsets: list[str] = []
    for system in run.systems:
        for entry in system.scores.get(split, []):
            by_key[(system.name, entry["hf_subset"])] = entry
            if entry["hf_subset"] not in subsets:
                subsets.append(entry["hf_subset"])
    subsets.sort(key=lambda subset: (subset != OVERALL, subset))
    return split, subsets, by_key


def _level_table(run: EvaluationRun, prefix: str, retrievable: bool = False) -> str:
    split, subsets, by_key = _entries(run)
    rows = []
    for subset in subsets:
        for system in run.systems:
            entry = by_key.get((system.name, subset))
            if entry is None:
                continue
            values = entry["retrievable_gold_only"] if retrievable else entry
            rows.append(
                [subset, str(values["num_queries"]), system.name]
                + [_number(values.get(prefix + key)) for key, _ in COLUMNS]
            )
    return _table(["language", "n", "system", *(label for _, label in COLUMNS)], rows)


def _summary_table(run: EvaluationRun) -> str:
    split, subsets, by_key = _entries(run)
    main = run.main_score
    header = ["language", "n", *(system.name for system in run.systems)]
    rows = []
    for subset in subsets:
        first = by_key.get((run.name, subset), {})
        rows.append(
            [subset, str(first.get("num_queries", ""))]
            + [
                f"{_number(by_key.get((s.name, subset), {}).get(main))} / "
                f"{_number(by_key.get((s.name, subset), {}).get('recall_at_1'))}"
                for s in run.systems
            ]
        )
    return _table(header, rows)


def _diff(comparison: dict[str, Any]) -> str:
    star = "*" if comparison["excludes_zero"] else ""
    return f"{comparison['mean_diff']:+.3f}{star}"


def _comparison_table(run: EvaluationRun) -> str:
    shown = {run.main_score, "recall_at_1"}  # the JSON holds every compared metric
    rows = [
        [
            c["language"],
            c["baseline"],
            LABELS.get(c["metric"], c["metric"]),
            _number(c["system_score"]),
            _number(c["baseline_score"]),
            _diff(c),
            f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]",
            "yes" if c["excludes_zero"] else "no (noise)",
        ]
        for c in run.comparisons
        if c["metric"] in shown
    ]
    return _table(["language", "vs", "metric", run.name, "baseline", "Δ", "95% CI", "CI excludes 0"], rows)


def _gain_table(run: EvaluationRun) -> str:
    metric_order = list(dict.fromkeys(c["metric"] for c in run.learning_gain))
    languages = list(dict.fromkeys(c["language"] for c in run.learning_gain))
    cells = {(c["language"], c["metric"]): c for c in run.learning_gain}
    rows = []
    for language in languages:
        row = [language, str(cells[(language, metric_order[0])]["num_queries"])]
        for metric in metric_order:
            c = cells[(language, metric)]
            row.append(f"{c['baseline_score']:.3f} → {c['system_score']:.3f} ({_diff(c)})")
        rows.append(row)
    return _table(["language", "n", *(LABELS.get(m, m) for m in metric_order)], rows)


def render_markdown(run: EvaluationRun) -> str:
    """The whole report: summary, code and category tables, comparisons, learning gain, gold coverage."""
    dataset = run.dataset
    where = dataset.get("id") or dataset.get("path")
    revision = dataset.get("revision") or dataset.get("requested_revision") or "local"
    coverage = run.gold_coverage
    catalog = run.catalog
    parts = [
        f"# {run.task_name}: {run.name}",
        "",
        f"Dataset `{where}` @ `{revision}`, split `{dataset.get('split')}`, {dataset.get('num_queries')} queries; "
        f"{catalog.get('num_codes_searched')} codes searched (scope `{catalog.get('scope')}`"
        f"{', billable only' if catalog.get('billable_only') else ''}"
        f"{', chapters ' + ','.join(catalog['chapters']) if catalog.get('chapters') else ''}) "
        f"of {catalog.get('version')}. Main score: `{run.main_score}`. Scores on a 0-1 scale.",
        "",
        f"## {LABELS.get(run.main_score, run.main_score)} / R@1 by language",
        "",
        _summary_table(run),
        "",
        "## Code level (exact code)",
        "",
        _level_table(run, ""),
        "",
        "## Category level (3-character category; a hit here but not above is a specificity error)",
        "",
        _level_table(run, "category_"),
        "",
    ]
    if run.comparisons:
        parts += [
            f"## {run.name} vs baselines (paired bootstrap, {run.settings.get('n_resamples')} resamples, 95% CI)",
            "",
            "`*`: the interval excludes 0; otherwise the gap is within the noise of the query sample.",
            "",
            _comparison_table(run),
            "",
        ]
    if run.learning_gain:
        parts += ["## Learning gain (base → model, per language and rank cut-off)", "", _gain_table(run), ""]
    not_in = coverage.get("not_in_catalogue", {})
    outside = coverage.get("outside_searched_codes", {})
    parts += [
        "## Gold codes",
        "",
        f"- {coverage.get('distinct_gold_codes')} distinct gold codes over {coverage.get('num_queries')} queries; "
        f"{not_in.get('distinct', 0)} not in the catalogue ({', '.join(not_in.get('examples', [])[:10]) or '–'}), "
        f"{outside.get('distinct', 0)} outside the searched codes "
        f"({', '.join(outside.get('examples', [])[:10]) or '–'}).",
        f"- {coverage.get('queries_with_unretrievable_gold', 0)} queries have a gold code no system can retrieve: "
        "they count as misses above.",
    ]
    if coverage.get("queries_with_unretrievable_gold"):
        parts += ["", "### Code level, retrievable gold codes only", "", _level_table(run, "", retrievable=True)]
    commit = run.git_commit or "unknown"
    parts += [
        "",
        f"_{run.date} · cie10 {run.versions.get('cie10')} · git {commit[:12]}{' (dirty)' if run.git_dirty else ''}_",
        "",
    ]
    return "\n".join(parts)
