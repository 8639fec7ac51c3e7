"""Training data: the generator's dataset, the retrieval corpus (code titles of a scope) and mined hard negatives.

The dataset (`<org>/cie10-synth`, made by `cie10 generate`) has train/validation/test splits cut by 3-character
category and the columns `query, code, language, source, hard_negatives` (sibling codes), maybe `category`.
The document of a code is its English ICD-10-CM title (`cie10.code_index.document_text`), so a training row is
(mention, title of its code, title of a hard negative). Sentence-transformers feeds columns by order, so the
metadata columns are dropped from what the trainer sees and kept for evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from cie10.catalog import Catalog, CodeEntry
from cie10.code_index import DOCUMENT_PROMPT_NAME, QUERY_PROMPT_NAME, document_text, prompt_name
from cie10.errors import ConfigError

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("query", "code", "language")
SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass
class TrainingData:
    """The dataset's splits (all columns) and where they came from."""

    splits: datasets.DatasetDict
    dataset_id: str
    revision: str
    """The resolved commit sha on the Hub, or a fingerprint of a local folder's content."""

    @property
    def languages(self) -> list[str]:
        """Query languages present in the training split."""
        return sorted(set(self.splits["train"]["language"])) if "train" in self.splits else []

    def provenance(self) -> dict[str, Any]:
        """Dataset id, revision and rows per split and language, for the run summary."""
        rows = {}
        for name, split in self.splits.items():
            counts: dict[str, int] = defaultdict(int)
            for language in split["language"]:
                counts[language] += 1
            rows[name] = dict(sorted(counts.items()))
        return {"id": self.dataset_id, "revision": self.revision, "rows": rows}


# ------------------------------------------------------------------------------------------------ loading
def load_training_data(dataset: str, revision: str | None = None, languages: list[str] | None = None) -> TrainingData:
    """Load the dataset (a local folder or a Hub id through HF_ENDPOINT), keeping `languages` if given."""
    path = Path(dataset).expanduser()
    if path.is_dir():
        splits = _load_local(path)
        resolved = (
            "local-"
            + hashlib.sha256(
                json.dumps({k: v._fingerprint for k, v in splits.items()}, sort_keys=True).encode()
            ).hexdigest()[:16]
        )
    else:
        splits, resolved = _load_hub(dataset, revision, languages)
    first = splits["train"] if "train" in splits else next(iter(splits.values()))
    missing = [column for column in REQUIRED_COLUMNS if column not in first.column_names]
    if missing:
        raise ConfigError(f"{dataset} lacks the column(s) {', '.join(missing)} (expected query, code, language, ...)")
    if languages:
        wanted = set(languages)
        splits = datasets.DatasetDict(
            {name: split.filter(lambda row: row["language"] in wanted) for name, split in splits.items()}
        )
    if "train" not in splits or len(splits["train"]) == 0:
        raise ConfigError(f"{dataset} has no training rows" + (f" in {', '.join(languages)}" if languages else ""))
    logger.info("dataset %s@%s: %s", dataset, resolved[:12], {k: len(v) for k, v in splits.items()})
    return TrainingData(splits, dataset, resolved)


def _load_local(path: Path) -> datasets.DatasetDict:
    if (path / "dataset_dict.json").is_file():
        loaded = datasets.load_from_disk(str(path))
    else:
        loaded = datasets.load_dataset(str(path))
    if isinstance(loaded, datasets.Dataset):
        raise ConfigError(f"{path} holds one split; expected train/validation/test")
    return loaded


def _load_hub(repo_id: str, revision: str | None, languages: list[str] | None) -> tuple[datasets.DatasetDict, str]:
    """The default config, or (a dataset with one config per language) the wanted languages concatenated."""
    from huggingface_hub import HfApi

    from cie10 import hub

    with hub.hub_errors(repo_id, "dataset", revision):
        sha = HfApi(endpoint=hub.endpoint()).dataset_info(repo_id, revision=revision).sha or (revision or "main")
        configs = datasets.get_dataset_config_names(repo_id, revision=sha)
    default = next((name for name in ("default", "all") if name in configs), None)
    if default is not None or len(configs) <= 1:
        name = default or (configs[0] if configs else None)
        return hub.load_dataset(repo_id, revision=sha, name=name), sha
    wanted = [name for name in configs if not languages or name in languages]
    if not wanted:
        raise ConfigError(f"{repo_id} has no config for {', '.join(languages or [])} (configs: {', '.join(configs)})")
    parts = [hub.load_dataset(repo_id, revision=sha, name=name) for name in wanted]
    merged = {
        split: datasets.concatenate_datasets([part[split] for part in parts if split in part])
        for split in SPLITS
        if any(split in part for part in parts)
    }
    return datasets.DatasetDict(merged), sha


