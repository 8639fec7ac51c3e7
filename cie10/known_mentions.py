"""Known mentions: real coded clinical mentions looked up verbatim before the models rank anything.

A query whose normalised text (casefolded, punctuation and spacing collapsed) is a mention that coders already
coded ranks those codes first; the models order them among themselves and rank everything else after them. The
released models hold the CodiEsp train mentions of the dataset they were trained on (every split: they are coded
training data, not measurements), in `code_index/known_mentions.json`, counted per split of that dataset.

Measured on CodiEsp train alone, split by document: 52% of one half's mentions occur verbatim in the other, and for
97.5% of those the other half's codes hold the right one (docs/training.md, "Known mentions"); no retriever comes
close on those mentions. A split of the same dataset that is evaluated (its synthetic test) is held out of the table
(`without_split`): its queries are those very mentions.

The table is read from the CodiEsp train folder itself when the dataset was built from it (every coded mention,
with how often each code was given, ambiguous texts included, which curation drops from training pairs); each
mention is counted under the dataset split that holds its code's 3-character category, so holding out a split
holds out its categories. A query that is not verbatim a known mention may still match one loosely (`loose_key`:
accents, articles and prepositions, plurals and word order aside): measured the same way on train halves, that
adds 3.8% of mentions at 91% Acc@1 (docs/training.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cie10.catalog import Catalog
from cie10.generation.pairs import CODIESP_SOURCE, normalize_text

logger = logging.getLogger(__name__)

KNOWN_MENTIONS_FILE = "known_mentions.json"
"""Inside `code_index/`."""
OUTSIDE_DATASET = "outside-dataset"
"""The split of a CodiEsp mention whose code's category is in no split of the dataset."""
LOOSE_STOPWORDS = frozenset(
    {"a", "al", "con", "de", "del", "e", "el", "en", "la", "las", "los", "por", "un", "una", "y"}
)
"""Spanish articles, prepositions and conjunctions a loose match ignores ("sin" and "no" are kept: they negate)."""


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("es") and word[-3] not in "aeiou":
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def loose_key(text: str) -> str:
    """`text` normalised, without accents, articles or prepositions, each word singular, words sorted:
    "Lesiones hepáticas de la mama" and "lesión mama hepática" share one key."""
    stripped = "".join(c for c in unicodedata.normalize("NFD", normalize_text(text)) if unicodedata.category(c) != "Mn")
    return " ".join(sorted(_singular(word) for word in re.findall(r"\w+", stripped) if word not in LOOSE_STOPWORDS))


@dataclass
class KnownMentions:
    """normalised mention text → split of origin → code → count, and where the mentions came from."""

    counts: dict[str, dict[str, dict[str, int]]]
    meta: dict[str, Any] = field(default_factory=dict)
    _loose: dict[str, list[str]] | None = field(default=None, init=False, repr=False, compare=False)

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

    @classmethod
    def from_codiesp(
        cls,
        mentions: Iterable[Any],
        catalog: Catalog,
        split_of_category: Mapping[str, str],
        *,
        meta: dict[str, Any] | None = None,
    ) -> KnownMentions:
        """Every coded CodiEsp train mention (`cie10.generation.codiesp_source.CodiespMention`), counted under the
        split holding its code's category (`OUTSIDE_DATASET` when none does); codes outside the catalogue are
        dropped."""
        counts: dict[str, dict[str, dict[str, int]]] = {}
        for mention in mentions:
            key = normalize_text(mention.text)
            if not key or mention.code not in catalog:
                continue
            code = catalog[mention.code].code
            split = split_of_category.get(code[:3], OUTSIDE_DATASET)
            codes = counts.setdefault(key, {}).setdefault(split, {})
            codes[code] = codes.get(code, 0) + 1
        described = {**(meta or {}), "source": CODIESP_SOURCE, "texts": len(counts)}
        described["mentions"] = sum(n for per_split in counts.values() for c in per_split.values() for n in c.values())
        logger.info("known mentions: %d texts, %d coded CodiEsp train mentions", len(counts), described["mentions"])
        return cls(counts, described)

    def _loose_texts(self) -> dict[str, list[str]]:
        """loose key -> the known texts that share it, built on first use."""
        if self._loose is None:
            self._loose = {}
            for text in self.counts:
                self._loose.setdefault(loose_key(text), []).append(text)
        return self._loose

    def match(self, text: str) -> tuple[str, list[tuple[str, int]]] | None:
        """(the known text matched, [(code, times given)], most often given first, then by code) for `text`:
        verbatim (normalised) first, else loosely (`loose_key`); None when no known mention matches."""
        key = normalize_text(text)
        if not key:
            return None
        loose = loose_key(text)
        matched = [key] if key in self.counts else self._loose_texts().get(loose, []) if loose else []
        if not matched:
            return None
        total: dict[str, int] = {}
        for known in matched:
            for codes in self.counts[known].values():
                for code, count in codes.items():
                    total[code] = total.get(code, 0) + count
        best = max(matched, key=lambda known: sum(n for codes in self.counts[known].values() for n in codes.values()))
        return best, sorted(total.items(), key=lambda item: (-item[1], item[0]))

    def codes(self, text: str) -> list[tuple[str, int]]:
        """(code, times given) of the known mention `text` matches (`match`), most often given first; [] if none."""
        found = self.match(text)
        return found[1] if found else []

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


