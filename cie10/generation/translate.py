"""The `translate` source: Apertium pivots of the Spanish rows into Catalan, Portuguese, French, Italian and English.

Apertium (rule-based machine translation, packaged by Debian) runs offline through `subprocess`, one process per
batch of phrases: one phrase per paragraph (blank-line separated), so the output paragraphs realign 1:1 with the
input (a batch whose paragraph count does not match is split in halves until it does). Each batch runs twice:
without `-u`, where unknown words come back marked `*word`, to count them, and with `-u` for the text (stripping
the marks is not quite the same: a marked word blocks elisions such as Catalan `d'Epstein`). The rule for
unknown words: a translation keeps at most `translate_max_unknown` (1) of them (acronyms and words with digits,
shared across languages, do not count); a dropped translation is counted under `source`. A single unknown word is
often a valid cognate (pt `edemas`, fr `fémur`) but sometimes Spanish left as is (fr `hemopericardio`); the
stricter `translate_unknown_share` (off by default) also drops a translation whose unknown words are that share
of its words or more. Measured at full scope: 1.0 leaves Portuguese 199 test queries, 0.5 leaves it 110, under
the 200 the dataset needs in every language; the default leaves 305.
Translations are cached on disk by mode and text, so a rerun translates nothing it has seen.

Spanish CodiEsp mentions become queries in every `translate_languages` language; the catalogue's own Spanish
labels become names in the `translate_names_to` languages (Catalan has no label source at all, Italian a few
hundred codes). `source` names the mode and the origin row: `apertium:spa-cat<-codiesp-train`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from cie10.catalog import Catalog, CodeEntry
from cie10.errors import Cie10Error
from cie10.generation.curation import CurationReport
from cie10.generation.pairs import TERMINOLOGY_PREFIX, TRANSLATION_PREFIX, Pair, normalize_text

logger = logging.getLogger(__name__)

MODES: dict[str, tuple[str, ...]] = {
    "ca": ("spa-cat", "es-ca"),
    "pt": ("es-pt", "spa-por"),
    "fr": ("es-fr", "spa-fra"),
    "it": ("spa-ita", "es-it"),
    "en": ("spa-eng", "es-en"),
}
"""Apertium modes from Spanish per target language, preferred first (Debian names them either way)."""
APT_PACKAGES: dict[str, str] = {
    "ca": "apertium-spa-cat",
    "pt": "apertium-es-pt",
    "fr": "apertium-fr-es",
    "it": "apertium-spa-ita",
    "en": "apertium-en-es",
}
INSTALL_COMMAND = "apt-get install -y apertium cg3 " + " ".join(APT_PACKAGES.values())
_UNKNOWN = re.compile(r"\*(\w[\w'-]*)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


class TranslationError(Cie10Error):
    """Apertium failed on a batch."""


@dataclass(frozen=True)
class Translation:
    """One translated phrase: the text (marks stripped, as `apertium -u` writes it) and its unknown words."""

    text: str
    unknown: tuple[str, ...]

    def unknown_count(self) -> int:
        """Unknown words that count against the cap: not acronyms, not words with digits."""
        return sum(1 for word in self.unknown if not (word.isupper() or any(ch.isdigit() for ch in word)))

    def rejection(self, max_unknown: int = 1, unknown_share: float | None = None) -> str | None:
        """Why the unknown-word rule drops this translation (None: kept)."""
        unknown = self.unknown_count()
        if not self.text:
            return "is empty"
        if unknown > max_unknown:
            return f"with more than {max_unknown} unknown word(s)"
        if unknown_share is not None and unknown and unknown / len(self.text.split()) >= unknown_share:
            return f"with unknown words for {unknown_share:.0%} or more of its words"
        return None


def parse_translation(source: str, marked: str, clean: str) -> Translation:
    """A translation from Apertium's marked (no `-u`) and clean (`-u`) outputs, the source's case kept.

    French and English modes capitalise the first letter of a paragraph; a phrase that started in lower case
    stays so (unless its first word is an acronym).
    """
    unknown = tuple(_UNKNOWN.findall(marked))
    text = " ".join(clean.split())
    first = text.split(" ", 1)[0] if text else ""
    if text and source[:1].islower() and text[0].isupper() and not first.isupper():
        text = text[0].lower() + text[1:]
    return Translation(text, unknown)


@functools.lru_cache(maxsize=1)
def available_modes() -> frozenset[str]:
    """Apertium's installed modes (`apertium -l`); empty when Apertium is not installed."""
    if shutil.which("apertium") is None:
        return frozenset()
    try:
        listed = subprocess.run(["apertium", "-l"], capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as error:
        logger.warning("apertium -l failed (%s): no translations", error)
        return frozenset()
    return frozenset(line.strip() for line in listed.splitlines() if line.strip())


def mode_for(language: str, modes: Iterable[str] | None = None) -> str | None:
    """The installed Apertium mode from Spanish into `language`, or None."""
    installed = set(available_modes() if modes is None else modes)
    return next((mode for mode in MODES.get(language, ()) if mode in installed), None)


def missing_line(language: str) -> str:
    """The one line said when Apertium (or the pair of `language`) is missing."""
    if shutil.which("apertium") is None:
        return f"Apertium is not installed: no translated rows; install it with `{INSTALL_COMMAND}`"
    return (
        f"Apertium has no Spanish→{language} mode ({' or '.join(MODES[language])}): no {language} translations; "
        f"install it with `apt-get install -y {APT_PACKAGES[language]}`"
    )


class ApertiumTranslator:
    """Translate phrases with Apertium processes per batch, through an on-disk cache `{text: [marked, clean]}`
    per mode (keyed by mode and text)."""

    def __init__(self, cache_dir: str | os.PathLike, batch_size: int = 2000, show_progress_bar: bool = True) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self._caches: dict[str, dict[str, list[str]]] = {}

    def _cache_file(self, mode: str) -> Path:
        return self.cache_dir / f"apertium-{mode}.json"

    def _cache(self, mode: str) -> dict[str, list[str]]:
        if mode not in self._caches:
            path = self._cache_file(mode)
            try:
                self._caches[mode] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            except (json.JSONDecodeError, UnicodeDecodeError):
                logger.warning("translation cache %s is unreadable: starting it again", path)
                self._caches[mode] = {}
        return self._caches[mode]

    def _save(self, mode: str) -> None:
        """Write the mode's cache, then rename it into place (a killed run keeps the last whole file)."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self._cache_file(mode)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=self.cache_dir)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(self._cache(mode), stream, ensure_ascii=False)
        os.replace(temporary, path)

    def translate(self, texts: list[str], mode: str) -> list[Translation]:
        """Each text translated by `mode` (cached ones from the cache), in order."""
        cache = self._cache(mode)
        phrases = [" ".join(text.split()) for text in texts]
        todo = [phrase for phrase in dict.fromkeys(phrases) if phrase and phrase not in cache]
        if todo:
            batches = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
            cached = len(set(phrases)) - len(todo)
            logger.info("apertium %s: %d phrases to translate (%d cached)", mode, len(todo), cached)
            for batch in tqdm(batches, desc=f"apertium {mode}", disable=not self.show_progress_bar):
                marked, clean = self.run_batch(batch, mode), self.run_batch(batch, mode, unmarked=True)
                cache.update((phrase, [m, c]) for phrase, m, c in zip(batch, marked, clean, strict=True))
                self._save(mode)
        return [parse_translation(phrase, *cache.get(phrase, ["", ""])) for phrase in phrases]

    def run_batch(self, phrases: list[str], mode: str, *, unmarked: bool = False) -> list[str]:
        """Apertium's output for each phrase (marked, or with `-u`), one process for the batch, realigned 1:1."""
        try:
            done = subprocess.run(
                ["apertium", *(["-u"] if unmarked else []), "-f", "txt", mode],
                input="\n\n".join(phrases) + "\n",
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise TranslationError(f"apertium {mode} failed on a batch of {len(phrases)} phrases: {error}") from error
        if done.returncode != 0:
            raise TranslationError(f"apertium {mode} exited with {done.returncode}: {done.stderr.strip()[:300]}")
        outputs = [part.strip() for part in _PARAGRAPH_BREAK.split(done.stdout.strip("\n"))]
        if len(outputs) == len(phrases):
            return outputs
        if len(phrases) == 1:
            return [" ".join(done.stdout.split())]
        middle = len(phrases) // 2
        logger.debug("apertium %s: %d paragraphs for %d phrases; splitting the batch", mode, len(outputs), len(phrases))
        return self.run_batch(phrases[:middle], mode, unmarked=unmarked) + self.run_batch(
            phrases[middle:], mode, unmarked=unmarked
        )


def _label_rows(entries: Iterable[CodeEntry]) -> list[tuple[str, str, str]]:
    """(code, Spanish own label, its source) for each code: the texts names are translated from."""
    rows = []
    for entry in entries:
        seen: set[str] = set()
        for label in entry.own_labels("es"):
            key = normalize_text(label.text)
            if key and key not in seen and not label.inherited:
                seen.add(key)
                rows.append((entry.code, label.text.strip(), label.source))
    return rows


def _translate_names(
    entries: Iterable[CodeEntry], language: str, translator: ApertiumTranslator, max_unknown: int
) -> tuple[list[tuple[str, Translation, str]], str | None]:
    """(code, translation, origin label source) for each Spanish own label, and the mode used (None: missing)."""
    mode = mode_for(language)
    if mode is None:
        return [], None
    rows = _label_rows(entries)
    translations = translator.translate([text for _, text, _ in rows], mode)
    return [(code, tr, source) for (code, _, source), tr in zip(rows, translations, strict=True)], mode


def translated_names(
    catalog: Catalog,
    entries: Iterable[CodeEntry] | None,
    language: str,
    *,
    translator: ApertiumTranslator | None = None,
    max_unknown: int = 1,
    unknown_share: float | None = None,
) -> dict[str, list[str]]:
    """`{code: [names]}` in `language` translated from each code's own Spanish labels (e.g. Catalan names).

    Translations the unknown-word rule rejects are left out; empty when Apertium or the mode is
    missing (one warning says how to install it). `entries` defaults to every code of the catalogue.
    """
    if mode_for(language) is None:
        logger.warning(missing_line(language))
        return {}
    if translator is None:
        from cie10.settings import get_settings

        translator = ApertiumTranslator(get_settings().home / "translation-cache", show_progress_bar=False)
    rows, _ = _translate_names(catalog if entries is None else entries, language, translator, max_unknown)
    names: dict[str, list[str]] = {}
    for code, translation, _ in rows:
        if translation.rejection(max_unknown, unknown_share) is None:
            names.setdefault(code, [])
            if translation.text not in names[code]:
                names[code].append(translation.text)
    return names


INDEX_NAME_LANGUAGES: tuple[str, ...] = ("ca", "it")
"""Languages whose code names the index takes from Apertium: Catalan has no label source, Italian only a few."""


def index_names(catalog: Catalog, entries: Iterable[CodeEntry]) -> dict[str, list[tuple[str, str, str]]]:
    """`{code: [(name, language, source)]}`: translated names for the code index's `extra_names`."""
    rows: dict[str, list[tuple[str, str, str]]] = {}
    entries = list(entries)
    for language in INDEX_NAME_LANGUAGES:
        source = f"{TRANSLATION_PREFIX}{mode_for(language)}<-labels"
        for code, names in translated_names(catalog, entries, language).items():
            rows.setdefault(code, []).extend((name, language, source) for name in names)
    return rows


def translation_pairs(
    spanish: list[Pair],
    catalog: Catalog,
    entries: Iterable[CodeEntry],
    *,
    languages: list[str],
    names_to: list[str],
    translator: ApertiumTranslator,
    report: CurationReport,
    max_unknown: int = 1,
    unknown_share: float | None = None,
    max_hard_negatives: int = 10,
) -> list[Pair]:
    """Queries translated from the Spanish `spanish` rows into `languages`, names from the Spanish labels of
    `entries` into `names_to`; a translation over the unknown-word cap is dropped and counted (step `source`)."""
    entries = list(entries)
    queries = [pair for pair in spanish if pair.language == "es" and pair.kind == "query"]
    pairs: list[Pair] = []
    if not available_modes():
        line = missing_line("ca")  # Apertium itself is missing: one line for every language
        logger.warning(line)
        report.notes.append(line)
        return pairs
    for language in dict.fromkeys([*languages, *names_to]):
        mode = mode_for(language)
        if mode is None:
            line = missing_line(language)
            logger.warning(line)
            report.notes.append(line)
            continue
        candidates: list[tuple[Pair, Translation]] = []
        if language in languages and queries:
            translations = translator.translate([pair.query for pair in queries], mode)
            candidates += [
                (
                    Pair(
                        tr.text,
                        pair.code,
                        language,
                        f"{TRANSLATION_PREFIX}{mode}<-{pair.source}",
                        list(pair.hard_negatives),
                        kind="query",
                    ),
                    tr,
                )  # fmt: skip
                for pair, tr in zip(queries, translations, strict=True)
            ]
        if language in names_to:
            rows, _ = _translate_names(entries, language, translator, max_unknown)
            candidates += [
                (
                    Pair(
                        tr.text,
                        code,
                        language,
                        f"{TRANSLATION_PREFIX}{mode}<-{TERMINOLOGY_PREFIX}{source}",
                        catalog.siblings(code)[:max_hard_negatives],
                        kind="name",
                    ),
                    tr,
                )  # fmt: skip
                for code, tr, source in rows
            ]
        kept = 0
        for pair, translation in candidates:
            why = translation.rejection(max_unknown, unknown_share)
            if why is None:
                pairs.append(pair)
                kept += 1
                continue
            report.input_rows += 1
            unknown = f" [unknown: {', '.join(translation.unknown)}]" if translation.unknown else ""
            report.drop("source", f"translation ({mode}) {why}", pair, text=f"{pair.query}{unknown}")
        logger.info("translate %s (%s): %d of %d translations kept", language, mode, kept, len(candidates))
    return pairs
