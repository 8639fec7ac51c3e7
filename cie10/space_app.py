"""The Space: a Gradio page and API over the two-stage code search, loaded once from the Hub by id and revision.

`SpaceBackend` is plain Python (the tests and `gradio_client` users get the same dicts): it loads the bi-encoder
with its published `code_index/` (nothing is re-encoded), the reranker and the codes dataset, then answers
`search()` and `search_batch()`. `build_app()` only draws it; `launch()` serves it. `space/app.py` and
`cie10 serve` are thin wrappers.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import html
import io
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
import typing
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cie10.catalog import Catalog, CodeEntry, JoinReport, Label, load_catalog, normalize_code
from cie10.errors import Cie10Error, HubError
from cie10.search import MAX_QUERY_CHARS, CodeSearcher, EmptyQueryError
from cie10.segments import DEFAULT_DOCUMENT_RERANK_TOP, best_per_code, negation_cue, note_segments
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

QUERY_LANGUAGES: dict[str, str] = {
    "en": "English",
    "es": "Español",
    "ca": "Català",
    "it": "Italiano",
    "pt": "Português",
    "fr": "Français",
}
"""Languages a query may be written in (and titles shown in, where the catalogue has a label)."""
_LINGUA_NAMES: dict[str, str] = {
    "en": "ENGLISH",
    "es": "SPANISH",
    "ca": "CATALAN",
    "it": "ITALIAN",
    "pt": "PORTUGUESE",
    "fr": "FRENCH",
}
UNSUPPORTED_LANGUAGES: tuple[str, ...] = (
    "GERMAN",
    "CHINESE",
    "JAPANESE",
    "KOREAN",
    "RUSSIAN",
    "GREEK",
    "ARABIC",
    "HEBREW",
    "HINDI",
    "THAI",
)
"""Languages lingua also weighs so that a query in one of them is named, not labelled as one of the six. German is
the only other Latin-script one (each costs ~50 MB of n-gram models and steals short queries); the others have a
script of their own, which lingua recognises by rule without loading a model."""
UNSUPPORTED_CONFIDENCE = 0.5
"""An unsupported language must lead with at least this confidence; below it the best of the six is kept."""
EXAMPLES: list[tuple[str, str]] = [
    ("en", "asthma attack"),
    ("es", "infarto agudo de miocardio"),
    ("ca", "insuficiència cardíaca congestiva"),
    ("it", "fibrillazione atriale"),
    ("pt", "pneumonia bacteriana"),
    ("fr", "embolie pulmonaire"),
    ("es", "dolor torácico opresivo"),
    ("en", "type 2 diabetes with kidney complications"),
]
"""One or more example queries per language, shown under the query box."""
MAX_BATCH_QUERIES = 1000
"""A batch longer than this is refused with a message (the Space runs on a small CPU)."""
BATCH_CHUNK = 8
"""Queries searched per turn on the models: a query arriving during a long batch waits for one chunk at most."""
BATCH_TABLE_ROWS = 500
"""Rows shown in the batch tab's table (the CSV download has them all)."""
MAX_NOTE_SEGMENTS = 400
"""Sentences and clauses one clinical note may have (a CodiEsp case report has ~70)."""
MAX_UPLOAD = "5mb"
"""The largest batch file the page accepts (1,000 queries fit many times over)."""
MAX_QUEUED_EVENTS = 64
"""Requests waiting in the queue beyond this are refused ("the queue is full") rather than kept in memory."""
CONCURRENT_EVENTS = 4
"""Searches (and, apart, batches) the queue runs at once; they then take turns on the models (`FairLock`)."""
QUERY_COLUMN_NAMES: tuple[str, ...] = (
    "query",
    "queries",
    "text",
    "mention",
    "diagnosis",
    "diagnoses",
    "diagnostico",
    "diagnostic",
    "diagnosi",
    "consulta",
    "texto",
    "testo",
    "texte",
    "term",
    "termino",
    "terme",
    "description",
    "descripcion",
    "descrizione",
    "descricao",
)
"""CSV column names (compared without case or accents) that hold the queries, most specific first."""
BATCH_COLUMNS: tuple[str, ...] = (
    "query",
    "language",
    "rank",
    "code",
    "title",
    "english_title",
    "billable",
    "score",
    "rerank_score",
    "hierarchy",
    "message",
)
CODES_FILE = "data/codes.parquet"
"""Where `cie10 codes publish` puts the catalogue in `<org>/cie10-codes`."""
LOW_CONFIDENCE = 0.5
"""Below this lingua confidence the detected language is shown as uncertain."""

# torch's CPU kernels (oneDNN) keep a compiled primitive per input shape, up to 1,024: queries of every length made
# the Space's memory grow with each batch (+130 MB over six batches of 8 reranked queries, measured), so it keeps
# none (read when the first model call runs; no slower, measured).
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")


class NonsenseQueryError(Cie10Error):
    """A query with no letters at all (digits, punctuation, emoji): nothing a retriever can read."""


class NotTextFileError(Cie10Error):
    """An uploaded batch file that is binary or not UTF-8."""


class BatchColumnError(Cie10Error):
    """A CSV whose query column cannot be told from its header: the user chooses among `columns`."""

    def __init__(self, problem: str, columns: list[str]) -> None:
        self.columns = columns
        shown = ", ".join(f"“{column}”" for column in columns)
        super().__init__(f"{problem}: its columns are {shown}. Choose the one that holds the queries.")


class BatchTooLargeError(Cie10Error):
    """More queries than `MAX_BATCH_QUERIES` in one batch."""


# ------------------------------------------------------------------------------------------- language


@dataclass(frozen=True)
class DetectedLanguage:
    """What lingua says a query is written in: `code` is one of the six query languages, else None."""

    code: str | None
    confidence: float = 0.0
    unsupported: str | None = None
    """The English name of a language the models do not cover (German, Chinese…; "This language" when unnamed)."""

    @property
    def supported(self) -> bool:
        return self.unsupported is None

    def warning(self, searched: str) -> str | None:
        """What the page says about a query in a language the models were not trained on (None if supported)."""
        if self.supported:
            return None
        covered = ", ".join(name.title() for name in _LINGUA_NAMES.values())
        return (
            f"{self.unsupported} is not a supported language: the models were trained on {covered} only. "
            f"“{searched}” was searched as typed and titles are shown in English, so the ranking may be poor; "
            "translate the query for reliable results."
        )


@functools.lru_cache(maxsize=1)
def _detector() -> Any:
    """Lingua over the six query languages and `UNSUPPORTED_LANGUAGES`; models load on first use of a script."""
    from lingua import Language, LanguageDetectorBuilder

    languages = [getattr(Language, name) for name in (*_LINGUA_NAMES.values(), *UNSUPPORTED_LANGUAGES)]
    detector = LanguageDetectorBuilder.from_languages(*languages).build()
    detector.compute_language_confidence_values("warm up the latin script models")  # not on the first query
    return detector


def detect_language(text: str) -> DetectedLanguage:
    """The query language among the six with lingua's confidence, or the unsupported language it is written in."""
    if not any(char.isalpha() for char in text):
        return DetectedLanguage(None)
    values = _detector().compute_language_confidence_values(text)
    by_name = {name: code for code, name in _LINGUA_NAMES.items()}
    supported = [value for value in values if value.language.name in by_name]
    if values and values[0].language.name not in by_name and values[0].value >= UNSUPPORTED_CONFIDENCE:
        return DetectedLanguage(None, float(values[0].value), values[0].language.name.title())
    if not supported or supported[0].value <= 0.0:
        return DetectedLanguage(None, 0.0, "This language")
    return DetectedLanguage(by_name[supported[0].language.name], float(supported[0].value))


# --------------------------------------------------------------------------------------------- input


