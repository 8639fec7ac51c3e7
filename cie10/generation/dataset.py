"""The synthetic dataset as a Hub folder: `data/<language>/<split>.parquet`, a card and the run's report.

The card's YAML declares one config per language plus `all` (the default, every language), so both
`load_dataset("<org>/cie10-synth")` and `load_dataset("<org>/cie10-synth", "es")` work, on the real Hub and
the local one. The folder is written in a temporary sibling and renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from cie10 import LANGUAGE_NAMES
from cie10.catalog import Catalog
from cie10.catalog_sources import SOURCE_LICENSES, package_version
from cie10.errors import Cie10Error
from cie10.generation.config import SYNTH_REPO_NAME, GenerationConfig
from cie10.generation.curation import CurationReport
from cie10.generation.llm import RunReport
from cie10.generation.pairs import Pair
from cie10.generation.splits import SPLITS
from cie10.generation.terminology import NO_TERMINOLOGY
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

REPORT_FILE = "generation_report.json"
COLUMNS: tuple[str, ...] = ("query", "code", "language", "source", "category", "hard_negatives", "kind", "context")


def features() -> Any:
    """The column types (fixed, so that every parquet file of every language agrees)."""
    import datasets

    string = datasets.Value("string")
    return datasets.Features(
        {
            "query": string,
            "code": string,
            "language": string,
            "source": string,
            "category": string,
            "hard_negatives": datasets.List(string),
            "kind": string,
            "context": string,
        }
    )


def size_category(rows: int) -> str:
    """The Hub's `size_categories` bucket."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M"


def data_path(language: str, split: str) -> str:
    """Path of one parquet file inside the folder."""
    return f"data/{language}/{split}.parquet"


def _configs(files: dict[str, list[str]]) -> list[dict[str, Any]]:
    """`all` (default, a glob over languages) then one config per language, listing existing splits only."""
    splits_any = [split for split in SPLITS if any(split in present for present in files.values())]
    configs: list[dict[str, Any]] = [
        {
            "config_name": "all",
            "default": True,
            "data_files": [{"split": split, "path": f"data/*/{split}.parquet"} for split in splits_any],
        }
    ]
    for language, present in files.items():
        configs.append(
            {
                "config_name": language,
                "data_files": [{"split": split, "path": data_path(language, split)} for split in present],
            }
        )
    return configs


def _count_table(splits: dict[str, list[Pair]], languages: list[str]) -> str:
    counts = {split: Counter(pair.language for pair in rows) for split, rows in splits.items()}
    lines = ["| language | " + " | ".join(SPLITS) + " | total |", "|---|" + "---|" * (len(SPLITS) + 1)]
    for language in languages:
        row = [counts[split][language] for split in SPLITS]
        lines.append(f"| {language} | " + " | ".join(str(n) for n in row) + f" | {sum(row)} |")
    totals = [sum(counts[split].values()) for split in SPLITS]
    lines.append("| **all** | " + " | ".join(str(n) for n in totals) + f" | {sum(totals)} |")
    return "\n".join(lines)


CODIESP_ATTRIBUTION = (
    "CodiEsp v4 training split (CLEF eHealth 2020), CC BY 4.0: Miranda-Escalada A., Gonzalez-Agirre A., "
    'Armengol-Estapé J., Krallinger M., "Overview of automatic clinical coding: annotations, guidelines, and '
    'solutions for non-English clinical cases at CodiEsp track of CLEF eHealth 2020"; corpus Zenodo 3693570, '
    "gold standard v4 Zenodo 3837305. Rows with source `codiesp-train` (and their translations) derive from it."
)
APERTIUM_ATTRIBUTION = (
    "Apertium (https://www.apertium.org, free/open-source rule-based machine translation, GPL) wrote the rows "
    "with source `apertium:<mode><-<origin>`; they inherit the license of their origin row."
)


