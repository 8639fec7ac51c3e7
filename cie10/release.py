"""`cie10 release`: publish a whole release, every repo tagged with its version, the cards pointing at each other.

    result = release(ReleaseConfig(version="v1.0"))

The recipe, top to bottom:

1. check the inputs (every artifact folder) and the target (the Hub answers; a token for the real Hub);
2. read the harness results, the synthetic dataset and the catalogue; load both models the way users will;
3. stage every repo in a temporary folder: the artifact (hard links, so nothing large is copied) and its card;
4. validate every staged card with `huggingface_hub`'s parsers (and the models' `model-index` against the JSON);
5. check the versions already on the Hub: a repo that has this version must hold exactly the staged content;
6. publish in order: codes dataset, synthetic dataset, bi-encoder (with its code index), reranker, metric, Space;
7. read every card back from the Hub at the new version.

Nothing is published until steps 1-5 pass, so a missing artifact, a bad card or a version already taken by other
content changes nothing. Each publish is atomic and tags are never moved: re-running a release is a no-op, and
earlier versions always stay as they were. A failure during step 6 (the network, say) leaves the repos before it
at the new version; running the same command again completes the release.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cie10 import hub
from cie10.errors import Cie10Error
from cie10.fusion import RERANK_EVIDENCE_FILE, rerank_comparison
from cie10.model_cards import ReleaseRepo, ReleaseRepos, default_citation
from cie10.settings import get_settings

if TYPE_CHECKING:
    from cie10.model_cards.scores import Artifact

logger = logging.getLogger(__name__)

Target = Literal["local", "hub"]
RESULTS_DIR = Path("results")
"""Where `cie10 evaluate` writes its runs (`--out`, default `results/`): searched when no `--results` is given."""
SKIPPED = frozenset({".git", ".cache", "__pycache__", ".ipynb_checkpoints"})
HARNESS_RESULTS_FILE = "eval/results.json"
"""Where a model repo ships the harness JSON its card's numbers come from."""
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ReleaseError(Cie10Error):
    """A release cannot go ahead (or stopped part-way): one message that says what to do."""


def check_rerank_evidence(path: Path, bi: Artifact, reranker: Artifact) -> None:
    """The Space's reranking default comes from this file: it must compare the two-stage system of the very models
    being released with their bi-encoder's order (a ReleaseError otherwise)."""
    results = json.loads(path.read_text(encoding="utf-8"))
    rerank_comparison(results, path)
    model = results.get("model") or {}
    if not (bi.matches(model) and reranker.matches(model.get("reranker"))):
        measured = model.get("path") or model.get("id") or "an unnamed model"
        raise ReleaseError(
            f"{path} measured {measured}, not the bi-encoder and reranker being released ({bi.folder}, "
            f"{reranker.folder}): evaluate them with `cie10 evaluate codiesp --model {bi.folder} "
            f"--reranker {reranker.folder} --baseline bi-order` and pass that results.json"
        )


def _default_synth() -> Path:
    from cie10.generation.config import SYNTH_REPO_NAME

    return get_settings().home / "build" / SYNTH_REPO_NAME


def _default_harness() -> Path:
    from cie10.eval_harness import MODULE_DIR

    return MODULE_DIR


