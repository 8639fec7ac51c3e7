"""Harness results → card roles, `model-index` entries and tables (hand-made runs in the harness's own classes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cie10.eval_harness.metrics import ALL_METRICS
from cie10.eval_harness.results import EvaluationRun, SystemScores
from cie10.model_cards.render import demote_headings, split_sections, strip_comments
from cie10.model_cards.repos import ReleaseRepos
from cie10.model_cards.scores import (
    BASE,
    BI,
    BM25,
    MODEL_INDEX_METRICS,
    PIPELINE,
    Artifact,
    ResultsError,
    format_score,
    load_release_scores,
)

LANGUAGES = ("es", "fr")


def _entries(offset: float) -> list[dict[str, Any]]:
    """mteb-shaped score entries (`all` then each language) whose values differ by system and metric."""
    entries = []
    for position, subset in enumerate(("all", *LANGUAGES)):
        values = {metric: round(offset + position / 10 + index / 1000, 6) for index, metric in enumerate(ALL_METRICS)}
        entries.append(
            {
                "hf_subset": subset,
                "languages": [],
                "main_score": values["mrr_at_10"],
                **values,
                "num_queries": 10,
                "num_queries_without_gold": 0,
            }
        )
    return entries


class Fixture:
    """Folders standing for the released artifacts, and runs about them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bi = root / "models" / "cie10-bi" / "final"
        self.reranker = root / "models" / "cie10-rerank" / "final"
        self.synth = root / "synth"
        for folder in (self.bi, self.reranker, self.synth):
            folder.mkdir(parents=True)
        self.repos = ReleaseRepos.for_version("v1.0", org="org")

    def dense(self, path: Path, reranker: Path | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": "dense", "id": str(path), "path": str(path.resolve()), "reranker": None}
        if reranker is not None:
            info["reranker"] = {"id": str(reranker), "path": str(reranker.resolve())}
        return info

    def run(
        self,
        systems: list[tuple[str, dict[str, Any], float]],
        *,
        date: str = "2026-11-25T10:00:00+00:00",
        codes: int = 64,
        comparisons: list[dict] | None = None,
        name: str = "run",
    ) -> Path:
        (first_name, first_model, first_offset), *rest = systems
        run = EvaluationRun(
            task_name="CIE10Retrieval",
            main_score="mrr_at_10",
            dataset={
                "id": None,
                "path": str(self.synth.resolve()),
                "split": "test",
                "languages": list(LANGUAGES),
                "num_queries": 20,
            },
            catalog={"version": "ICD-10-CM 2026", "num_codes_searched": codes, "scope": "categories"},
            name=first_name,
            model=first_model,
            scores={"test": _entries(first_offset)},
            evaluation_time=1.0,
            baselines=[SystemScores(n, m, {"test": _entries(o)}, 1.0) for n, m, o in rest],
            comparisons=comparisons or [],
            date=date,
        )
        return run.save(self.root / name)

    def load(self, paths: list[Path], explicit: bool = True):
        return load_release_scores(
            paths,
            bi=Artifact(self.bi, self.repos.bi.repo_id),
            reranker=Artifact(self.reranker, self.repos.reranker.repo_id),
            synth_folder=self.synth,
            synth_id=self.repos.synth.repo_id,
            explicit=explicit,
        )


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path)


def _four(fx: Fixture) -> list[tuple[str, dict[str, Any], float]]:
    return [
        ("final+final", fx.dense(fx.bi, fx.reranker), 0.5),
        ("bm25", {"kind": "bm25", "id": "bm25s"}, 0.1),
        ("base", {"kind": "dense", "id": "default", "reranker": None}, 0.2),
        ("final", fx.dense(fx.bi), 0.4),
        ("other", fx.dense(fx.root / "elsewhere"), 0.9),  # a model that is not part of this release
    ]


def test_roles_and_model_index_round_trip(fx: Fixture) -> None:
    from huggingface_hub import ModelCard, ModelCardData

    scores = fx.load([fx.run(_four(fx))])
    assert set(scores.systems) == {BI, PIPELINE, BM25, BASE}
    assert scores.systems[BI].name == "final" and scores.systems[PIPELINE].name == "final+final"
    assert scores.subsets == ["all", "es", "fr"]
    results = scores.eval_results(BI, dataset_id="org/cie10-synth", dataset_name="cie10-synth", revision="v1.0")
    assert len(results) == 3 * len(MODEL_INDEX_METRICS)
    # through YAML and huggingface_hub's parser, the values are the JSON's, exactly
    card = ModelCard(f"---\n{ModelCardData(model_name='m', eval_results=results).to_yaml()}\n---\n# m\n")
    loaded = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    expected = {(e["hf_subset"], m): e[m] for e in _entries(0.4) for m in MODEL_INDEX_METRICS}
    assert loaded == expected
    first = card.data.eval_results[0]
    assert (first.dataset_type, first.dataset_split, first.dataset_revision) == ("org/cie10-synth", "test", "v1.0")


def test_table_shows_every_system_and_value(fx: Fixture) -> None:
    scores = fx.load([fx.run(_four(fx))])
    labels = scores.labels("cie10-bi", "cie10-rerank")
    assert list(labels.values()) == ["cie10-bi", "cie10-bi + cie10-rerank", "BM25", "base model"]
    table = scores.metrics_table(labels, highlight=BI)
    for role in labels:
        for subset in scores.subsets:
            row = next(
                line
                for line in table.splitlines()
                if line.startswith(f"| {subset} |") and labels[role] in line and (role != BI or "**" in line)
            )
            for metric in MODEL_INDEX_METRICS:
                assert format_score(scores.systems[role].score(subset, metric)) in row
    assert "| all | **cie10-bi** | 10 | **" in table


