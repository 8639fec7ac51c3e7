"""The harness's results JSON, read for the cards: which system is which, `model-index` entries, tables.

A release shows four systems side by side: the bi-encoder alone, the bi-encoder + reranker, BM25 and the untuned
base model. `cie10 evaluate` writes one `results.json` per run (the evaluated system first, the baselines after),
so the four may come from one run or from several: `load_release_scores` reads them all, recognises each system by
its provenance (`model.path` / `model.id`, the reranker's, `kind: bm25`, the `base` baseline) and checks that they
scored the same dataset split over the same codes. Every number on a card comes from these files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cie10.errors import Cie10Error
from cie10.eval_harness.metrics import OVERALL
from cie10.eval_harness.results import EvaluationRun, SystemScores, load_run
from cie10.eval_harness.systems import TITLES_BASELINE

logger = logging.getLogger(__name__)

BI = "bi"
PIPELINE = "bi+reranker"
BASE = "base"
BM25 = "bm25"
BASE_SYSTEM_NAME = "base"
"""The harness's name for the untuned embedded encoder baseline (`cie10.eval_harness.systems.BASE_MODEL`)."""
MODEL_INDEX_METRICS: dict[str, str] = {
    "mrr_at_10": "MRR@10",
    "recall_at_1": "Recall@1",
    "recall_at_5": "Recall@5",
    "recall_at_10": "Recall@10",
    "ndcg_at_10": "nDCG@10",
}
"""Harness metric name → display name; the `model-index` entries and the table's columns."""
GAIN_METRICS: dict[str, str] = {
    "recall_at_1": "R@1",
    "recall_at_3": "R@3",
    "recall_at_5": "R@5",
    "recall_at_10": "R@10",
    "mrr_at_10": "MRR@10",
}
"""The learning-gain table's columns (the harness's `learning_gain` metrics)."""
TASK_TYPE = "text-retrieval"
TASK_NAME = "ICD-10-CM code retrieval"


class ResultsError(Cie10Error):
    """The harness results are missing, or do not describe the artifacts being released."""


def format_score(value: float | None) -> str:
    """A 0-1 score as the cards print it (4 decimals); `-` when the harness had nothing to score."""
    return "-" if value is None else f"{value:.4f}"


@dataclass(frozen=True)
class Artifact:
    """A released model: its folder and its Hub id (a results file may name either)."""

    folder: Path
    repo_id: str

    def matches(self, info: dict[str, Any] | None) -> bool:
        """Whether a system's provenance (`model` or `model.reranker` of a results file) is this model."""
        if not info:
            return False
        path = info.get("path")
        if path and Path(path).resolve() == self.folder.resolve():
            return True
        return info.get("id") in (self.repo_id, str(self.folder))


@dataclass
class ScoredSystem:
    """One system of a results file, with the role it plays on the cards."""

    role: str
    system: SystemScores
    run: EvaluationRun
    file: Path

    @property
    def name(self) -> str:
        """The harness's name for it (as in `comparisons`)."""
        return self.system.name

    def entry(self, subset: str) -> dict[str, Any] | None:
        """The score entry of one subset (`all` or a language) of the evaluated split."""
        split = self.run.dataset.get("split") or "test"
        return next((e for e in self.system.scores.get(split, []) if e.get("hf_subset") == subset), None)

    def score(self, subset: str, metric: str) -> float | None:
        """One metric on one subset (None when the harness had no scorable query there)."""
        entry = self.entry(subset)
        value = entry.get(metric) if entry else None
        return None if value is None else float(value)


