"""Evaluation sets: queries with gold codes and a language, loaded by Hub id or from a local folder, checked.

A set is anything with the columns `query`, `code` (one code, or a list of codes) and `language`; the synthetic
dataset `<org>/cie10-synth` has them. Gold codes are normalized; those not in the catalogue (old CIE-10-ES codes,
typos) or outside the searched codes are kept, counted, and scored as misses.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cie10.errors import ConfigError
from cie10.eval_harness.metrics import gold_set

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("query", "code", "language")
LANGUAGE_TAGS: dict[str, str] = {
    "en": "eng-Latn",
    "es": "spa-Latn",
    "fr": "fra-Latn",
    "pt": "por-Latn",
    "it": "ita-Latn",
    "de": "deu-Latn",
    "ca": "cat-Latn",
}
"""ISO 639-1 → the ISO 639-3 + script tags mteb writes in `languages`."""


class EvaluationInputError(ConfigError):
    """An evaluation input (dataset, split, column, language, folder) is missing or malformed."""


@dataclass
class EvalSet:
    """Queries with their gold code sets and languages, plus where they came from."""

    queries: list[str]
    gold: list[list[str]]
    languages: list[str]
    ids: list[str]
    source: dict[str, Any] = field(default_factory=dict)
    """`id`, `revision` (resolved commit when known), `config`, `split`, `path` for a local folder."""
    main_score: str = "mrr_at_10"

    def __len__(self) -> int:
        return len(self.queries)

    def language_list(self) -> list[str]:
        """The languages present, sorted."""
        return sorted(set(self.languages))

    def select(self, rows: list[int]) -> EvalSet:
        """A subset of the rows, same source."""
        return EvalSet(
            [self.queries[i] for i in rows],
            [self.gold[i] for i in rows],
            [self.languages[i] for i in rows],
            [self.ids[i] for i in rows],
            dict(self.source),
            self.main_score,
        )

    def filter_languages(self, languages: list[str] | None) -> EvalSet:
        """Only the queries of `languages` (None: all); an absent language is an error naming those present."""
        if not languages:
            return self
        present = self.language_list()
        unknown = [language for language in languages if language not in present]
        if unknown:
            raise EvaluationInputError(
                f"language {', '.join(unknown)} not in {self.describe()}: it has {', '.join(present) or 'none'}"
            )
        wanted = set(languages)
        subset = self.select([i for i, language in enumerate(self.languages) if language in wanted])
        subset.source["languages"] = sorted(wanted)
        return subset

    def describe(self) -> str:
        """`<id> (split test)` for messages."""
        where = self.source.get("id") or self.source.get("path") or "the evaluation set"
        split = self.source.get("split")
        return f"{where} (split {split})" if split else str(where)


def from_records(
    records: list[dict[str, Any]], source: dict[str, Any] | None = None, main_score: str = "mrr_at_10"
) -> EvalSet:
    """An EvalSet from dicts with `query`, `code` (str or list) and `language` (and optional `id`)."""
    source = source or {}
    what = source.get("id") or source.get("path") or "records"
    if not records:
        raise EvaluationInputError(f"{what} (split {source.get('split', '?')}) is empty: nothing to evaluate")
    missing = [column for column in REQUIRED_COLUMNS if column not in records[0]]
    if missing:
        raise EvaluationInputError(
            f"{what} lacks the column(s) {', '.join(missing)} (has: {', '.join(records[0])}); an evaluation set "
            f"needs {', '.join(REQUIRED_COLUMNS)}"
        )
    queries, gold, languages, ids = [], [], [], []
    for row_number, record in enumerate(records):
        query = str(record["query"] or "").strip()
        if not query:
            raise EvaluationInputError(f"{what}: row {row_number} has an empty query")
        language = str(record["language"] or "").strip()
        if not language:
            raise EvaluationInputError(f"{what}: row {row_number} has no language")
        queries.append(query)
        gold.append(sorted(gold_set(record["code"])))
        languages.append(language)
        ids.append(str(record.get("id", row_number)))
    return EvalSet(queries, gold, languages, ids, dict(source), main_score)


def _resolved_revision(repo_id: str, revision: str | None) -> str | None:
    """The commit sha a dataset revision points to (None when the Hub does not say)."""
    try:
        from huggingface_hub import HfApi

        from cie10.hub import endpoint

        return HfApi(endpoint=endpoint()).dataset_info(repo_id, revision=revision).sha
    except Exception as error:  # noqa: BLE001 - provenance is best effort; the load itself already succeeded
        logger.debug("could not resolve the revision of %s: %s", repo_id, error)
        return None


def _split_of(load, split: str, what: str):
    """`load(split)`, with datasets' errors for a missing or empty split made clear."""
    try:
        return load(split)
    except ValueError as error:
        text = str(error)
        if "corresponds to no data" in text:
            raise EvaluationInputError(f"split {split!r} of dataset {what} is empty: nothing to evaluate") from error
        if "Unknown split" in text:
            known = re.search(r"one of (\[.*\])", text)
            raise EvaluationInputError(
                f"split {split!r} not in dataset {what}: it has {known.group(1) if known else 'other splits'}"
            ) from error
        raise