# ------------------------------------------------------------------------------------------------ corpus
def corpus_entries(catalog: Catalog, scope: str, chapters: list[str] | None = None) -> list[CodeEntry]:
    """The codes retrieved among: a catalogue scope, optionally restricted to some chapters."""
    entries = catalog.select(scope)
    if chapters:
        wanted = set(chapters)
        entries = [entry for entry in entries if entry.chapter in wanted]
        if not entries:
            raise ConfigError(f"scope {scope!r} has no code in chapter(s) {', '.join(chapters)}")
    return entries


def restrict_to_codes(split: datasets.Dataset, codes: set[str]) -> datasets.Dataset:
    """Rows whose gold code is among `codes` (a mention of a code outside the corpus cannot be retrieved)."""
    kept = split.filter(lambda row: row["code"] in codes)
    if len(kept) < len(split):
        logger.info("kept %d of %d rows whose code is in the corpus", len(kept), len(split))
    return kept


def restrict_to_kinds(split: datasets.Dataset, kinds: list[str] | None) -> datasets.Dataset:
    """Rows of these kinds (`name`: official and translated labels; `query`: clinical mentions); all for None."""
    if not kinds:
        return split
    if "kind" not in split.column_names:
        raise ConfigError(f"train_kinds {kinds} needs a `kind` column, which this dataset lacks")
    kept = split.filter(lambda row: row["kind"] in kinds)
    logger.info("kept %d of %d rows of kind %s", len(kept), len(split), ", ".join(kinds))
    return kept


