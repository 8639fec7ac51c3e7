"""The systems an evaluation compares: BM25 over code titles (bm25s), and dense retrievers via `CodeSearcher`.

Every system ranks the same codes (a scope of the catalogue, optionally billable-only or a few chapters), so
scores are comparable. A dense model that ships a `code_index/` covering those codes reuses it; one without
(the untuned base encoder) gets an index encoded on the fly, cached under `<CIE10_HOME>/eval/indexes/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from cie10.catalog import Catalog
from cie10.code_index import INDEX_DIRNAME, CodeIndex, build_code_index, check_names_setting, document_text
from cie10.eval_harness.data import EvaluationInputError
from cie10.fusion import BI_ORDER
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

Ranking = list[tuple[str, float]]
"""(code, score) pairs, best first."""
BASE_MODEL = "base"
"""Baseline name for the untuned embedded base encoder (`cie10.embedded_model`, "default")."""
BI_ORDER_BASELINE = BI_ORDER
TITLES_BASELINE = "titles"
NO_EXACT_BASELINE = "no-exact"
DERIVED_BASELINES: dict[str, str] = {
    BI_ORDER_BASELINE: "the evaluated bi-encoder's own order (its reranker off)",
    TITLES_BASELINE: "the evaluated bi-encoder over the English titles of its index alone, no reranker",
    NO_EXACT_BASELINE: "the evaluated system, reranker included, without its known mentions (a verbatim query's "
    "coded codes first: `cie10.known_mentions`)",
}
"""Baselines made of the evaluated system's own parts."""
BM25_BASELINES: dict[str, tuple[str, ...]] = {"bm25": ("en",), "bm25-en-es": ("en", "es")}
"""BM25 baselines and the title languages each indexes (CodiEsp is Spanish, hence the English+Spanish one)."""
_QUERY_BATCH = 256
_ENCODE_CHUNK = 1024
_TITLES_PER_SECOND = {"torch": 30, "onnx": 100}
"""Rough encoding rates of a small encoder on two CPU cores, for the cost estimate in the log: torch in-process;
onnxruntime worker processes (measured 80 titles/s on a shared AVX2 machine, 290 on an idle AVX-512 VNNI one)."""


class RetrievalSystem(Protocol):
    """Anything that ranks catalogue codes for text queries."""

    name: str

    def describe(self) -> dict[str, Any]:
        """Provenance: kind, ids and resolved revisions, parameters."""
        ...

    def rank(self, queries: Sequence[str], top_k: int) -> list[Ranking]:
        """The `top_k` best codes per query."""
        ...


def select_codes(
    catalog: Catalog, scope: str, *, billable_only: bool = False, chapters: Sequence[str] | None = None
) -> list[str]:
    """The codes every system searches: a catalogue scope, optionally only billable ones or some chapters."""
    entries = catalog.select(scope)
    if billable_only:
        entries = [entry for entry in entries if entry.billable]
    if chapters:
        wanted = {str(chapter) for chapter in chapters}
        entries = [entry for entry in entries if entry.chapter in wanted]
    if not entries:
        raise EvaluationInputError(
            f"no code to search: scope {scope!r}, billable_only={billable_only}, chapters={list(chapters or [])}"
        )
    return [entry.code for entry in entries]


# ------------------------------------------------------------------------------------------------ BM25