def validate_query(query: str | None) -> tuple[str, list[str]]:
    """The query as searched and warnings to show; raises EmptyQueryError or NonsenseQueryError with a message."""
    text = re.sub(r"\s+", " ", query or "").strip()
    if not text:
        raise EmptyQueryError(
            "Empty query: type a diagnosis, symptom or procedure in English, Spanish, Catalan, Italian, "
            "Portuguese or French."
        )
    if not any(char.isalpha() for char in text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise NonsenseQueryError(
            f"“{shown}” has no words to search for: type a diagnosis, symptom or procedure "
            "(for example “asthma attack” or “infarto agudo de miocardio”)."
        )
    warnings = []
    if len(text) > MAX_QUERY_CHARS:
        warnings.append(
            f"The query has {len(text)} characters; only the first {MAX_QUERY_CHARS} were searched. "
            "Shorter queries (one diagnosis at a time) rank better."
        )
        text = text[:MAX_QUERY_CHARS]
    return text, warnings


def read_batch_queries(text: str | None = None, file: str | Path | None = None, column: str | None = None) -> list[str]:
    """Queries from pasted lines and/or an uploaded text or CSV/TSV file (blank lines skipped).

    In a CSV the query column is `column`, else the one named like `QUERY_COLUMN_NAMES`, else the only one; a
    row whose query cell is empty stays, as "", so that the batch flags it. Raises `BatchColumnError` when the
    column cannot be told, `NotTextFileError` for a file that is not text.
    """
    queries = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not file:
        return queries
    path = Path(file)
    content = read_text_file(path)
    if path.suffix.lower() not in (".csv", ".tsv"):
        return queries + [line.strip() for line in content.splitlines() if line.strip()]
    rows = _csv_rows(path, content)
    if not rows:
        return queries
    header = [cell.strip() for cell in rows[0]]
    if column:
        names = [name.lower() for name in header]
        if column.strip().lower() not in names:
            raise BatchColumnError(f"{path.name} has no column “{column}”", header)
        index, body = names.index(column.strip().lower()), rows[1:]
    elif max(len(row) for row in rows) == 1:
        index, body = 0, rows[1:] if _column_name(header[0]) in QUERY_COLUMN_NAMES else rows
    else:
        index, body = _query_column(header), rows[1:]
        if index is None:
            raise BatchColumnError(f"{path.name} has no column named like “query” or “diagnosis”", header)
    return queries + [row[index].strip() if len(row) > index else "" for row in body]


def batch_file_columns(file: str | Path | None) -> tuple[list[str], str | None]:
    """(the header of an uploaded CSV/TSV, the query column found in it or None); ([], None) for other files."""
    if not file or Path(file).suffix.lower() not in (".csv", ".tsv"):
        return [], None
    rows = _csv_rows(Path(file), read_text_file(Path(file)))
    if not rows:
        return [], None
    header = [cell.strip() for cell in rows[0]]
    if max(len(row) for row in rows) == 1:
        return header, header[0]
    index = _query_column(header)
    return header, None if index is None else header[index]


def read_text_file(path: Path) -> str:
    """The file's text (UTF-8, with or without BOM); `NotTextFileError` for binary or otherwise encoded files."""
    data = path.read_bytes()
    control = sum(1 for byte in data[:65536] if byte < 32 and byte not in (9, 10, 13))
    if b"\x00" in data[:65536] or control > len(data[:65536]) // 100:
        raise NotTextFileError(
            f"{path.name} is not a text file (it holds binary data): upload a CSV, TSV or TXT file of queries."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise NotTextFileError(
            f"{path.name} is not UTF-8 text (line {line} has byte 0x{data[error.start]:02x}): save it as "
            "“CSV UTF-8” or plain UTF-8 text and upload it again."
        ) from None


def _csv_rows(path: Path, content: str) -> list[list[str]]:
    """Non-blank rows; the delimiter is a tab for .tsv, else the most frequent of `,;<tab>` in the first line."""
    lines = [line for line in content.splitlines() if line.strip()]
    if not lines:
        return []
    delimiter = "\t" if path.suffix.lower() == ".tsv" else max(",;\t", key=lines[0].count)
    if path.suffix.lower() != ".tsv" and not lines[0].count(delimiter):
        delimiter = ","
    return [row for row in csv.reader(io.StringIO(content), delimiter=delimiter) if any(cell.strip() for cell in row)]


def _column_name(name: str) -> str:
    """A header cell without case, accents or separators (`Diagnóstico principal` → `diagnostico_principal`)."""
    plain = unicodedata.normalize("NFKD", name.strip().lower())
    plain = "".join(char for char in plain if not unicodedata.combining(char))
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


def _query_column(header: list[str]) -> int | None:
    """The column named like a query (exact name first, in `QUERY_COLUMN_NAMES` order), else None."""
    names = [_column_name(cell) for cell in header]
    for wanted in QUERY_COLUMN_NAMES:
        if wanted in names:
            return names.index(wanted)
    partial = [index for index, name in enumerate(names) if set(name.split("_")) & set(QUERY_COLUMN_NAMES)]
    return partial[0] if len(partial) == 1 else None


# ------------------------------------------------------------------------------------------ catalogue


def catalog_from_records(records: list[dict[str, Any]], version: str) -> Catalog:
    """A `Catalog` rebuilt from the codes dataset's rows (as written by `Catalog.to_records`)."""
    if not records:
        raise HubError("the codes dataset has no rows")
    parents = {row["code"]: row.get("parent") for row in records}
    return _catalog_from_batches(parents, [records], version)


def catalog_from_parquet(path: Path, version: str, batch_size: int = 4096) -> Catalog:
    """`catalog_from_records` over a codes parquet file, read in batches: the ~98k rows never sit in memory as
    Python dicts all at once (as one list they took ~230 MB of the Space's peak memory; in batches, a few MB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if not parquet.metadata.num_rows:
        raise HubError("the codes dataset has no rows")
    links = parquet.read(columns=["code", "parent"], use_threads=False)
    parents = dict(zip(links.column("code").to_pylist(), links.column("parent").to_pylist(), strict=True))
    del links
    batches = (batch.to_pylist() for batch in parquet.iter_batches(batch_size=batch_size, use_threads=False))
    catalog = _catalog_from_batches(parents, batches, version)
    pa.default_memory_pool().release_unused()  # Arrow's pool keeps its decode buffers (~50 MB) otherwise
    return catalog


def _catalog_from_batches(
    parents: dict[str, str | None], batches: Iterable[list[dict[str, Any]]], version: str
) -> Catalog:
    """Only own labels are kept; inherited ones are found again by walking up, as in the installed catalogue."""
    children: dict[str, list[str]] = {}
    for code, parent in parents.items():
        if parent:
            children.setdefault(parent, []).append(code)
    entries: dict[str, CodeEntry] = {}
    languages: list[str] | None = None
    for rows in batches:
        for row in rows:
            if languages is None:
                languages = [match[1] for match in (re.fullmatch(r"title_([a-z]{2})", key) for key in row) if match]
            entries[row["code"]] = _entry_from_row(row, languages, children)
    return Catalog(entries, version, JoinReport())


def _entry_from_row(row: dict[str, Any], languages: list[str], children: dict[str, list[str]]) -> CodeEntry:
    """One code; its few distinct source, language, kind and chapter strings are interned (one copy each)."""
    code = row["code"]
    labels = [Label(row["title"], "en", "icd10cm-2026", code)]
    for language in languages:
        text = row[f"title_{language}"]
        if text and not row.get(f"title_{language}_inherited"):
            source = sys.intern(row.get(f"title_{language}_source") or "codes-dataset")
            labels.append(Label(text, language, source, code))
    for variant in row.get("variants") or []:
        source = sys.intern(variant.get("source") or "codes-dataset")
        label = Label(variant["text"], sys.intern(variant["language"]), source, code)
        if all((known.language, known.text) != (label.language, label.text) for known in labels):
            labels.append(label)
    return CodeEntry(
        code=code,
        title=row["title"],
        kind=sys.intern(row["kind"]),
        parent=row.get("parent") or None,
        children=tuple(children.get(code, ())),
        billable=bool(row["billable"]),
        inclusion_terms=tuple(row.get("inclusion_terms") or ()),
        chapter=sys.intern(str(row["chapter"])),
        labels=tuple(labels),
    )


# --------------------------------------------------------------------------------------------- config


@dataclass
class SpaceConfig:
    """Which repos (Hub ids or local folders) and versions the Space serves; `None` revision means `main`."""

    model_id: str = ""
    reranker_id: str | None = ""
    codes_id: str | None = ""
    revision: str | None = None
    reranker_revision: str | None = None
    codes_revision: str | None = None

    def __post_init__(self) -> None:
        settings = get_settings()
        self.model_id = self.model_id or settings.repo_id("cie10-bi")
        if self.reranker_id == "":
            self.reranker_id = settings.repo_id("cie10-rerank")
        if self.codes_id == "":
            self.codes_id = settings.repo_id("cie10-codes")
        self.reranker_revision = self.reranker_revision or self.revision
        self.codes_revision = self.codes_revision or self.revision

    @classmethod
    def from_env(cls) -> SpaceConfig:
        """From `CIE10_SPACE_{MODEL,RERANKER,CODES,REVISION}` (RERANKER=none disables reranking)."""

        def env(name: str) -> str:
            return os.environ.get(f"CIE10_SPACE_{name}", "").strip()

        reranker = env("RERANKER")
        return cls(
            model_id=env("MODEL"),
            reranker_id=None if reranker.lower() == "none" else reranker,
            codes_id=env("CODES"),
            revision=env("REVISION") or None,
            reranker_revision=env("RERANKER_REVISION") or None,
            codes_revision=env("CODES_REVISION") or None,
        )


@dataclass
class Source:
    """One loaded artifact: repo id (or folder), requested revision and the commit it resolved to."""

    repo_id: str
    revision: str | None
    sha: str | None = None
    kind: str = "model"

    def describe(self) -> str:
        """`org/name@v1.0 (1a2b3c4)` or the folder path."""
        if Path(self.repo_id).is_dir():
            return f"{self.repo_id} (local folder)"
        short = f" ({self.sha[:7]})" if self.sha else ""
        return f"{self.repo_id}@{self.revision or 'main'}{short}"

    def url(self) -> str | None:
        """The repo's page at its revision on the configured Hub (`HF_ENDPOINT`); None for a local folder."""
        if _is_local(self.repo_id):
            return None
        from cie10 import hub

        prefix = "datasets/" if self.kind == "dataset" else ""
        revision = urllib.parse.quote(self.revision or "main", safe="")
        return f"{hub.endpoint()}/{prefix}{self.repo_id}/tree/{revision}"

    def link(self) -> str:
        """HTML: `org/name@v1.0` linking to `url()` (the `@` is an entity, so no Markdown makes it an e-mail)."""
        text = _html_text(self.describe())
        url = self.url()
        return f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{text}</a>' if url else text


def _is_local(repo_id: str) -> bool:
    return Path(repo_id).is_dir()


def _resolve_sha(repo_id: str, repo_type: str, revision: str | None) -> str | None:
    """The commit a revision points to on the current Hub (None when the Hub cannot say)."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        info = (api.model_info if repo_type == "model" else api.dataset_info)(repo_id, revision=revision)
        return info.sha
    except Exception as error:  # noqa: BLE001 - provenance only; loading itself reports real failures
        logger.debug("could not resolve %s@%s: %s", repo_id, revision, error)
        return None


# --------------------------------------------------------------------------------------------- backend


@dataclass(frozen=True)
class RerankerEvidence:
    """The bi-encoder's order against reranked, as the release measured it (CodiEsp dev mentions, shipped as
    `eval/rerank_evidence.json`) or, without that, the reranker's own training run on held-out groups."""

    metric: str
    bi_encoder_order: float
    reranked: float
    gain_ci: tuple[float, float] | None = None
    """95% paired bootstrap interval of `reranked - bi_encoder_order`, where the run measured one."""
    measured_on: str = "held-out groups"

    @property
    def helps(self) -> bool:
        """Ahead of the bi-encoder's order, and by more than the noise where an interval was measured."""
        return self.reranked > self.bi_encoder_order and (self.gain_ci is None or self.gain_ci[0] > 0)

    def describe(self) -> str:
        verdict = "on" if self.helps else "off"
        interval = f" (gain 95% CI [{self.gain_ci[0]:+.3f}, {self.gain_ci[1]:+.3f}])" if self.gain_ci else ""
        return (
            f"Reranking is {verdict} by default: on {self.measured_on} the reranker scored {self.metric} "
            f"{self.reranked:.3f} against {self.bi_encoder_order:.3f} for the bi-encoder's own order{interval}."
        )


def _reranker_file(reranker_id: str, revision: str | None, name: str) -> Path:
    """A file of the reranker repo (or folder); OSError-like errors when it has none."""
    from huggingface_hub import hf_hub_download

    if _is_local(reranker_id):
        path = Path(reranker_id) / name
        if not path.is_file():
            raise FileNotFoundError(path)
        return path
    return Path(hf_hub_download(reranker_id, name, revision=revision))


def _release_evidence(reranker_id: str, revision: str | None) -> RerankerEvidence | None:
    """The release's comparison of the two-stage system with the bi-encoder's order (`eval/rerank_evidence.json`:
    CodiEsp dev mentions), or None when the release ships none."""
    from cie10.fusion import RERANK_EVIDENCE_FILE, rerank_comparison

    try:
        results = json.loads(_reranker_file(reranker_id, revision, RERANK_EVIDENCE_FILE).read_text(encoding="utf-8"))
        comparison = rerank_comparison(results)
    except Exception:  # noqa: BLE001 - releases before this file, or a reranker trained elsewhere
        logger.debug("no release evidence for %s", reranker_id, exc_info=True)
        return None
    dataset = results.get("dataset") or {}
    where = f"{dataset.get('name') or dataset.get('id') or 'the release benchmark'} {dataset.get('split') or ''}"
    return RerankerEvidence(
        comparison["metric"],
        float(comparison["baseline_score"]),
        float(comparison["system_score"]),
        (float(comparison["ci_low"]), float(comparison["ci_high"])),
        f"{where.strip()} ({comparison['num_queries']:,} queries, measured at release)",
    )


def _reranker_evidence(reranker_id: str, revision: str | None) -> RerankerEvidence | None:
    """What decides the reranking default: the release's measurement on CodiEsp dev when it ships one, else the
    held-out comparison of the reranker's `run_summary.json` (of its fused order when it ships a fusion weight);
    None for a reranker with neither (trusted: reranking on)."""
    from cie10.training.summary import SUMMARY_FILE

    release = _release_evidence(reranker_id, revision)
    if release is not None:
        return release
    try:
        summary = json.loads(_reranker_file(reranker_id, revision, SUMMARY_FILE).read_text(encoding="utf-8"))
        fusion = summary.get("fusion")
        if fusion:  # the order the searcher applies: the reranker's score fused with the bi-encoder's
            interval = fusion.get("gain_ci")
            return RerankerEvidence(
                "mrr_at_10",
                float(fusion["bi_order_mrr_at_10"]),
                float(fusion["mrr_at_10"]),
                (float(interval[0]), float(interval[1])) if interval else None,
            )
        mean = summary["metrics"]["summary"]["mean"]
        return RerankerEvidence(summary["main_metric"], float(mean["bi_encoder_order"]), float(mean["reranked"]))
    except Exception:  # noqa: BLE001 - a reranker trained elsewhere carries no summary: trust it, default on
        logger.debug("no run summary for %s", reranker_id, exc_info=True)
        return None


class FairLock:
    """A first-come, first-served lock: each model call takes a turn, so a long batch (one turn per chunk) lets a
    query that arrives meanwhile run after the current chunk instead of after the whole batch."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self._condition:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._condition.wait_for(lambda: self._serving == ticket)
        try:
            yield
        finally:
            with self._condition:
                self._serving += 1
                self._condition.notify_all()


@dataclass
class SpaceBackend:
    """Everything the Space serves, loaded once: the searcher, its catalogue and where each part came from."""

    searcher: CodeSearcher
    sources: dict[str, Source]
    notes: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    reranker_evidence: RerankerEvidence | None = None
    turns: FairLock = field(default_factory=FairLock, repr=False)
    """Serialises model calls (the models are not thread-safe) in arrival order."""

    @property
    def catalog(self) -> Catalog:
        return self.searcher.catalog

    @property
    def has_reranker(self) -> bool:
        return self.searcher.reranker is not None

    @property
    def rerank_default(self) -> bool:
        """Rerank unless the reranker's own run measured it below the bi-encoder's order."""
        return self.has_reranker and (self.reranker_evidence is None or self.reranker_evidence.helps)

    def _rerank(self, rerank: bool | None) -> bool:
        return self.rerank_default if rerank is None else bool(rerank)

    # ---------------------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, config: SpaceConfig | None = None) -> SpaceBackend:
        """Load the bi-encoder, its code index, the reranker and the codes dataset (by Hub id and revision).

        Both models run on the `CIE10_BACKEND` inference path (`cie10 serve --backend`; onnxruntime by default, no
        torch imported when the repos ship their ONNX files: `cie10.inference`).
        """
        from cie10 import hub
        from cie10.code_index import CodeIndex
        from cie10.inference import load_encoder

        config = config or SpaceConfig.from_env()
        limit_malloc_arenas()
        started = time.perf_counter()
        notes: list[str] = []
        sources: dict[str, Source] = {}

        model_id, revision = config.model_id, config.revision
        logger.info("loading bi-encoder %s@%s", model_id, revision or "main")
        if _is_local(model_id):
            bi_encoder = load_encoder(model_id, device="cpu")
            index = CodeIndex.load(Path(model_id))
            sources["bi_encoder"] = Source(model_id, None)
        else:
            hub.check_revision(model_id, "model", revision)
            with hub.hub_errors(model_id, "model", revision):
                bi_encoder = load_encoder(model_id, revision, device="cpu")
                index = CodeIndex.from_hub(model_id, revision)
            sources["bi_encoder"] = Source(model_id, revision, _resolve_sha(model_id, "model", revision))
        logger.info("code index: %d codes (%s)", len(index), index.meta.get("scope", "?"))

        reranker, evidence = None, None
        if config.reranker_id:
            reranker, note = _load_reranker(config.reranker_id, config.reranker_revision)
            if reranker is not None:
                local = _is_local(config.reranker_id)
                sha = None if local else _resolve_sha(config.reranker_id, "model", config.reranker_revision)
                sources["reranker"] = Source(config.reranker_id, config.reranker_revision, sha)
                evidence = _reranker_evidence(config.reranker_id, config.reranker_revision)
                if evidence is not None:
                    logger.info("%s", evidence.describe())
            else:
                notes.append(note)

        catalog, codes_source, note = _load_codes(config.codes_id, config.codes_revision, index.codes)
        if codes_source is not None:
            sources["codes"] = codes_source
        if note:
            notes.append(note)
        indexed_version = index.meta.get("catalog_version")
        if indexed_version and catalog.version != indexed_version and codes_source is None:
            notes.append(f"The index was built on {indexed_version}; titles come from {catalog.version}.")

        searcher = CodeSearcher(bi_encoder, index, reranker, catalog)
        _detector()  # lingua's models load here, not on the first query
        release_freed_memory()
        backend = cls(searcher, sources, notes, time.perf_counter() - started, evidence)
        for note in notes:
            logger.warning("%s", note)
        logger.info("space ready in %.1f s: %s", backend.load_seconds, backend.describe())
        return backend

    def coverage(self) -> str:
        """One sentence: how many codes the index searches out of the catalogue's, and that it is an aid."""
        total = len(self.catalog.select("full"))
        meta = self.searcher.index.meta
        version = str(meta.get("catalog_version") or "the catalogue").split(" (")[0]
        return (
            f"This index searches {len(self.searcher.index):,} of the {total:,} codes of {version}"
            + (f" (scope “{meta['scope']}”)" if meta.get("scope") else "")
            + ": a code "
            "outside it is never suggested. It is an aid for coders, not a coding decision: check every code "
            "against the record and the official Tabular List."
        )

    def describe(self) -> str:
        """One line: what is loaded from where."""
        parts = [f"{name}: {source.describe()}" for name, source in self.sources.items()]
        return "; ".join(parts + [f"index: {len(self.searcher.index)} codes"])

    def info(self) -> dict[str, Any]:
        """Provenance as plain data (for the API and the About tab)."""
        return {
            "sources": {name: dataclasses.asdict(source) for name, source in self.sources.items()},
            "index": {"num_codes": len(self.searcher.index), **self.searcher.index.meta},
            "coverage": self.coverage(),
            "catalog_version": self.catalog.version,
            "reranker": self.has_reranker,
            "rerank_default": self.rerank_default,
            "notes": list(self.notes),
            "load_seconds": round(self.load_seconds, 1),
        }

    @functools.cached_property
    def _chapter_choices(self) -> list[tuple[str, str]]:
        present = set(self.searcher._chapters.tolist())
        chapters = [entry for entry in self.catalog if entry.kind == "chapter" and entry.code in present]
        chapters.sort(key=lambda entry: int(entry.code) if entry.code.isdigit() else 99)
        return [(f"{entry.code} · {entry.title}", entry.code) for entry in chapters]

    def chapters(self) -> list[tuple[str, str]]:
        """(label, chapter number) of every chapter that has codes in the index."""
        return list(self._chapter_choices)

    # ----------------------------------------------------------------------------------------- search

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        rerank: bool | None = None,
        rerank_top: int = 20,
        billable_only: bool = False,
        chapter: str | None = None,
        display_language: str = "auto",
    ) -> dict[str, Any]:
        """Rank codes for one query (`rerank=None`: `rerank_default`); raises a Cie10Error on unusable input."""
        rerank = self._rerank(rerank)
        text, warnings = validate_query(query)
        chapter = self._check_options(top_k, rerank_top, chapter)
        detected = detect_language(text)
        shown = _display_language(display_language, detected.code)
        warnings += [warning for warning in [detected.warning(text)] if warning] + self._code_hint(text)
        if rerank and not self.has_reranker:
            warnings.append("No reranker is loaded: showing the bi-encoder ranking.")
        with self.turns.turn():
            result = self.searcher.search(
                text,
                top_k=int(top_k),
                rerank=bool(rerank),
                rerank_top=int(rerank_top),
                billable_only=bool(billable_only),
                chapter=chapter,
            )
        if not result.hits:
            warnings.append("No code matches these filters: clear “billable only” or the chapter.")
        return {
            "query": text,
            "language": detected.code,
            "language_confidence": round(detected.confidence, 3),
            "language_supported": detected.supported,
            "unsupported_language": detected.unsupported,
            "display_language": shown,
            "reranked": bool(rerank and self.has_reranker),
            "hits": [self._hit(hit, shown) for hit in result.hits],
            "timings": {name: round(seconds, 4) for name, seconds in result.timings.items()},
            "warnings": warnings,
        }

    def search_batch(
        self,
        queries: list[str],
        *,
        top_k: int = 5,
        rerank: bool | None = None,
        rerank_top: int = 20,
        billable_only: bool = False,
        chapter: str | None = None,
        display_language: str = "auto",
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        """One flat row per (query, ranked code), and a row with a `message` for each unusable query.

        The queries run in chunks of `BATCH_CHUNK`, each taking its turn on the models (see `FairLock`);
        `progress(done, total)` is called after each chunk.
        """
        rerank = self._rerank(rerank)
        if not queries:
            raise EmptyQueryError("No queries: paste one query per line or upload a CSV with a `query` column.")
        if len(queries) > MAX_BATCH_QUERIES:
            raise BatchTooLargeError(
                f"{len(queries):,} queries: the Space ranks at most {MAX_BATCH_QUERIES:,} per batch. "
                "Split the file, or run the models locally (`cie10 serve`) for more."
            )
        chapter = self._check_options(top_k, rerank_top, chapter)
        rows: list[dict[str, Any]] = []
        searched, elapsed = 0, 0.0
        for first in range(0, len(queries), BATCH_CHUNK):
            chunk = queries[first : first + BATCH_CHUNK]
            started = time.perf_counter()
            rows += self._search_chunk(chunk, top_k, rerank, rerank_top, billable_only, chapter, display_language)
            elapsed += time.perf_counter() - started
            searched += sum(1 for query in chunk if (query or "").strip())
            if progress is not None:
                progress(first + len(chunk), len(queries))
        timings = {"total_s": round(elapsed, 3), "per_query_s": round(elapsed / max(1, searched), 4)}
        return rows, timings

    def search_note(
        self,
        note: str,
        *,
        top_k: int = 10,
        rerank: bool | None = None,
        billable_only: bool = False,
        chapter: str | None = None,
        display_language: str = "auto",
    ) -> dict[str, Any]:
        """Codes for a whole clinical note: each sentence and clause is searched (`cie10.segments`), a code's
        score is its best as a segment's top code, and each hit says which segment found it and the negation
        word that segment holds, if any (kept, not dropped: `negation_cue`). The segments run in chunks of
        `BATCH_CHUNK`, each taking its turn on the models, as a batch does."""
        rerank = self._rerank(rerank)
        if not (note or "").strip():
            raise EmptyQueryError("Empty note: paste a clinical note, a few sentences in one of the six languages.")
        chapter = self._check_options(top_k, DEFAULT_DOCUMENT_RERANK_TOP, chapter)
        segments = [text for text in note_segments(note) if any(char.isalpha() for char in text)]
        if not segments:
            raise NonsenseQueryError("The note has no words to search for.")
        if len(segments) > MAX_NOTE_SEGMENTS:
            raise BatchTooLargeError(
                f"The note has {len(segments):,} sentences and clauses; the Space searches at most "
                f"{MAX_NOTE_SEGMENTS:,}. Paste one note at a time."
            )
        detected = detect_language(note[:MAX_QUERY_CHARS])
        shown = _display_language(display_language, detected.code)
        warnings = [warning for warning in [detected.warning(note)] if warning]
        started = time.perf_counter()
        results = []
        for first in range(0, len(segments), BATCH_CHUNK):
            with self.turns.turn():
                results += self.searcher.search_many(
                    [validate_query(text)[0] for text in segments[first : first + BATCH_CHUNK]],
                    top_k=1,
                    rerank=bool(rerank),
                    rerank_top=DEFAULT_DOCUMENT_RERANK_TOP,
                    billable_only=bool(billable_only),
                    chapter=chapter,
                )
        rankings = [[(hit.code, hit.ranking_score) for hit in result.hits] for result in results]
        hits = []
        for rank, (_, _, segment) in enumerate(best_per_code(rankings, 1)[: int(top_k)], start=1):
            hit = dataclasses.replace(results[segment].hits[0], rank=rank)
            passage = segments[segment]
            hits.append(self._hit(hit, shown) | {"segment": passage, "negation": negation_cue(passage, detected.code)})
        if not hits:
            warnings.append("No code matches these filters: clear “billable only” or the chapter.")
        return {
            "segments": len(segments),
            "language": detected.code,
            "display_language": shown,
            "reranked": bool(rerank and self.has_reranker),
            "hits": hits,
            "timings": {"total_s": round(time.perf_counter() - started, 3)},
            "warnings": warnings,
        }

    def _search_chunk(
        self,
        queries: list[str],
        top_k: int,
        rerank: bool,
        rerank_top: int,
        billable_only: bool,
        chapter: str | None,
        display_language: str,
    ) -> list[dict[str, Any]]:
        """The batch rows of a few queries, searched in one turn on the models."""
        checked: dict[int, tuple[str, list[str]]] = {}  # position: (searched text, warnings)
        rows_by_query: dict[int, list[dict[str, Any]]] = {}
        for number, query in enumerate(queries):
            try:
                checked[number] = validate_query(query)
            except Cie10Error as error:
                rows_by_query[number] = [_batch_row(query, message=str(error))]
        results = []
        if checked:
            with self.turns.turn():
                results = self.searcher.search_many(
                    [text for text, _ in checked.values()],
                    top_k=int(top_k),
                    rerank=bool(rerank),
                    rerank_top=int(rerank_top),
                    billable_only=bool(billable_only),
                    chapter=chapter,
                )
        for (number, (text, warnings)), result in zip(checked.items(), results, strict=True):
            query = queries[number]
            detected = detect_language(text)
            language = detected.code or (detected.unsupported or "").lower()
            shown = _display_language(display_language, detected.code)
            message = " ".join(warnings + [warning for warning in [detected.warning(text)] if warning])
            rows = [
                _batch_row(
                    query,
                    language=language,
                    rank=hit.rank,
                    code=hit.code,
                    title=self.catalog.display_title(hit.code, shown)[0],
                    english_title=self.catalog[hit.code].title,
                    billable=self.catalog[hit.code].billable,
                    score=round(hit.score, 4),
                    rerank_score=None if hit.rerank_score is None else round(hit.rerank_score, 4),
                    hierarchy=" › ".join(self.catalog.path(hit.code)[:-1]),
                    message=message,
                )
                for hit in result.hits
            ]
            rows_by_query[number] = rows or [_batch_row(query, language=language, message="no code matches")]
        return [row for number in range(len(queries)) for row in rows_by_query[number]]

    def _check_options(self, top_k: int, rerank_top: int, chapter: str | None) -> str | None:
        """The chapter filter as a chapter number (None: all); a Cie10Error for options out of range."""
        if not _is_int_between(top_k, 1, 100):
            raise Cie10Error(f"top_k must be between 1 and 100, not {top_k}")
        if not _is_int_between(rerank_top, 1, 200):
            raise Cie10Error(f"the reranker shortlist must be between 1 and 200 codes, not {rerank_top}")
        chapter = (chapter or "").strip()
        if chapter.lower() in ("", "all", "any"):
            return None
        chapter = chapter.split("·")[0].strip()
        if chapter not in {value for _, value in self.chapters()}:
            raise Cie10Error(f"unknown chapter {chapter!r}: expected a chapter number such as 10")
        return chapter

    def _code_hint(self, text: str) -> list[str]:
        """A note when the query is itself a code of the catalogue (the search is by meaning, not by code)."""
        if not re.fullmatch(r"[A-Za-z][0-9][0-9A-Za-z](\.?[0-9A-Za-z]{1,4})?", text):
            return []
        code = normalize_code(text)
        if code not in self.catalog.entries:
            return []
        return [f"“{text}” is itself a code: {code} {self.catalog[code].title}. The search ranks codes by meaning."]

    def _hit(self, hit, language: str) -> dict[str, Any]:
        entry = self.catalog[hit.code]
        title, inherited = self.catalog.display_title(hit.code, language)
        own_language = language if language != "en" and (title != entry.title or inherited) else "en"
        path = self.catalog.path(hit.code)[:-1]
        return {
            "rank": hit.rank,
            "code": hit.code,
            "title": title,
            "title_language": own_language,
            "title_inherited": inherited,
            "english_title": entry.title,
            "score": round(hit.score, 4),
            "rerank_score": None if hit.rerank_score is None else round(hit.rerank_score, 4),
            "matched_name": hit.matched_name,
            "exact": hit.exact,
            "times_coded": hit.times_coded,
            "billable": entry.billable,
            "kind": entry.kind,
            "chapter": entry.chapter,
            "hierarchy": [{"code": code, "title": self.catalog[code].title} for code in path],
        }


def _is_int_between(value: Any, low: int, high: int) -> bool:
    try:
        return low <= int(value) <= high and float(value) == int(value)
    except (TypeError, ValueError):
        return False


def _display_language(requested: str | None, detected: str | None) -> str:
    requested = (requested or "auto").strip().lower()
    if requested in QUERY_LANGUAGES:
        return requested
    return detected or "en"


def _batch_row(query: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(BATCH_COLUMNS, "")
    row.update(query=query, **{key: ("" if value is None else value) for key, value in values.items()})
    return row


def write_batch_csv(rows: list[dict[str, Any]], folder: Path | None = None) -> Path:
    """The batch rows as `cie10-ranked-codes.csv` in a fresh temporary folder (or `folder`)."""
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="cie10-batch-"))
    path = folder / "cie10-ranked-codes.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(BATCH_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


