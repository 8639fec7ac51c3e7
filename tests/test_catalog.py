"""The catalogue against its source files: counts, hierarchy, safe joins, inheritance flags and clear errors."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest

from cie10 import catalog_sources as sources
from cie10.catalog import Catalog, load_catalog, normalize_code, titles_agree
from cie10.errors import UnknownCodeError


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _cm_code_list() -> list[str]:
    """The code list file shipped inside simple-icd-10-cm, read independently of the library's API."""
    folder = resources.files("simple_icd_10_cm").joinpath("data")
    code_list = next(p for p in folder.iterdir() if p.name.startswith("code-list"))
    return [line.strip() for line in code_list.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_code_of_the_source_file_is_in_the_catalogue(catalog: Catalog) -> None:
    raw = _cm_code_list()
    dotted = {normalize_code(code) for code in raw}
    assert dotted == set(catalog.entries)
    assert sum(1 for entry in catalog if entry.kind == "chapter") == sum(1 for code in raw if code.isdigit())


def test_billable_codes_are_the_leaves(catalog: Catalog) -> None:
    for entry in catalog:
        assert entry.billable == (not entry.children and entry.kind in ("category", "subcategory")), entry.code
    assert catalog["J45.909"].billable and not catalog["J45.90"].billable


def test_hierarchy_is_a_tree(catalog: Catalog) -> None:
    for entry in catalog:
        if entry.parent is not None:
            assert entry.code in catalog[entry.parent].children, entry.code
    assert catalog.path("J45.909") == ["10", "J40-J4A", "J45", "J45.9", "J45.90", "J45.909"]
    # B99 is both a block and its only category: it must not be its own parent
    assert catalog.path("B99.9") == ["1", "B99", "B99.9"]


def test_join_counts_add_up_to_the_source_files(catalog: Catalog) -> None:
    report = catalog.join_report
    for language in sources.GNUHEALTH_LOCALES:
        translated = len(sources.read_gnuhealth_titles(language))
        key = f"{language}/gnuhealth-who"
        duplicates = translated - report.handled(key)  # a translation identical to one already joined
        assert 0 <= duplicates < translated * 0.01, language
        own = sum(1 for entry in catalog for label in entry.own_labels(language) if label.source == "gnuhealth-who")
        assert own == report.accepted[key]
    cie_rows = len(sources.read_cie_titles())
    key = "es/cie"
    handled = (
        report.accepted[key] + report.rejected_meaning[key] + report.rejected_v_y_4char[key] + report.not_in_cm[key]
    )
    assert handled <= cie_rows and report.accepted[key] > 1000


@pytest.mark.parametrize(
    ("code", "language", "expected"),
    [
        ("J45", "es", "Asma"),
        ("J45", "fr", "Asthme"),
        ("I21", "pt", "Infarto agudo do miocárdio"),
        ("I21", "es", "Infarto agudo del miocardio"),
        ("A00", "it", "Colera"),
        ("E11", "de", "Diabetes mellitus, Typ 2"),
        ("K92.1", "es", "Melena"),
    ],
)
def test_known_joins(catalog: Catalog, code: str, language: str, expected: str) -> None:
    texts = [label.text for label in catalog[code].own_labels(language)]
    assert expected in texts


def test_no_placeholder_labels(catalog: Catalog) -> None:
    # GNU Health's Spanish file holds the literal "nan" for some codes (I10 among them): never a label
    assert all(label.text.casefold() != "nan" for entry in catalog for label in entry.labels)
    assert [label.text for label in catalog["I10"].own_labels("es")] != []


def test_cie_variants_are_kept_with_their_source(catalog: Catalog) -> None:
    spanish = {(label.text, label.source) for label in catalog["E11"].own_labels("es")}
    assert ("Diabetes mellitus tipo 2", "gnuhealth-who") in spanish
    assert ("Diabetes mellitus no insulinodependiente", "cie") in spanish


def test_unsafe_joins_are_refused(catalog: Catalog) -> None:
    # WHO V01.0 is "nontraffic accident" in CM but a place of occurrence in WHO: V00-Y99 joins at 3 characters only
    assert catalog["V01"].own_labels("es")
    assert not catalog["V01.0"].own_labels("es")
    # WHO F98.5 "Stuttering" is CM "Adult onset fluency disorder": the titles disagree, so no label is joined
    assert not catalog["F98.5"].own_labels("es")
    assert not titles_agree("Stuttering [stammering]", "Adult onset fluency disorder")
    assert titles_agree("Melaena", "Melena")


def test_inherited_labels_are_flagged_never_own(catalog: Catalog) -> None:
    assert not catalog["J45.909"].own_labels("es")
    label = catalog.label("J45.909", "es")
    assert label is not None and label.inherited and label.code == "J45.9"
    assert catalog.label("J45.909", "es", inherit=False) is None
    own = catalog.label("J45", "es")
    assert own is not None and not own.inherited and own.code == "J45"
    assert catalog.label("J45.909", "ca") is None


def test_coverage_reports_catalan_as_missing(catalog: Catalog) -> None:
    rows = {row["language"]: row for row in catalog.coverage()}
    assert rows["ca"]["codes_with_own_label"] == 0 and "no Catalan" in rows["ca"]["note"]
    assert rows["es"]["codes_with_own_label"] > 9000
    assert rows["es"]["billable_with_inherited_or_own"] > 0.9 * rows["es"]["billable_total"]


@pytest.mark.parametrize("bad", ["", "hello", "J45.99999", "Z99.99", "12345"])
def test_bad_codes_raise_a_clear_error(catalog: Catalog, bad: str) -> None:
    with pytest.raises(UnknownCodeError) as error:
        catalog[bad]
    assert str(error.value)


def test_code_lookup_is_forgiving_about_case_and_dots(catalog: Catalog) -> None:
    assert catalog["j45909"].code == "J45.909"
    assert catalog[" J45.909 "].code == "J45.909"


def test_search_exact_prefix_and_title(catalog: Catalog) -> None:
    assert catalog.search("J45.909")[0].code == "J45.909"
    assert all(hit.code.startswith("J45") for hit in catalog.search("J45", limit=5))
    assert "J45" in [hit.code for hit in catalog.search("asthma", limit=50)]
    assert any(hit.code.startswith("J45") for hit in catalog.search("asma", limit=50))


def test_scopes(catalog: Catalog) -> None:
    full, billable = catalog.select("full"), catalog.select("billable")
    categories, quickstart = catalog.select("categories"), catalog.select("quickstart")
    assert len(billable) < len(full) and all(entry.billable for entry in billable)
    assert {entry.kind for entry in categories} == {"category"}
    assert set(e.code for e in categories) <= set(e.code for e in quickstart) and len(quickstart) < 5000
    with pytest.raises(UnknownCodeError):
        catalog.select("everything")


def test_cli_show_and_bad_code() -> None:
    ok = subprocess.run([sys.executable, "-m", "cie10", "codes", "show", "J45.909"], capture_output=True, text=True)
    assert (
        ok.returncode == 0 and "Unspecified asthma, uncomplicated" in ok.stdout and "inherited from J45.9" in ok.stdout
    )
    bad = subprocess.run([sys.executable, "-m", "cie10", "codes", "show", "Q99.999X"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "is not a code" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