def _fold(text: str) -> str:
    """Lower case without accents, so `infección` matches `infeccion`."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _stopwords(languages: Sequence[str]) -> list[str]:
    from bm25s import stopwords

    lists = {
        "en": stopwords.STOPWORDS_EN,
        "es": stopwords.STOPWORDS_SPANISH,
        "fr": stopwords.STOPWORDS_FRENCH,
        "pt": stopwords.STOPWORDS_PORTUGUESE,
        "it": stopwords.STOPWORDS_ITALIAN,
        "de": stopwords.STOPWORDS_GERMAN,
    }
    return sorted({_fold(word) for language in languages for word in lists.get(language, ())})


class Bm25System:
    """Okapi BM25 (bm25s, Lucene variant) over the codes' titles in `languages` (English: the CM title)."""

    def __init__(
        self,
        name: str,
        catalog: Catalog,
        codes: Sequence[str],
        languages: Sequence[str] = ("en",),
        *,
        k1: float = 1.5,
        b: float = 0.75,
    ) -> None:
        import bm25s
        from bm25s.tokenization import Tokenizer

        self.name = name
        self.codes = list(codes)
        self.languages = tuple(languages)
        self.k1, self.b = k1, b
        texts = [self._document(catalog, code) for code in self.codes]
        self.tokenizer = Tokenizer(stopwords=_stopwords(self.languages))
        ids = self.tokenizer.tokenize(texts, update_vocab=True, return_as="ids", show_progress=False)
        self.retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        self.retriever.index(ids, show_progress=False)

    def _document(self, catalog: Catalog, code: str) -> str:
        parts = []
        for language in self.languages:
            if language == "en":
                parts.append(document_text(catalog[code]))
            else:
                label = catalog.label(code, language)
                if label is not None:
                    parts.append(label.text)
        return _fold(" ".join(parts))

    def describe(self) -> dict[str, Any]:
        """bm25s version and parameters."""
        import bm25s

        return {
            "kind": "bm25",
            "id": "bm25s",
            "version": bm25s.__version__,
            "method": "lucene",
            "k1": self.k1,
            "b": self.b,
            "title_languages": list(self.languages),
            "document": " + ".join(
                "ICD-10-CM English title" if language == "en" else f"catalogue label ({language})"
                for language in self.languages
            ),
            "num_codes": len(self.codes),
        }

    def rank(self, queries: Sequence[str], top_k: int) -> list[Ranking]:
        """Codes with a positive BM25 score, best first (a query sharing no word with any title ranks none)."""
        tokens = self.tokenizer.tokenize(
            [_fold(query) for query in queries], update_vocab=False, return_as="ids", show_progress=False
        )
        rows, scores = self.retriever.retrieve(tokens, k=min(top_k, len(self.codes)), show_progress=False)
        return [
            [(self.codes[int(row)], float(score)) for row, score in zip(row_ids, row_scores, strict=True) if score > 0]
            for row_ids, row_scores in zip(rows, scores, strict=True)
        ]


# ----------------------------------------------------------------------------------------------- dense


def _is_local(model_id: str) -> bool:
    return Path(model_id).expanduser().exists() or model_id.startswith((".", "/", "~"))


def _resolved_model_revision(model_id: str, revision: str | None) -> str | None:
    try:
        from huggingface_hub import HfApi

        from cie10.hub import endpoint

        return HfApi(endpoint=endpoint()).model_info(model_id, revision=revision).sha
    except Exception as error:  # noqa: BLE001 - provenance is best effort; the model itself loaded
        logger.debug("could not resolve the revision of %s: %s", model_id, error)
        return None


@dataclass
class LoadedModel:
    """A model loaded by id or folder, with where it came from and its stored code index, if any."""

    model: Any
    info: dict[str, Any]
    stored_index: CodeIndex | None = None


def _embedded_base_path() -> str:
    from cie10 import embedded_model

    path = Path(embedded_model.resolve_model(embedded_model.DEFAULT_MODEL_NAME))
    if not embedded_model.is_valid_model_dir(path):
        logger.info("building the embedded base model first (about 30 s; `cie10 models build-default`)")
        path = embedded_model.build_default_model()
    return str(path)