@dataclass
class ReleaseConfig:
    """What `cie10 release` publishes; the defaults are where `make quickstart` leaves each artifact."""

    version: str
    target: Target = "local"
    bi: Path = Path("models/cie10-bi/final")
    """`cie10 train bi-encoder` output (with `code_index/`)."""
    reranker: Path = Path("models/cie10-rerank/final")
    """`cie10 train reranker` output."""
    synth: Path = field(default_factory=_default_synth)
    """`cie10 generate` output folder."""
    results: list[Path] = field(default_factory=list)
    """Harness `results.json` files or folders holding them (default: every run under `results/` that scored
    these models on this dataset)."""
    rerank_evidence: Path | None = None
    """A harness `results.json` (CodiEsp dev mentions) comparing the two-stage system with its `bi-order` baseline:
    the reranker repo ships it, and the Space reranks by default only when the gain's interval is above 0."""
    space: Path = Path("space")
    """The Gradio Space folder."""
    harness: Path = field(default_factory=_default_harness)
    """The `evaluate` module folder, published as the metric Space."""
    codes: Path | None = None
    """A `cie10 codes export` folder of the installed catalogue (default: written now, about 20 s)."""
    citation: Path | None = None
    """A BibTeX file: the study's citation on every card (default: the project's software citation)."""
    stage_dir: Path | None = None
    """Keep the staged repos here (default: a temporary folder, removed at the end)."""
    dry_run: bool = False
    """Stage and validate only; publish nothing."""


@dataclass
class PublishedRepo:
    """One repo of a release: where it went, the commit of its version, and whether this run changed it."""

    repo: ReleaseRepo
    folder: Path
    sha: str | None = None
    status: Literal["staged", "published", "unchanged"] = "staged"


@dataclass
class ReleaseResult:
    """The repos of a release, in publishing order."""

    version: str
    target: Target
    repos: list[PublishedRepo]
    stage_dir: Path | None = None

    @property
    def unchanged(self) -> bool:
        """Whether the run changed nothing (every repo already had this version with this content)."""
        return all(item.status == "unchanged" for item in self.repos)

    def table(self) -> str:
        """One line per repo: type, id, version, commit, what happened."""
        lines = [f"release {self.version} ({self.target}):"]
        for item in self.repos:
            sha = item.sha[:12] if item.sha else "-" * 12
            lines.append(f"  {item.repo.repo_type:8} {item.repo.repo_id:40} {self.version:8} {sha}  {item.status}")
        return "\n".join(lines)


def release(config: ReleaseConfig) -> ReleaseResult:
    """Stage, validate, then publish every repo of the release in order (see the module docstring)."""
    # 1. Check the inputs and the target
    repos = ReleaseRepos.for_version(config.version)
    check_inputs(config)
    if not config.dry_run:
        check_target(config.target)

    # 2.-3. Read the evaluation, the data and the models; stage every repo with its card
    keep = config.stage_dir is not None
    stage_root = Path(config.stage_dir) if keep else _temporary_stage(config.version)
    try:
        staged = stage_release(config, repos, stage_root)

        # 4. Validate every card with huggingface_hub's parsers
        validate_staged(staged)
        result = ReleaseResult(config.version, config.target, staged.published, stage_root if keep else None)
        if config.dry_run:
            logger.info("dry run: release %s staged and valid in %s; nothing published", config.version, stage_root)
            return result

        # 5. Versions already on the Hub must hold exactly what is staged
        existing = check_existing_versions(result)

        # 6. Publish in order
        publish_in_order(result, existing)

        # 7. Read every card back at the new version
        verify_published(result)
    finally:
        if not keep:
            shutil.rmtree(stage_root, ignore_errors=True)
    logger.info("release %s %s", config.version, "was already published" if result.unchanged else "published")
    return result


def _temporary_stage(version: str) -> Path:
    """A fresh folder under `<CIE10_HOME>/build`, where hard links to the artifacts usually work (same disk)."""
    parent = get_settings().home / "build"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".release-{version}-", dir=parent))


