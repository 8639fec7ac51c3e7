from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cie10.catalog import load_catalog
from cie10.generation.codiesp_source import codiesp_pairs, codiesp_root
from cie10.generation.config import GenerationConfig
from cie10.generation.curation import CurationReport, _lingua_detector, check_language
from cie10.generation.translate import (
    INSTALL_COMMAND,
    ApertiumTranslator,
    mode_for,
    translated_names,
    translation_pairs,
)

needs_apertium = pytest.mark.skipif(
    shutil.which("apertium") is None, reason=f"Apertium is not installed (`make test` installs it: {INSTALL_COMMAND})"
)
ROOT = codiesp_root()


def _detect(text: str) -> str:
    detector, codes = _lingua_detector()
    return codes[detector.compute_language_confidence_values(text)[0].language]


def _needs(*languages: str) -> None:
    for language in languages:
        if mode_for(language) is None:
            pytest.skip(f"no Apertium mode from Spanish into {language}")


def _spanish_mentions(limit: int = 300) -> list:
    if not (ROOT / "train" / "trainX.tsv").is_file():
        pytest.skip(f"the shared CodiEsp copy is not at {ROOT}")
    catalog = load_catalog()
    pairs = codiesp_pairs(catalog, catalog.select("full"), CurationReport(), context=False)
    return pairs[:limit]


@needs_apertium
def test_a_batch_realigns_one_to_one_and_is_cached(tmp_path: Path) -> None:
    _needs("ca")
    phrases = ["fractura de cuello de fémur izquierdo", "...", "dolor torácico opresivo", "", "HTA. DM tipo 2"]
    translator = ApertiumTranslator(tmp_path, show_progress_bar=False)
    translations = translator.translate(phrases, "spa-cat")
    assert len(translations) == len(phrases)
    assert translations[0].text == "fractura de coll de fèmur esquerre"
    assert translations[2].text == "dolor toràcic opressiu"
    assert translations[3].text == ""  # an empty phrase stays empty, and later ones keep their places
    assert translations[4].unknown == ("HTA",) and translations[4].unknown_count() == 0  # acronyms do not count
    cached = json.loads((tmp_path / "apertium-spa-cat.json").read_text(encoding="utf-8"))
    assert cached["dolor torácico opresivo"][1] == "dolor toràcic opressiu"
    again = ApertiumTranslator(tmp_path, show_progress_bar=False).translate(phrases[:1], "spa-cat")
    assert again == translations[:1]


@needs_apertium
def test_translated_mentions_are_in_their_language_and_unknown_words_are_capped(tmp_path: Path) -> None:
    _needs("ca", "fr")
    catalog = load_catalog()
    spanish = _spanish_mentions()
    report = CurationReport()
    translator = ApertiumTranslator(tmp_path, show_progress_bar=False)
    pairs = translation_pairs(
        spanish, catalog, [], languages=["ca", "fr"], names_to=[], translator=translator, report=report, max_unknown=1
    )
    assert {pair.language for pair in pairs} == {"ca", "fr"}
    assert {pair.source for pair in pairs} == {"apertium:spa-cat<-codiesp-train", "apertium:es-fr<-codiesp-train"}
    assert {pair.kind for pair in pairs} == {"query"}
    dropped = report.dropped["source"]
    assert dropped["translation (es-fr) with more than 1 unknown word(s)"] > 0
    assert len(pairs) + report.total("source") == 2 * len(spanish)
    # a translated row is in its target language by lingua: the curation's language check keeps nearly all of
    # them (lingua's confidence in the target language is above the floor), and most are even its top choice
    config = GenerationConfig(show_progress_bar=False)
    checked = [pair for pair in pairs if len(pair.query.split()) >= config.langid_min_words]
    kept = check_language(checked, config, CurationReport())
    assert len(kept) >= 0.9 * len(checked)
    for language in ("ca", "fr"):
        long_rows = [pair for pair in pairs if pair.language == language and len(pair.query.split()) >= 4]
        detected = [_detect(pair.query) for pair in long_rows]
        assert long_rows and detected.count(language) / len(detected) >= 0.6, (language, detected)
    # French keeps the source's lower-case start (Apertium capitalises the paragraph)
    assert all(not pair.query[:1].isupper() for pair in pairs if pair.language == "fr" and pair.query[:2].islower())


@needs_apertium
def test_catalan_names_from_the_spanish_labels(tmp_path: Path) -> None:
    _needs("ca")
    catalog = load_catalog()
    entries = [catalog["I10"], catalog["J45"], catalog["E11"], catalog["J45.909"]]
    translator = ApertiumTranslator(tmp_path, show_progress_bar=False)
    names = translated_names(catalog, entries, "ca", translator=translator)
    assert "J45.909" not in names  # it has no Spanish label of its own
    assert set(names) == {"I10", "J45", "E11"}
    assert any("essencial" in name for name in names["I10"])
    assert all(_detect(name) == "ca" for name in names["I10"])
    report = CurationReport()
    pairs = translation_pairs([], catalog, entries, languages=[], names_to=["ca"], translator=translator, report=report)
    assert {pair.kind for pair in pairs} == {"name"} and {pair.language for pair in pairs} == {"ca"}
    assert all(pair.source.startswith("apertium:spa-cat<-terminology:") for pair in pairs)
    assert all(pair.hard_negatives == catalog.siblings(pair.code)[:10] for pair in pairs)


def test_without_apertium_one_line_says_how_to_install_it_and_nothing_is_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cie10.generation.translate import available_modes

    monkeypatch.setenv("PATH", str(tmp_path))  # no `apertium` on it
    available_modes.cache_clear()
    try:
        report = CurationReport()
        catalog = load_catalog()
        translator = ApertiumTranslator(tmp_path, show_progress_bar=False)
        pairs = translation_pairs(
            [], catalog, [catalog["I10"]], languages=["ca"], names_to=["ca"], translator=translator, report=report
        )
        assert pairs == [] and report.notes == [
            f"Apertium is not installed: no translated rows; install it with `{INSTALL_COMMAND}`"
        ]
        assert translated_names(catalog, [catalog["I10"]], "ca", translator=translator) == {}
    finally:
        available_modes.cache_clear()


def test_a_missing_mode_says_how_to_install_it() -> None:
    from cie10.generation.translate import missing_line

    assert mode_for("en", modes=[]) is None
    assert mode_for("ca", modes=["spa-cat", "cat-spa"]) == "spa-cat"
    if shutil.which("apertium"):
        assert "apt-get install -y apertium-en-es" in missing_line("en")


def test_the_unknown_word_rule() -> None:
    from cie10.generation.translate import Translation

    cognate = Translation("edemas", ("edemas",))  # es-pt: unknown to Apertium, yet Portuguese
    assert cognate.rejection() is None  # default: at most one unknown word
    assert cognate.rejection(unknown_share=1.0) == "with unknown words for 100% or more of its words"
    spanish = Translation("douleur torácico opresivo", ("torácico", "opresivo"))
    assert spanish.rejection() == "with more than 1 unknown word(s)"
    assert Translation("HTA. DM type 2", ("HTA", "DM")).rejection(max_unknown=0) is None  # acronyms do not count
    assert Translation("", ()).rejection() == "is empty"
