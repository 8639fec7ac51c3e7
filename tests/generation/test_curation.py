"""Curation on real examples of each defect (from the catalogue's sources and typical LLM slips)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cie10.catalog import load_catalog
from cie10.generation.cache import Completion
from cie10.generation.config import GenerationConfig
from cie10.generation.curation import (
    CurationReport,
    check_codes,
    check_duplicates,
    check_eval_overlap,
    check_language,
    check_near_duplicates,
    check_text,
    curate,
    eval_queries,
    pairs_from_reply,
    read_eval_queries,
)
from cie10.generation.pairs import Pair
from cie10.generation.prompts import Task, load_template, render_prompt
from cie10.generation.splits import split_pairs

LLM = "gemini:gemini-2.5-flash"


def _config(**overrides: object) -> GenerationConfig:
    settings: dict[str, object] = {"backend": "gemini", "dedup": False, "exclude_codiesp": False, **overrides}
    return GenerationConfig(**settings)  # type: ignore[arg-type]


def test_unknown_code_and_bad_hard_negatives() -> None:
    catalog = load_catalog()
    report = CurationReport()
    pairs = [
        Pair("HTA esencial mal controlada", "I10.9", "es", LLM),  # I10 has no subcodes: a common slip
        Pair("HTA esencial mal controlada", "I10", "es", LLM, ["I11", "I10", "I11.9X", "i12"]),
    ]
    kept = check_codes(pairs, catalog, report, max_hard_negatives=10)
    assert [p.code for p in kept] == ["I10"]
    assert kept[0].hard_negatives == ["I11", "I12"]
    assert report.dropped["unknown_code"]["code not in the catalogue"] == 1
    assert report.hard_negatives_removed == {"the positive code itself": 1, "not in the catalogue": 1}


def test_copied_title_code_string_placeholders_notes_and_length() -> None:
    catalog = load_catalog()
    report = CurationReport()
    pairs = [
        Pair("Unspecified asthma, uncomplicated", "J45.909", "en", LLM),  # the title copied
        Pair("Asma", "J45", "es", LLM),  # the official label it was shown
        Pair("Amebiasis", "A06", "es", "terminology:gnuhealth-who"),  # a WHO Spanish label equal to the CM title
        Pair("asma no especificada (J45.909)", "J45.909", "es", LLM),  # the code itself
        Pair("DM2 sin complicaciones, E11.9", "E11.9", "es", LLM),
        Pair("nan", "I10", "es", "terminology:gnuhealth-who"),  # a pandas NaN exported as a title (GNU Health had 177)
        Pair(
            "An amputation not identified as partial or complete should be coded to complete",
            "S48",
            "en",
            "terminology:icd10cm-2026-inclusion-term",
        ),  # an instructional note among the inclusion terms
        Pair("AB", "J45.909", "es", LLM),
        Pair("asma " * 60, "J45.909", "es", LLM),
        Pair("asma bronquial sin crisis actual", "J45.909", "es", LLM),  # fine
        Pair("Asma", "J45", "es", "terminology:gnuhealth-who"),  # fine: an official label is the row itself
        Pair("vitamin B12 deficiency anemia due to poor diet", "D51.3", "en", LLM),  # B12 is not a code here
    ]
    kept = check_text(pairs, catalog, _config(), report)
    assert [p.query for p in kept] == [
        "asma bronquial sin crisis actual",
        "Asma",
        "vitamin B12 deficiency anemia due to poor diet",
    ]
    assert report.dropped["copied_title"] == {
        "same as the English title (the retrieval document)": 2,
        "same as the official label shown in the prompt": 1,
    }
    assert report.total("code_string") == 2
    assert report.dropped["not_a_mention"] == {"placeholder text": 1, "instructional note": 1}
    assert report.dropped["length"] == {"shorter than 3 characters": 1, "longer than 250 characters": 1}


def test_wrong_language_is_dropped_and_short_mentions_are_not_checked() -> None:
    report = CurationReport()
    pairs = [
        # Spanish written where Catalan was asked: the slip an LLM makes most
        Pair("paciente asmático conocido, asintomático en el momento de la consulta", "J45.909", "ca", LLM),
        Pair("pacient asmàtic conegut, asimptomàtic en el moment de la visita", "J45.909", "ca", LLM),
        # English left untranslated in a Portuguese answer
        Pair("known asthmatic, asymptomatic at today's visit", "J45.909", "pt", LLM),
        Pair("asmático conhecido, assintomático na consulta de hoje", "J45.909", "pt", LLM),
        Pair("HTA", "I10", "ca", LLM),  # too short to tell: kept, counted as skipped
        Pair("Cólera devido a Vibrio cholerae 01, biovar cholerae", "A00.0", "pt", "terminology:gnuhealth-who"),
    ]
    kept = check_language(pairs, _config(), report)
    assert [p.query for p in kept] == [
        "pacient asmàtic conegut, asimptomàtic en el moment de la visita",
        "asmático conhecido, assintomático na consulta de hoje",
        "HTA",
        "Cólera devido a Vibrio cholerae 01, biovar cholerae",
    ]
    assert report.dropped["language"] == {"ca mention detected as es": 1, "pt mention detected as en": 1}
    assert report.skipped["language check: fewer than 3 words"] == 1
    assert report.skipped["language check: official label"] == 1


def test_duplicates_exact_ancestor_and_ambiguous() -> None:
    catalog = load_catalog()
    report = CurationReport()
    pairs = [
        Pair("Asma bronquial, no especificada.", "J45.909", "es", LLM),
        Pair("asma bronquial no especificada", "J45.909", "es", LLM),  # the same text once normalized
        Pair("sinusite aguda", "J01", "pt", "terminology:gnuhealth-who"),  # WHO gives J01 and J01.0 one label
        Pair("Sinusite aguda", "J01.0", "pt", "terminology:gnuhealth-who"),
        Pair("Autres traumatismes obstétricaux", "O71", "fr", "terminology:gnuhealth-who"),  # two unrelated codes
        Pair("Autres traumatismes obstétricaux", "P15", "fr", "terminology:gnuhealth-who"),
    ]
    kept = check_duplicates(pairs, catalog, report)
    assert [(p.query, p.code) for p in kept] == [
        ("Asma bronquial, no especificada.", "J45.909"),
        ("Sinusite aguda", "J01.0"),
    ]
    assert report.dropped["duplicate"] == {
        "same text twice for a code": 1,
        "one text for a code and its descendant (the descendant kept)": 1,
        "one text for unrelated codes (ambiguous)": 2,
    }


@pytest.mark.slow
def test_near_duplicates_by_embedding(base_model_path: Path) -> None:
    report = CurationReport()
    config = _config(dedup=True, dedup_names=True, dedup_model=str(base_model_path), show_progress_bar=False)
    pairs = [
        Pair("Otras infecciones específicas del período perinatal", "P39", "es", "terminology:cie"),
        Pair("Otras infecciones especificas del período perinatal", "P39", "es", "terminology:gnuhealth-who"),
        Pair("Neumotórax espontáneo a presión", "J93.0", "es", LLM),
        Pair("Neumótorax espontáneo a presión", "J93.0", "es", LLM),  # a typo of the same mention
        Pair("Septic endocarditis (acute) (subacute)", "I33.0", "en", LLM),
        Pair("Bacterial endocarditis (acute) (subacute)", "I33.0", "en", LLM),  # close, yet another term
        Pair("Neumótorax espontáneo a presión", "J93.0", "pt", LLM),  # another language: not compared
    ]
    kept = check_near_duplicates(pairs, config, report)
    assert [p.query for p in kept] == [
        "Otras infecciones específicas del período perinatal",
        "Neumotórax espontáneo a presión",
        "Septic endocarditis (acute) (subacute)",
        "Bacterial endocarditis (acute) (subacute)",
        "Neumótorax espontáneo a presión",
    ]
    assert report.total("near_duplicate") == 2
    # by default names (official labels) are not compared: they are distinct by construction, and many
    names_only = check_near_duplicates(pairs[:2], _config(dedup=True, show_progress_bar=False), CurationReport())
    assert names_only == pairs[:2]


def test_evaluation_queries_never_reach_the_dataset(tmp_path: Path) -> None:
    devx = tmp_path / "devX.tsv"
    devx.write_text(
        "S0004-1\tDIAGNOSTICO\tn39.0\tinfecciones del tracto urinario\t198 229\n"
        "S0004-1\tPROCEDIMIENTO\tbt41zzz\tecografía renal derecha\t307 316\n",
        encoding="utf-8",
    )
    assert read_eval_queries(devx) == ["infecciones del tracto urinario"]
    report = CurationReport()
    queries = eval_queries(_config(exclude_queries_from=[str(devx)]), report)
    pairs = [
        Pair("Infecciones del tracto urinario", "N39.0", "es", LLM),
        Pair("ITU de repetición", "N39.0", "es", LLM),
    ]
    kept = check_eval_overlap(pairs, queries, report)
    assert [p.query for p in kept] == ["ITU de repetición"]
    assert report.total("eval_overlap") == 1
    assert "devX.tsv" in report.notes[0]


def test_malformed_and_empty_replies_are_dropped_with_a_reason() -> None:
    catalog = load_catalog()
    prompt = render_prompt(catalog, Task("J45.909", "es", 2), load_template("mentions-v1"))
    report = CurationReport()
    good = Completion(
        '{"mentions": ["asma bronquial sin crisis"], "hard_negatives": '
        '[{"code": "J45.901", "reason": "exacerbación"}, {"code": "J45.20", "reason": "not a sibling"}]}',
        "STOP",
    )
    assert [(p.query, p.hard_negatives) for p in pairs_from_reply(prompt, good, LLM, catalog, report)] == [
        ("asma bronquial sin crisis", ["J45.901"])
    ]
    fenced = Completion('```json\n{"mentions": ["asma"], "hard_negatives": []}\n```', "stop")
    assert len(pairs_from_reply(prompt, fenced, LLM, catalog, report)) == 1
    assert pairs_from_reply(prompt, Completion('{"mentions": ["asma"', "MAX_TOKENS"), LLM, catalog, report) == []
    assert pairs_from_reply(prompt, Completion('{"items": []}', "STOP"), LLM, catalog, report) == []
    assert pairs_from_reply(prompt, Completion("", "SAFETY"), LLM, catalog, report) == []
    assert report.dropped["reply"] == {
        "malformed reply: not JSON": 1,
        "malformed reply: JSON not of the schema": 1,
        "empty reply (SAFETY)": 1,
    }
    assert report.hard_negatives_removed["not a sibling shown in the prompt"] == 1


def test_curate_then_split_by_category_without_leaks() -> None:
    catalog = load_catalog()
    config = _config(validation_fraction=0.2, test_fraction=0.2)
    codes = [entry.code for entry in catalog.select("quickstart") if entry.chapter in ("9", "10")]
    pairs = [Pair(f"mención clínica número {i} de la categoría", code, "es", LLM) for i, code in enumerate(codes)]
    pairs.append(Pair("mención repetida en dos categorías", "J45.909", "pt", LLM))
    pairs.append(Pair("mención repetida en dos categorías", "K21.9", "es", LLM))
    rows, report = curate(pairs, catalog, config, exclude=set())
    splits = split_pairs(rows, catalog, validation_fraction=0.2, test_fraction=0.2, seed=1, report=report)
    categories = {split: {p.category for p in rows} for split, rows in splits.items()}
    assert not categories["train"] & categories["test"] and not categories["train"] & categories["validation"]
    shares = {split: len(part) / len(rows) for split, part in splits.items()}
    assert 0.1 < shares["test"] < 0.3 and 0.1 < shares["validation"] < 0.3, shares
    assert sum(len(part) for part in splits.values()) + report.total("split_leak") == len(rows)
    texts = {split: {p.query for p in part} for split, part in splits.items()}
    assert not texts["train"] & (texts["test"] | texts["validation"])
    assert split_pairs(rows, catalog, validation_fraction=0.2, test_fraction=0.2, seed=1) == splits


def test_the_codiesp_dev_guard_spares_rows_from_codiesp_train() -> None:
    report = CurationReport()
    dev = {"infecciones del tracto urinario"}
    pairs = [
        Pair("infecciones del tracto urinario", "N39.0", "es", "codiesp-train"),  # the domain, not a leak
        Pair("infeccions del tracte urinari", "N39.0", "ca", "apertium:spa-cat<-codiesp-train"),
        Pair("Infecciones del tracto urinario", "N39.0", "es", LLM),
    ]
    kept = check_eval_overlap(pairs, set(), report, codiesp_dev=dev)
    assert [p.source for p in kept] == ["codiesp-train", "apertium:spa-cat<-codiesp-train"]
    assert report.dropped["eval_overlap"] == {"text is a CodiEsp dev mention": 1}
    assert report.skipped["CodiEsp dev overlap guard: CodiEsp train row (the domain, not a leak)"] == 1
