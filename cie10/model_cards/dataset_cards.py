"""Dataset cards of a release: `<org>/cie10-synth` (from the generator's folder) and `<org>/cie10-codes`.

Every number comes from the data: per-language counts from the parquet files, the curation report from
`generation_report.json`, coverage and the join report from the catalogue, sources and licenses from
`cie10.catalog_sources`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from cie10 import LANGUAGE_NAMES, LANGUAGES
from cie10.catalog import LABEL_LANGUAGES, MISSING_SOURCES, Catalog
from cie10.catalog_sources import SOURCE_LICENSES, package_version
from cie10.errors import Cie10Error
from cie10.generation.dataset import language_creators, source_attributions, sources_paragraphs
from cie10.model_cards.render import bullet_list, cell, render
from cie10.model_cards.repos import ReleaseRepos

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
THIN_SHARE = 0.25
"""A language with fewer training rows than this share of the best-covered one is called thin on the cards."""
REPORT_FILE = "generation_report.json"


class DatasetFolderError(Cie10Error):
    """A dataset folder is not what `cie10 generate` writes."""


@dataclass
class SynthData:
    """What the cards say about the synthetic dataset: rows per language and split, the generation report."""

    folder: Path
    counts: dict[str, dict[str, int]]
    """language → split → rows."""
    report: dict[str, Any] = field(default_factory=dict)
    configs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return sorted(self.counts)

    @property
    def total(self) -> int:
        return sum(sum(splits.values()) for splits in self.counts.values())

    @property
    def config(self) -> dict[str, Any]:
        """The generator's settings (`GenerationConfig.to_dict()`)."""
        return self.report.get("config") or {}

    def rows(self, language: str, split: str | None = None) -> int:
        """Rows of a language (in one split, or all)."""
        splits = self.counts.get(language, {})
        return splits.get(split, 0) if split else sum(splits.values())

    def counts_table(self) -> str:
        """Markdown: language x split, with totals."""
        lines = ["| language | " + " | ".join(SPLITS) + " | total |", "|---|" + "---:|" * (len(SPLITS) + 1)]
        for language in self.languages:
            row = [self.rows(language, split) for split in SPLITS]
            lines.append(f"| {language} | " + " | ".join(f"{n:,}" for n in row) + f" | {sum(row):,} |")
        totals = [sum(self.rows(language, split) for language in self.languages) for split in SPLITS]
        lines.append("| **all** | " + " | ".join(f"{n:,}" for n in totals) + f" | {sum(totals):,} |")
        return "\n".join(lines)

    def source_table(self) -> str:
        """Markdown: rows per language x source (and kind) and split, from the report (empty for older reports)."""
        from cie10.generation.dataset import source_table

        rows = self.report.get("counts_by_source") or []
        return source_table(rows) if rows else ""

    def thin_languages(self, expected: tuple[str, ...] = LANGUAGES) -> list[str]:
        """One sentence per query language with no or few training rows (the cards' limitations)."""
        from cie10.generation.terminology import NO_TERMINOLOGY

        train = {language: self.rows(language, "train") for language in self.languages}
        best = max(train.values(), default=0)
        leader = max(train, key=lambda language: train[language]) if train else None
        notes = []
        for language in expected:
            name = LANGUAGE_NAMES.get(language, language)
            rows = train.get(language, 0)
            if rows == 0:
                old_default = ["terminology"] if self.config.get("backend") == "terminology" else []
                why = NO_TERMINOLOGY.get(language) if "terminology" in self.config.get("sources", old_default) else None
                notes.append(
                    f"{name} (`{language}`): no training rows" + (f" ({why})" if why else "")
                    + "; queries in it rely on the base model's cross-lingual transfer"
                )  # fmt: skip
            elif best and rows < THIN_SHARE * best:
                notes.append(
                    f"{name} (`{language}`): only {rows:,} training rows, {rows / best:.0%} of {leader}'s {best:,}"
                )
        return notes