# ---------------------------------------------------------------------------------------- 1. checks
def check_inputs(config: ReleaseConfig) -> None:
    """The version is a valid tag and every artifact folder exists (all problems reported at once)."""
    if not _VERSION.match(config.version) or config.version == hub.MAIN_BRANCH:
        raise ReleaseError(f"invalid version {config.version!r}: expected a tag such as v1.0")
    expected = {
        "bi-encoder": (config.bi, "cie10 train bi-encoder"),
        "reranker": (config.reranker, "cie10 train reranker"),
        "synthetic dataset": (config.synth, "cie10 generate"),
        "Space folder": (config.space, "the project's space/ folder"),
        "metric module": (config.harness, "cie10/eval_harness/cie10_retrieval"),
    }
    if config.codes is not None:
        expected["codes dataset"] = (config.codes, "cie10 codes export")
    missing = [f"{what} {path} (made by {how})" for what, (path, how) in expected.items() if not Path(path).is_dir()]
    if config.citation is not None and not Path(config.citation).is_file():
        missing.append(f"citation file {config.citation}")
    if missing:
        raise ReleaseError("cannot release " + config.version + ": missing " + "; ".join(missing))


def check_target(target: Target) -> None:
    """The Hub answers; `local` needs HF_ENDPOINT on the local Hub, `hub` a token."""
    if target == "local" and not hub.is_local_endpoint():
        raise ReleaseError(
            f"--target local publishes to the local Hub, but HF_ENDPOINT is {hub.endpoint()}: start it with "
            "`cie10 hub serve` and set HF_ENDPOINT=http://127.0.0.1:8090 (or use --target hub)"
        )
    if target == "hub":
        from huggingface_hub import get_token

        if hub.is_local_hub():
            raise ReleaseError(
                f"--target hub uploads to HF_ENDPOINT, which is the local Hub ({hub.endpoint()}): unset HF_ENDPOINT "
                "for the real Hub, or use --target local"
            )

        if not get_token():
            raise ReleaseError("--target hub needs a Hub token with write access: set HF_TOKEN or run `hf auth login`")
    try:
        hub.check_endpoint()
    except hub.HubError as error:
        raise ReleaseError(str(error)) from error


# ---------------------------------------------------------------------------------------- 2.-3. stage
@dataclass
class StagedRelease:
    """The staged repos and what their cards must show."""

    published: list[PublishedRepo]
    expected_results: dict[str, list[tuple[str | None, str, float]]] = field(default_factory=dict)
    """repo key → (config, metric, value) of every `model-index` entry, from the harness JSON."""


