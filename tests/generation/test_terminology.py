from __future__ import annotations

from collections import Counter

from cie10.catalog import load_catalog
from cie10.generation.terminology import INCLUSION_SOURCE, terminology_pairs


def test_rows_come_from_own_labels_and_inclusion_terms_only() -> None:
    catalog = load_catalog()
    entries = [catalog["J45"], catalog["J45.909"], catalog["I10"]]
    pairs = terminology_pairs(catalog, entries, ["en", "es", "ca", "it", "pt", "fr"])
    by_code = {(p.code, p.language): p for p in pairs}
    assert by_code[("J45", "es")].query == "Asma"
    assert by_code[("J45", "es")].source == "terminology:gnuhealth-who"
    assert by_code[("J45", "es")].hard_negatives == catalog.siblings("J45")[:10]
    # J45.909 has no Spanish label of its own: the inherited "Asma" belongs to J45, not to it
    assert ("J45.909", "es") not in by_code
    assert catalog.label("J45.909", "es") is not None and catalog.label("J45.909", "es").inherited
    # English rows are inclusion terms, never the title (the retrieval document)
    assert by_code[("J45.909", "en")].query == "Asthma NOS"
    assert by_code[("J45.909", "en")].source == f"terminology:{INCLUSION_SOURCE}"
    assert all(p.query != catalog[p.code].title for p in pairs if p.language == "en")
    assert not [p for p in pairs if p.language == "ca"]
    assert by_code[("J45.909", "en")].category == "J45"


def test_quickstart_scope_gives_every_language_but_catalan() -> None:
    catalog = load_catalog()
    pairs = terminology_pairs(catalog, catalog.select("quickstart"), ["en", "es", "ca", "it", "pt", "fr"])
    counts = Counter(p.language for p in pairs)
    assert set(counts) == {"en", "es", "it", "pt", "fr"}
    assert counts["es"] > 2000 and counts["fr"] > 2000 and counts["pt"] > 2000 and counts["en"] > 1000