MALLOC_ARENAS = 2
"""glibc malloc arenas the Space process may use (`MALLOC_ARENA_MAX`): measured -20 MB of peak memory."""
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def _libc() -> Any:
    """glibc through ctypes, or None (another C library)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        library = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return library if library is not None and hasattr(library, "mallopt") else None


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas at `count`, as `MALLOC_ARENA_MAX` does (a Space cannot set it before Python starts):
    by default each of gradio's and onnxruntime's threads gets an arena that keeps its freed memory apart. Whether
    it took effect (False off glibc)."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, count))


def release_freed_memory() -> None:
    """Hand the heap freed while loading (parsed JSON, parquet batches, session build buffers) back to the system
    (glibc's `malloc_trim`), so that the queries' allocations start from what the Space really holds."""
    import gc

    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _load_reranker(reranker_id: str, revision: str | None) -> tuple[Any, str]:
    """(reranker, "") or (None, why): the Space still serves the bi-encoder ranking without it."""
    from cie10 import hub
    from cie10.inference import load_cross_encoder

    logger.info("loading reranker %s@%s", reranker_id, revision or "main")
    try:
        if _is_local(reranker_id):
            return load_cross_encoder(reranker_id, device="cpu"), ""
        hub.check_revision(reranker_id, "model", revision)
        with hub.hub_errors(reranker_id, "model", revision):
            return load_cross_encoder(reranker_id, revision, device="cpu"), ""
    except Exception as error:  # noqa: BLE001 - reported in the page; the bi-encoder still works
        logger.debug("reranker load failed", exc_info=True)
        return None, f"Reranker {reranker_id}@{revision or 'main'} not loaded ({error}); reranking is off."


def _load_codes(codes_id: str | None, revision: str | None, codes: list[str]) -> tuple[Catalog, Source | None, str]:
    """The catalogue from the codes dataset at `revision`, else the installed one with a note saying why."""
    if not codes_id:
        return load_catalog(), None, ""
    try:
        import pyarrow.parquet as pq

        from cie10 import hub

        if _is_local(codes_id):
            path, sha = Path(codes_id) / CODES_FILE, None
        else:
            path = hub.download_file(codes_id, CODES_FILE, repo_type="dataset", revision=revision)
            sha = path.parent.parent.name if path.parent.name == "data" else None
            sha = sha if sha and re.fullmatch(r"[0-9a-f]{40}", sha) else _resolve_sha(codes_id, "dataset", revision)
        source = Source(codes_id, revision, sha, kind="dataset")
        rows = pq.ParquetFile(path).metadata.num_rows
        catalog = catalog_from_parquet(path, f"{source.describe()} ({rows} rows)")
        missing = [code for code in codes if code not in catalog.entries]
        if missing:
            raise HubError(f"{len(missing)} indexed codes (e.g. {', '.join(missing[:3])}) are not in it")
        return catalog, source, ""
    except Exception as error:  # noqa: BLE001 - the installed catalogue is a complete fallback
        logger.debug("codes dataset load failed", exc_info=True)
        catalog = load_catalog()
        note = (
            f"Codes dataset {codes_id}@{revision or 'main'} not used ({error}); "
            f"titles come from the installed catalogue ({catalog.version})."
        )
        return catalog, None, note


# --------------------------------------------------------------------------------------------- drawing

CSS = """
:is(#results, #note-results) table { width: 100%; border-collapse: collapse; font-size: 0.95em; }
:is(#results, #note-results) :is(th, td) { text-align: left; padding: 6px 8px; border: none;
  border-bottom: 1px solid var(--border-color-primary); }
:is(#results, #note-results) td.code { font-family: var(--font-mono); font-weight: 600; white-space: nowrap; }
:is(#results, #note-results) td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
:is(#results, #note-results) .path { color: var(--body-text-color-subdued); font-size: 0.85em; }
:is(#results, #note-results) .tag { font-size: 0.75em; padding: 1px 6px; border-radius: 8px; margin-left: 4px;
  background: var(--background-fill-secondary); color: var(--body-text-color-subdued); }
:is(#results, #note-results) .billable { color: var(--color-accent); font-weight: 600; }
:is(#results, #note-results) .own { font-size: 0.9em; }
:is(#results, #note-results) td.segment { font-style: italic; max-width: 22em; }
#note-results .tag.negation { font-style: normal; color: #991b1b; background: #fee2e2; }
"""


def _html_text(text: str) -> str:
    """Text escaped for HTML, with `@` as an entity so that no Markdown renderer turns it into an e-mail link."""
    return html.escape(text).replace("@", "&#64;")


def _language_name(code: str | None) -> str:
    return f"{QUERY_LANGUAGES[code]} ({code})" if code in QUERY_LANGUAGES else "unknown"


def render_status(payload: dict[str, Any]) -> str:
    """Markdown: detected language, what ran and how long each stage took, then any warnings."""
    timings = payload["timings"]
    confidence = payload["language_confidence"]
    language = f"**{_language_name(payload['language'])}**"
    if payload.get("unsupported_language"):
        language = f"**{payload['unsupported_language']} (not supported)**"
    elif payload["language"] and confidence < LOW_CONFIDENCE:
        language += f" (uncertain, {confidence:.2f})"
    stages = f"encode {timings['encode_s'] * 1000:.0f} ms · retrieve {timings['retrieve_s'] * 1000:.1f} ms"
    stages += f" · rerank {timings['rerank_s'] * 1000:.0f} ms" if payload["reranked"] else " · rerank off"
    lines = [f"Detected language: {language} · titles in {_language_name(payload['display_language'])} · {stages}"]
    lines += [f"⚠️ {warning}" for warning in payload["warnings"]]
    return "\n\n".join(lines)


def render_hits(payload: dict[str, Any]) -> str:
    """An HTML table of the ranked codes (escaped): code, title, hierarchy path, the passage of a note that found it
    (note hits), billable flag, scores."""
    if not payload["hits"]:
        return "<p>No results.</p>"
    reranked = payload["reranked"]
    found_in = any("segment" in hit for hit in payload["hits"])
    head = "<tr><th>#</th><th>Code</th><th>Title</th>" + ("<th>Found in</th>" if found_in else "")
    head += "<th>Billable</th><th>Score</th>"
    head += "<th>Rerank</th></tr>" if reranked else "</tr>"
    rows = []
    for hit in payload["hits"]:
        esc = html.escape
        tag = ""
        if hit["title_inherited"]:
            tag = f'<span class="tag" title="label of an ancestor code">{esc(hit["title_language"])}, inherited</span>'
            tag += f'<div class="own" title="the code\'s own title">en: {esc(hit["english_title"])}</div>'
        elif payload["display_language"] != "en" and hit["title_language"] == "en":
            tag = '<span class="tag" title="no label in the chosen language">en</span>'
        if hit.get("exact"):
            tag += (
                f'<span class="tag" title="the query is a mention coders gave this code '
                f'{esc(str(hit.get("times_coded") or ""))} time(s): {esc(hit.get("matched_name") or "")}">exact</span>'
            )
        path = " › ".join(
            f'<span title="{esc(step["title"])}">{"Ch. " if step["code"].isdigit() else ""}{esc(step["code"])}</span>'
            for step in hit["hierarchy"]
        )
        billable = '<span class="billable">billable</span>' if hit["billable"] else "header"
        cells = [
            f'<td class="num">{hit["rank"]}</td>',
            f'<td class="code" title="{esc(hit["english_title"])}">{esc(hit["code"])}</td>',
            f'<td>{esc(hit["title"])}{tag}<div class="path">{path}</div></td>',
            *([f'<td class="segment">{esc(hit.get("segment", ""))}{_negation_tag(hit)}</td>'] if found_in else []),
            f"<td>{billable}</td>",
            f'<td class="num">{hit["score"]:.3f}</td>',
        ]
        if reranked:
            rerank = "" if hit["rerank_score"] is None else f"{hit['rerank_score']:.3f}"
            cells.append(f'<td class="num">{rerank}</td>')
        rows.append(f'<tr data-code="{esc(hit["code"])}">{"".join(cells)}</tr>')
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _negation_tag(hit: dict[str, Any]) -> str:
    """A note hit's flag when the passage that found it holds a negation word ("sin fiebre" finds fever too)."""
    cue = hit.get("negation")
    if not cue:
        return ""
    tip = f"the passage holds a negation ({cue}): check whether the finding is present"
    return f'<span class="tag negation" title="{html.escape(tip)}">negation: {html.escape(cue)}</span>'


def _error_text(error: Exception) -> str:
    if isinstance(error, Cie10Error):
        return f"⚠️ {error}"
    logger.exception("search failed")
    return f"⚠️ The search failed ({type(error).__name__}). Try again, or a shorter query."


def build_app(backend: SpaceBackend):  # -> gradio.Blocks
    """The Gradio page: search, batch, clinical note and about tabs; the `/search`, `/search_batch`, `/search_note`
    and `/info` API endpoints."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    chapter_choices = [("All chapters", "all"), *backend.chapters()]
    language_choices = [("Auto (detected language)", "auto")] + [
        (f"{name} ({code})", code) for code, name in QUERY_LANGUAGES.items()
    ]

    def api_search(
        query: str,
        top_k: int = 10,
        rerank: bool | None = None,
        rerank_top: int = 20,
        billable_only: bool = False,
        chapter: str = "all",
        display_language: str = "auto",
    ) -> dict:
        """Rank ICD-10-CM codes for a query in en, es, ca, it, pt or fr (rerank: None = the Space's default, see
        /info). Returns {query, language, hits, timings, warnings}; each hit has rank, code, title, billable,
        score, rerank_score and its hierarchy (chapter, block, category: {code, title} each)."""
        try:
            return backend.search(
                query,
                top_k=top_k,
                rerank=rerank,
                rerank_top=rerank_top,
                billable_only=billable_only,
                chapter=chapter,
                display_language=display_language,
            )
        except Cie10Error as error:
            raise gr.Error(str(error), print_exception=False) from None

    def api_search_batch(
        queries: list[str],
        top_k: int = 5,
        rerank: bool | None = None,
        rerank_top: int = 20,
        billable_only: bool = False,
        chapter: str = "all",
        display_language: str = "auto",
    ) -> list[dict]:
        """Rank codes for many queries at once: one row per (query, code), as in the batch CSV."""
        try:
            rows, _ = backend.search_batch(
                list(queries),
                top_k=top_k,
                rerank=rerank,
                rerank_top=rerank_top,
                billable_only=billable_only,
                chapter=chapter,
                display_language=display_language,
            )
            return rows
        except Cie10Error as error:
            raise gr.Error(str(error), print_exception=False) from None

    def api_search_note(
        note: str,
        top_k: int = 10,
        rerank: bool | None = None,
        billable_only: bool = False,
        chapter: str = "all",
        display_language: str = "auto",
    ) -> dict:
        """Codes for a whole clinical note: every sentence and clause is searched; each hit is a /search hit plus
        the `segment` (sentence or clause) that found it. Returns {segments, language, hits, timings, warnings}."""
        options = {"billable_only": billable_only, "chapter": chapter, "display_language": display_language}
        try:
            return backend.search_note(note, top_k=top_k, rerank=rerank, **options)
        except Cie10Error as error:
            raise gr.Error(str(error), print_exception=False) from None

    def api_info() -> dict:
        """What the Space serves: each repo with its revision and commit, the code index, notes from loading."""
        return backend.info()

    # gradio reads the endpoint schema from real type hints; this module's annotations are strings
    for function in (api_search, api_search_batch, api_search_note, api_info):
        function.__annotations__ = typing.get_type_hints(function)

    def ui_search(query, top_k, rerank, rerank_top, billable_only, chapter, display_language):
        try:
            payload = backend.search(
                query,
                top_k=top_k,
                rerank=rerank,
                rerank_top=rerank_top,
                billable_only=billable_only,
                chapter=chapter,
                display_language=display_language,
            )
        except Exception as error:  # noqa: BLE001 - the page shows a message, never a traceback
            return _error_text(error), ""
        return render_status(payload), render_hits(payload)

    def ui_note(note, top_k, rerank, _rerank_top, billable_only, chapter, display_language):
        options = {"billable_only": billable_only, "chapter": chapter, "display_language": display_language}
        try:
            payload = backend.search_note(note, top_k=top_k, rerank=rerank, **options)
        except Exception as error:  # noqa: BLE001 - the page shows a message, never a traceback
            return _error_text(error), ""
        status = f"{payload['segments']} sentences and clauses searched in {payload['timings']['total_s']:.1f} s"
        status += "".join(f"\n\n⚠️ {warning}" for warning in payload["warnings"])
        return status, render_hits(payload)

    def ui_refresh(query, *options):
        """Re-run when an option changes, but only once there is a query (no 'empty query' on a toggle)."""
        if not (query or "").strip():
            return gr.skip(), gr.skip()
        return ui_search(query, *options)

    def ui_batch_file(file):
        """On upload: ask for the query column only when its header does not say which one it is."""
        hidden = gr.update(visible=False, choices=[], value=None)
        try:
            columns, found = batch_file_columns(file)
        except Cie10Error as error:
            return hidden, _error_text(error)
        if len(columns) <= 1:
            return hidden, ""
        if found:
            return hidden, f"Queries from the column “{found}” of {len(columns)}."
        shown = ", ".join(f"“{column}”" for column in columns)
        choice = gr.update(visible=True, choices=columns, value=None)
        return choice, f"⚠️ Which column holds the queries? The file has {shown}: choose one above “Rank all”."

    def ui_batch(
        text,
        file,
        column,
        top_k,
        rerank,
        rerank_top,
        billable_only,
        chapter,
        display_language,
        progress=gr.Progress(),  # noqa: B008 - how gradio injects progress
    ):
        try:
            queries = read_batch_queries(text, file, column or None)
            progress((0, len(queries)), desc="Ranking", unit="queries")
            rows, timings = backend.search_batch(
                queries,
                top_k=top_k,
                rerank=rerank,
                rerank_top=rerank_top,
                billable_only=billable_only,
                chapter=chapter,
                display_language=display_language,
                progress=lambda done, total: progress((done, total), desc="Ranking", unit="queries"),
            )
        except BatchColumnError as error:
            return _error_text(error), None, None, gr.update(visible=True, choices=error.columns, value=None)
        except Exception as error:  # noqa: BLE001 - the page shows a message, never a traceback
            return _error_text(error), None, None, gr.skip()
        import pandas as pd

        path = write_batch_csv(rows)
        table = pd.DataFrame(rows[:BATCH_TABLE_ROWS], columns=list(BATCH_COLUMNS))
        failed = sum(1 for row in rows if row["message"] and not row["code"])
        status = (
            f"{len(queries)} queries ranked in {timings['total_s']:.1f} s "
            f"({timings['per_query_s'] * 1000:.0f} ms per query)"
            + (f"; ⚠️ {failed} could not be searched (see `message`)" if failed else "")
            + (
                f". The table shows the first {BATCH_TABLE_ROWS} rows; the CSV has all."
                if len(rows) > len(table)
                else ""
            )
        )
        return status, table, str(path), gr.skip()

    sources = "\n".join(f"- **{name}**: {source.link()}" for name, source in backend.sources.items())
    notes = "\n".join(f"- ⚠️ {note}" for note in backend.notes)
    index_meta = backend.searcher.index.meta
    about = (
        f"### What is loaded\n{sources}\n- **code index**: {len(backend.searcher.index)} codes, scope "
        f"`{index_meta.get('scope', '?')}`, built on {index_meta.get('catalog_version', '?')}\n"
        f"- **catalogue**: {_html_text(backend.catalog.version)}\n"
        + (f"\n### Notes\n{notes}\n" if notes else "")
        + "\n### API\n```python\nfrom gradio_client import Client\n"
        'client = Client("<this Space or its URL>")\n'
        'result = client.predict(query="infarto agudo de miocardio", top_k=5, rerank=True, api_name="/search")\n'
        'print(result["hits"][0]["code"], result["hits"][0]["title"])\n```\n'
        "`/search_batch` takes `queries` (a list of strings) and returns one row per ranked code; `/search_note` "
        "takes a clinical `note` and returns its codes, each with the sentence or clause that found it; `/info` "
        "says which repos, revisions and commits are loaded."
    )

    with gr.Blocks(title="CIE-10 / ICD-10-CM code search", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# CIE-10 / ICD-10-CM code search\n"
            "Type a diagnosis, symptom or procedure in English, Spanish, Catalan, Italian, Portuguese or French: "
            "a bi-encoder shortlists codes from the code index, a cross-encoder reranks the shortlist."
        )
        links = " · ".join(f"{name}: {source.link()}" for name, source in backend.sources.items())
        gr.HTML(
            f'<p id="coverage">{_html_text(backend.coverage())}</p><p id="sources"><small>{links}</small></p>',
            elem_id="header",
        )
        with gr.Row():
            display_language = gr.Dropdown(
                language_choices, value="auto", label="Show titles in", elem_id="display-language", scale=2
            )
            chapter = gr.Dropdown(chapter_choices, value="all", label="Chapter", elem_id="chapter", scale=3)
            billable_only = gr.Checkbox(False, label="Billable codes only", elem_id="billable-only")
        with gr.Row():
            top_k = gr.Slider(1, 50, value=10, step=1, label="Codes to show", elem_id="top-k")
            rerank = gr.Checkbox(
                backend.rerank_default,
                label="Rerank with the cross-encoder" if backend.has_reranker else "Reranker not loaded",
                info=backend.reranker_evidence.describe() if backend.reranker_evidence else None,
                interactive=backend.has_reranker,
                elem_id="rerank",
            )
            rerank_top = gr.Slider(
                5, 100, value=20, step=1, label="Reranker shortlist", elem_id="rerank-top", interactive=True
            )
        options = [top_k, rerank, rerank_top, billable_only, chapter, display_language]

        with gr.Tabs():
            with gr.Tab("Search", id="search"):
                with gr.Row():
                    query = gr.Textbox(
                        label="Query",
                        placeholder="e.g. infarto agudo de miocardio",
                        max_lines=3,
                        elem_id="query",
                        scale=5,
                        autofocus=True,
                    )
                    search_button = gr.Button("Search", variant="primary", elem_id="search-button", scale=1)
                status = gr.Markdown(elem_id="status")
                results = gr.HTML(elem_id="results")
                gr.Examples(
                    [[text] for _, text in EXAMPLES],
                    inputs=[query],
                    example_labels=[f"{language} · {text}" for language, text in EXAMPLES],
                    label="Examples (one or more per language)",
                )
            with gr.Tab("Batch", id="batch"):
                gr.Markdown(
                    f"One query per line, or a CSV/TSV file with a header: its `query`, `text`, `diagnosis` "
                    f"(or similar) column is used, else you choose the column. At most {MAX_BATCH_QUERIES:,} queries; "
                    "empty rows are flagged in `message`. The options above apply. Download the ranked codes as CSV."
                )
                with gr.Row():
                    batch_text = gr.Textbox(label="Queries, one per line", lines=8, elem_id="batch-text")
                    batch_file = gr.File(
                        label="…or upload a CSV / text file",
                        file_types=[".csv", ".tsv", ".txt"],
                        type="filepath",
                        elem_id="batch-file",
                    )
                batch_column = gr.Dropdown(
                    [], label="Column holding the queries", visible=False, elem_id="batch-column", interactive=True
                )
                batch_button = gr.Button("Rank all", variant="primary", elem_id="batch-button")
                batch_status = gr.Markdown(elem_id="batch-status")
                batch_table = gr.Dataframe(
                    headers=list(BATCH_COLUMNS), interactive=False, wrap=True, max_height=400, elem_id="batch-table"
                )
                batch_csv = gr.File(label="Ranked codes (CSV)", interactive=False, elem_id="batch-csv")
            with gr.Tab("Clinical note", id="note"):
                gr.Markdown(
                    "Paste a clinical note: every sentence, and every clause of it (cut at commas and at "
                    "*y*, *con*, *por*, *secundario a*…), is searched, and each code is listed once, with the "
                    f"passage that found it. The reranker reorders {DEFAULT_DOCUMENT_RERANK_TOP} codes per passage. "
                    "Clauses reporting a normal finding are skipped; a passage holding a negation (*sin*, *no*, "
                    "*niega*, *descarta*…) is searched and its code tagged: check whether the finding is present. "
                    "Suggestions for a coder to check, not codes to submit."
                )
                note = gr.Textbox(label="Clinical note", lines=10, elem_id="note-text")
                note_button = gr.Button("Suggest codes", variant="primary", elem_id="note-button")
                note_status = gr.Markdown(elem_id="note-status")
                note_results = gr.HTML(elem_id="note-results")
            with gr.Tab("About", id="about"):
                gr.Markdown(about)

        # searches and batches queue apart, so a long batch never holds a short query back; inside, each model
        # call (one query, or one chunk of a batch) takes its turn in arrival order (`SpaceBackend.turns`)
        search_queue = {"concurrency_id": "search", "concurrency_limit": CONCURRENT_EVENTS}
        batch_queue = {"concurrency_id": "batch", "concurrency_limit": CONCURRENT_EVENTS}
        search_inputs = [query, *options]
        for trigger in (query.submit, search_button.click):
            trigger(ui_search, search_inputs, [status, results], api_visibility="private", **search_queue)
        for control in (rerank, billable_only, chapter, display_language):
            control.input(ui_refresh, search_inputs, [status, results], api_visibility="private", **search_queue)
        for slider in (top_k, rerank_top):
            slider.release(ui_refresh, search_inputs, [status, results], api_visibility="private", **search_queue)
        for trigger in (batch_file.upload, batch_file.clear):
            trigger(ui_batch_file, batch_file, [batch_column, batch_status], api_visibility="private")
        batch_button.click(
            ui_batch,
            [batch_text, batch_file, batch_column, *options],
            [batch_status, batch_table, batch_csv, batch_column],
            api_visibility="private",
            **batch_queue,
        )
        note_button.click(
            ui_note, [note, *options], [note_status, note_results], api_visibility="private", **batch_queue
        )
        gr.api(api_search, api_name="search", **search_queue)
        gr.api(api_search_note, api_name="search_note", **batch_queue)
        gr.api(api_search_batch, api_name="search_batch", **batch_queue)
        gr.api(api_info, api_name="info", concurrency_limit=None)
    return demo


def _theme():  # -> gradio.themes.Base
    """The default theme on system fonts: the page then loads nothing from outside (Spaces or offline)."""
    import gradio as gr

    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Consolas", "monospace"],
    )


def serve(demo, *, host: str = "127.0.0.1", port: int | None = 7860, block: bool = True, quiet: bool = False):
    """Serve a built page on `host:port` (queued; searches and batches apart); returns it, running, unless `block`."""
    demo.queue(default_concurrency_limit=1, max_size=MAX_QUEUED_EVENTS)
    demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,
        max_file_size=MAX_UPLOAD,
        quiet=quiet,
        css=CSS,
        theme=_theme(),
        show_error=False,
    )
    if block:
        demo.block_thread()
    return demo


def launch(
    backend: SpaceBackend,
    *,
    host: str = "127.0.0.1",
    port: int | None = 7860,
    block: bool = True,
    quiet: bool = False,
):  # -> gradio.Blocks
    """Build and serve the page; the running Blocks (its `.local_url`) comes back when `block` is False."""
    return serve(build_app(backend), host=host, port=port, block=block, quiet=quiet)
