"""The code index: every catalogue title encoded once, saved beside the model so nobody re-encodes it.

Folder layout (`code_index/` inside a model repo): `embeddings.npy` (float32, L2-normalised, one row per code),
`codes.json` (the row order) and `meta.json` (model, catalogue version, scope, dimension). Building resumes from
finished chunks, so an interrupted encode of the full catalogue (about 98k titles) does not start over.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from cie10.catalog import Catalog, CodeEntry

logger = logging.getLogger(__name__)

INDEX_DIRNAME = "code_index"
QUERY_PROMPT_NAME = "query"
DOCUMENT_PROMPT_NAME = "document"
_CHUNK = 2048


def document_text(entry: CodeEntry) -> str:
    """What a code is retrieved by: its English ICD-10-CM title (the catalogue's reference label)."""
    return entry.title


def prompt_name(model, wanted: str) -> str | None:
    """`wanted` if the sentence-transformers model defines that prompt (e5: "query: "/"passage: "), else None."""
    return wanted if wanted in (getattr(model, "prompts", None) or {}) else None


@dataclass
class CodeIndex:
    """Normalised title embeddings of a set of codes, searchable by cosine similarity."""

    codes: list[str]
    embeddings: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.row_of = {code: row for row, code in enumerate(self.codes)}

    def __len__(self) -> int:
        return len(self.codes)

    def top_k(
        self, query_embeddings: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row indices) of the k best codes per query, best first; `allowed` is a boolean row mask."""
        scores = np.asarray(query_embeddings, dtype=np.float32) @ self.embeddings.T
        if allowed is not None:
            scores = np.where(allowed[None, :], scores, -np.inf)
        k = min(k, scores.shape[1])
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        return np.take_along_axis(part_scores, order, axis=1), np.take_along_axis(part, order, axis=1)

    def save(self, folder: Path) -> Path:
        """Write `<folder>/code_index/` (replacing an older one atomically); returns that path."""
        target = Path(folder) / INDEX_DIRNAME
        staging = target.with_name(f".{INDEX_DIRNAME}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        np.save(staging / "embeddings.npy", self.embeddings.astype(np.float32))
        (staging / "codes.json").write_text(json.dumps(self.codes), encoding="utf-8")
        (staging / "meta.json").write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target

    @classmethod
    def load(cls, folder: Path) -> CodeIndex:
        """Read an index from a model folder (or from the `code_index/` folder itself)."""
        folder = Path(folder)
        if (folder / INDEX_DIRNAME).is_dir():
            folder = folder / INDEX_DIRNAME
        codes = json.loads((folder / "codes.json").read_text(encoding="utf-8"))
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return cls(codes, np.load(folder / "embeddings.npy"), meta)

    @classmethod
    def from_hub(cls, repo_id: str, revision: str | None = None) -> CodeIndex:
        """Download `code_index/` from a model repo on the Hub (HF_ENDPOINT decides which Hub)."""
        from huggingface_hub import hf_hub_download

        paths = [
            hf_hub_download(repo_id, f"{INDEX_DIRNAME}/{name}", revision=revision)
            for name in ("codes.json", "meta.json", "embeddings.npy")
        ]
        return cls.load(Path(paths[0]).parent)


def _encode(model, texts: list[str], prompt: str, batch_size: int, show_progress_bar: bool) -> np.ndarray:
    return model.encode(
        texts,
        prompt_name=prompt_name(model, prompt),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=show_progress_bar,
    ).astype(np.float32)


def encode_documents(model, texts: list[str], batch_size: int = 64, show_progress_bar: bool = False) -> np.ndarray:
    """Normalised float32 document embeddings, with the model's document prompt when it has one."""
    return _encode(model, texts, DOCUMENT_PROMPT_NAME, batch_size, show_progress_bar)


def encode_queries(model, texts: list[str], batch_size: int = 64, show_progress_bar: bool = False) -> np.ndarray:
    """Normalised float32 query embeddings, with the model's query prompt when it has one."""
    return _encode(model, texts, QUERY_PROMPT_NAME, batch_size, show_progress_bar)


def build_code_index(
    model,
    catalog: Catalog,
    scope: str = "quickstart",
    *,
    model_id: str = "",
    batch_size: int = 64,
    work_dir: Path | None = None,
) -> CodeIndex:
    """Encode every code title of `scope`; with `work_dir`, finished chunks are kept and reused on resume."""
    entries = catalog.select(scope)
    codes = [entry.code for entry in entries]
    texts = [document_text(entry) for entry in entries]
    started = time.perf_counter()
    chunks: list[np.ndarray] = []
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    for start in tqdm(range(0, len(texts), _CHUNK), desc=f"encoding {len(texts)} code titles", unit="chunk"):
        chunk_file = Path(work_dir) / f"chunk-{start:07d}.npy" if work_dir is not None else None
        if chunk_file is not None and chunk_file.exists():
            chunks.append(np.load(chunk_file))
            continue
        embeddings = encode_documents(model, texts[start : start + _CHUNK], batch_size=batch_size)
        if chunk_file is not None:
            partial = chunk_file.with_suffix(".tmp.npy")
            np.save(partial, embeddings)
            partial.replace(chunk_file)
        chunks.append(embeddings)
    matrix = np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)
    meta = {
        "model": model_id,
        "catalog_version": catalog.version,
        "scope": scope,
        "num_codes": len(codes),
        "dimension": int(matrix.shape[1]) if matrix.size else 0,
        "document": "English ICD-10-CM title, with the model's document prompt",
        "encode_seconds": round(time.perf_counter() - started, 1),
    }
    logger.info("encoded %d codes (%s scope) in %.0f s", len(codes), scope, meta["encode_seconds"])
    return CodeIndex(codes, matrix, meta)
