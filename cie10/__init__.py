"""cie10: build, publish and score multilingual retrievers for ICD-10-CM / CIE-10 codes."""

from __future__ import annotations

__version__ = "0.1.0"

LANGUAGES: tuple[str, ...] = ("en", "es", "ca", "it", "pt", "fr")
"""The six query languages of the study."""

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "es": "Spanish",
    "ca": "Catalan",
    "it": "Italian",
    "pt": "Portuguese",
    "fr": "French",
    "de": "German",
}
"""English names of the query languages and of the catalogue's extra label language (de)."""
