"""The `codiesp` source: real Spanish clinical mentions from the CodiEsp training split, as (mention, code) rows.

CodiEsp v4 (CLEF eHealth 2020, CC BY 4.0) codes each diagnosis mention of 500 clinical cases with a CIE-10-ES
2018 code (lower case, with dots). Only `train/trainX.tsv` is read: `dev/` measures and never trains. Codes are
normalised to ICD-10-CM 2026 through the catalogue; a code that no longer exists is dropped and counted (step
`source`), one outside the run's scope too (step `scope`, never remapped). The sentence around a mention in
its document may be kept as `context`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cie10.catalog import Catalog, CodeEntry
from cie10.errors import Cie10Error
from cie10.generation.curation import CurationReport
from cie10.generation.pairs import CODIESP_SOURCE, Pair

logger = logging.getLogger(__name__)

CITATION = (
    "Miranda-Escalada A., Gonzalez-Agirre A., Armengol-Estapé J., Krallinger M. Overview of automatic clinical "
    "coding: annotations, guidelines, and solutions for non-English clinical cases at CodiEsp track of CLEF eHealth "
    "2020. CLEF 2020 Working Notes. CodiEsp corpus (Zenodo 3693570) and gold standard v4 (Zenodo 3837305), CC BY 4.0."
)
"""How the dataset card attributes CodiEsp (as `../shared/data/codiesp/README.md` asks)."""
TRAIN_FILE = Path("train") / "trainX.tsv"
_SPAN = re.compile(r"^\d+ \d+(;\d+ \d+)*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class CodiespSourceError(Cie10Error):
    """The CodiEsp training files are missing or not what CodiEsp v4 publishes."""


@dataclass(frozen=True)
class CodiespMention:
    """One DIAGNOSTICO row of `trainX.tsv`: where it is, its raw code, its text and its character spans."""

    article: str
    code: str
    text: str
    spans: tuple[tuple[int, int], ...]
    line: int


def codiesp_root(configured: str | None = None) -> Path:
    """The CodiEsp folder: `configured`, else `CIE10_CODIESP_DIR`, else `<repo>/../shared/data/codiesp`."""
    value = configured or os.environ.get("CIE10_CODIESP_DIR", "").strip()
    if value:
        return Path(value).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "codiesp"


def read_train_mentions(root: str | os.PathLike) -> list[CodiespMention]:
    """The DIAGNOSTICO rows of `<root>/train/trainX.tsv`; a bad file raises one error naming file and line."""
    path = Path(root) / TRAIN_FILE
    if not path.is_file():
        raise CodiespSourceError(
            f"CodiEsp training file {path} does not exist: set --codiesp_dir (or CIE10_CODIESP_DIR) to the folder "
            "holding train/trainX.tsv, or drop `codiesp` from --sources"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CodiespSourceError(f"{path}, line {line}: not UTF-8 ({error.reason})") from error
    mentions = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 5:
            raise CodiespSourceError(
                f"{path}, line {number}: expected 5 tab-separated fields (article, type, code, mention, spans), "
                f"found {len(fields)}"
            )
        article, kind, code, mention, spans = (value.strip() for value in fields)
        if kind not in ("DIAGNOSTICO", "PROCEDIMIENTO"):
            raise CodiespSourceError(f"{path}, line {number}: type {kind!r} is neither DIAGNOSTICO nor PROCEDIMIENTO")
        if not article or not code or not mention or not _SPAN.match(spans):
            raise CodiespSourceError(f"{path}, line {number}: empty article, code or mention, or spans {spans!r}")
        if kind == "DIAGNOSTICO":
            pairs = tuple(tuple(int(n) for n in part.split()) for part in spans.split(";"))
            mentions.append(CodiespMention(article, code, mention, pairs, number))  # type: ignore[arg-type]
    return mentions


def sentence_around(document: str, start: int, end: int) -> str:
    """The sentence (or line) of `document` holding the span `[start, end)`, spaces collapsed."""
    left = max((m.end() for m in _SENTENCE_END.finditer(document, 0, start)), default=0)
    following = _SENTENCE_END.search(document, end)
    right = following.start() if following else len(document)
    return " ".join(document[left:right].split())


def _context(root: Path, mention: CodiespMention, documents: dict[str, str]) -> str:
    """The sentence around a mention, from `train/text_files/<article>.txt` (read once per document)."""
    if mention.article not in documents:
        path = root / "train" / "text_files" / f"{mention.article}.txt"
        try:
            documents[mention.article] = path.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise CodiespSourceError(
                f"{root / TRAIN_FILE}, line {mention.line}: its document {path} does not exist "
                "(or run with --no_codiesp_context)"
            ) from error
        except UnicodeDecodeError as error:
            raise CodiespSourceError(f"{path}: not UTF-8 ({error.reason})") from error
    start, end = min(s for s, _ in mention.spans), max(e for _, e in mention.spans)
    return sentence_around(documents[mention.article], start, end)


def codiesp_pairs(
    catalog: Catalog,
    entries: Iterable[CodeEntry],
    report: CurationReport,
    *,
    root: str | os.PathLike | None = None,
    context: bool = True,
    max_hard_negatives: int = 10,
) -> list[Pair]:
    """Spanish query rows from the CodiEsp training mentions whose code is in ICD-10-CM 2026 and in `entries`.

    A code missing from the catalogue is dropped under `source`, one outside `entries` (the run's scope) under
    `scope`; both are counted as input rows of the curation report.
    """
    folder = codiesp_root(str(root) if root is not None else None)
    mentions = read_train_mentions(folder)
    in_scope = {entry.code for entry in entries}
    documents: dict[str, str] = {}
    pairs: list[Pair] = []
    missing = outside = 0
    for mention in mentions:
        if mention.code not in catalog:
            missing += 1
            report.input_rows += 1
            report.drop("source", "CodiEsp code not in ICD-10-CM 2026", text=f"{mention.code}: {mention.text}")
            continue
        code = catalog[mention.code].code
        if code not in in_scope:
            outside += 1
            report.input_rows += 1
            report.drop("scope", "code outside the catalogue scope", text=f"{code}: {mention.text}")
            continue
        pairs.append(
            Pair(
                mention.text,
                code,
                "es",
                CODIESP_SOURCE,
                catalog.siblings(code)[:max_hard_negatives],
                kind="query",
                context=_context(folder, mention, documents) if context else None,
            )
        )
    logger.info(
        "codiesp: %d rows from %d training mentions (%d codes not in ICD-10-CM 2026, %d outside the scope)",
        len(pairs),
        len(mentions),
        missing,
        outside,
    )
    return pairs