def cap_name_rows(split: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """Every row not of kind `name`, and at most `limit` `name` rows drawn at random (all rows for None)."""
    if limit is None:
        return split
    if "kind" not in split.column_names:
        raise ConfigError("max_name_rows needs a `kind` column, which this dataset lacks")
    kinds = split["kind"]
    names = [i for i, kind in enumerate(kinds) if kind == "name"]
    others = [i for i, kind in enumerate(kinds) if kind != "name"]
    kept = sorted(others + random.Random(seed).sample(names, min(limit, len(names))))
    logger.info("kept %d of %d name rows and all %d other rows", min(limit, len(names)), len(names), len(others))
    return split.select(kept)


def sample_rows(split: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """At most `limit` rows, drawn without replacement (all rows, shuffled, when `limit` is None)."""
    shuffled = split.shuffle(seed=seed)
    return shuffled if limit is None or limit >= len(split) else shuffled.select(range(limit))


def eval_queries(
    split: datasets.Dataset, languages: list[str], limit: int | None, seed: int
) -> dict[str, tuple[dict[str, str], dict[str, set[str]]]]:
    """Per language: `{qid: mention}` and `{qid: {gold codes}}` (one qid per distinct mention text)."""
    result: dict[str, tuple[dict[str, str], dict[str, set[str]]]] = {}
    for language in languages:
        gold: dict[str, set[str]] = defaultdict(set)
        for row in split:
            if row["language"] == language:
                gold[row["query"]].add(row["code"])
        texts = sorted(gold)
        random.Random(f"{seed}-{language}").shuffle(texts)
        if limit is not None:
            texts = texts[:limit]
        if not texts:
            logger.warning("no held-out query in %s: skipped in the evaluation", language)
            continue
        queries = {f"{language}-{i}": text for i, text in enumerate(texts)}
        result[language] = (queries, {qid: gold[text] for qid, text in queries.items()})
    return result


# ------------------------------------------------------------------------------------------------ negatives
def titled_pairs(split: datasets.Dataset, catalog: Catalog) -> datasets.Dataset:
    """(query, positive): each mention with its code's title; codes unknown to the catalogue are dropped."""
    rows = [(row["query"], row["code"]) for row in split if row["code"] in catalog]
    return datasets.Dataset.from_dict(
        {"query": [query for query, _ in rows], "positive": [document_text(catalog[code]) for _, code in rows]}
    )


def mine_negatives(
    split: datasets.Dataset,
    catalog: Catalog,
    corpus: list[CodeEntry],
    model: Any,
    *,
    num_negatives: int,
    range_max: int,
    relative_margin: float,
    sibling_fallback: bool,
    corpus_embeddings: np.ndarray | None = None,
    batch_size: int = 64,
    seed: int = 42,
    show_progress_bar: bool = True,
) -> datasets.Dataset:
    """(query, positive, negative_1..n) rows: negatives mined by `model` among every title of the corpus.

    `mine_hard_negatives` skips candidates within `relative_margin` of the positive's score (likely false
    negatives: many titles say nearly the same thing) and drops a row it cannot fill; with `sibling_fallback`
    such a row takes titles of the generator's named sibling codes instead. `corpus_embeddings` (rows in
    `corpus` order, by this model) spare encoding the corpus again.
    """
    from sentence_transformers.util import mine_hard_negatives

    pairs = titled_pairs(split, catalog)
    if num_negatives < 1:
        return pairs
    titles = list(dict.fromkeys(document_text(entry) for entry in corpus))
    document_prompt = prompt_name(model, DOCUMENT_PROMPT_NAME)
    with tempfile.TemporaryDirectory(prefix="cie10-mining-") as cache:
        if corpus_embeddings is not None:
            _seed_mining_cache(Path(cache), model, corpus, corpus_embeddings, titles, pairs, document_prompt)
        mined = mine_hard_negatives(
            pairs,
            model,
            anchor_column_name="query",
            positive_column_name="positive",
            corpus=titles,
            range_max=max(range_max, num_negatives + 1),
            relative_margin=relative_margin,
            num_negatives=num_negatives,
            sampling_strategy="top",
            query_prompt_name=prompt_name(model, QUERY_PROMPT_NAME),
            corpus_prompt_name=document_prompt,
            output_format="n-tuple",
            batch_size=batch_size,
            cache_folder=cache,
            verbose=show_progress_bar,
        )
    if not sibling_fallback or len(mined) == len(pairs):
        return mined
    done = set(zip(mined["query"], mined["positive"], strict=True))
    rng = random.Random(seed)
    extra: dict[str, list[str]] = defaultdict(list)
    for row in split:
        if row["code"] not in catalog:
            continue
        positive = document_text(catalog[row["code"]])
        if (row["query"], positive) in done:
            continue
        titles_of = [document_text(catalog[c]) for c in _sibling_codes(row, catalog) if c in catalog]
        titles_of = [title for title in dict.fromkeys(titles_of) if title != positive]
        if len(titles_of) < num_negatives:
            continue
        done.add((row["query"], positive))
        extra["query"].append(row["query"])
        extra["positive"].append(positive)
        for i, title in enumerate(rng.sample(titles_of, num_negatives), start=1):
            extra[f"negative_{i}"].append(title)
    if extra:
        logger.info("sibling negatives for %d rows that mining could not fill", len(extra["query"]))
        mined = datasets.concatenate_datasets([mined, datasets.Dataset.from_dict(dict(extra))])
    return mined


def _seed_mining_cache(
    folder: Path,
    model: Any,
    corpus: list[CodeEntry],
    embeddings: np.ndarray,
    titles: list[str],
    pairs: datasets.Dataset,
    document_prompt: str | None,
) -> None:
    """Put the corpus embeddings where `mine_hard_negatives(cache_folder=...)` looks for them (sentence-transformers
    6.2's file naming); if the naming ever differs, mining simply encodes the corpus itself."""
    mined_corpus = list(dict.fromkeys(titles + list(pairs["positive"])))
    if mined_corpus != titles:
        return
    first_row: dict[str, int] = {}
    for row, entry in enumerate(corpus):
        first_row.setdefault(document_text(entry), row)
    matrix = np.asarray(embeddings, dtype=np.float32)[[first_row[title] for title in titles]]
    model_name = model.model_card_data.base_model or ""
    digest = hashlib.sha256(repr((model_name, None, document_prompt, titles)).encode(), usedforsecurity=False)
    np.save(folder / f"corpus_embeddings_{digest.hexdigest()}.npy", matrix)


def _sibling_codes(row: dict[str, Any], catalog: Catalog) -> list[str]:
    """The generator's named hard negatives, else the code's siblings in the catalogue."""
    named = list(row.get("hard_negatives") or [])
    return named or catalog.siblings(row["code"])


def sibling_codes(row: dict[str, Any], catalog: Catalog) -> list[str]:
    """Codes a retriever could confuse with the row's code (named by the generator, else catalogue siblings)."""
    return [code for code in _sibling_codes(row, catalog) if code in catalog and code != row["code"]]


# ------------------------------------------------------------------------------------------------ caching
def cache_key(**parts: Any) -> str:
    """A short stable hash of what a cached artefact depends on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_cached_dataset(folder: Path, key: str) -> datasets.Dataset | None:
    """A dataset saved by `save_cached_dataset` under the same key, else None."""
    try:
        if json.loads((folder / "cache_key.json").read_text())["key"] != key:
            return None
        return datasets.load_from_disk(str(folder / "data"))
    except (OSError, ValueError, KeyError):
        return None


def save_cached_dataset(dataset: datasets.Dataset, folder: Path, key: str) -> None:
    """Save `dataset` with its key (the key is written last: a half-written cache is never read)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cache_key.json").unlink(missing_ok=True)
    shutil.rmtree(folder / "data", ignore_errors=True)
    dataset.save_to_disk(str(folder / "data"))
    (folder / "cache_key.json").write_text(json.dumps({"key": key}))