def split_of_category(categories: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """3-character category -> the split that holds it, from each split's row categories (a category found in
    several splits: the last one named)."""
    return {category: split for split, names in categories.items() for category in names if category}


def known_mentions_of(data: Any, catalog: Catalog, codiesp_dir: Path | None = None) -> KnownMentions:
    """The known mentions of a training dataset (`cie10.training.data.TrainingData`).

    When the dataset holds CodiEsp train rows and `codiesp_dir` holds `train/trainX.tsv`, every coded mention of
    that file (`KnownMentions.from_codiesp`); otherwise the dataset's own CodiEsp rows (`KnownMentions.from_splits`).
    """
    from cie10.generation.codiesp_source import TRAIN_FILE, read_train_mentions

    meta = {"dataset": data.dataset_id, "revision": data.revision, "language": "es", "splits": list(data.splits)}
    from_dataset = KnownMentions.from_splits(data.splits, catalog, meta=meta)
    train_file = Path(codiesp_dir) / TRAIN_FILE if codiesp_dir is not None else None
    if not from_dataset or train_file is None or not train_file.is_file():
        return from_dataset
    meta["from"] = f"CodiEsp {TRAIN_FILE.as_posix()} (sha256 {hashlib.sha256(train_file.read_bytes()).hexdigest()})"
    categories = split_of_category(
        {
            name: split["category"] if "category" in split.column_names else [code[:3] for code in split["code"]]
            for name, split in data.splits.items()
        }
    )
    return KnownMentions.from_codiesp(read_train_mentions(codiesp_dir), catalog, categories, meta=meta)


def add_known_mentions(
    model_folder: Path, dataset: str, revision: str | None = None, codiesp_dir: Path | None = None
) -> KnownMentions:
    """Give the code index of a model folder the known mentions of `dataset` (a Hub id or a folder; read from
    `codiesp_dir` when given, see `known_mentions_of`); the rest of the index is left as it is. Returns the table."""
    from cie10.catalog import load_catalog
    from cie10.code_index import INDEX_DIRNAME
    from cie10.errors import Cie10Error
    from cie10.training.data import load_training_data
    from cie10.training.summary import write_json_atomic

    folder = Path(model_folder) / INDEX_DIRNAME
    if not (folder / "meta.json").is_file():
        raise Cie10Error(f"{model_folder} has no code index ({INDEX_DIRNAME}/meta.json): train or build one first")
    known = known_mentions_of(load_training_data(dataset, revision), load_catalog(), codiesp_dir)
    if not known:
        raise Cie10Error(f"{dataset} holds no {CODIESP_SOURCE} mention: nothing to add")
    known.save(folder)
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["known_mentions"] = known.meta
    write_json_atomic(meta_path, meta)
    logger.info("%s: %d known mention texts added to its code index", model_folder, len(known))
    return known