def sources_paragraphs(config: dict[str, Any]) -> list[str]:
    """How each offline source made its rows, from the run's settings (`GenerationConfig.to_dict()`)."""
    sources = config.get("sources") or []
    parts = []
    if "terminology" in sources:
        parts.append(
            "`terminology` (names): English rows are the ICD-10-CM inclusion terms of each code (its title is the "
            "retrieval document); other languages are the code's own WHO ICD-10 / CIE-10 titles, never a label "
            "inherited from an ancestor."
        )
    if "codiesp" in sources:
        parts.append(
            "`codiesp` (queries, Spanish): the diagnosis mentions of the CodiEsp v4 *training* split (500 clinical "
            "cases coded by professionals), codes normalised to ICD-10-CM 2026; a code that no longer exists is "
            "dropped and counted (step `source`), one outside the scope too (step `scope`, never remapped). "
            "`context` holds the sentence around the mention. CodiEsp dev is never read for training; the "
            "CodiEsp-dev overlap guard does not apply to these rows (the same phrase in a train and a dev document "
            "is the domain, not a leak)."
        )
    if "translate" in sources:
        parts.append(
            "`translate` (Apertium, offline, batches of phrases): the CodiEsp mentions become queries in "
            f"{', '.join(config.get('translate_languages') or [])}; the catalogue's own Spanish labels become names "
            f"in {', '.join(config.get('translate_names_to') or []) or 'no language'}. A translation with more than "
            f"{config.get('translate_max_unknown', 1)} unknown word(s) (Apertium's `*word`; acronyms and words "
            "with digits do not count)"
            + (
                f", or whose unknown words are {config['translate_unknown_share']:.0%} or more of its words,"
                if config.get("translate_unknown_share") is not None
                else ""
            )
            + " is dropped and counted (step `source`); lingua's language check runs on "
            "every translated row."
        )
    parts.append(
        "Each row is a `name` of its code (an official label or its translation) or a `query` (clinical writing: "
        "CodiEsp mentions, their translations, LLM mentions). Names may train; validation and test are queries "
        "only, and a held-out query whose normalised text equals any name of any code (every label in every "
        "language, English titles, inclusion terms, translated labels) or any training row is dropped "
        "(step `split_leak`)."
    )
    return parts


def language_creators(config: dict[str, Any]) -> list[str]:
    """The Hub's `language_creators`: expert-written (labels, CodiEsp) and/or machine-generated (LLM, Apertium)."""
    sources = config.get("sources") or []
    machine = config.get("backend", "terminology") != "terminology" or "translate" in sources
    expert = bool({"terminology", "codiesp"} & set(sources)) or ("sources" not in config and not machine)
    return [name for name, used in (("expert-generated", expert), ("machine-generated", machine)) if used]


def source_attributions(config: dict[str, Any]) -> list[str]:
    """Attribution lines for the sources the run used (CodiEsp, Apertium)."""
    sources = config.get("sources") or []
    return [
        *([CODIESP_ATTRIBUTION] if "codiesp" in sources else []),
        *([APERTIUM_ATTRIBUTION] if "translate" in sources else []),
    ]


def source_counts(splits: dict[str, list[Pair]]) -> list[dict[str, Any]]:
    """Rows per (language, source, kind) and split, sorted: the card's table and the report's `counts_by_source`."""
    counts: dict[tuple[str, str, str], Counter] = {}
    for split, rows in splits.items():
        for pair in rows:
            counts.setdefault((pair.language, pair.source, pair.kind), Counter())[split] += 1
    return [
        {"language": language, "source": source, "kind": kind, **{split: counts[key][split] for split in SPLITS}}
        for key in sorted(counts)
        for language, source, kind in [key]
    ]


