"""CodiEsp (CLEF eHealth 2020) adapter: score the systems on a real Spanish benchmark given as files.

Folder layout (one split, e.g. `dev/`): `text_files/<articleID>.txt` (Spanish clinical case reports),
`<split>D.tsv` (`articleID<TAB>code`, the diagnosis codes of each document) and `<split>X.tsv`
(`articleID<TAB>DIAGNOSTICO|PROCEDIMIENTO<TAB>code<TAB>mention<TAB>char spans`). Codes are CIE-10-ES 2018 in
lower case: they are normalized, and those no longer in ICD-10-CM 2026 are counted and kept as misses.

* Mention level: each DIAGNOSTICO mention is a query (language `es`), its code the gold; main score MRR@10.
* Unseen mentions (`mentions-unseen`, when a CodiEsp training folder is given): the mention level again on
  the mentions whose normalised text occurs nowhere among the training split's mentions.
* Document level: a document is split into sentences and each sentence into clauses (cut at commas and at the
  words that join findings: `y`, `con`, `por`, `secundario a`...); every sentence and clause is searched, a
  code's document score is its best score as one of their top `per_segment_k` codes; the top 10 codes are scored
  against the document's `D` codes; main score MAP@10. Sentences alone (`segmentation="sentences"`) are mostly
  too long to match one code: on CodiEsp *train* documents the clauses tripled MAP@10 (docs/evaluation.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cie10.catalog import load_catalog
from cie10.eval_harness.data import EvalSet, EvaluationInputError
from cie10.eval_harness.metrics import normalize_code
from cie10.eval_harness.results import EvaluationRun
from cie10.eval_harness.runner import (
    EvaluationConfig,
    build_systems,
    config_settings,
    evaluate_systems,
    run_folder,
)
from cie10.eval_harness.systems import DenseSystem, Ranking, RetrievalSystem
from cie10.segments import (
    DEFAULT_DOCUMENT_RERANK_TOP,
    DEFAULT_PER_SEGMENT_K,
    SEGMENTATIONS,
    best_per_code,
    check_segmentation,
    note_segments,
)

logger = logging.getLogger(__name__)

DIAGNOSIS = "DIAGNOSTICO"
PROCEDURE = "PROCEDIMIENTO"
LEVELS: tuple[str, ...] = ("mentions", "documents")
UNSEEN_LEVEL = "mentions-unseen"
"""The mentions whose normalised text is no CodiEsp training mention: the generalisation number."""
DEFAULT_BASELINES: tuple[str, ...] = ("bm25", "bm25-en-es", "base")


@dataclass(frozen=True)
class Mention:
    """One `X` row: a span of a document and its code."""

    doc_id: str
    kind: str
    code: str
    text: str
    spans: str


@dataclass
class CodiEspSplit:
    """The parsed folder."""

    folder: Path
    split: str
    documents: dict[str, str]
    document_codes: dict[str, list[str]]
    mentions: list[Mention]
    files: dict[str, str] = field(default_factory=dict)
    """File name → sha256, for provenance."""

    def mention_set(self) -> EvalSet:
        """DIAGNOSTICO mentions as queries (language `es`), one gold code each."""
        rows = [m for m in self.mentions if m.kind == DIAGNOSIS and m.text.strip()]
        if not rows:
            raise EvaluationInputError(f"no {DIAGNOSIS} mention in {self.folder}: mention level needs an X file")
        return EvalSet(
            queries=[m.text.strip() for m in rows],
            gold=[[m.code] for m in rows],
            languages=["es"] * len(rows),
            ids=[f"{m.doc_id}:{m.spans}" for m in rows],
            source=self._source("mentions"),
            main_score="mrr_at_10",
        )

    def document_set(self) -> EvalSet:
        """Whole documents as queries, their diagnosis code set as gold (`D`, else the X diagnoses)."""
        missing = sorted(doc for doc in self.document_codes if doc not in self.documents)
        if missing:
            logger.warning("%d coded documents have no text file (e.g. %s): skipped", len(missing), missing[0])
        ids = [doc for doc in self.document_codes if doc in self.documents and self.documents[doc].strip()]
        if not ids:
            raise EvaluationInputError(f"no coded document with text in {self.folder}: document level needs both")
        return EvalSet(
            queries=[self.documents[doc] for doc in ids],
            gold=[self.document_codes[doc] for doc in ids],
            languages=["es"] * len(ids),
            ids=ids,
            source=self._source("documents"),
            main_score="map_at_10",
        )

    def _source(self, level: str) -> dict[str, Any]:
        return {
            "id": None,
            "name": "CodiEsp",
            "path": str(self.folder),
            "split": self.split,
            "level": level,
            "revision": None,
            "files_sha256": dict(self.files),
        }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_text(path: Path) -> str:
    """A CodiEsp file as UTF-8 text; another encoding is one clear error naming the file, line and byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise EvaluationInputError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[error.start]:02x} at column {column}); CodiEsp files are "
            "UTF-8: convert it, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def _rows(path: Path, min_fields: int) -> list[list[str]]:
    rows = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) < min_fields:
            raise EvaluationInputError(
                f"{path}:{number}: expected at least {min_fields} tab-separated fields, found {len(fields)}"
            )
        rows.append([value.strip() for value in fields])
    return rows