def test_newest_run_wins_and_intervals_come_from_one_run(fx: Fixture) -> None:
    comparisons = [
        {"system": "final", "baseline": "base", "language": lang, "metric": "recall_at_1", "excludes_zero": True}
        for lang in ("all", "es", "fr")
    ]
    old = fx.run(
        [
            ("final", fx.dense(fx.bi), 0.4),
            ("bm25", {"kind": "bm25"}, 0.1),
            ("base", {"kind": "dense", "id": "default"}, 0.2),
        ],
        comparisons=comparisons,
        name="old",
    )
    new = fx.run(
        [("final+final", fx.dense(fx.bi, fx.reranker), 0.5), ("bm25", {"kind": "bm25"}, 0.15)],
        date="2026-11-26T10:00:00+00:00",
        name="new",
    )
    scores = fx.load([old, new])
    assert scores.systems[BM25].file == new  # the newer run's BM25
    assert scores.systems[BI].file == old and scores.systems[BASE].file == old
    assert scores.has_interval(BI, BASE) and not scores.has_interval(PIPELINE, BASE)
    gain = scores.gain_table(BI, BASE)
    assert "(+0.200*)" in gain  # R@1: 0.2 → 0.4, the interval excludes 0
    assert "*" not in scores.gain_table(PIPELINE, BASE)


def test_missing_system_says_how_to_score_it(fx: Fixture) -> None:
    only_pipeline = fx.run(
        [
            ("final+final", fx.dense(fx.bi, fx.reranker), 0.5),
            ("bm25", {"kind": "bm25"}, 0.1),
            ("base", {"kind": "dense", "id": "default"}, 0.2),
        ]
    )
    with pytest.raises(ResultsError) as error:
        fx.load([only_pipeline])
    assert "the bi-encoder alone" in str(error.value) and "cie10 evaluate --model" in str(error.value)


def test_results_of_another_model_or_dataset(fx: Fixture) -> None:
    other = fx.run([("x", fx.dense(fx.root / "elsewhere"), 0.5), ("bm25", {"kind": "bm25"}, 0.1)], name="other")
    with pytest.raises(ResultsError, match="do not describe this release: no system in it is the bi-encoder"):
        fx.load([other])
    with pytest.raises(ResultsError, match="lack: the bi-encoder alone"):  # found by searching: skipped
        fx.load([other], explicit=False)


def test_runs_that_scored_different_codes_disagree(fx: Fixture) -> None:
    first = fx.run(
        [
            ("final", fx.dense(fx.bi), 0.4),
            ("bm25", {"kind": "bm25"}, 0.1),
            ("base", {"kind": "dense", "id": "default"}, 0.2),
        ],
        name="a",
    )
    second = fx.run([("final+final", fx.dense(fx.bi, fx.reranker), 0.5)], codes=98186, name="b")
    with pytest.raises(ResultsError, match="disagree on what was scored"):
        fx.load([first, second])


def test_release_table_names_every_repo_at_the_version() -> None:
    repos = ReleaseRepos.for_version("v2.3", org="acme")
    table = repos.table(current="bi")
    assert [repo.repo_id for repo in repos.ordered()] == [
        "acme/cie10-codes",
        "acme/cie10-synth",
        "acme/cie10-bi",
        "acme/cie10-rerank",
        "acme/cie10_retrieval",
        "acme/cie10-search",
    ]
    for repo in repos.ordered():
        assert f"[`{repo.repo_id}`]({repo.url('v2.3')})" in table
    assert "https://huggingface.co/datasets/acme/cie10-codes/tree/v2.3" in table
    assert "(this repo)" in next(line for line in table.splitlines() if "acme/cie10-bi`" in line)


def test_markdown_helpers_leave_code_alone() -> None:
    text = "# T\n\n## A\n<!-- note\n## hidden\n-->\ntext\n```\n## not a heading\n<!-- kept -->\n```\n## B\n"
    preamble, sections = split_sections(strip_comments(text))
    assert preamble == "# T\n" and [title for title, _ in sections] == ["A", "B"]
    demoted = demote_headings(strip_comments(text))
    assert "### A" in demoted and "## not a heading" in demoted and "<!-- kept -->" in demoted
    assert "hidden" not in demoted


def test_gains_pair_each_system_with_the_base_of_its_own_run(fx: Fixture) -> None:
    base = {"kind": "dense", "id": "default"}
    paired = [
        {"system": name, "baseline": "base", "language": "all", "metric": "mrr_at_10", "excludes_zero": True}
        for name in ("final", "final+final")
    ]
    bm25 = ("bm25", {"kind": "bm25"}, 0.1)
    pipeline = [("final+final", fx.dense(fx.bi, fx.reranker), 0.5), ("base", base, 0.2), bm25]
    alone = [("final", fx.dense(fx.bi), 0.4), ("base", base, 0.2), bm25]
    runs = [fx.run(pipeline, comparisons=paired[1:], name="a"), fx.run(alone, comparisons=paired[:1], name="b")]
    for order in (runs, runs[::-1]):  # same date: whichever run's base is shown, each gain is paired
        scores = fx.load(order)
        assert scores.has_interval(BI, BASE) and scores.has_interval(PIPELINE, BASE)
        assert "*)" in scores.gain_table(BI, BASE).splitlines()[2]
