"""Model cards of a release: the bi-encoder (`<org>/cie10-bi`) and the reranker (`<org>/cie10-rerank`).

The card starts from sentence-transformers' own card: the one training wrote (`generated_from_trainer`, with its
hyperparameters, training logs and dataset statistics), or, for a folder without one, a card generated now from
`SentenceTransformerModelCardData` / `CrossEncoderModelCardData`. Its metadata is then completed through
`huggingface_hub.ModelCardData`: languages, license, the exact base model, the datasets by Hub id and the
`model-index`, built as `EvalResult`s from the harness's JSON. The project's template adds the per-language table,
the learning gain, usage, intended use, limitations, data versions, base-model provenance and the citation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from huggingface_hub import ModelCard, ModelCardData

from cie10.errors import Cie10Error
from cie10.model_cards.dataset_cards import SynthData
from cie10.model_cards.render import bullet_list, demote_headings, has_content, render, split_sections, strip_comments
from cie10.model_cards.repos import ReleaseRepos
from cie10.model_cards.scores import BASE, BI, MODEL_INDEX_METRICS, PIPELINE, ReleaseScores

logger = logging.getLogger(__name__)

ModelKind = Literal["bi-encoder", "reranker"]
SUMMARY_FILE = "run_summary.json"
PROVENANCE_FILE = "provenance.json"
TRAINED_TAG = "generated_from_trainer"
"""sentence-transformers tags the cards its trainer wrote: those carry hyperparameters and training logs."""
DROPPED_ST_SECTIONS = frozenset({"Usage", "Base model provenance", "Additional Resources"})
"""Sections of sentence-transformers' card that the project's template replaces."""
CARD_TAGS: tuple[str, ...] = ("cie10", "icd-10", "icd-10-cm", "cie-10", "clinical-coding", "medical", "multilingual")


class ModelFolderError(Cie10Error):
    """A model folder is incomplete, does not load, or does not say what it was trained from."""


@dataclass(frozen=True)
class BaseModel:
    """What a released model was fine-tuned from: the Hub model it is (or copies) and its provenance."""

    hub_id: str | None
    name: str
    description: str
    license: str | None
    details: tuple[str, ...] = ()

    @property
    def is_embedded(self) -> bool:
        """Whether it is the embedded dequantized multilingual-e5-small (`cie10 models build-default`)."""
        from cie10.embedded_model import DEFAULT_MODEL_NAME

        return self.name == DEFAULT_MODEL_NAME


def _provenance_details(provenance: dict[str, Any]) -> tuple[str, ...]:
    """The embedded model's build, in card lines (from its `provenance.json`)."""
    weights = provenance.get("weights_source") or {}
    tokenizer = provenance.get("tokenizer_source") or {}
    lines = []
    if weights:
        lines.append(
            f"**Weights:** `{weights.get('package')}=={weights.get('version')}`, file `{weights.get('file')}` "
            f"(sha256 `{weights.get('sha256')}`): {provenance.get('weights', '')}"
        )
    if tokenizer:
        lines.append(
            f"**Tokenizer:** the original `tokenizer.json` from `{tokenizer.get('package')}=="
            f"{tokenizer.get('version')}` (sha256 `{tokenizer.get('sha256')}`)"
        )
    if provenance.get("pooler"):
        lines.append(f"**Pooler:** {provenance['pooler']}")
    if provenance.get("build_format") is not None:
        lines.append(f"**Built by:** `cie10 models build-default` (build format {provenance['build_format']})")
    return tuple(lines)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def base_model_of(folder: Path) -> BaseModel:
    """The base model of a training output (`run_summary.json`) or of the embedded build (`provenance.json`)."""
    from cie10 import embedded_model

    summary = _read_json(folder / SUMMARY_FILE)
    if summary and summary.get("base_model"):
        base = summary["base_model"]
        name = base.get("name") or ""
        provenance = None
        if name == embedded_model.DEFAULT_MODEL_NAME:
            provenance = _read_json(Path(base.get("load_path") or "") / PROVENANCE_FILE)
            provenance = provenance or embedded_model.model_info().get("provenance")
        return BaseModel(
            hub_id=base.get("hub_id"),
            name=name,
            description=base.get("description") or "",
            license=base.get("license"),
            details=_provenance_details(provenance) if provenance else (),
        )
    provenance = _read_json(folder / PROVENANCE_FILE)
    if provenance and provenance.get("original_model"):
        return BaseModel(
            hub_id=provenance["original_model"],
            name=provenance.get("name") or embedded_model.DEFAULT_MODEL_NAME,
            description=provenance.get("description") or embedded_model.EMBEDDED_MODEL_DESCRIPTION,
            license=provenance.get("original_license"),
            details=_provenance_details(provenance),
        )
    raise ModelFolderError(
        f"cannot tell which base model {folder} comes from: it has no {SUMMARY_FILE} (written by `cie10 train`) "
        f"or {PROVENANCE_FILE} (the embedded base model); the card must name it"
    )