def _one(folder: Path, suffix: str) -> Path | None:
    found = sorted(p for p in folder.glob(f"*{suffix}.tsv") if p.is_file())
    if len(found) > 1:
        raise EvaluationInputError(f"{folder} holds several *{suffix}.tsv files: {', '.join(p.name for p in found)}")
    return found[0] if found else None


def read_codiesp(folder: Path | str) -> CodiEspSplit:
    """Parse a CodiEsp split folder (`text_files/`, `*D.tsv` and/or `*X.tsv`)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise EvaluationInputError(f"CodiEsp folder {folder} does not exist")
    d_file, x_file = _one(folder, "D"), _one(folder, "X")
    if d_file is None and x_file is None:
        raise EvaluationInputError(
            f"{folder} is not a CodiEsp split: expected <split>D.tsv (articleID, code) and/or <split>X.tsv "
            "(articleID, DIAGNOSTICO|PROCEDIMIENTO, code, mention, spans)"
        )
    split = (d_file or x_file).name[: -len("D.tsv")]
    text_dir = folder / "text_files"
    documents = {path.stem: _read_text(path) for path in sorted(text_dir.glob("*.txt"))} if text_dir.is_dir() else {}
    mentions = []
    if x_file is not None:
        for doc_id, kind, code, text, *rest in _rows(x_file, 4):
            kind = kind.upper()
            if kind not in (DIAGNOSIS, PROCEDURE):
                raise EvaluationInputError(f"{x_file}: unknown label {kind!r} (expected {DIAGNOSIS} or {PROCEDURE})")
            mentions.append(Mention(doc_id, kind, normalize_code(code), text, rest[0] if rest else ""))
    document_codes: dict[str, list[str]] = {}
    if d_file is not None:
        for doc_id, code, *_ in _rows(d_file, 2):
            document_codes.setdefault(doc_id, [])
            if normalize_code(code) not in document_codes[doc_id]:
                document_codes[doc_id].append(normalize_code(code))
    else:
        for mention in mentions:
            if mention.kind == DIAGNOSIS:
                codes = document_codes.setdefault(mention.doc_id, [])
                if mention.code not in codes:
                    codes.append(mention.code)
    files = {path.name: _sha256(path) for path in (d_file, x_file) if path is not None}
    logger.info(
        "CodiEsp %s: %d documents, %d coded documents, %d mentions (%d diagnoses)",
        split or folder.name,
        len(documents),
        len(document_codes),
        len(mentions),
        sum(1 for m in mentions if m.kind == DIAGNOSIS),
    )
    return CodiEspSplit(folder.resolve(), split or folder.name, documents, document_codes, mentions, files)


class DocumentRanker:
    """Ranks codes for a whole document: search every sentence and clause (`cie10.segments`), keep each
    code's best score among the top `per_segment_k` codes of a segment."""

    def __init__(
        self,
        system: RetrievalSystem,
        per_segment_k: int = DEFAULT_PER_SEGMENT_K,
        segmentation: str = SEGMENTATIONS[0],
        rerank_top: int | None = DEFAULT_DOCUMENT_RERANK_TOP,
    ) -> None:
        check_segmentation(segmentation)
        if rerank_top is not None and isinstance(system, DenseSystem) and system.reranker_info is not None:
            system = dataclasses.replace(system, rerank_top=rerank_top)  # the same models and index, less reranking
        self.system = system
        self.name = system.name
        self.per_segment_k = per_segment_k
        self.segmentation = segmentation

    def describe(self) -> dict[str, Any]:
        """The inner system's provenance and how documents are cut and aggregated."""
        clauses = (
            "; each sentence's clauses too (cut at , y e con por junto a secundario a); clauses reporting a normal"
            " finding (normal*) dropped"
        )
        return {
            **self.system.describe(),
            "document_level": {
                "segmentation": self.segmentation,
                "segments": "sentences split after . ; : ! ? and at line breaks"
                + (clauses if self.segmentation != "sentences" else ""),
                "per_segment_k": self.per_segment_k,
                "aggregation": "max over segments",
            },
        }

    def rank(self, queries: Sequence[str], top_k: int) -> list[Ranking]:
        """The `top_k` codes of each document, by best segment score (ties by code)."""
        segments = [note_segments(document, self.segmentation) for document in queries]
        flat_rankings = self.system.rank([segment for parts in segments for segment in parts], self.per_segment_k)
        rankings, start = [], 0
        for parts in segments:
            best = best_per_code(flat_rankings[start : start + len(parts)], self.per_segment_k)
            rankings.append([(code, score) for code, score, _ in best[:top_k]])
            start += len(parts)
        return rankings


