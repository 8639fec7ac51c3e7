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
_CLAUSE_BREAK = re.compile(r",\s+|\s+(?:y|e|con|junto a|secundari[oa]s? a|por)\s+", re.IGNORECASE)
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


class UnknownSegmentationError(ConfigError):
    """A segmentation that is not one of `SEGMENTATIONS`."""


def split_sentences(text: str) -> list[str]:
    """Sentences (and lines) of a note, without fragments too short to search."""
    return [part.strip() for part in _SENTENCE_END.split(text) if len(part.strip()) >= MIN_SEGMENT_CHARS]


def split_clauses(sentence: str) -> list[str]:
    """Mention-sized parts of a Spanish sentence: cut at commas and at `y`, `e`, `con`, `por`, `junto a`,
    `secundario a`; fragments too short to search are dropped."""
    return [part.strip() for part in _CLAUSE_BREAK.split(sentence) if len(part.strip()) >= MIN_SEGMENT_CHARS]


def check_segmentation(segmentation: str) -> str:
    """`segmentation` if it is one of `SEGMENTATIONS`, else one clear error."""
    if segmentation not in SEGMENTATIONS:
        raise UnknownSegmentationError(f"unknown segmentation {segmentation!r}: choose {', '.join(SEGMENTATIONS)}")
    return segmentation


def note_segments(note: str, segmentation: str = SEGMENTATIONS[0]) -> list[str]:
    """The queries of a note: its sentences, and with `sentences+clauses` the clauses of each sentence that has
    more than one (a sentence stays a query too, so a combination code named across a comma is not lost)."""
    check_segmentation(segmentation)
    sentences = split_sentences(note) or [note.strip()[:500]]
    if segmentation == "sentences":
        return sentences
    segments = []
    for sentence in sentences:
        clauses = split_clauses(sentence)
        segments += [sentence] + (clauses if len(clauses) > 1 else [])
    return segments


def best_per_code(rankings: Sequence[Sequence[tuple[str, float]]], per_segment_k: int) -> list[tuple[str, float, int]]:
    """(code, score, segment) for every code among the top `per_segment_k` of some segment's ranking: its best
    score there and the segment (position in `rankings`) that gave it; best first, ties by code."""
    best: dict[str, tuple[float, int]] = {}
    for segment, ranking in enumerate(rankings):
        for code, score in ranking[:per_segment_k]:
            if code not in best or score > best[code][0]:
                best[code] = (score, segment)
    return sorted(((code, score, segment) for code, (score, segment) in best.items()), key=lambda t: (-t[1], t[0]))
