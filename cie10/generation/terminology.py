"""The `terminology` backend: pairs from the catalogue's official labels, no LLM (offline, and a baseline).

The document a retriever indexes is a code's English ICD-10-CM title, so an English row would copy it: English
rows come from the code's inclusion terms instead. Other languages use the code's *own* labels (WHO ICD-10 and
CIE-10 titles joined by code); an inherited label names an ancestor, so it never makes a row for a descendant.
Catalan has no label source, so it gets no rows. Hard negatives are the code's siblings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from cie10.catalog import Catalog, CodeEntry
from cie10.generation.pairs import TERMINOLOGY_PREFIX, Pair, normalize_text

logger = logging.getLogger(__name__)

INCLUSION_SOURCE = "icd10cm-2026-inclusion-term"
NO_TERMINOLOGY: dict[str, str] = {
    "ca": "no Catalan ICD-10 label source exists in the package registries, so Catalan has no terminology rows"
}


def terminology_pairs(
    catalog: Catalog, entries: Iterable[CodeEntry], languages: list[str], *, max_hard_negatives: int = 10
) -> list[Pair]:
    """One row per inclusion term (en) and per own label (es, it, pt, fr) of each code."""
    pairs: list[Pair] = []
    for entry in entries:
        negatives = catalog.siblings(entry.code)[:max_hard_negatives]
        for language in languages:
            if language == "en":
                texts = [(term, INCLUSION_SOURCE) for term in entry.inclusion_terms]
            else:
                texts = [(label.text, label.source) for label in entry.own_labels(language) if not label.inherited]
            seen: set[str] = set()
            for text, source in texts:
                key = normalize_text(text)
                if not key or key in seen:
                    continue
                seen.add(key)
                pairs.append(Pair(text.strip(), entry.code, language, TERMINOLOGY_PREFIX + source, list(negatives)))
    logger.info("terminology: %d pairs from %s", len(pairs), ", ".join(languages))
    return pairs
