"""The code index: every name of every code encoded once, saved beside the model so nobody re-encodes it.

A code is indexed by its English ICD-10-CM title alone (`names="title"`), or by all its names (`"all"`: title,
inclusion terms, its own WHO / CIE-10 labels, translated labels) and optionally coded example mentions
(`"all+examples"`); a code's score is the best of its rows, and a hit says which name matched.

Folder layout (`code_index/` inside a model repo): `embeddings.npy` (float16, L2-normalised, one title row per
code), `codes.json` (their order), `names.npy` (the other rows, grouped by code), `rows.npz` (every row: code,
text, language, source, held compactly: `IndexRows`) and `meta.json` (model, catalogue version, scope, names
setting, counts). Older layouts still load: `rows.json` in place of `rows.npz`, and an index saved before names
were kept (float32 `embeddings.npy` + `codes.json`). A loaded index maps its float16 files and reads the rows it
needs from them (`RowFile`), so they never sit in memory. Building encodes rows shortest first and resumes from
finished chunks, so an interrupted encode of the full catalogue does not start over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from cie10.catalog import Catalog, CodeEntry
from cie10.generation.pairs import normalize_text
from cie10.index_storage import (
    LEGACY_ROWS_FILE,
    ROWS_FILE,
    IndexRow,
    IndexRows,
    IndexSettingError,
    RowFile,
    as_float16_rows,
    read_rows_matrix,
)
from cie10.known_mentions import KnownMentions

if TYPE_CHECKING:
    from cie10.inference.scan import IntegerScan

logger = logging.getLogger(__name__)

INDEX_DIRNAME = "code_index"
QUERY_PROMPT_NAME = "query"
DOCUMENT_PROMPT_NAME = "document"
_CHUNK = 2048
DOCUMENTS: dict[str, str] = {
    "title": "English ICD-10-CM title, with the model's document prompt",
    "all": "every name: English title, inclusion terms, own WHO/CIE-10 labels (es, fr, pt, it, de), translated "
    "labels; with the model's document prompt",
    "all+examples": "every name plus coded example mentions (e.g. CodiEsp train); with the model's document prompt",
}


def document_text(entry: CodeEntry) -> str:
    """What a code is retrieved by: its English ICD-10-CM title (the catalogue's reference label)."""
    return entry.title


def prompt_name(model, wanted: str) -> str | None:
    """`wanted` if the sentence-transformers model defines that prompt (e5: "query: "/"passage: "), else None."""
    return wanted if wanted in (getattr(model, "prompts", None) or {}) else None


NAME_SETTINGS: tuple[str, ...] = ("title", "all", "all+examples")
"""What a code is indexed by: its English title alone; every name (title, inclusion terms, WHO/CIE-10 labels,
translated labels); or every name plus coded example mentions."""
NAME_LANGUAGES: tuple[str, ...] = ("es", "fr", "pt", "it", "de")
"""Languages of the catalogue's own (non-inherited) WHO / CIE-10 labels that become rows."""
TITLE_SOURCE = "icd10cm-2026"
INCLUSION_SOURCE = "icd10cm-2026:inclusion"
SHORTLIST = 100
"""Codes rescored exactly per query after the int8 scan (at least 5 times k); measured in docs/training.md."""
NameTriples = dict[str, list[tuple[str, str, str]]]
"""code -> [(text, language, source)]: extra names (e.g. Apertium translations) or coded example mentions."""
_QUERY_BLOCK = 64


def check_names_setting(names: str) -> str:
    """`names` if it is one of `NAME_SETTINGS`, else one clear error."""
    if names not in NAME_SETTINGS:
        raise IndexSettingError(f"unknown index names setting {names!r}: choose one of {', '.join(NAME_SETTINGS)}")
    return names


def code_rows(
    entry: CodeEntry,
    names: str = "all",
    extra: Sequence[tuple[str, str, str]] = (),
    examples: Sequence[tuple[str, str, str]] = (),
) -> list[IndexRow]:
    """The rows of one code, title first; identical normalised texts are kept once (the first source wins)."""
    check_names_setting(names)
    candidates = [(document_text(entry), "en", TITLE_SOURCE)]
    if names != "title":
        candidates += [(term, "en", INCLUSION_SOURCE) for term in entry.inclusion_terms]
        candidates += [
            (lab.text, lab.language, lab.source) for lang in NAME_LANGUAGES for lab in entry.own_labels(lang)
        ]
        candidates += list(extra)
        if names == "all+examples":
            candidates += list(examples)
    rows, seen = [], set()
    for text, language, source in candidates:
        key = normalize_text(text)
        if key and key not in seen:
            seen.add(key)
            rows.append(IndexRow(entry.code, text.strip(), language, source))
    return rows


def index_rows(
    entries: Sequence[CodeEntry],
    names: str = "title",
    extra_names: NameTriples | None = None,
    examples: NameTriples | None = None,
) -> list[IndexRow]:
    """Every row of an index: the titles in code order, then the other rows grouped by code in the same order."""
    per_code = [
        code_rows(entry, names, (extra_names or {}).get(entry.code, ()), (examples or {}).get(entry.code, ()))
        for entry in entries
    ]
    return [rows[0] for rows in per_code] + [row for rows in per_code for row in rows[1:]]


def examples_from_rows(rows: Iterable[Mapping[str, Any]], catalog: Catalog) -> NameTriples:
    """Coded example mentions for `all+examples` from training rows (`query`, `code`, `language`, `source`).

    Rows of kind `name` (official labels) are skipped: they are names already; codes outside the catalogue too.
    Give training rows only (never CodiEsp dev or a test split).
    """
    examples: NameTriples = {}
    for row in rows:
        if row.get("kind") == "name" or row.get("code") not in catalog:
            continue
        code = catalog[row["code"]].code
        examples.setdefault(code, []).append((row["query"], row.get("language") or "", row.get("source") or "example"))
    return examples


def names_in_language(names: Mapping[str, Sequence[str]], language: str, source: str) -> NameTriples:
    """`{code: [text]}` (e.g. `translate.translated_names(...)`) as `extra_names` rows in `language` from `source`."""
    return {code: [(text, language, source) for text in texts] for code, texts in names.items()}


def _row_counts(rows: Sequence[IndexRow], attribute: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[getattr(row, attribute)] = counts.get(getattr(row, attribute), 0) + 1
    return dict(sorted(counts.items()))


def quantize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 rows and their float32 scales (`row ≈ int8 * scale`)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    scale = np.abs(matrix).max(axis=1) / 127.0 if len(matrix) else np.zeros(0, dtype=np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.round(matrix / scale[:, None]).astype(np.int8), scale


@dataclass
class CodeIndex:
    """Normalised embeddings of the names of a set of codes, searched by cosine similarity.

    `embeddings` holds one row per code, its English title, in `codes` order (what older indexes held);
    `name_embeddings` the code's other names, grouped by code, described by `rows` (every row, titles first;
    `IndexRows` once constructed). A code's score is the best of its rows. Rows are float16; a search scans an
    int8 copy and rescores the best `SHORTLIST` codes exactly from the float16 rows, in float32. A loaded index
    maps its float16 files read-only (`embeddings` and `name_embeddings` are maps: nothing is read until used),
    and its search reads the rows it needs from those files (`RowFile`): none of them is held in memory.
    """

    codes: list[str]
    embeddings: np.ndarray
    meta: dict = field(default_factory=dict)
    rows: Sequence[IndexRow] | None = None
    """Every row (titles first); None for an index saved before names were kept (one title row per code)."""
    name_embeddings: np.ndarray | None = None
    known: KnownMentions | None = None
    """Coded mentions whose codes a verbatim query ranks first (`cie10.known_mentions`); None: no such table."""

    def __post_init__(self) -> None:
        self.row_of = {code: row for row, code in enumerate(self.codes)}
        titles = as_float16_rows(self.embeddings)
        others = as_float16_rows(self.name_embeddings, titles.shape[1])
        if self.rows is None and len(others):
            raise IndexSettingError("an index with name rows beyond the titles needs `rows` describing them")
        if len(titles) != len(self.codes):
            raise IndexSettingError(f"the index holds {len(titles)} title rows for {len(self.codes)} codes")
        if self.rows is not None and len(self.rows) != len(titles) + len(others):
            raise IndexSettingError(f"the index describes {len(self.rows)} rows but holds {len(titles) + len(others)}")
        self.embeddings, self.name_embeddings = titles, others
        self._files = (RowFile.of(titles), RowFile.of(others))
        if self.rows is None:
            self.row_code = np.arange(len(self.codes))
        else:
            if isinstance(self.rows, IndexRows):
                self.rows = self.rows.with_codes(self.codes)
            else:
                self.rows = IndexRows.from_rows(self.rows, self.codes, self.row_of)
            self.row_code = self.rows.code
            if not np.array_equal(self.row_code[: len(self.codes)], np.arange(len(self.codes))):
                raise IndexSettingError("the index's first rows must be its codes' titles, in `codes` order")
        order = np.argsort(self.row_code, kind="stable")  # each code's title row first, then its other rows
        self._code_rows = order
        self._code_start = np.searchsorted(self.row_code[order], np.arange(len(self.codes) + 1))
        self._scanner: IntegerScan | None = None

    def __len__(self) -> int:
        return len(self.codes)

    def titles_only(self) -> CodeIndex:
        """The same codes searched by their English title rows alone (what a `title` index holds)."""
        rows = self.rows[: len(self.codes)] if self.rows is not None else None
        return CodeIndex(list(self.codes), self.embeddings, {**self.meta, "names": "title"}, rows)

    @property
    def num_rows(self) -> int:
        """Rows searched (titles and other names)."""
        return len(self.embeddings) + len(self.name_embeddings)

    @property
    def vectors(self) -> np.ndarray:
        """Every row, titles first, as one float16 matrix: a copy, for tools and tests (a search reads the parts)."""
        return np.concatenate([self.embeddings, self.name_embeddings])

    def row(self, position: int) -> IndexRow | None:
        """What row `position` holds, or None for an old title-only index without `rows`."""
        return self.rows[position] if self.rows is not None and 0 <= position < len(self.rows) else None

    def memory_bytes(self) -> int:
        """Bytes the search reads: the float16 rows (read from their files, not held, in a loaded index), plus the
        int8 rows and scales of the scan once a search built it."""
        scan = self._scanner.nbytes if self._scanner is not None else 0
        return int(self.embeddings.nbytes + self.name_embeddings.nbytes + scan)

    def _scan(self) -> IntegerScan:
        """The int8 scan of every row (`cie10.inference.scan`), built on first use."""
        if self._scanner is None:
            from cie10.inference.scan import IntegerScan

            self._scanner = IntegerScan(self._parts())
        return self._scanner

    def _parts(self) -> list[np.ndarray | RowFile]:
        """The title rows and the other rows, each read from its file where it is a mapped `.npy`."""
        matrices = (self.embeddings, self.name_embeddings)
        return [file if file is not None else matrix for file, matrix in zip(self._files, matrices, strict=True)]

    def _take(self, rows: np.ndarray) -> np.ndarray:
        """The float16 rows at `rows` (positions over the titles, then the other names), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        titles, others = self._parts()
        taken = np.empty((len(rows), self.embeddings.shape[1]), dtype=np.float16)
        title = rows < len(self.codes)
        for part, chosen, offset in ((titles, title, 0), (others, ~title, len(self.codes))):
            if chosen.any():
                wanted = rows[chosen] - offset
                taken[chosen] = part.take(wanted) if isinstance(part, RowFile) else part[wanted]
        return taken

    def score_codes(self, query_embedding: np.ndarray, positions: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Exact (best score, best row) of the codes at `positions` for one normalised query embedding."""
        query = np.asarray(query_embedding, dtype=np.float32).reshape(-1)
        return self._rescore(query, np.asarray(positions, dtype=np.int64))

    def _code_max(self, row_scores: np.ndarray) -> np.ndarray:
        """(codes, queries) from (rows, queries): each code's best row score."""
        best = row_scores[: len(self.codes)].copy()
        if self.num_rows > len(self.codes):
            extra_codes = self.row_code[len(self.codes) :]
            starts = np.flatnonzero(np.r_[True, extra_codes[1:] != extra_codes[:-1]])
            grouped = np.maximum.reduceat(row_scores[len(self.codes) :], starts, axis=0)
            targets = extra_codes[starts]
            best[targets] = np.maximum(best[targets], grouped)
        return best

    def _approximate(self, queries: np.ndarray) -> np.ndarray:
        """(queries, codes) scores: the int8 scan of every row, then each code's best row."""
        scores = self._scan().scores(queries)
        return np.ascontiguousarray(self._code_max(scores.T).T)

    def _rescore(self, query: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact float32 (best score, best row) of each candidate code, from its float16 rows."""
        starts, ends = self._code_start[candidates], self._code_start[candidates + 1]
        lengths = ends - starts
        offsets = np.r_[0, np.cumsum(lengths)[:-1]]
        positions = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
        rows = self._code_rows[positions]
        scores = self._take(rows).astype(np.float32) @ query
        owner = np.repeat(np.arange(len(candidates)), lengths)
        best = np.lexsort((-scores, owner))[offsets]
        return scores[best], rows[best]

    def search(
        self, query_embeddings: np.ndarray, k: int, allowed: np.ndarray | None = None, shortlist: int = SHORTLIST
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, code positions, matched row positions) of the k best codes per query, best first.

        Every code appears once (its best row); `allowed` is a boolean mask over codes. Where fewer than k
        codes are allowed, the tail holds -inf scores and -1 positions.
        """
        queries = np.atleast_2d(np.asarray(query_embeddings, dtype=np.float32))
        k = min(k, len(self.codes))
        depth = min(len(self.codes), max(shortlist, 5 * k))
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_codes = np.full((len(queries), k), -1, dtype=np.int64)
        out_rows = np.full((len(queries), k), -1, dtype=np.int64)
        if k == 0:
            return out_scores, out_codes, out_rows
        for block in range(0, len(queries), _QUERY_BLOCK):
            approximate = self._approximate(queries[block : block + _QUERY_BLOCK])
            if allowed is not None:
                approximate[:, ~allowed] = -np.inf
            candidates = np.argpartition(-approximate, depth - 1, axis=1)[:, :depth]
            for offset, (query, codes) in enumerate(
                zip(queries[block : block + _QUERY_BLOCK], candidates, strict=True)
            ):
                codes = codes[np.isfinite(approximate[offset, codes])]
                scores, rows = self._rescore(query, codes)
                order = np.lexsort((codes, -scores))[:k]  # ties: catalogue order, as a stable sort gives
                position = block + offset
                out_scores[position, : len(order)] = scores[order]
                out_codes[position, : len(order)] = codes[order]
                out_rows[position, : len(order)] = rows[order]
        return out_scores, out_codes, out_rows

    def top_k(
        self, query_embeddings: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, code positions) of the k best codes per query, best first (see `search`)."""
        scores, codes, _ = self.search(query_embeddings, k, allowed)
        return scores, codes

    def subset(self, codes: Sequence[str]) -> CodeIndex:
        """The index over `codes` only (all of which it must hold), in that order, with their other names."""
        positions = np.asarray([self.row_of[code] for code in codes], dtype=np.int64)
        spans = [self._code_rows[self._code_start[p] + 1 : self._code_start[p + 1]] for p in positions.tolist()]
        extra = np.concatenate(spans).astype(np.int64) if spans else np.zeros(0, dtype=np.int64)
        rows = None if self.rows is None else self.rows.take(np.concatenate([positions, extra]), list(codes))
        meta = {**self.meta, "num_codes": len(positions), "num_rows": len(positions) + len(extra)}
        meta["subset_of_scope"] = self.meta.get("scope")
        return CodeIndex(list(codes), self._take(positions), meta, rows, self._take(extra), self.known)

    def save(self, folder: Path) -> Path:
        """Write `<folder>/code_index/` (replacing an older one atomically); returns that path.

        `embeddings.npy` + `codes.json` keep one title row per code (what older readers expect); the other
        names are `names.npy`, and `rows.npz` describes every row (`IndexRows.save`).
        """
        target = Path(folder) / INDEX_DIRNAME
        staging = target.with_name(f".{INDEX_DIRNAME}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        np.save(staging / "embeddings.npy", self.embeddings)
        if len(self.name_embeddings):
            np.save(staging / "names.npy", self.name_embeddings)
        if self.rows is not None:
            self.rows.save(staging / ROWS_FILE)
        (staging / "codes.json").write_text(json.dumps(self.codes), encoding="utf-8")
        meta = {**self.meta, "dtype": "float16", "num_codes": len(self.codes), "num_rows": self.num_rows}
        (staging / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        if self.known is not None:
            self.known.save(staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target

    @classmethod
    def load(cls, folder: Path) -> CodeIndex:
        """Read an index from a model folder (or from the `code_index/` folder itself); old layouts too.

        The float16 files are mapped read-only, not read: their pages are shared and evictable, and a search
        reads back only the rows it rescores. Rows come from `rows.npz`, or from an older `rows.json`.
        """
        folder = Path(folder)
        if (folder / INDEX_DIRNAME).is_dir():
            folder = folder / INDEX_DIRNAME
        codes = json.loads((folder / "codes.json").read_text(encoding="utf-8"))
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        rows: IndexRows | None = None
        if (folder / ROWS_FILE).exists():
            rows = IndexRows.load(folder / ROWS_FILE, codes)
        elif (folder / LEGACY_ROWS_FILE).exists():
            rows = IndexRows.from_rows(json.loads((folder / LEGACY_ROWS_FILE).read_text(encoding="utf-8")), codes)
        names = read_rows_matrix(folder / "names.npy") if (folder / "names.npy").exists() else None
        titles = read_rows_matrix(folder / "embeddings.npy")
        return cls(codes, titles, meta, rows, names, KnownMentions.load(folder))

    @classmethod
    def from_hub(cls, repo_id: str, revision: str | None = None) -> CodeIndex:
        """Download `code_index/` from a model repo on the Hub (HF_ENDPOINT decides which Hub)."""
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, revision=revision, allow_patterns=[f"{INDEX_DIRNAME}/*"])
        return cls.load(Path(folder))


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
    """Normalised float32 document embeddings, with the model's document prompt when it has one.

    `model` is a SentenceTransformer or a `cie10.inference` ONNX encoder; many texts on an ONNX encoder are encoded
    by one worker process per core (`cie10.inference.parallel`).
    """
    from cie10.inference.parallel import encode_documents_parallel

    parallel = encode_documents_parallel(model, texts, prompt_name(model, DOCUMENT_PROMPT_NAME), batch_size)
    if parallel is not None:
        return parallel
    return _encode(model, texts, DOCUMENT_PROMPT_NAME, batch_size, show_progress_bar)


def encode_queries(model, texts: list[str], batch_size: int = 64, show_progress_bar: bool = False) -> np.ndarray:
    """Normalised float32 query embeddings, with the model's query prompt when it has one."""
    return _encode(model, texts, QUERY_PROMPT_NAME, batch_size, show_progress_bar)


def _fingerprint(texts: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:12]


def encode_rows(
    model, texts: Sequence[str], *, batch_size: int = 64, work_dir: Path | None = None, desc: str = "index rows"
) -> np.ndarray:
    """Float16 document embeddings of `texts` in their order, encoded shortest first in resumable chunks.

    With `work_dir`, each finished chunk is kept there (named by a fingerprint of the texts, so a changed row
    set never reuses a stale chunk) and a rerun encodes only what is missing.
    """
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    ordered = [texts[i] for i in order]
    key = _fingerprint(ordered)
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    chunks: list[np.ndarray] = []
    for start in tqdm(range(0, len(ordered), _CHUNK), desc=f"encoding {len(ordered)} {desc}", unit="chunk"):
        chunk_file = Path(work_dir) / f"chunk-{key}-{start:07d}.npy" if work_dir is not None else None
        if chunk_file is not None and chunk_file.exists():
            chunks.append(np.load(chunk_file))
            continue
        embeddings = encode_documents(model, ordered[start : start + _CHUNK], batch_size=batch_size)
        embeddings = embeddings.astype(np.float16)
        if chunk_file is not None:
            partial = chunk_file.with_suffix(".tmp.npy")
            np.save(partial, embeddings)
            partial.replace(chunk_file)
        chunks.append(embeddings)
    if not chunks:
        return np.zeros((0, 0), dtype=np.float16)
    matrix = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float16)
    matrix[np.asarray(order, dtype=np.int64)] = np.concatenate(chunks)
    return matrix


def build_code_index(
    model,
    catalog: Catalog,
    scope: str = "quickstart",
    *,
    names: str = "title",
    extra_names: NameTriples | None = None,
    examples: NameTriples | None = None,
    codes: Sequence[str] | None = None,
    model_id: str = "",
    batch_size: int = 64,
    work_dir: Path | None = None,
) -> CodeIndex:
    """Encode every name of the codes of `scope` (or of `codes`); `work_dir` keeps finished chunks for a resume.

    `names`: `title` (the English title alone), `all` (title, inclusion terms, own WHO / CIE-10 labels and
    `extra_names`) or `all+examples` (also `examples`, coded mentions such as CodiEsp train: never dev).
    """
    check_names_setting(names)
    entries = [catalog[code] for code in codes] if codes is not None else catalog.select(scope)
    rows = index_rows(entries, names, extra_names, examples)
    started = time.perf_counter()
    matrix = encode_rows(model, [row.text for row in rows], batch_size=batch_size, work_dir=work_dir)
    meta = {
        "model": model_id,
        "catalog_version": catalog.version,
        "scope": scope if codes is None else f"{scope} (given codes)",
        "names": names,
        "num_codes": len(entries),
        "num_rows": len(rows),
        "rows_per_language": _row_counts(rows, "language"),
        "rows_per_source": _row_counts(rows, "source"),
        "dimension": int(matrix.shape[1]) if matrix.size else 0,
        "dtype": "float16",
        "document": DOCUMENTS[names],
        "score": "a code's best row (max cosine)",
        "encode_seconds": round(time.perf_counter() - started, 1),
    }
    logger.info(
        "encoded %d rows of %d codes (%s scope, names %s) in %.0f s",
        len(rows),
        len(entries),
        scope,
        names,
        meta["encode_seconds"],
    )
    return CodeIndex([e.code for e in entries], matrix[: len(entries)], meta, rows, matrix[len(entries) :])
