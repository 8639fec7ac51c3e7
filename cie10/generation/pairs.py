"""The row every source produces and curation filters: a text (`query`) of a code in a language.

A row is a *name* of its code (an official label: English inclusion terms, WHO / CIE-10 titles, their
translations) or a *query* (clinical writing: CodiEsp mentions, their translations, LLM mentions). Names may
train; the held-out splits are queries only.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

TERMINOLOGY_PREFIX = "terminology:"
"""`source` of rows made from official labels starts with this; LLM rows say `<backend>:<model>`."""
CODIESP_SOURCE = "codiesp-train"
"""`source` of the CodiEsp training mentions; translated rows say `apertium:<pair><-<origin source>`."""
TRANSLATION_PREFIX = "apertium:"
KINDS: tuple[str, ...] = ("name", "query")


@dataclass
class Pair:
    """One (mention, code) pair; `hard_negatives` are codes a retriever could confuse with `code`."""

    query: str
    code: str
    language: str
    source: str
    hard_negatives: list[str] = field(default_factory=list)
    kind: str = ""
    """`name` (an official label or its translation) or `query` (clinical writing); default from `source`."""
    context: str | None = None
    """The sentence around a mention in its document (CodiEsp rows), if kept."""

    def __post_init__(self) -> None:
        if not self.kind:
            self.kind = "name" if self.is_terminology else "query"

    @property
    def category(self) -> str:
        """The 3-character category (the split unit)."""
        return self.code.replace(".", "")[:3]

    @property
    def is_terminology(self) -> bool:
        """Whether the row is an official label rather than an LLM mention."""
        return self.source.startswith(TERMINOLOGY_PREFIX)

    @property
    def is_llm(self) -> bool:
        """Whether a language model wrote the row (not a label, a CodiEsp mention or a translation)."""
        return not (self.is_terminology or self.source == CODIESP_SOURCE or self.source.startswith(TRANSLATION_PREFIX))

    @property
    def language_fixed(self) -> bool:
        """Whether the source fixes the row's language (official labels, real Spanish CodiEsp text)."""
        return self.is_terminology or self.source == CODIESP_SOURCE

    def record(self) -> dict[str, object]:
        """The row as the dataset stores it."""
        return {
            "query": self.query,
            "code": self.code,
            "language": self.language,
            "source": self.source,
            "category": self.category,
            "hard_negatives": list(self.hard_negatives),
            "kind": self.kind,
            "context": self.context,
        }


@functools.lru_cache(maxsize=500_000)
def normalize_text(text: str) -> str:
    """Casefolded, accents kept, punctuation and spacing collapsed: `"Asma, NOS."` → `"asma nos"`."""
    text = unicodedata.normalize("NFC", text).casefold()
    return " ".join(re.findall(r"\w+", text))
