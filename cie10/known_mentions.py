"""Known mentions: real coded clinical mentions looked up verbatim before the models rank anything.

A query whose normalised text (casefolded, punctuation and spacing collapsed) is a mention that coders already
coded ranks those codes first; the models order them among themselves and rank everything else after them. The
released models hold the CodiEsp train mentions of the dataset they were trained on (every split: they are coded
training data, not measurements), in `code_index/known_mentions.json`, counted per split of that dataset.

Measured on CodiEsp train alone, split by document: 52% of one half's mentions occur verbatim in the other, and for
97.5% of those the other half's codes hold the right one (docs/training.md, "Known mentions"); no retriever comes
close on those mentions. A split of the same dataset that is evaluated (its synthetic test) is held out of the table
(`without_split`): its queries are those very mentions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cie10.catalog import Catalog
from cie10.generation.pairs import CODIESP_SOURCE, normalize_text

logger = logging.getLogger(__name__)

KNOWN_MENTIONS_FILE = "known_mentions.json"
"""Inside `code_index/`."""


@dataclass
class KnownMentions:
    """normalised mention text → split of origin → code → count, and where the mentions came from."""

    counts: dict[str, dict[str, dict[str, int]]]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.counts)

    @classmethod
    def from_splits(
        cls,
        splits: Mapping[str, Iterable[Mapping[str, Any]]],
        catalog: Catalog,
        *,
        source: str = CODIESP_SOURCE,
        meta: dict[str, Any] | None = None,
    ) -> KnownMentions:
        """The rows of `source` (real coded mentions, not translations or names) of every split; codes outside the
        catalogue are dropped."""
        counts: dict[str, dict[str, dict[str, int]]] = {}
        for split, rows in splits.items():
            for row in rows:
                if row.get("source") != source or row.get("code") not in catalog:
                    continue
                key = normalize_text(row.get("query") or "")
                if key:
                    codes = counts.setdefault(key, {}).setdefault(split, {})
                    code = catalog[row["code"]].code
                    codes[code] = codes.get(code, 0) + 1
        described = {**(meta or {}), "source": source, "texts": len(counts)}
        described["mentions"] = sum(n for per_split in counts.values() for c in per_split.values() for n in c.values())
        logger.info("known mentions: %d texts, %d coded mentions of %s", len(counts), described["mentions"], source)
        return cls(counts, described)

    def codes(self, text: str) -> list[tuple[str, int]]:
        """(code, times given) for `text` (normalised), most often given first, then by code; [] when unknown."""
        per_split = self.counts.get(normalize_text(text))
        if not per_split:
            return []
        total: dict[str, int] = {}
        for codes in per_split.values():
            for code, count in codes.items():
                total[code] = total.get(code, 0) + count
        return sorted(total.items(), key=lambda item: (-item[1], item[0]))

    def holds_dataset(self, dataset_id: str | None) -> bool:
        """Whether the mentions came from the dataset `dataset_id` (a Hub id or a local folder)."""
        mine = self.meta.get("dataset")
        return bool(mine and dataset_id) and Path(str(mine)).name == Path(str(dataset_id)).name

    def without_split(self, split: str) -> KnownMentions:
        """The table without the mentions of `split` (to evaluate that split as held out)."""
        counts = {
            text: {name: codes for name, codes in per_split.items() if name != split}
            for text, per_split in self.counts.items()
        }
        counts = {text: per_split for text, per_split in counts.items() if per_split}
        return KnownMentions(counts, {**self.meta, "held_out_split": split, "texts": len(counts)})

    def save(self, folder: Path) -> Path:
        """Write `<folder>/known_mentions.json` (write, then rename)."""
        from cie10.training.summary import write_json_atomic

        return write_json_atomic(Path(folder) / KNOWN_MENTIONS_FILE, {"meta": self.meta, "counts": self.counts})

    @classmethod
    def load(cls, folder: Path) -> KnownMentions | None:
        """The table in `folder` (a `code_index/` folder), or None when it has none."""
        path = Path(folder) / KNOWN_MENTIONS_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["counts"], data.get("meta", {}))


def known_mentions_of(data: Any, catalog: Catalog) -> KnownMentions:
    """The CodiEsp train mentions of every split of a training dataset (`cie10.training.data.TrainingData`)."""
    meta = {"dataset": data.dataset_id, "revision": data.revision, "language": "es", "splits": list(data.splits)}
    return KnownMentions.from_splits(data.splits, catalog, meta=meta)


def add_known_mentions(model_folder: Path, dataset: str, revision: str | None = None) -> KnownMentions:
    """Give the code index of a model folder the known mentions of `dataset` (a Hub id or a folder); the rest of
    the index is left as it is. Returns the table written."""
    from cie10.catalog import load_catalog
    from cie10.code_index import INDEX_DIRNAME
    from cie10.errors import Cie10Error
    from cie10.training.data import load_training_data
    from cie10.training.summary import write_json_atomic

    folder = Path(model_folder) / INDEX_DIRNAME
    if not (folder / "meta.json").is_file():
        raise Cie10Error(f"{model_folder} has no code index ({INDEX_DIRNAME}/meta.json): train or build one first")
    known = known_mentions_of(load_training_data(dataset, revision), load_catalog())
    if not known:
        raise Cie10Error(f"{dataset} holds no {CODIESP_SOURCE} mention: nothing to add")
    known.save(folder)
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["known_mentions"] = known.meta
    write_json_atomic(meta_path, meta)
    logger.info("%s: %d known mention texts added to its code index", model_folder, len(known))
    return known