def stage_release(config: ReleaseConfig, repos: ReleaseRepos, root: Path) -> StagedRelease:
    """Every repo of the release as a folder under `root` (artifact + card), in publishing order."""
    from cie10.catalog import load_catalog
    from cie10.model_cards.dataset_cards import build_codes_card, build_synth_card, read_synth
    from cie10.model_cards.model_card import build_model_card, check_model_folder, inspect_model
    from cie10.model_cards.scores import BI, PIPELINE, Artifact, find_results, load_release_scores
    from cie10.model_cards.space_cards import (
        build_metric_card,
        build_space_card,
        check_metric_folder,
        check_space_folder,
    )

    root.mkdir(parents=True, exist_ok=True)
    folders = {repo.key: root / repo.key for repo in repos.ordered()}
    for folder in folders.values():
        if folder.exists():
            shutil.rmtree(folder)
    citation = Path(config.citation).read_text(encoding="utf-8").strip() if config.citation else None
    citation = citation or default_citation(repos)

    check_model_folder("bi-encoder", Path(config.bi))
    check_model_folder("reranker", Path(config.reranker))
    for folder in (Path(config.bi), Path(config.reranker)):
        ensure_onnx(folder)
    check_space_folder(Path(config.space))
    check_metric_folder(Path(config.harness), repos)
    bi_artifact = Artifact(Path(config.bi), repos.bi.repo_id)
    reranker_artifact = Artifact(Path(config.reranker), repos.reranker.repo_id)
    if config.rerank_evidence is not None:
        check_rerank_evidence(Path(config.rerank_evidence), bi_artifact, reranker_artifact)
    synth = read_synth(Path(config.synth))
    logger.info("release %s: reading the harness results and the catalogue", config.version)
    catalog = load_catalog()
    explicit = bool(config.results)
    paths = [p for root_ in (config.results or [RESULTS_DIR]) for p in find_results(Path(root_))]
    scores = load_release_scores(
        paths,
        bi=bi_artifact,
        reranker=reranker_artifact,
        synth_folder=Path(config.synth),
        synth_id=repos.synth.repo_id,
        explicit=explicit,
    )

    logger.info("release %s: loading the bi-encoder and the reranker", config.version)
    languages = sorted({*synth.languages, "en"})
    models = {
        "bi": inspect_model("bi-encoder", Path(config.bi), repos, languages),
        "reranker": inspect_model("reranker", Path(config.reranker), repos, languages),
    }

    logger.info("release %s: staging %d repos in %s", config.version, len(folders), root)
    from cie10.codes_dataset import write_codes_dataset

    if config.codes is None:
        write_codes_dataset(catalog, folders["codes"])
    else:
        link_tree(Path(config.codes), folders["codes"])
    rows = _parquet_rows(folders["codes"] / "data" / "codes.parquet")
    if rows != len(catalog):
        raise ReleaseError(
            f"{config.codes} holds {rows} codes, the installed catalogue ({catalog.version}) {len(catalog)}: "
            "export it again with `cie10 codes export` or leave --codes out"
        )
    build_codes_card(catalog, rows, repos, citation=citation).save(folders["codes"] / "README.md")

    link_tree(Path(config.synth), folders["synth"])
    build_synth_card(synth, repos, catalog_version=catalog.version, citation=citation).save(
        folders["synth"] / "README.md"
    )

    expected: dict[str, list[tuple[str | None, str, float]]] = {}
    for key, role in (("bi", BI), ("reranker", PIPELINE)):
        artifact = models[key]
        link_tree(artifact.folder, folders[key])
        card = build_model_card(
            artifact, repos=repos, scores=scores, synth=synth, catalog_version=catalog.version, citation=citation
        )
        card.save(folders[key] / "README.md")
        results_copy = folders[key] / HARNESS_RESULTS_FILE
        results_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scores.systems[role].file, results_copy)
        expected[key] = [(r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results or []]

    if config.rerank_evidence is not None:
        evidence = folders["reranker"] / RERANK_EVIDENCE_FILE
        evidence.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config.rerank_evidence, evidence)

    link_tree(Path(config.harness), folders["metric"])
    build_metric_card(Path(config.harness), repos).save(folders["metric"] / "README.md")

    link_tree(Path(config.space), folders["space"])
    # `cie10` is not on PyPI: the Space ships the package beside app.py, at the release's exact code
    link_tree(Path(__file__).parent, folders["space"] / "cie10", skip_files=())
    build_space_card(Path(config.space), repos).save(folders["space"] / "README.md")

    published = [PublishedRepo(repo, folders[repo.key]) for repo in repos.ordered()]
    return StagedRelease(published, expected)