def source_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: language x source (and kind), one column per split."""
    lines = ["| language | source | kind | " + " | ".join(SPLITS) + " |", "|---|---|---|" + "---:|" * len(SPLITS)]
    for row in rows:
        cells = [row["language"], f"`{row['source']}`", row["kind"], *(f"{row.get(split, 0):,}" for split in SPLITS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def usd(amount: float) -> str:
    """`$2.96`, or `$0.0027` below a dollar."""
    return f"${amount:.2f}" if amount >= 1 else f"${amount:.4f}"


def spot_check(
    splits: dict[str, list[Pair]], catalog: Catalog, languages: list[str], seed: int, per_language: int = 5
) -> str:
    """A Markdown table of `per_language` seeded random rows per language (query, code, English title)."""
    rows = [pair for part in splits.values() for pair in part]
    lines = ["| language | query | code | title |", "|---|---|---|---|"]
    for language in languages:
        mine = [pair for pair in rows if pair.language == language]
        for pair in random.Random(f"{seed}-{language}").sample(mine, min(per_language, len(mine))):
            cells = [language, pair.query, pair.code, catalog[pair.code].title]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def card(
    splits: dict[str, list[Pair]],
    files: dict[str, list[str]],
    config: GenerationConfig,
    catalog: Catalog,
    curation: CurationReport,
    run: RunReport | None,
    template_version: str | None,
) -> str:
    """The dataset card: YAML header for the Hub, then how it was made, counts, curation and limits."""
    total = sum(len(rows) for rows in splits.values())
    languages = list(files)
    header = {
        "language": languages,
        "license": "other",
        "license_name": "mixed-sources",
        "task_categories": ["sentence-similarity", "text-retrieval"],
        "tags": ["icd-10", "icd-10-cm", "cie-10", "clinical-coding", "medical", "synthetic"],
        "pretty_name": "Multilingual clinical mentions of ICD-10-CM codes",
        "size_categories": [size_category(total)],
        "annotations_creators": ["machine-generated"],
        "language_creators": language_creators(config.to_dict()),
        "multilinguality": ["multilingual"],
        "source_datasets": [get_settings().repo_id("cie10-codes")],
        "configs": _configs(files),
    }
    if config.is_llm:
        made = (
            f"`{config.backend}` backend, model `{config.model}`, prompt template `{template_version}`: for "
            f"each sampled (code, language) the model saw the code, its English title, its path in the hierarchy, "
            f"its parent and up to {config.max_siblings} sibling codes, and wrote {config.mentions_per_code} "
            "mentions the way clinicians write (abbreviations, lay terms, laterality, episode, severity) that fit "
            "the code and not its siblings, and named the siblings that are plausible but wrong (`hard_negatives`). "
            + (
                f"Codes: {', '.join(config.codes)}, in every language."
                if config.codes
                else f"Codes were sampled from scope `{config.resolved_scope}`, stratified by chapter and language, "
                f"for a budget of {config.budget_pairs} pairs (seed {config.seed})."
            )
        )
    else:
        made = (
            f"No language model: offline sources {', '.join(f'`{s}`' for s in config.sources)}, scope "
            f"`{config.resolved_scope}`. `hard_negatives` are the code's siblings."
        )
    made += "\n\n" + "\n\n".join(sources_paragraphs(config.to_dict()))
    limits = [
        "Apart from the CodiEsp training mentions, rows are official labels, machine translations or LLM "
        "mentions, not real clinical notes; measure on real data (CodiEsp dev, reported on all and unseen mentions).",
        "Splits are by 3-character category: test codes are unseen in train, names included (a zero-shot measure "
        "per category).",
        "Language identification skips mentions shorter than "
        f"{config.langid_min_words} words (clinical abbreviations are shared across languages).",
    ]
    translated = set(config.translate_names_to) if "translate" in config.sources else set()
    for language, why in NO_TERMINOLOGY.items():
        if language in config.languages and language not in translated:
            limits.append(f"`{language}`: {why}.")
    if "translate" in config.sources:
        limits.append(
            "Translated rows are machine translations (Apertium, rule-based): Spanish words it does not know stay "
            "Spanish, and its French and Italian are rougher than its Catalan and Portuguese."
        )
    if config.is_llm:
        limits.append("LLM output may hold clinical errors that rule-based checks cannot see; spot-check it.")
    run_section = ""
    if run is not None:
        run_section = (
            "\n## Run\n\n"
            f"{run.prompts} prompts: {run.cached} from the cache, {run.completed} answered, {run.requests} requests "
            f"({run.retries} retries), failures: {dict(run.failed) or 'none'}. Tokens: "
            f"{run.usage.prompt_tokens} in, {run.usage.output_tokens} out, {run.usage.thoughts_tokens} thinking; "
            f"cost of this run about {usd(run.cost_usd)} (estimated before it: {usd(run.estimated_cost_usd)}).\n"
        )
    skipped = "\n".join(f"- {reason}: {count}" for reason, count in curation.skipped.items()) or "- none"
    negatives = (
        "\n".join(f"- {reason}: {count}" for reason, count in curation.hard_negatives_removed.items()) or "- none"
    )
    notes = "\n".join(f"- {note}" for note in curation.notes) or "- none"
    sources = "\n".join(
        [f"- `{name}` {package_version(name)}: {terms}" for name, terms in SOURCE_LICENSES.items()]
        + [f"- {line}" for line in source_attributions(config.to_dict())]
    )
    language_names = ", ".join(f"{LANGUAGE_NAMES[lang]} (`{lang}`)" for lang in languages)
    repo = get_settings().repo_id(SYNTH_REPO_NAME)
    groups = sum(1 for rows in splits.values() for pair in rows if pair.hard_negatives)
    return f"""---
{yaml.safe_dump(header, sort_keys=False, allow_unicode=True).strip()}
---

