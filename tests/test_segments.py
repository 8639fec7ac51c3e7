"""A note as queries: sentences, clauses, and the best segment of each code."""

from __future__ import annotations

import pytest

from cie10.segments import UnknownSegmentationError, best_per_code, note_segments, split_clauses, split_sentences


def test_split_sentences() -> None:
    text = "Varón de 67 años. Acude por dolor; sin fiebre.\nEKG: normal.\n\n"
    assert split_sentences(text) == ["Varón de 67 años.", "Acude por dolor;", "sin fiebre.", "EKG:", "normal."]


def test_split_clauses_cuts_at_commas_and_joining_words() -> None:
    sentence = "Ingresa por dolor torácico, disnea y fiebre secundaria a neumonía con derrame pleural."
    assert split_clauses(sentence) == [
        "Ingresa",
        "dolor torácico",
        "disnea",
        "fiebre",
        "neumonía",
        "derrame pleural.",
    ]
    assert split_clauses("Hipertensión arterial.") == ["Hipertensión arterial."]


def test_document_segments_keep_each_sentence_and_add_its_clauses() -> None:
    document = "Fiebre alta y tos seca. Sin alergias.\nEKG: normal."
    assert note_segments(document, "sentences") == ["Fiebre alta y tos seca.", "Sin alergias.", "EKG:", "normal."]
    assert note_segments(document) == [
        "Fiebre alta y tos seca.",
        "Fiebre alta",
        "tos seca.",
        "Sin alergias.",
        "EKG:",
        "normal.",
    ]
    with pytest.raises(UnknownSegmentationError, match="unknown segmentation 'words'"):
        note_segments(document, "words")


def test_best_per_code_keeps_each_codes_best_segment_among_the_top_codes() -> None:
    rankings = [[("R50.9", 0.9), ("R50.2", 0.4)], [("R05.9", 0.7), ("R50.9", 0.95)], []]
    assert best_per_code(rankings, 1) == [("R50.9", 0.9, 0), ("R05.9", 0.7, 1)]
    assert best_per_code(rankings, 2) == [("R50.9", 0.95, 1), ("R05.9", 0.7, 1), ("R50.2", 0.4, 0)]