@dataclass
class ModelArtifact:
    """A model folder checked for release: it loads, its base model is known, and its sentence-transformers card."""

    kind: ModelKind
    folder: Path
    base: BaseModel
    st_card: ModelCard
    trained: bool
    """Whether `st_card` is the one training wrote (with hyperparameters), rather than one generated now."""
    summary: dict[str, Any] = field(default_factory=dict)
    index_meta: dict[str, Any] = field(default_factory=dict)


def check_model_folder(kind: ModelKind, folder: Path) -> BaseModel:
    """The cheap checks, before anything loads: weights, config, code index (bi-encoder), a known base model."""
    from cie10.code_index import INDEX_DIRNAME

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        raise ModelFolderError(f"{kind} folder {folder} is missing or incomplete (no config.json / *.safetensors)")
    if kind == "bi-encoder" and not (folder / INDEX_DIRNAME / "meta.json").is_file():
        raise ModelFolderError(
            f"bi-encoder {folder} has no {INDEX_DIRNAME}/: train with the code index (the Space and the harness "
            "read it instead of re-encoding the catalogue)"
        )
    return base_model_of(folder)


def inspect_model(kind: ModelKind, folder: Path, repos: ReleaseRepos, languages: list[str]) -> ModelArtifact:
    """Load a model folder the way users will (`SentenceTransformer` / `CrossEncoder`) and gather its card parts.

    The bi-encoder must ship a `code_index/` whose dimension is the model's; the reranker must score pairs with
    one output.
    """
    folder = Path(folder)
    base = check_model_folder(kind, folder)
    repo = repos.bi if kind == "bi-encoder" else repos.reranker
    card_values = {
        "language": languages,
        "license": base.license,
        "model_name": _title(kind, repo.repo_id),
        "model_id": repo.repo_id,
        "local_files_only": True,
        "generate_widget_examples": False,
        "tags": list(CARD_TAGS),
    }
    try:
        model = _load(kind, folder, card_values)
    except (OSError, ValueError, RuntimeError) as error:
        raise ModelFolderError(f"{kind} folder {folder} does not load: {error}") from error
    index_meta: dict[str, Any] = {}
    if kind == "bi-encoder":
        index_meta = _check_code_index(folder, model.get_embedding_dimension())
    elif model.num_labels != 1:
        raise ModelFolderError(f"reranker {folder} has {model.num_labels} outputs: a reranker scores with one")
    card_path = folder / "README.md"
    existing = ModelCard.load(card_path) if card_path.is_file() else None
    trained = existing is not None and TRAINED_TAG in (existing.data.tags or [])
    if trained:
        st_card = existing
    else:
        from sentence_transformers.base.model_card import generate_model_card

        if base.hub_id:
            model.model_card_data.base_model = base.hub_id
        st_card = ModelCard(generate_model_card(model))
    return ModelArtifact(kind, folder, base, st_card, trained, _read_json(folder / SUMMARY_FILE) or {}, index_meta)


def _load(kind: ModelKind, folder: Path, card_values: dict[str, Any]) -> Any:
    if kind == "bi-encoder":
        from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData

        return SentenceTransformer(
            str(folder), device="cpu", model_card_data=SentenceTransformerModelCardData(**card_values)
        )
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderModelCardData

    return CrossEncoder(str(folder), device="cpu", model_card_data=CrossEncoderModelCardData(**card_values))


def _check_code_index(folder: Path, dimension: int) -> dict[str, Any]:
    from cie10.code_index import INDEX_DIRNAME, CodeIndex

    index = CodeIndex.load(folder)
    if index.embeddings.shape != (len(index.codes), dimension):
        raise ModelFolderError(
            f"{folder}/{INDEX_DIRNAME} holds {index.embeddings.shape} embeddings for {len(index.codes)} codes; the "
            f"model encodes {dimension} dimensions"
        )
    return {**index.meta, "num_codes": len(index.codes)}