# {SYNTH_REPO_NAME}

Clinical mentions paired with ICD-10-CM 2026 codes in {language_names}: {total} rows to train and evaluate
retrievers that map what a clinician writes to the code. The retrieval document of a code is its English
ICD-10-CM title; the queries are the mentions, in any language.

```python
from datasets import load_dataset

pairs = load_dataset("{repo}", "es", revision="v1.0")  # one language; "all" (the default) for every language
```

Columns: `query` (the text), `code`, `language` (ISO 639-1), `source` (`terminology:<label source>`,
`codiesp-train`, `apertium:<mode><-<origin>` or `<backend>:<model>`), `category` (3-character code group, the
split unit), `hard_negatives` (codes a retriever could confuse with `code`: siblings; for LLM rows, the siblings
the model named as plausible but wrong), `kind` (`name` or `query`), `context` (CodiEsp rows: the sentence around
the mention).

## How it was made

{made}

Catalogue: {catalog.version}. Splits: train / validation / test by 3-character category, chapter by chapter
(seed {config.seed}, {config.validation_fraction:.0%} validation, {config.test_fraction:.0%} test), so that
near-identical mentions of a code group never straddle splits.

## Counts

{_count_table(splits, languages)}

Rows per language and source (`kind`: `name` = an official label or its translation, `query` = clinical writing):

{source_table(source_counts(splits))}

Rows with at least one hard negative (reranker groups): {groups}.

## Curation

Each step drops rows for a reason; counts and one example each (`{REPORT_FILE}` has them all).

{curation.markdown()}

Checks not applied:
{skipped}

Hard negatives removed:
{negatives}

Notes:
{notes}
{run_section}
## Spot inspection

A seeded sample of rows per language, with the title of the code, to read before trusting the rest:

{spot_check(splits, catalog, languages, config.seed)}

## Known limits

{chr(10).join(f"- {limit}" for limit in limits)}

## Sources and licenses

{sources}
"""


def write_synth_dataset(
    splits: dict[str, list[Pair]],
    folder: str | os.PathLike,
    *,
    config: GenerationConfig,
    catalog: Catalog,
    curation: CurationReport,
    run: RunReport | None = None,
    template_version: str | None = None,
) -> Path:
    """Write the parquet files, the card and the report into `folder` (replaced atomically); return it."""
    import datasets
    import pyarrow.parquet as pq

    folder = Path(folder).expanduser()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        files: dict[str, list[str]] = {}
        for language in config.languages:
            for split in SPLITS:
                rows = [pair.record() for pair in splits[split] if pair.language == language]
                if not rows:
                    continue
                path = staging / data_path(language, split)
                path.parent.mkdir(parents=True, exist_ok=True)
                table = datasets.Dataset.from_list(rows, features=features()).data.table  # keeps the HF schema
                pq.write_table(table, path)
                files.setdefault(language, []).append(split)
        if not files:
            raise Cie10Error("no rows survived curation: nothing to write")
        (staging / "README.md").write_text(
            card(splits, files, config, catalog, curation, run, template_version), encoding="utf-8"
        )
        report = {
            "config": config.to_dict(),
            "catalog_version": catalog.version,
            "template_version": template_version,
            "counts": {split: dict(Counter(p.language for p in rows)) for split, rows in splits.items()},
            "counts_by_source": source_counts(splits),
            "curation": curation.to_json(),
            "run": run.to_json() if run is not None else None,
        }
        (staging / REPORT_FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.rename(folder, old)
        os.rename(staging, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote %d rows to %s", sum(len(rows) for rows in splits.values()), folder)
    return folder
