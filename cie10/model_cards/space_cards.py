"""Space cards of a release: the Gradio Space (`<org>/cie10-search`) and the metric Space (`<org>/cie10_retrieval`).

Both folders arrive with their own `README.md` (its YAML header is the Space's configuration): the release keeps
it, lists the release's models and datasets in the header (Space only) and appends a "Release" section that names
every repo of the release by id and revision.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jinja2
from huggingface_hub import SpaceCard, SpaceCardData

from cie10.errors import Cie10Error
from cie10.model_cards.render import TEMPLATES, render
from cie10.model_cards.repos import ReleaseRepos

logger = logging.getLogger(__name__)


class SpaceFolderError(Cie10Error):
    """A Space folder lacks its app (or its metric script)."""


def check_space_folder(folder: Path) -> None:
    """The Space folder holds the app its card names (`app_file`, default `app.py`)."""
    folder = Path(folder)
    readme = folder / "README.md"
    app_file = (SpaceCard.load(readme).data.get("app_file") if readme.is_file() else None) or "app.py"
    if not (folder / app_file).is_file():
        raise SpaceFolderError(f"Space folder {folder} has no {app_file} (the app its card names)")


def check_metric_folder(folder: Path, repos: ReleaseRepos) -> None:
    """The metric folder is an `evaluate` module named after its repo, with a card."""
    script = Path(folder) / f"{repos.metric.repo_id.split('/')[-1]}.py"
    if not script.is_file() or not (Path(folder) / "README.md").is_file():
        raise SpaceFolderError(f"metric folder {folder} lacks {script.name} or README.md (an `evaluate` module)")


def release_section(repos: ReleaseRepos, current: str, what: str, *, space: bool = False) -> str:
    """The "Release <version>" section appended to a Space's card."""
    template = jinja2.Template((TEMPLATES / "release_section.md").read_text(encoding="utf-8"))
    return template.render(
        version=repos.version, what=what, release_table=repos.table(current=current), space=space
    ).strip()


def _append(card: SpaceCard, section: str) -> SpaceCard:
    card.text = card.text.rstrip() + "\n\n" + section + "\n"
    return SpaceCard(card.content)


def build_space_card(folder: Path, repos: ReleaseRepos) -> SpaceCard:
    """The Gradio Space's card: its README (or a default one), with `models`/`datasets` and the release section."""
    folder = Path(folder)
    readme = folder / "README.md"
    if readme.is_file():
        card = SpaceCard.load(readme)
    else:
        import gradio

        data = SpaceCardData(
            title="CIE-10 / ICD-10-CM code search",
            sdk="gradio",
            sdk_version=gradio.__version__,
            app_file="app.py",
            license="apache-2.0",
            short_description="Multilingual ICD-10-CM code search: bi-encoder + reranker",
        )
        card = render(
            SpaceCard,
            data,
            "space.md",
            title=data.title,
            bi_id=repos.bi.repo_id,
            bi_url=repos.bi.url(repos.version),
            reranker_id=repos.reranker.repo_id,
            reranker_url=repos.reranker.url(repos.version),
        )
    check_space_folder(folder)
    card.data.models = [repos.bi.repo_id, repos.reranker.repo_id]
    card.data.datasets = [repos.codes.repo_id, repos.synth.repo_id]
    what = (
        f"This Space searches with [`{repos.bi.repo_id}`]({repos.bi.url(repos.version)}) and "
        f"[`{repos.reranker.repo_id}`]({repos.reranker.url(repos.version)}) over the codes of "
        f"[`{repos.codes.repo_id}`]({repos.codes.url(repos.version)})."
    )
    return _append(card, release_section(repos, "space", what, space=True))


def build_metric_card(folder: Path, repos: ReleaseRepos) -> SpaceCard:
    """The metric Space's card (the `evaluate` module's README), with the release section."""
    check_metric_folder(folder, repos)
    card = SpaceCard.load(Path(folder) / "README.md")
    what = (
        f"The numbers on the cards of [`{repos.bi.repo_id}`]({repos.bi.url(repos.version)}) and "
        f"[`{repos.reranker.repo_id}`]({repos.reranker.url(repos.version)}) were computed with this module's "
        f"metrics (`cie10 evaluate`) on the test split of [`{repos.synth.repo_id}`]({repos.synth.url(repos.version)})."
    )
    return _append(card, release_section(repos, "metric", what))