def training_mention_texts(folder: Path | str) -> set[str]:
    """The normalised texts of a CodiEsp training split's DIAGNOSTICO mentions."""
    from cie10.generation.pairs import normalize_text

    split = read_codiesp(folder)
    return {normalize_text(m.text) for m in split.mentions if m.kind == DIAGNOSIS and m.text.strip()}


def unseen_mentions(mentions: EvalSet, train_folder: Path | str) -> EvalSet:
    """The mentions whose normalised text is not a training mention (`source` says which folder and how many)."""
    from cie10.generation.pairs import normalize_text

    seen = training_mention_texts(train_folder)
    rows = [i for i, query in enumerate(mentions.queries) if normalize_text(query) not in seen]
    if not rows:
        raise EvaluationInputError(f"every mention occurs in {train_folder}: no unseen subset to score")
    unseen = mentions.select(rows)
    unseen.source.update(level=UNSEEN_LEVEL, unseen_of=len(mentions), train_folder=str(train_folder))
    logger.info("unseen mentions: %d of %d (text nowhere in %s)", len(rows), len(mentions), train_folder)
    return unseen


def evaluate_codiesp(
    config: EvaluationConfig,
    levels: Sequence[str] = LEVELS,
    per_segment_k: int = DEFAULT_PER_SEGMENT_K,
    segmentation: str = SEGMENTATIONS[0],
    document_rerank_top: int | None = DEFAULT_DOCUMENT_RERANK_TOP,
) -> dict[str, EvaluationRun]:
    """Score the model and baselines at mention and/or document level; `config.dataset` is the folder."""
    unknown = [level for level in levels if level not in LEVELS]
    if unknown:
        raise EvaluationInputError(f"unknown level {', '.join(unknown)}: choose {', '.join(LEVELS)}")
    corpus = read_codiesp(config.dataset)
    eval_sets = {level: corpus.mention_set() if level == "mentions" else corpus.document_set() for level in levels}
    if "mentions" in eval_sets and config.lookup_train:
        eval_sets[UNSEEN_LEVEL] = unseen_mentions(eval_sets["mentions"], config.lookup_train)
    catalog = load_catalog()
    systems, codes, selection = build_systems(config, catalog)
    if selection["scope"] != "full":
        logger.warning(
            "CodiEsp codes span the whole catalogue; scope %s leaves many out (use --scope full)", selection["scope"]
        )
    runs = {}
    for level, eval_set in eval_sets.items():
        documents = level == "documents"
        level_systems = (
            [DocumentRanker(s, per_segment_k, segmentation, document_rerank_top) for s in systems]
            if documents
            else systems
        )
        document_settings = (
            {"segmentation": segmentation, "per_segment_k": per_segment_k, "document_rerank_top": document_rerank_top}
            if documents
            else {}
        )
        out = run_folder(config) / level if config.out is not None else None
        runs[level] = evaluate_systems(
            eval_set,
            level_systems,
            catalog=catalog,
            codes=codes,
            code_selection=selection,
            task_name=f"CodiEsp-{level}",
            settings=config_settings(config) | {"level": level} | document_settings,
            n_resamples=config.n_resamples,
            seed=config.seed,
            out=out,
        )
    return runs
