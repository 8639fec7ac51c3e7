"""A clinical note as queries: its sentences and their clauses, and the codes they find together.

A sentence of a case report names several findings, and its embedding matches none of them well; a clause (cut
at commas and at the words that join findings) is the size of a coded mention. A note is searched segment by
segment, and a code's note score is its best score as one of a segment's top codes (docs/evaluation.md measures
the choice on CodiEsp *train* documents). Spanish joining words: CodiEsp, the notes this was measured on, is
Spanish.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cie10.errors import ConfigError

_SENTENCE_END = re.compile(r"(?<=[.;:!?])\s+|\n+")
_JOINING_WORDS = r"y|e|con|junto a|secundari[oa]s? a|por"
_CLAUSE_BREAK = re.compile(rf",\s+(?:(?:y|e|con|por)\s+)?|\s+(?:{_JOINING_WORDS})\s+", re.IGNORECASE)
_CLAUSE_BREAK_KEPT = re.compile(f"({_CLAUSE_BREAK.pattern})", re.IGNORECASE)
_NORMAL_FINDING = re.compile(r"\bnormal\w*", re.IGNORECASE)
MIN_SEGMENT_CHARS = 3
SEGMENTATIONS: tuple[str, ...] = ("sentences+clauses", "sentences")
"""How a note is cut into queries: each sentence and its clauses (the default), or sentences alone."""
DEFAULT_PER_SEGMENT_K = 1
"""Codes a note keeps from each searched sentence or clause: its best one (on CodiEsp *train* documents,
more codes per segment only added noise: docs/evaluation.md)."""
DEFAULT_DOCUMENT_RERANK_TOP = 5
"""Candidates a reranked system reorders per sentence or clause of a note (~70 per document): 20 made the
reranked pass over CodiEsp's 250 dev documents ~100 min on 2 cores, 5 a quarter of that, with the same MAP@10
on 12 CodiEsp *train* documents (docs/evaluation.md)."""


NEGATION_CUES: dict[str, str] = {
    "es": "no|sin|ni|niega|niegan|negó|ningún|ninguna|ninguno|ausencia de|descarta|descartó|descartar|descartándose"
    "|descartado|descartada|negativo|negativa|negativos|negativas",
    "ca": "no|sense|ni|nega|cap signe|absència de|descarta|descartar|descartat|descartada|negatiu|negativa|negatius"
    "|negatives",
    "pt": "não|sem|nem|nega|nenhum|nenhuma|ausência de|descarta|descartar|descartado|descartada|negativo|negativa"
    "|negativos|negativas",
    "it": "non|senza|né|nega|nessun|nessuna|nessuno|assenza di|escluso|esclusa|escludere|negativo|negativa|negativi"
    "|negative",
    "fr": "pas de|sans|ni|nie|aucun|aucune|absence de|exclu|exclue|éliminé|négatif|négative|négatifs|négatives",
    "en": "no|not|without|denies|denied|nor|absence of|free of|ruled out|rules out|negative",
}
"""NegEx-style trigger words per language (`|`-separated): a passage holding one may state a finding as absent.
CodiEsp codes negated findings too (~7% of its train diagnosis mentions follow one), so a note's search keeps
them and flags them (docs/evaluation.md)."""
_NOT_NEGATIONS = re.compile(
    r"\b(?:sin embargo|no obstante|no solo|not only|sans doute|non solo|não só)\b", re.IGNORECASE
)
_NEGATION = {
    language: re.compile(r"(?<!\w)(" + "|".join(map(re.escape, cues.split("|"))) + r")(?!\w)", re.IGNORECASE)
    for language, cues in NEGATION_CUES.items()
}


class UnknownSegmentationError(ConfigError):
    """A segmentation that is not one of `SEGMENTATIONS`."""


def split_sentences(text: str) -> list[str]:
    """Sentences (and lines) of a note, without fragments too short to search."""
    return [part.strip() for part in _SENTENCE_END.split(text) if len(part.strip()) >= MIN_SEGMENT_CHARS]


def split_clauses(sentence: str) -> list[str]:
    """Mention-sized parts of a Spanish sentence: cut at commas (with the joining word after one: ", con X" is
    "X") and at `y`, `e`, `con`, `por`, `junto a`, `secundario a`; fragments too short to search are dropped."""
    return [part.strip() for part in _CLAUSE_BREAK.split(sentence) if len(part.strip()) >= MIN_SEGMENT_CHARS]


def without_normal_findings(sentence: str) -> str:
    """`sentence` without its clauses that report something as normal ("EKG normal", "resto de la exploración
    normal": nothing to code), the others joined as they were; "" when every clause does."""
    pieces = _CLAUSE_BREAK_KEPT.split(sentence)
    kept: list[str] = []
    for position in range(0, len(pieces), 2):
        clause = pieces[position]
        if _NORMAL_FINDING.search(clause) or not clause.strip():
            continue
        if kept:
            kept.append(pieces[position - 1])  # the break before this clause
        kept.append(clause)
    return "".join(kept).strip()


def check_segmentation(segmentation: str) -> str:
    """`segmentation` if it is one of `SEGMENTATIONS`, else one clear error."""
    if segmentation not in SEGMENTATIONS:
        raise UnknownSegmentationError(f"unknown segmentation {segmentation!r}: choose {', '.join(SEGMENTATIONS)}")
    return segmentation


def note_segments(note: str, segmentation: str = SEGMENTATIONS[0]) -> list[str]:
    """The queries of a note: its sentences, and with `sentences+clauses` the clauses of each sentence that has
    more than one (a sentence stays a query too, so a combination code named across a comma is not lost), after
    dropping the clauses that report a normal finding (`without_normal_findings`)."""
    check_segmentation(segmentation)
    sentences = split_sentences(note) or [note.strip()[:500]]
    if segmentation == "sentences":
        return sentences
    segments = []
    for sentence in sentences:
        sentence = without_normal_findings(sentence)
        if len(sentence) < MIN_SEGMENT_CHARS:
            continue
        clauses = split_clauses(sentence)
        segments += [sentence] + (clauses if len(clauses) > 1 else [])
    return segments or sentences  # a note of normal findings only: searched as it is


def negation_cue(segment: str, language: str | None = "es") -> str | None:
    """The first negation trigger word of `segment` in `language` (`NEGATION_CUES`; Spanish when the language is
    unknown), or None: a flag for a reader to check the finding is present, not a parse of the negation's scope."""
    pattern = _NEGATION.get(language or "es", _NEGATION["es"])
    found = pattern.search(_NOT_NEGATIONS.sub(" ", segment))
    return found.group(1).lower() if found else None


def best_per_code(rankings: Sequence[Sequence[tuple[str, float]]], per_segment_k: int) -> list[tuple[str, float, int]]:
    """(code, score, segment) for every code among the top `per_segment_k` of some segment's ranking: its best
    score there and the segment (position in `rankings`) that gave it; best first, ties by code."""
    best: dict[str, tuple[float, int]] = {}
    for segment, ranking in enumerate(rankings):
        for code, score in ranking[:per_segment_k]:
            if code not in best or score > best[code][0]:
                best[code] = (score, segment)
    return sorted(((code, score, segment) for code, (score, segment) in best.items()), key=lambda t: (-t[1], t[0]))
