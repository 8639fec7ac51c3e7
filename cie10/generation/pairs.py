"""The row every backend produces and curation filters: a mention (`query`) of a code in a language."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

TERMINOLOGY_PREFIX = "terminology:"
"""`source` of rows made from official labels starts with this; LLM rows say `<backend>:<model>`."""


@dataclass
class Pair:
    """One (mention, code) pair; `hard_negatives` are codes a retriever could confuse with `code`."""

    query: str
    code: str
    language: str
    source: str
    hard_negatives: list[str] = field(default_factory=list)

    @property
    def category(self) -> str:
        """The 3-character category (the split unit)."""
        return self.code.replace(".", "")[:3]

    @property
    def is_terminology(self) -> bool:
        """Whether the row is an official label rather than an LLM mention."""
        return self.source.startswith(TERMINOLOGY_PREFIX)

    def record(self) -> dict[str, object]:
        """The row as the dataset stores it."""
        return {
            "query": self.query,
            "code": self.code,
            "language": self.language,
            "source": self.source,
            "category": self.category,
            "hard_negatives": list(self.hard_negatives),
        }


def normalize_text(text: str) -> str:
    """Casefolded, accents kept, punctuation and spacing collapsed: `"Asma, NOS."` → `"asma nos"`."""
    text = unicodedata.normalize("NFC", text).casefold()
    return " ".join(re.findall(r"\w+", text))