def _title(kind: ModelKind, repo_id: str) -> str:
    name = repo_id.split("/")[-1]
    if kind == "bi-encoder":
        return f"{name}: multilingual ICD-10-CM code retrieval (bi-encoder)"
    return f"{name}: ICD-10-CM code reranker (cross-encoder)"


def two_stage_snippet(repos: ReleaseRepos) -> str:
    """Python that searches codes with the released bi-encoder, code index, reranker and codes dataset."""
    return f'''import json
from pathlib import Path

import numpy as np
from datasets import load_dataset
from huggingface_hub import hf_hub_download
from sentence_transformers import CrossEncoder, SentenceTransformer

revision = "{repos.version}"
bi_encoder = SentenceTransformer("{repos.bi.repo_id}", revision=revision)
reranker = CrossEncoder("{repos.reranker.repo_id}", revision=revision)
index = {{
    name: hf_hub_download("{repos.bi.repo_id}", f"code_index/{{name}}", revision=revision)
    for name in ("codes.json", "embeddings.npy")
}}
codes = json.loads(Path(index["codes.json"]).read_text(encoding="utf-8"))
embeddings = np.load(index["embeddings.npy"])  # every code title, encoded once by the bi-encoder
catalogue = load_dataset("{repos.codes.repo_id}", revision=revision, split="train")
titles = dict(zip(catalogue["code"], catalogue["title"]))

query = "dolor torácico opresivo"
scores = embeddings @ bi_encoder.encode_query(query, normalize_embeddings=True)
shortlist = [codes[row] for row in np.argsort(-scores)[:20]]  # 1. the bi-encoder's top 20
ranked = reranker.rank(query, [titles[code] for code in shortlist])  # 2. reordered by the reranker
for hit in ranked[:5]:
    code = shortlist[hit["corpus_id"]]
    print(code, titles[code], round(float(hit["score"]), 3))'''


def _st_details(card: ModelCard) -> str:
    """sentence-transformers' sections (model details, training details, hyperparameters, logs, versions).

    Its template's placeholders (HTML comments) and sections left empty (no loss to cite) are dropped.
    """
    _preamble, sections = split_sections(strip_comments(card.text))
    kept = [text for title, text in sections if title not in DROPPED_ST_SECTIONS and has_content(text)]
    return demote_headings("\n\n".join(kept))


def _limitations(artifact: ModelArtifact, scores: ReleaseScores, synth: SynthData, catalog_version: str) -> str:
    notes = [
        *synth.thin_languages(),
        f"Code-set year: {catalog_version}. Codes added or revised in later ICD-10-CM updates are unknown to it; "
        "CIE-10-ES (Spain's edition) and WHO ICD-10 codes that ICD-10-CM 2026 lacks can never be returned.",
    ]
    if artifact.kind == "bi-encoder":
        meta = artifact.index_meta
        notes.append(
            f"`code_index/` covers the catalogue scope `{meta.get('scope')}` ({meta.get('num_codes'):,} codes): "
            "codes outside it are never returned; encode more titles with `cie10.code_index` to widen it."
        )
    else:
        notes.append(
            "It only reorders the bi-encoder's shortlist: a code the bi-encoder did not shortlist cannot be recovered."
        )
    notes.append(
        "Trained and scored on synthetic mentions (or official labels), with test codes unseen in training; real "
        "clinical text is harder (see the harness's CodiEsp adapter)."
    )
    if artifact.base.is_embedded:
        notes.append(
            "The base model is a dequantized 4-bit copy of multilingual-e5-small, not the original fp32 weights."
        )
    coverage = scores.reference.gold_coverage or {}
    unretrievable = coverage.get("queries_with_unretrievable_gold")
    if unretrievable:
        notes.append(
            f"{unretrievable} of the {coverage.get('num_queries')} test queries have gold codes outside the searched "
            "codes; they count as misses in the table."
        )
    return bullet_list(notes)