@dataclass
class ReleaseScores:
    """The systems of a release, by role (`bi`, `bi+reranker`, `base`, `bm25`...), from the harness's JSON."""

    systems: dict[str, ScoredSystem]
    files: list[Path] = field(default_factory=list)
    candidates: dict[str, list[ScoredSystem]] = field(default_factory=dict)
    """Every run's system of each role, newest first (`systems` holds the first)."""

    @property
    def reference(self) -> EvaluationRun:
        """The run of the bi-encoder: its dataset, split and catalogue describe every system's."""
        return self.systems[BI].run

    @property
    def split(self) -> str:
        return self.reference.dataset.get("split") or "test"

    @property
    def subsets(self) -> list[str]:
        """`all` first, then the languages, as the harness wrote them."""
        split = self.split
        names = [e["hf_subset"] for e in self.systems[BI].system.scores.get(split, [])]
        return sorted(names, key=lambda name: (name != OVERALL, name))

    @property
    def languages(self) -> list[str]:
        return [subset for subset in self.subsets if subset != OVERALL]

    def labels(self, bi_name: str, reranker_name: str) -> dict[str, str]:
        """Column labels of the systems, in table order."""
        labels = {BI: bi_name, PIPELINE: f"{bi_name} + {reranker_name}"}
        for role in self.systems:
            if role.startswith(BM25):
                labels[role] = "BM25" if role == BM25 else f"BM25 ({role.split(':', 1)[1]})"
        labels[BASE] = "base model"
        return {role: label for role, label in labels.items() if role in self.systems}

    def eval_results(
        self, role: str, *, dataset_id: str, dataset_name: str, revision: str, source_url: str | None = None
    ) -> list[Any]:
        """`huggingface_hub.EvalResult`s of one system: every language (and `all`) x `MODEL_INDEX_METRICS`."""
        from huggingface_hub import EvalResult

        system = self.systems[role]
        results = []
        for subset in self.subsets:
            for metric, display in MODEL_INDEX_METRICS.items():
                value = system.score(subset, metric)
                if value is None:
                    continue
                results.append(
                    EvalResult(
                        task_type=TASK_TYPE,
                        task_name=TASK_NAME,
                        dataset_type=dataset_id,
                        dataset_name=f"{dataset_name} ({'all languages' if subset == OVERALL else subset})",
                        dataset_config=subset,
                        dataset_split=self.split,
                        dataset_revision=revision,
                        metric_type=metric,
                        metric_name=display,
                        metric_value=value,
                        source_name="cie10 evaluation harness" if source_url else None,
                        source_url=source_url,
                    )
                )
        return results

    def metrics_table(self, labels: dict[str, str], highlight: str) -> str:
        """Per-language table: one row per (language, system), `MODEL_INDEX_METRICS` as columns."""
        header = "| language | system | queries | " + " | ".join(MODEL_INDEX_METRICS.values()) + " |"
        lines = [header, "|---|---|---:|" + "---:|" * len(MODEL_INDEX_METRICS)]
        for subset in self.subsets:
            for role, label in labels.items():
                system = self.systems[role]
                entry = system.entry(subset) or {}
                cells = [format_score(system.score(subset, metric)) for metric in MODEL_INDEX_METRICS]
                if role == highlight:
                    label = f"**{label}**"
                    cells = [f"**{cell}**" for cell in cells]
                queries = entry.get("num_queries", "-")
                lines.append(f"| {subset} | {label} | {queries} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def gain_table(self, role: str, baseline: str) -> str:
        """Per language: `baseline → system (Δ)` at each cut-off; `*` where the paired bootstrap CI excludes 0."""
        system, base = self.systems[role], self._paired(role, baseline)
        lines = [
            "| language | " + " | ".join(GAIN_METRICS.values()) + " |",
            "|---|" + "---|" * len(GAIN_METRICS),
        ]
        for subset in self.subsets:
            cells = []
            for metric in GAIN_METRICS:
                before, after = base.score(subset, metric), system.score(subset, metric)
                if before is None or after is None:
                    cells.append("-")
                    continue
                mark = "*" if self._excludes_zero(system, base, subset, metric) else ""
                cells.append(f"{before:.3f} → {after:.3f} ({after - before:+.3f}{mark})")
            lines.append(f"| {subset} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def has_interval(self, role: str, baseline: str) -> bool:
        """Whether one harness run compared these two systems (so the table can mark significant gains)."""
        system, base = self.systems[role], self._paired(role, baseline)
        if system.file != base.file:
            return False
        pairs = {(e.get("system"), e.get("baseline")) for e in (*system.run.learning_gain, *system.run.comparisons)}
        return (system.name, base.name) in pairs

    def _paired(self, role: str, baseline: str) -> ScoredSystem:
        """The baseline as scored in the same run as `role` when there is one (its comparisons are paired)."""
        file = self.systems[role].file
        same_run = [c for c in self.candidates.get(baseline, []) if c.file == file]
        return same_run[0] if same_run else self.systems[baseline]

    def _excludes_zero(self, system: ScoredSystem, base: ScoredSystem, subset: str, metric: str) -> bool:
        found = self._comparison(system, base, subset, metric)
        return bool(found and found.get("excludes_zero"))

    @staticmethod
    def _comparison(system: ScoredSystem, base: ScoredSystem, subset: str, metric: str) -> dict[str, Any] | None:
        if system.file != base.file:
            return None  # the bootstrap pairs queries: only one run's comparisons are paired
        for entry in (*system.run.learning_gain, *system.run.comparisons):
            if (entry.get("system"), entry.get("baseline"), entry.get("language"), entry.get("metric")) == (
                system.name,
                base.name,
                subset,
                metric,
            ):
                return entry
        return None


def _role(system: SystemScores, bi: Artifact, reranker: Artifact) -> str | None:
    """The card role of one system of a results file, or None when it is none of this release's four."""
    model = system.model or {}
    if model.get("kind") == "bm25":
        return BM25 if system.name == BM25 else f"{BM25}:{system.name}"
    if system.name == BASE_SYSTEM_NAME or model.get("id") == "default":
        return BASE
    if not bi.matches(model) or system.name == TITLES_BASELINE:  # the bi-encoder over a cut-down index
        return None
    if model.get("reranker"):
        return PIPELINE if reranker.matches(model["reranker"]) else None
    return BI


def _same_dataset(run: EvaluationRun, synth_folder: Path, synth_id: str) -> bool:
    path = run.dataset.get("path")
    if path and Path(path).resolve() == synth_folder.resolve():
        return True
    return run.dataset.get("id") == synth_id


def find_results(root: Path) -> list[Path]:
    """Every `results.json` under `root` (what `cie10 evaluate --out root` leaves)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(root.rglob("results.json")) if root.is_dir() else []


def load_release_scores(
    paths: Sequence[Path],
    *,
    bi: Artifact,
    reranker: Artifact,
    synth_folder: Path,
    synth_id: str,
    explicit: bool = True,
) -> ReleaseScores:
    """The four systems of a release from harness results files (newest run first when two score one system).

    With `explicit`, every file must be about this release's bi-encoder and dataset; otherwise (files found by
    searching a folder) the others are skipped.
    """
    runs: list[tuple[Path, EvaluationRun]] = []
    for path in paths:
        file = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
        try:
            run = load_run(file)
        except (OSError, ValueError, TypeError, KeyError) as error:
            if explicit:
                raise ResultsError(f"cannot read harness results {file}: {error}") from error
            logger.debug("skipping %s: %s", file, error)
            continue
        problem = None
        if not _same_dataset(run, synth_folder, synth_id):
            where = run.dataset.get("id") or run.dataset.get("path")
            problem = f"it scores the dataset {where}, not {synth_id} ({synth_folder})"
        elif not any(bi.matches(system.model) for system in run.systems):
            problem = f"no system in it is the bi-encoder being released ({bi.folder} or {bi.repo_id})"
        if problem:
            if explicit:
                raise ResultsError(f"harness results {file} do not describe this release: {problem}")
            logger.debug("skipping %s: %s", file, problem)
            continue
        runs.append((file, run))
    runs.sort(key=lambda item: (item[1].date, str(item[0])), reverse=True)
    candidates: dict[str, list[ScoredSystem]] = {}
    for file, run in runs:
        for system in run.systems:
            role = _role(system, bi, reranker)
            if role is not None:
                candidates.setdefault(role, []).append(ScoredSystem(role, system, run, file))
    systems = {role: found[0] for role, found in candidates.items()}
    missing = [name for role, name in _REQUIRED.items() if role not in systems]
    if not any(role.startswith(BM25) for role in systems):
        missing.append("BM25")
    if missing:
        raise ResultsError(
            f"the harness results ({', '.join(str(f) for f, _ in runs) or 'none found'}) lack: "
            f"{', '.join(missing)}. {evaluate_hint(bi.folder, reranker.folder, synth_folder)}"
        )
    _check_consistent([system for found in candidates.values() for system in found])
    chosen = sorted({system.file for system in systems.values()})
    logger.info("harness results: %s", ", ".join(str(file) for file in chosen))
    return ReleaseScores(systems, chosen, candidates)


_REQUIRED: dict[str, str] = {
    BI: "the bi-encoder alone",
    PIPELINE: "the bi-encoder + reranker",
    BASE: "the base model (baseline `base`)",
}


def evaluate_hint(bi: Path, reranker: Path, synth: Path) -> str:
    """The `cie10 evaluate` commands that write what a release needs."""
    return (
        "Score them with the harness first:\n"
        f"  cie10 evaluate --model {bi} --dataset {synth} --out results/release/bi\n"
        f"  cie10 evaluate --model {bi} --reranker {reranker} --dataset {synth} --out results/release/bi-rerank\n"
        "(BM25 and the base model are the default baselines), then pass --results results/release."
    )


def _check_consistent(systems: list[ScoredSystem]) -> None:
    """Every system must have scored the same split, languages and codes: otherwise the table compares nothing."""
    keys = {}
    for system in systems:
        run = system.run
        key = (
            run.dataset.get("split"),
            tuple(run.dataset.get("languages") or ()),
            run.dataset.get("num_queries"),
            run.catalog.get("version"),
            run.catalog.get("num_codes_searched"),
        )
        keys.setdefault(key, []).append(f"{system.name} ({system.file})")
    if len(keys) > 1:
        described = "; ".join(
            f"split {k[0]}, {k[2]} queries, {k[4]} codes searched: {', '.join(v)}" for k, v in keys.items()
        )
        raise ResultsError(f"the harness results disagree on what was scored: {described}")