def load_model(
    model_id: str, revision: str | None = None, *, cross_encoder: bool = False, backend: str | None = None
) -> LoadedModel:
    """A bi-encoder (or cross-encoder) by Hub id, local folder, or `default`/`base` (embedded model).

    `backend` (`torch`, `onnx`, `onnx-int8`; default: the `CIE10_BACKEND` setting) picks the inference path
    (`cie10.inference`); a model without that ONNX file runs on torch. The embedded base model is exported to ONNX
    once, in its cache folder, the first time an ONNX backend asks for it.
    """
    from cie10 import hub
    from cie10.inference import backend_of, load_cross_encoder, load_encoder
    from cie10.inference.encoder import resolve_backend

    backend = resolve_backend(backend)
    info: dict[str, Any] = {"id": model_id, "revision": revision}
    if model_id in ("default", BASE_MODEL):
        from cie10.embedded_model import EMBEDDED_MODEL_DESCRIPTION

        path = _embedded_base_path()
        if backend != "torch" and not cross_encoder:
            from cie10.embedded_model import ensure_onnx_export

            ensure_onnx_export(Path(path))
        info.update(id="default", path=path, resolved_revision=None, description=EMBEDDED_MODEL_DESCRIPTION)
        provenance = Path(path) / "provenance.json"
        if provenance.exists():
            info["provenance"] = json.loads(provenance.read_text(encoding="utf-8"))
    elif _is_local(model_id):
        path = str(Path(model_id).expanduser().resolve())
        if not Path(path).is_dir():
            raise EvaluationInputError(f"model folder {model_id} does not exist")
        info.update(path=path, resolved_revision=None)
    else:
        hub.check_revision(model_id, "model", revision)
        path = None
        info["resolved_revision"] = _resolved_model_revision(model_id, revision)

    load = load_cross_encoder if cross_encoder else load_encoder
    try:
        if path is not None:
            model = load(path, None, backend)
        else:
            with hub.hub_errors(model_id, "model", revision):
                model = load(model_id, revision, backend)
    except (OSError, ValueError) as error:
        what = "cross-encoder" if cross_encoder else "sentence-transformers model"
        raise EvaluationInputError(f"cannot load {model_id} as a {what}: {error}") from error
    info["backend"] = backend_of(model)
    if info["backend"] != "torch":
        info["onnx_file"] = model.file_name
    stored = None if cross_encoder else _stored_index(model_id, revision, path)
    return LoadedModel(model, info, stored)


def _stored_index(model_id: str, revision: str | None, path: str | None) -> CodeIndex | None:
    """The `code_index/` shipped with a model folder or repo, or None."""
    if path is not None:
        return CodeIndex.load(Path(path)) if (Path(path) / INDEX_DIRNAME / "meta.json").exists() else None
    from huggingface_hub import snapshot_download

    from cie10 import hub

    with hub.hub_errors(model_id, "model", revision):
        folder = Path(
            snapshot_download(
                model_id, revision=revision, allow_patterns=[f"{INDEX_DIRNAME}/*"], endpoint=hub.endpoint()
            )
        )
    return CodeIndex.load(folder) if (folder / INDEX_DIRNAME / "meta.json").exists() else None


def subset_index(index: CodeIndex, codes: Sequence[str]) -> CodeIndex:
    """The codes `codes` (all of which the index must hold), in that order, with all their rows."""
    return index.subset(codes)