def _training_data(artifact: ModelArtifact, repos: ReleaseRepos, synth: SynthData, catalog_version: str) -> str:
    train_rows = ", ".join(f"{lang} {synth.rows(lang, 'train'):,}" for lang in synth.languages)
    lines = [
        f"**Dataset:** [`{repos.synth.repo_id}`]({repos.synth.url(repos.version)}) at `{repos.version}`: train "
        f"split {train_rows} rows (validation and test splits held out by 3-character category).",
        f"**Catalogue:** {catalog_version}, published as [`{repos.codes.repo_id}`]({repos.codes.url(repos.version)}) "
        f"at `{repos.version}`.",
    ]
    summary = artifact.summary
    dataset = summary.get("dataset") or {}
    if dataset:
        lines.append(
            f"**Training run data:** `{dataset.get('id')}` (revision `{dataset.get('revision')}`), evaluated during "
            f"training on its `{dataset.get('eval_split', 'validation')}` split."
        )
    if artifact.index_meta:
        meta = artifact.index_meta
        lines.append(
            f"**Code index:** `code_index/` holds {meta.get('num_codes'):,} code titles "
            f"({meta.get('catalog_version')}, scope `{meta.get('scope')}`), encoded by this model "
            f"({meta.get('document', 'English titles')})."
        )
    training = summary.get("training") or {}
    if summary:
        loss = training.get("train_loss")
        lines.append(
            f"**Training run:** `{summary.get('run_name')}` ({summary.get('created_at')}), "
            f"{training.get('global_step')} steps"
            + (f", final training loss {loss:.4f}" if isinstance(loss, int | float) else "")
            + (f", cie10 git commit `{summary['git_commit'][:12]}`" if summary.get("git_commit") else "")
            + "; `run_summary.json` in this repo has the full settings."
        )
    return bullet_list(lines)


def _base_model_lines(base: BaseModel) -> str:
    lines = []
    if base.hub_id:
        lines.append(f"**Base model:** [`{base.hub_id}`](https://huggingface.co/{base.hub_id})")
    lines.append(f"**Which is:** {base.description}")
    if base.license:
        lines.append(f"**License:** {base.license}")
    lines.extend(base.details)
    return bullet_list(lines)


def _gains(artifact: ModelArtifact, scores: ReleaseScores) -> list[dict[str, str]]:
    def note(role: str, baseline: str) -> str:
        if scores.has_interval(role, baseline):
            return "`*`: the 95% paired-bootstrap interval of the difference excludes 0 (one harness run)."
        return (
            "No intervals: no harness run compared these two systems directly (the bootstrap pairs a run's evaluated "
            "system with its baselines); the differences are of the means above."
        )

    if artifact.kind == "bi-encoder":
        pairs = [("Learning gain: base model → this bi-encoder", BI, BASE)]
    else:
        pairs = [
            ("Reranking gain: bi-encoder alone → bi-encoder + this reranker", PIPELINE, BI),
            ("Learning gain: base model → bi-encoder + this reranker", PIPELINE, BASE),
        ]
    return [
        {"title": title, "table": scores.gain_table(role, baseline), "note": note(role, baseline)}
        for title, role, baseline in pairs
    ]


def _provenance_line(scores: ReleaseScores) -> str:
    run = scores.reference
    versions = run.versions or {}
    commit = f" (git `{run.git_commit[:12]}`)" if run.git_commit else ""
    return (
        f"Harness run of {run.date}: cie10 {versions.get('cie10')}{commit}, sentence-transformers "
        f"{versions.get('sentence-transformers')}; metrics on a 0-1 scale, gold codes outside the searched codes count "
        "as misses."
    )


def onnx_section(folder: Path, repo_id: str, version: str, is_bi: bool) -> str:
    """Which ONNX files the repo ships and what each costs against torch float32 (`onnx/quality.json`), or ""."""
    from cie10.inference.files import file_bytes, local_files, read_quality

    files = local_files(folder)
    if not files:
        return ""
    summary = read_quality(folder) or {}
    quality = summary.get("quality") or {}
    if is_bi:
        header = "| file | size | cosine to torch (mean / min) | top-1 agreement | top-1, torch-built index |\n"
        header += "|---|---|---|---|---|\n"
    else:
        header = "| file | size | top-1 agreement | largest score difference |\n|---|---|---|---|\n"
    rows = []
    for name in files:
        size = f"{file_bytes(folder, name) / 1e6:,.0f} MB"
        q = quality.get(name) or {}
        if is_bi and q:
            rows.append(
                f"| `{name}` | {size} | {q['cosine_mean']:.4f} / {q['cosine_min']:.4f} | "
                f"{q['top1_agreement']:.3f} | {q['top1_agreement_torch_index']:.3f} |"
            )
        elif q:
            rows.append(f"| `{name}` | {size} | {q['top1_agreement']:.3f} | {q['max_abs_score_diff']:.5f} |")
        else:
            rows.append(f"| `{name}` | {size} |" + " not measured |" * (4 if is_bi else 2))
    measured = (
        f"Measured at export against this model's torch float32 forward pass on {quality.get('num_queries')} real "
        f"queries ({quality.get('queries')})"
        + (
            f" ranked among {quality.get('num_titles')} code titles."
            if is_bi
            else f", {quality.get('candidates')} candidate titles each."
        )
        if quality.get("num_queries")
        else "Quality not measured at export."
    )
    int8 = next((name for name in files if "qint8" in name), None)
    loader = "load_encoder" if is_bi else "load_cross_encoder"
    st_class = "SentenceTransformer" if is_bi else "CrossEncoder"
    usage = (
        "```python\n"
        f"from cie10.inference import {loader}  # onnxruntime + tokenizers, no torch\n\n"
        f'model = {loader}("{repo_id}", revision="{version}", backend="onnx")  # or "onnx-int8", "torch"\n'
        "```\n\n"
        f'Where optimum is installed, sentence-transformers loads the same files: `{st_class}("{repo_id}", '
        f'revision="{version}", backend="onnx", model_kwargs={{"file_name": "{int8 or files[0]}"}})`.'
    )
    return header + "\n".join(rows) + "\n\n" + measured + "\n\n" + usage


