"""A note as queries: sentences, clauses, and the best segment of each code."""

from __future__ import annotations

import pytest

from cie10.segments import (
    UnknownSegmentationError,
    best_per_code,
    negation_cue,
    note_segments,
    split_clauses,
    split_sentences,
    without_normal_findings,
)


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
    # the joining word after a comma goes with it
    assert split_clauses("Fiebre, con dolor torácico, y disnea") == ["Fiebre", "dolor torácico", "disnea"]


def test_clauses_reporting_normal_findings_are_dropped() -> None:
    sentence = "Auscultación cardiaca normal, soplo sistólico y analítica con valores normales."
    assert without_normal_findings(sentence) == "soplo sistólico y analítica"
    assert without_normal_findings("Exploración neurológica normal.") == ""
    document = "Exploración neurológica normal. Auscultación normal, con crepitantes bibasales y fiebre."
    assert note_segments(document) == ["crepitantes bibasales y fiebre.", "crepitantes bibasales", "fiebre."]


def test_document_segments_keep_each_sentence_and_add_its_clauses() -> None:
    document = "Fiebre alta y tos seca. Sin alergias.\nEKG: normal."
    assert note_segments(document, "sentences") == ["Fiebre alta y tos seca.", "Sin alergias.", "EKG:", "normal."]
    assert note_segments(document) == ["Fiebre alta y tos seca.", "Fiebre alta", "tos seca.", "Sin alergias.", "EKG:"]
    assert note_segments("EKG normal.") == ["EKG normal."]  # nothing but normal findings: searched as it is
    with pytest.raises(UnknownSegmentationError, match="unknown segmentation 'words'"):
        note_segments(document, "words")


def test_best_per_code_keeps_each_codes_best_segment_among_the_top_codes() -> None:
    rankings = [[("R50.9", 0.9), ("R50.2", 0.4)], [("R05.9", 0.7), ("R50.9", 0.95)], []]
    assert best_per_code(rankings, 1) == [("R50.9", 0.9, 0), ("R05.9", 0.7, 1)]
    assert best_per_code(rankings, 2) == [("R50.9", 0.95, 1), ("R05.9", 0.7, 1), ("R50.2", 0.4, 0)]


@pytest.mark.parametrize(
    ("segment", "language", "cue"),
    [
        ("en ningún momento presentó ulceraciones", "es", "ningún"),
        ("Sin antecedentes médicos de interés.", "es", "sin"),
        ("HLA B27 y FR negativos.", "es", "negativos"),
        ("se descartó tromboembolismo pulmonar", "es", "descartó"),
        ("Sin embargo, presentaba fiebre con tos.", "es", None),  # "however", not a negation
        ("Nosocomial pneumonia", "es", None),  # a cue inside a word is no cue
        ("Denies chest pain", "en", "denies"),
        ("sense febre", "ca", "sense"),
        ("pas de fièvre", "fr", "pas de"),
        ("não tem febre", "pt", "não"),
        ("senza febbre", "it", "senza"),
        ("sin fiebre", None, "sin"),  # language unknown: Spanish
    ],
)
def test_negation_cue(segment: str, language: str | None, cue: str | None) -> None:
    assert negation_cue(segment, language) == cue