def ensure_onnx(folder: Path) -> None:
    """Export a model folder to ONNX (`onnx/`: float32, int8, quality.json) unless it holds today's export."""
    from cie10.inference.export import export_is_current, export_onnx

    if not export_is_current(folder):
        logger.info("%s has no current onnx/ export: exporting it now (about a minute per model)", folder)
        export_onnx(folder)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def link_tree(source: Path, dest: Path, skip_files: tuple[str, ...] = ("README.md",)) -> Path:
    """Mirror `source` into `dest` with hard links (copies across file systems), symlinks resolved.

    The top-level `README.md` is left out: the release writes its own card there (never through a link).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for directory, subdirs, files in os.walk(source, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED)
        relative = Path(directory).relative_to(source)
        for name in sorted(files):
            if (relative == Path(".") and name in skip_files) or name.endswith(".pyc"):
                continue
            src = Path(directory, name).resolve()
            if not src.is_file():
                continue
            target = dest / relative / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, target)
            except OSError:
                shutil.copy2(src, target)
    return dest


# ---------------------------------------------------------------------------------------- 4. validate
def validate_staged(staged: StagedRelease) -> None:
    """Parse every staged card as the Hub's clients will; the models' `model-index` must be the harness's numbers."""
    from huggingface_hub import DatasetCard, ModelCard, SpaceCard

    from cie10.model_cards.scores import format_score

    classes = {"model": ModelCard, "dataset": DatasetCard, "space": SpaceCard}
    for item in staged.published:
        readme = item.folder / "README.md"
        try:
            card = classes[item.repo.repo_type].load(readme)
        except Exception as error:  # noqa: BLE001 - any parse failure stops the release
            raise ReleaseError(f"the card of {item.repo.repo_id} does not parse: {error}") from error
        if item.repo.repo_type != "model":
            continue
        got = [(r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results or []]
        if not got or got != staged.expected_results[item.repo.key]:
            raise ReleaseError(f"the model-index of {item.repo.repo_id} does not read back as the harness's numbers")
        missing = [value for _, _, value in got if format_score(value) not in card.text]
        if missing:
            raise ReleaseError(f"the card of {item.repo.repo_id} lacks {len(missing)} of its model-index values")
    logger.info("all %d cards parse; model-index values match the harness results", len(staged.published))


# ---------------------------------------------------------------------------------------- 5. existing versions
def check_existing_versions(result: ReleaseResult) -> set[str]:
    """Keys of the repos that already hold this version with the staged content; any other holder is an error."""
    api = hub._hf_api()
    same: set[str] = set()
    conflicts = []
    for item in result.repos:
        repo = item.repo
        if result.version not in hub.list_tags(repo.repo_id, repo.repo_type):
            continue
        files = hub._folder_files(item.folder)
        if hub._remote_matches(api, repo.repo_id, repo.repo_type, result.version, files):
            same.add(repo.key)
        else:
            conflicts.append(repo.repo_id)
    if conflicts:
        raise ReleaseError(
            f"version {result.version} of {', '.join(conflicts)} already exists with different content (published "
            "by an earlier release or outside `cie10 release`): release a new version instead; nothing was published"
        )
    if same:
        logger.info("already at %s with this content: %s", result.version, ", ".join(sorted(same)))
    return same


# ---------------------------------------------------------------------------------------- 6. publish
def publish_in_order(result: ReleaseResult, existing: set[str]) -> None:
    """`publish_folder` each staged repo (atomic per repo; a repo already at this version is a no-op)."""
    for position, item in enumerate(result.repos):
        repo = item.repo
        try:
            item.sha = hub.publish_folder(
                item.folder,
                repo.repo_id,
                repo.repo_type,
                version=result.version,
                target=result.target,
                commit_message=f"Release {result.version}",
            )
        except Exception as error:
            done = [f"{i.repo.repo_id}" for i in result.repos[:position]]
            raise ReleaseError(
                f"publishing {repo.repo_id} ({repo.repo_type}) at {result.version} failed: {error}. "
                f"Already at {result.version}: {', '.join(done) or 'none'}; earlier versions are untouched. Run the "
                "same command again to complete the release."
            ) from error
        item.status = "unchanged" if repo.key in existing else "published"


# ---------------------------------------------------------------------------------------- 7. verify
def verify_published(result: ReleaseResult) -> None:
    """Read every card back from the Hub at the new version (what users' clients will get)."""
    from huggingface_hub import DatasetCard, ModelCard, SpaceCard

    classes = {"model": ModelCard, "dataset": DatasetCard, "space": SpaceCard}
    for item in result.repos:
        repo = item.repo
        try:
            path = hub.download_file(repo.repo_id, "README.md", repo_type=repo.repo_type, revision=result.version)
            classes[repo.repo_type].load(path)
        except Exception as error:
            raise ReleaseError(
                f"{repo.repo_id} was published at {result.version} but its card does not read back: {error}"
            ) from error
    logger.info("every card reads back from %s at %s", hub.endpoint(), result.version)