def _cache_key(info: dict[str, Any], catalog: Catalog, codes: Sequence[str], names: str = "title") -> str:
    fingerprint: dict[str, Any] = {
        "id": info.get("id"),
        "revision": info.get("resolved_revision") or info.get("revision"),
        "catalog": catalog.version,
        "codes": hashlib.sha1("\n".join(codes).encode()).hexdigest(),
    }
    if names != "title":
        fingerprint["names"] = names
    if info.get("backend", "torch") != "torch":
        fingerprint["backend"] = f"{info['backend']}:{info.get('onnx_file')}"
    if info.get("path"):
        weights = [p for p in Path(info["path"]).glob("*.safetensors")] + [Path(info["path"]) / "config.json"]
        fingerprint["path"] = info["path"]
        fingerprint["mtimes"] = sorted(p.stat().st_mtime_ns for p in weights if p.exists())
    return hashlib.sha1(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def build_index_on_the_fly(
    loaded: LoadedModel,
    catalog: Catalog,
    codes: Sequence[str],
    scope: str,
    *,
    batch_size: int = 64,
    names: str = "title",
) -> CodeIndex:
    """Encode the names of `codes` (`names`: see `cie10.code_index`) with a model that ships no usable index.

    Cost: one forward pass per title. multilingual-e5-small on two CPU cores encodes about 30 titles a second on
    torch and 80-290 on the ONNX worker processes: `full` (~98k codes) takes 6-20 minutes on ONNX, about an hour on
    torch, once: the index is cached and interrupted runs resume from finished chunks.
    """
    folder = get_settings().home / "eval" / "indexes" / _cache_key(loaded.info, catalog, codes, names)
    if (folder / INDEX_DIRNAME / "meta.json").exists():
        logger.info("reusing the code index of %s cached in %s", loaded.info["id"], folder)
        return CodeIndex.load(folder)
    logger.info(
        "%s ships no code index covering these %d codes: encoding their titles now, roughly %.0f min on two CPU "
        "cores (cached in %s)",
        loaded.info["id"],
        len(codes),
        len(codes) / _TITLES_PER_SECOND["torch" if loaded.info.get("backend") == "torch" else "onnx"] / 60,
        folder,
    )
    index = build_code_index(
        loaded.model,
        catalog,
        scope,
        names=names,
        codes=codes,
        model_id=loaded.info["id"],
        batch_size=batch_size,
        work_dir=folder / "chunks",
    )
    index.meta["scope"] = scope
    index.meta["built_by"] = "cie10.eval_harness (on the fly)"
    index.save(folder)
    logger.info("encoded %d rows of %d codes in %.0f s", index.num_rows, len(codes), index.meta["encode_seconds"])
    return index


def index_for(
    loaded: LoadedModel, catalog: Catalog, codes: Sequence[str], scope: str, names: str | None = None
) -> tuple[CodeIndex, str]:
    """(index over exactly `codes`, "stored" or "built"): the model's own index when it covers them.

    `names` (`title`, `all`, `all+examples`) asks for an index of that kind; None takes the stored one as it is
    (an index built on the fly is then title-only).
    """
    stored = loaded.stored_index
    if stored is not None and names is not None and stored.meta.get("names", "title") != check_names_setting(names):
        logger.info(
            "%s's code index holds names %r; encoding %r instead",
            loaded.info["id"],
            stored.meta.get("names", "title"),
            names,
        )
        stored = None
    if stored is not None:
        if stored.meta.get("catalog_version") not in (None, catalog.version):
            logger.warning(
                "%s's code index was built on %s; the catalogue is %s",
                loaded.info["id"],
                stored.meta.get("catalog_version"),
                catalog.version,
            )
        if all(code in stored.row_of for code in codes):
            return subset_index(stored, codes), "stored"
        logger.warning(
            "%s's code index (scope %s, %d codes) does not hold every code searched (scope %s)",
            loaded.info["id"],
            stored.meta.get("scope"),
            len(stored),
            scope,
        )
    return build_index_on_the_fly(loaded, catalog, codes, scope, names=names or "title"), "built"


@dataclass
class DenseSystem:
    """A bi-encoder over a code index, optionally reranked by a cross-encoder (`cie10.search.CodeSearcher`)."""

    name: str
    searcher: Any
    model_info: dict[str, Any]
    reranker_info: dict[str, Any] | None = None
    rerank_top: int = 20
    index_meta: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Model, reranker and code index provenance."""
        return {
            "kind": "dense",
            **self.model_info,
            "reranker": self.reranker_info,
            "rerank_top": self.rerank_top if self.reranker_info else None,
            "code_index": self.index_meta,
        }

    @contextlib.contextmanager
    def holding_out(self, eval_source: dict[str, Any]) -> Iterator[None]:
        """While scoring a split of the dataset the index's known mentions came from, that split's mentions are
        left out of them (its queries are those mentions: `cie10.known_mentions`)."""
        known = self.searcher.known
        if known is None or not known.holds_dataset(eval_source.get("id") or eval_source.get("path")):
            yield
            return
        split = str(eval_source.get("split"))
        self.searcher.known = known.without_split(split)
        logger.info(
            "%s: the %s split's mentions are held out of the known mentions while it is scored", self.name, split
        )
        try:
            yield
        finally:
            self.searcher.known = known

    def rank(self, queries: Sequence[str], top_k: int) -> list[Ranking]:
        """Top codes per query; the fused score (`cie10.fusion`) replaces the cosine where the reranker ran."""
        rankings: list[Ranking] = []
        batches = range(0, len(queries), _QUERY_BATCH)
        for start in tqdm(batches, desc=f"{self.name}: ranking", unit="batch", disable=len(batches) < 2):
            results = self.searcher.search_many(
                list(queries[start : start + _QUERY_BATCH]),
                top_k=top_k,
                rerank=self.reranker_info is not None,
                rerank_top=self.rerank_top,
            )
            for result in results:
                rankings.append([(hit.code, hit.ranking_score) for hit in result.hits])
        return rankings


def dense_system(
    name: str,
    model_id: str,
    catalog: Catalog,
    codes: Sequence[str],
    scope: str,
    *,
    revision: str | None = None,
    reranker_id: str | None = None,
    reranker_revision: str | None = None,
    rerank_top: int = 20,
    loaded: LoadedModel | None = None,
    index_names: str | None = None,
    backend: str | None = None,
) -> DenseSystem:
    """Load a bi-encoder (+ reranker) and its index over `codes` (`index_names`: see `index_for`; `backend`: see
    `load_model`)."""
    from cie10.search import CodeSearcher

    loaded = loaded or load_model(model_id, revision, backend=backend)
    index, origin = index_for(loaded, catalog, codes, scope, index_names)
    reranker = load_model(reranker_id, reranker_revision, cross_encoder=True, backend=backend) if reranker_id else None
    searcher = CodeSearcher(loaded.model, index, reranker.model if reranker else None, catalog=catalog)
    index_meta = {**index.meta, "origin": origin}
    return DenseSystem(name, searcher, loaded.info, reranker.info if reranker else None, rerank_top, index_meta)


def derived_system(primary: DenseSystem, kind: str) -> DenseSystem:
    """A baseline made of the evaluated system's own parts (`DERIVED_BASELINES`): no model is loaded again."""
    from cie10.search import CodeSearcher

    if kind not in DERIVED_BASELINES:
        raise EvaluationInputError(f"unknown derived baseline {kind!r}: choose {', '.join(DERIVED_BASELINES)}")
    searcher = primary.searcher
    if kind == NO_EXACT_BASELINE:
        derived = CodeSearcher(
            searcher.bi_encoder,
            searcher.index,
            searcher.reranker,
            catalog=searcher.catalog,
            bi_weight=searcher.bi_weight,
            known_mentions=False,
        )
        return DenseSystem(
            kind, derived, primary.model_info, primary.reranker_info, primary.rerank_top, primary.index_meta
        )
    index = searcher.index.titles_only() if kind == TITLES_BASELINE else searcher.index
    derived = CodeSearcher(searcher.bi_encoder, index, None, catalog=searcher.catalog)
    meta = {**primary.index_meta, **index.meta} if kind == TITLES_BASELINE else primary.index_meta
    return DenseSystem(kind, derived, primary.model_info, None, primary.rerank_top, meta)


def bm25_system(name: str, catalog: Catalog, codes: Sequence[str]) -> Bm25System:
    """One of `BM25_BASELINES` by name."""
    if name not in BM25_BASELINES:
        raise EvaluationInputError(f"unknown BM25 baseline {name!r}: choose {', '.join(BM25_BASELINES)}")
    return Bm25System(name, catalog, codes, BM25_BASELINES[name])