def build_model_card(
    artifact: ModelArtifact,
    *,
    repos: ReleaseRepos,
    scores: ReleaseScores,
    synth: SynthData,
    catalog_version: str,
    citation: str,
) -> ModelCard:
    """The release card of a model: sentence-transformers' card data completed, then the project's template."""
    is_bi = artifact.kind == "bi-encoder"
    repo = repos.bi if is_bi else repos.reranker
    role = BI if is_bi else PIPELINE
    bi_name, reranker_name = repos.bi.repo_id.split("/")[-1], repos.reranker.repo_id.split("/")[-1]
    labels = scores.labels(bi_name, reranker_name)
    data: ModelCardData = artifact.st_card.data
    previous = data.language if isinstance(data.language, list) else [data.language] if data.language else []
    data.model_name = _title(artifact.kind, repo.repo_id)
    data.language = sorted({*previous, *synth.languages, "en"} - {"multilingual"})
    data.license = data.license or artifact.base.license
    data.base_model = artifact.base.hub_id
    data.datasets = [repos.synth.repo_id, repos.codes.repo_id]
    data.tags = list(dict.fromkeys([*(data.tags or []), *CARD_TAGS] + ([] if is_bi else ["reranker"])))
    data.metrics = list(MODEL_INDEX_METRICS)
    data.eval_results = scores.eval_results(
        role,
        dataset_id=repos.synth.repo_id,
        dataset_name=repos.synth.repo_id.split("/")[-1],
        revision=repos.version,
        source_url=repos.metric.url(repos.version),
    )
    reference = scores.reference
    base_short = (
        "a dequantized 4-bit copy, see Base model" if artifact.base.is_embedded else artifact.base.name or "see below"
    )
    return render(
        ModelCard,
        data,
        "model.md",
        title=data.model_name,
        is_bi=is_bi,
        version=repos.version,
        bi_id=repos.bi.repo_id,
        bi_url=repos.bi.url(repos.version),
        reranker_id=repos.reranker.repo_id,
        reranker_url=repos.reranker.url(repos.version),
        synth_id=repos.synth.repo_id,
        synth_url=repos.synth.url(repos.version),
        metric_id=repos.metric.repo_id,
        metric_url=repos.metric.url(repos.version),
        space_id=repos.space.repo_id,
        space_url=repos.space.url(repos.version),
        base_model_id=artifact.base.hub_id or artifact.base.name,
        base_model_short=base_short,
        release_table=repos.table(current=repo.key),
        split=scores.split,
        num_queries=f"{reference.dataset.get('num_queries', 0):,}",
        num_codes=f"{reference.catalog.get('num_codes_searched', 0):,}",
        catalog_version=reference.catalog.get("version") or catalog_version,
        scope=reference.catalog.get("scope"),
        this_system=f"This model ({labels[role]})",
        results_table=scores.metrics_table(labels, highlight=role),
        results_provenance=_provenance_line(scores),
        gains=_gains(artifact, scores),
        two_stage_snippet=two_stage_snippet(repos),
        limitations=_limitations(artifact, scores, synth, catalog_version),
        training_data=_training_data(artifact, repos, synth, catalog_version),
        base_model_lines=_base_model_lines(artifact.base),
        citation=citation,
        st_trained=artifact.trained,
        st_details=_st_details(artifact.st_card),
        onnx_section=onnx_section(artifact.folder, repo.repo_id, repos.version, is_bi),
    )
