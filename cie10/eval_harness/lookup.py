"""The lookup baseline: a query's code is the most frequent code of the identical training mentions.

A retriever must beat it on CodiEsp dev: looking a dev mention up verbatim (normalised: casefolded, punctuation
and spacing collapsed) among the CodiEsp *train* DIAGNOSTICO mentions finds most of them. A query seen in
training ranks the codes of its identical mentions by how often they were given (the first is the most
frequent; ties by code); an unseen query ranks nothing. Train codes outside the searched codes are left out.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cie10.catalog import Catalog
from cie10.eval_harness.data import EvaluationInputError
from cie10.eval_harness.systems import Ranking
from cie10.generation.pairs import normalize_text

logger = logging.getLogger(__name__)

LOOKUP_BASELINE = "lookup"


class LookupSystem:
    """Exact (normalised) lookup of a query among coded training mentions."""

    def __init__(
        self,
        name: str,
        mentions: Iterable[tuple[str, str]],
        catalog: Catalog,
        codes: Sequence[str],
        source: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.source = dict(source or {})
        searched = set(codes)
        self.table: dict[str, Counter] = {}
        self.dropped: Counter = Counter()
        for text, code in mentions:
            if code not in catalog:
                self.dropped["not in catalogue"] += 1
                continue
            code = catalog[code].code
            if code not in searched:
                self.dropped["outside the searched codes"] += 1
                continue
            key = normalize_text(text)
            if key:
                self.table.setdefault(key, Counter())[code] += 1
        self.num_mentions = sum(sum(counter.values()) for counter in self.table.values())
        logger.info(
            "lookup: %d training mentions, %d distinct texts (dropped: %s)",
            self.num_mentions,
            len(self.table),
            dict(self.dropped) or "none",
        )

    @classmethod
    def from_codiesp(cls, folder: Path | str, catalog: Catalog, codes: Sequence[str]) -> LookupSystem:
        """The DIAGNOSTICO mentions of a CodiEsp training split folder (e.g. `.../codiesp/train`)."""
        from cie10.eval_harness.codiesp import DIAGNOSIS, read_codiesp  # codiesp imports the runner, which imports us

        split = read_codiesp(folder)
        mentions = [(m.text, m.code) for m in split.mentions if m.kind == DIAGNOSIS and m.text.strip()]
        if not mentions:
            raise EvaluationInputError(f"no {DIAGNOSIS} mention in {folder}: the lookup baseline needs an X file")
        source = {"path": str(split.folder), "split": split.split, "files_sha256": split.files}
        return cls(LOOKUP_BASELINE, mentions, catalog, codes, source)

    def describe(self) -> dict[str, Any]:
        """Where the training mentions came from and how many were kept."""
        return {
            "kind": "lookup",
            "id": LOOKUP_BASELINE,
            "training_mentions": self.source,
            "num_mentions": self.num_mentions,
            "distinct_texts": len(self.table),
            "dropped": dict(self.dropped),
            "rule": "codes of the identical normalised training mentions, most frequent first; nothing otherwise",
        }

    def rank(self, queries: Sequence[str], top_k: int) -> list[Ranking]:
        """Per query: the codes of its identical training mentions by frequency share (empty when unseen)."""
        rankings: list[Ranking] = []
        for query in queries:
            counter = self.table.get(normalize_text(query))
            if not counter:
                rankings.append([])
                continue
            total = sum(counter.values())
            ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:top_k]
            rankings.append([(code, count / total) for code, count in ordered])
        return rankings