def read_synth(folder: Path) -> SynthData:
    """Counts, configs and report of a `cie10 generate` folder (`data/<language>/<split>.parquet`)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = sorted(folder.glob("data/*/*.parquet"))
    if not folder.is_dir() or not files:
        raise DatasetFolderError(
            f"{folder} is not a synthetic dataset folder (no data/<language>/<split>.parquet): "
            "make it with `cie10 generate` or pass --synth"
        )
    if not (folder / REPORT_FILE).is_file():
        raise DatasetFolderError(f"{folder} has no {REPORT_FILE}: the card needs the generator's curation report")
    counts: dict[str, dict[str, int]] = {}
    for file in files:
        counts.setdefault(file.parent.name, {})[file.stem] = pq.read_metadata(file).num_rows
    report = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    configs: list[dict[str, Any]] = []
    if (folder / "README.md").is_file():
        configs = list(DatasetCard.load(folder / "README.md").data.to_dict().get("configs") or [])
    return SynthData(folder, counts, report, configs or _configs(counts))


def _configs(counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """`all` (the default) then one config per language, as the generator declares them."""
    present = [split for split in SPLITS if any(split in splits for splits in counts.values())]
    configs: list[dict[str, Any]] = [
        {
            "config_name": "all",
            "default": True,
            "data_files": [{"split": split, "path": f"data/*/{split}.parquet"} for split in present],
        }
    ]
    for language in sorted(counts):
        configs.append(
            {
                "config_name": language,
                "data_files": [
                    {"split": split, "path": f"data/{language}/{split}.parquet"}
                    for split in SPLITS
                    if split in counts[language]
                ],
            }
        )
    return configs


def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M"


def _sources(extra: list[str] | None = None) -> str:
    lines = [f"`{name}` {package_version(name)}: {terms}" for name, terms in SOURCE_LICENSES.items()]
    return bullet_list([*lines, *(extra or [])])


def _curation(report: dict[str, Any]) -> tuple[str, str]:
    """(summary line, table of step / reason / dropped / example) from the report's `curation` block."""
    curation = report.get("curation") or {}
    examples = curation.get("examples") or {}
    lines = ["| step | what it drops | reason | dropped | example |", "|---|---|---|---:|---|"]
    for step in curation.get("steps") or []:
        for reason, count in (step.get("reasons") or {}).items():
            example = (examples.get(f"{step['step']}: {reason}") or [{}])[0].get("text", "")
            lines.append(
                f"| {step['step']} | {cell(step.get('description', ''), 90)} | {cell(reason)} | {count:,} | "
                f"{cell(example)} |"
            )
    if len(lines) == 2:
        lines.append("| - | - | nothing dropped | 0 | |")
    summary = (
        f"{curation.get('input_rows', 0):,} candidate rows in, {curation.get('output_rows', 0):,} kept. Each step "
        "drops rows for a named reason:"
    )
    return summary, "\n".join(lines)


def _run_summary(report: dict[str, Any]) -> str:
    run = report.get("run")
    if not run:
        return ""
    usage = run.get("usage") or {}
    return (
        f"Language-model run: {run.get('prompts', 0):,} prompts ({run.get('cached', 0):,} from the cache), "
        f"{run.get('requests', 0):,} requests, {run.get('retries', 0)} retries, failures: "
        f"{run.get('failed') or 'none'}; tokens {usage.get('prompt_tokens', 0):,} in, "
        f"{usage.get('output_tokens', 0):,} out, {usage.get('thoughts_tokens', 0):,} thinking; "
        f"cost about ${run.get('cost_usd', 0):.2f}."
    )


