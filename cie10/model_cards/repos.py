"""The repos of a release, in publishing order, and the cross-link table every card carries (id and revision)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from cie10.codes_dataset import CODES_REPO_NAME
from cie10.hub import HUB_URL, RepoType
from cie10.settings import get_settings
from cie10.training.config import BI_ENCODER_REPO_NAME, RERANKER_REPO_NAME, SYNTH_REPO_NAME

METRIC_REPO_NAME = "cie10_retrieval"
"""The harness's `evaluate` module as a metric Space: `evaluate.load("<org>/cie10_retrieval")` runs the script
named after the repo, `cie10_retrieval.py`, so the repo keeps the module's name."""
SPACE_REPO_NAME = "cie10-search"
"""The Gradio Space (`space/`)."""


@dataclass(frozen=True)
class ReleaseRepo:
    """One Hub repo of a release."""

    key: str
    repo_id: str
    repo_type: RepoType
    title: str

    @property
    def kind(self) -> str:
        """What it is in words (`model`, `dataset`, `Space`)."""
        return "Space" if self.repo_type == "space" else self.repo_type

    def url(self, revision: str | None = None) -> str:
        """Its page on the Hub (huggingface.co, whatever the target: the cards are written for the Hub)."""
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{HUB_URL}/{prefix}{self.repo_id}" + (f"/tree/{revision}" if revision else "")


@dataclass(frozen=True)
class ReleaseRepos:
    """Every repo of release `version`, as fields in publishing order."""

    version: str
    codes: ReleaseRepo
    synth: ReleaseRepo
    bi: ReleaseRepo
    reranker: ReleaseRepo
    metric: ReleaseRepo
    space: ReleaseRepo

    @classmethod
    def for_version(cls, version: str, org: str | None = None) -> ReleaseRepos:
        """The repos under `<org>` (default: `CIE10_ORG`)."""
        org = org or get_settings().org
        return cls(
            version=version,
            codes=ReleaseRepo("codes", f"{org}/{CODES_REPO_NAME}", "dataset", "ICD-10-CM code catalogue"),
            synth=ReleaseRepo("synth", f"{org}/{SYNTH_REPO_NAME}", "dataset", "synthetic clinical mentions"),
            bi=ReleaseRepo("bi", f"{org}/{BI_ENCODER_REPO_NAME}", "model", "bi-encoder with its code index"),
            reranker=ReleaseRepo("reranker", f"{org}/{RERANKER_REPO_NAME}", "model", "cross-encoder reranker"),
            metric=ReleaseRepo("metric", f"{org}/{METRIC_REPO_NAME}", "space", "evaluation metric (evaluate)"),
            space=ReleaseRepo("space", f"{org}/{SPACE_REPO_NAME}", "space", "search demo (Gradio)"),
        )

    def ordered(self) -> list[ReleaseRepo]:
        """Codes, synthetic data, bi-encoder, reranker, metric, Space: the publishing order."""
        return [getattr(self, f.name) for f in fields(self) if f.name != "version"]

    def table(self, current: str | None = None) -> str:
        """Markdown table of the release's repos, pinned to its version; `current` (a key) is marked."""
        lines = ["| repo | what | revision |", "|---|---|---|"]
        for repo in self.ordered():
            name = f"[`{repo.repo_id}`]({repo.url(self.version)})"
            if repo.key == current:
                name += " (this repo)"
            lines.append(f"| {name} | {repo.kind}: {repo.title} | `{self.version}` |")
        return "\n".join(lines)