def _load_by_configs(
    name: str, revision: str | None, config: str | None, split: str, languages: list[str] | None, load
):
    """`load(config, split)`; with per-language configs and no default one, the wanted (or all) ones joined."""
    import datasets

    if config is None:
        configs = datasets.get_dataset_config_names(name, revision=revision)
        if len(configs) > 1 and not {"default", "all"} & set(configs):
            chosen = [c for c in configs if not languages or c in languages] or configs
            parts = [_split_of(lambda s, c=c: load(c, s), split, f"{name} (config {c})") for c in chosen]
            return datasets.concatenate_datasets(parts)
        if "all" in configs and "default" not in configs:
            config = "all"
    return _split_of(lambda s: load(config, s), split, name)


def _load_saved(path: Path, split: str):
    """One split of a `save_to_disk` folder (a DatasetDict, or a lone Dataset taken as the split)."""
    import datasets

    if not (path / "dataset_dict.json").exists():
        return datasets.load_from_disk(str(path))
    splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
    if split not in splits:
        raise EvaluationInputError(f"split {split!r} not in dataset {path}: it has {', '.join(splits) or 'none'}")
    state = path / split / "state.json"
    if state.exists() and not json.loads(state.read_text(encoding="utf-8")).get("_data_files"):
        raise EvaluationInputError(f"split {split!r} of dataset {path} is empty: nothing to evaluate")
    return datasets.Dataset.load_from_disk(str(path / split))


def _load_local(path: Path, config: str | None, split: str, languages: list[str] | None):
    import datasets

    if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
        return _load_saved(path, split)
    try:
        return _load_by_configs(
            str(path), None, config, split, languages, lambda c, s: datasets.load_dataset(str(path), c, split=s)
        )
    except (ValueError, FileNotFoundError) as error:
        raise EvaluationInputError(f"cannot read a dataset from {path}: {error}") from error


def _load_hub(
    repo_id: str, revision: str | None, config: str | None, split: str, languages: list[str] | None
) -> tuple[Any, str | None]:
    """(the split, the commit it was read at): the revision is resolved first, so the two agree."""
    from cie10 import hub

    hub.check_revision(repo_id, "dataset", revision)
    sha = _resolved_revision(repo_id, revision)
    pinned = sha or revision
    with hub.hub_errors(repo_id, "dataset", revision):
        table = _load_by_configs(
            repo_id,
            pinned,
            config,
            split,
            languages,
            lambda c, s: hub.load_dataset(repo_id, revision=pinned, name=c, split=s),
        )
    return table, sha


def load_eval_set(
    dataset: str,
    split: str = "test",
    *,
    revision: str | None = None,
    config: str | None = None,
    languages: list[str] | None = None,
) -> EvalSet:
    """Load `split` of a Hub dataset id (at `revision`) or a local folder, check it, keep `languages`."""
    path = Path(dataset).expanduser()
    is_local = path.exists() or dataset.startswith((".", "/", "~"))
    if is_local and not path.is_dir():
        raise EvaluationInputError(f"dataset folder {dataset} does not exist")
    if is_local:
        table, sha = _load_local(path, config, split, languages), None
    else:
        table, sha = _load_hub(dataset, revision, config, split, languages)
    source: dict[str, Any] = {"id": None if is_local else dataset, "split": split, "config": config}
    if is_local:
        source["path"] = str(path.resolve())
        source["revision"] = None
    else:
        source["revision"] = sha
        source["requested_revision"] = revision
    missing = [column for column in REQUIRED_COLUMNS if column not in table.column_names]
    if missing:
        raise EvaluationInputError(
            f"dataset {dataset} (split {split}) lacks the column(s) {', '.join(missing)} "
            f"(has: {', '.join(table.column_names)}); an evaluation set needs {', '.join(REQUIRED_COLUMNS)}"
        )
    if len(table) == 0:
        raise EvaluationInputError(f"split {split!r} of dataset {dataset} is empty: nothing to evaluate")
    columns = [c for c in (*REQUIRED_COLUMNS, "id") if c in table.column_names]
    records = table.select_columns(columns).to_list()
    eval_set = from_records(records, source)
    eval_set = eval_set.filter_languages(languages)
    counts = Counter(eval_set.languages)
    logger.info("evaluation set %s: %d queries (%s)", eval_set.describe(), len(eval_set), dict(sorted(counts.items())))
    return eval_set