def build_synth_card(synth: SynthData, repos: ReleaseRepos, *, catalog_version: str, citation: str) -> DatasetCard:
    """The card of `<org>/cie10-synth` at this release."""
    config = synth.config
    backend = config.get("backend", "terminology")
    is_llm = backend != "terminology"
    scope = config.get("scope") or ("billable" if is_llm else "quickstart")
    data = DatasetCardData(
        language=synth.languages,
        license="other",
        license_name="mixed-sources",
        task_categories=["sentence-similarity", "text-retrieval"],
        tags=["icd-10", "icd-10-cm", "cie-10", "clinical-coding", "medical", "synthetic"],
        pretty_name="Multilingual clinical mentions of ICD-10-CM codes",
        size_categories=[_size_category(synth.total)],
        annotations_creators=["machine-generated"],
        language_creators=language_creators(config),
        multilinguality=["multilingual"],
        source_datasets=[repos.codes.repo_id],
        configs=synth.configs,
    )
    limits = [
        "Apart from the CodiEsp training mentions, rows are official labels, machine translations or LLM mentions, "
        "not real clinical notes: scores on real text (CodiEsp dev) are lower.",
        "Splits are by 3-character category: test codes are unseen in training (a zero-shot measure per category).",
        *synth.thin_languages(),
    ]
    if is_llm:
        limits.append("Language-model output may hold clinical errors that rule-based checks cannot see.")
    extra_sources = [f"mentions written by `{backend}:{config.get('model')}`: the provider's terms for generated "
                     "output apply"] if is_llm else []  # fmt: skip
    extra_sources += source_attributions(config)
    if "translate" in (config.get("sources") or []):
        limits.append(
            "Translated rows are machine translations (Apertium, rule-based): Spanish words it does not know stay "
            "Spanish, and its French and Italian are rougher than its Catalan and Portuguese."
        )
    summary, table = _curation(synth.report)
    curation = synth.report.get("curation") or {}
    return render(
        DatasetCard,
        data,
        "synth_dataset.md",
        repo_name=repos.synth.repo_id.split("/")[-1],
        repo_id=repos.synth.repo_id,
        version=repos.version,
        total=synth.total,
        language_names=", ".join(f"{LANGUAGE_NAMES.get(lang, lang)} (`{lang}`)" for lang in synth.languages),
        release_table=repos.table(current="synth"),
        counts_table=synth.counts_table(),
        source_table=synth.source_table(),
        offline_sources=", ".join(f"`{name}`" for name in config.get("sources") or []),
        sources_paragraphs=sources_paragraphs(config) if "sources" in config else [],
        is_llm=is_llm,
        backend=backend,
        model=config.get("model"),
        template_version=synth.report.get("template_version") or config.get("prompt_template"),
        max_siblings=config.get("max_siblings"),
        mentions_per_code=config.get("mentions_per_code"),
        scope=scope,
        budget_pairs=config.get("budget_pairs"),
        seed=config.get("seed", "?"),
        catalog_version=synth.report.get("catalog_version") or catalog_version,
        codes_url=repos.codes.url(repos.version),
        run_summary=_run_summary(synth.report),
        curation_summary=summary,
        curation_table=table,
        skipped=bullet_list([f"{reason}: {count:,}" for reason, count in (curation.get("skipped") or {}).items()]),
        negatives_removed=bullet_list(
            [f"{reason}: {count:,}" for reason, count in (curation.get("hard_negatives_removed") or {}).items()]
        ),
        notes=bullet_list(list(curation.get("notes") or [])),
        limits=bullet_list(limits),
        sources=_sources(extra_sources),
        citation=citation,
    )


_COVERAGE: dict[str, list[dict[str, object]]] = {}


def _coverage(catalog: Catalog) -> list[dict[str, object]]:
    """`catalog.coverage()` (several seconds over 98k codes), once per catalogue version in a process."""
    if catalog.version not in _COVERAGE:
        _COVERAGE[catalog.version] = catalog.coverage()
    return _COVERAGE[catalog.version]


def build_codes_card(catalog: Catalog, rows: int, repos: ReleaseRepos, *, citation: str) -> DatasetCard:
    """The card of `<org>/cie10-codes` at this release (`rows`: rows of `data/codes.parquet`)."""
    languages = [language for language in LABEL_LANGUAGES if language not in MISSING_SOURCES]
    data = DatasetCardData(
        language=languages,
        license="other",
        license_name="mixed-sources",
        task_categories=["text-retrieval"],
        tags=["icd-10", "icd-10-cm", "cie-10", "clinical-coding", "medical"],
        pretty_name="ICD-10-CM 2026 code catalogue with multilingual labels",
        size_categories=[_size_category(rows)],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/codes.parquet"}]}],
    )
    coverage = [
        "| language | codes with own label | billable with own label | billable with own or inherited | sources |",
        "|---|---:|---:|---:|---|",
    ]
    for row in _coverage(catalog):
        coverage.append(
            f"| {row['language']} | {row['codes_with_own_label']:,} | {row['billable_with_own_label']:,} | "
            f"{row['billable_with_inherited_or_own']:,} / {row['billable_total']:,} | "
            f"{', '.join(row['sources']) or cell(row['note'])} |"
        )
    report = catalog.join_report
    join = ["| language/source | joined | rejected: titles disagree | rejected: V00-Y99 4th char | not in CM |"]
    join.append("|---|---:|---:|---:|---:|")
    for key in sorted(set(report.accepted) | set(report.rejected_meaning)):
        join.append(
            f"| {key} | {report.accepted[key]:,} | {report.rejected_meaning[key]:,} | "
            f"{report.rejected_v_y_4char[key]:,} | {report.not_in_cm[key]:,} |"
        )
    return render(
        DatasetCard,
        data,
        "codes_dataset.md",
        repo_name=repos.codes.repo_id.split("/")[-1],
        repo_id=repos.codes.repo_id,
        version=repos.version,
        catalog_version=catalog.version,
        rows=rows,
        label_languages=", ".join(lang for lang in languages if lang != "en"),
        release_table=repos.table(current="codes"),
        coverage_table="\n".join(coverage),
        join_table="\n".join(join),
        sources=_sources(),
        missing=bullet_list([f"`{language}`: {why}" for language, why in MISSING_SOURCES.items()]),
        citation=citation,
    )
