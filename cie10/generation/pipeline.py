"""`generate(config)`: the whole run, top to bottom, as the CLI and the tests call it.

1. load the catalogue; 2. make candidate pairs: for the LLM backends, sample (code, language) tasks, render
prompts, estimate the cost, request what the cache lacks and parse the replies; then the offline `sources`
(official labels, CodiEsp train mentions, Apertium pivots of the Spanish rows); 3. curate; 4. split by category,
held-out splits made of queries only; 5. write the dataset folder (atomically); 6. publish if asked.
"""

from __future__ import annotations

import logging
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from cie10.catalog import Catalog, load_catalog
from cie10.errors import Cie10Error, ConfigError
from cie10.generation.cache import ResponseCache
from cie10.generation.config import SYNTH_REPO_NAME, GenerationConfig
from cie10.generation.curation import CurationReport, curate, pairs_from_reply
from cie10.generation.dataset import write_synth_dataset
from cie10.generation.llm import LLMBackend, RunReport, cost_usd, estimate_usage, run_prompts
from cie10.generation.pairs import Pair, normalize_text
from cie10.generation.prompts import Prompt, Template, load_template, render_prompt
from cie10.generation.sampling import sample_tasks
from cie10.generation.splits import SPLITS, catalog_names, split_pairs
from cie10.generation.terminology import NO_TERMINOLOGY, terminology_pairs
from cie10.settings import get_settings

logger = logging.getLogger(__name__)


@dataclass
class GenerationResult:
    """What a run produced: the folder (None for a dry run or unfinished batch jobs), rows and reports."""

    folder: Path | None
    splits: dict[str, list[Pair]] = field(default_factory=dict)
    curation: CurationReport = field(default_factory=CurationReport)
    run: RunReport | None = None
    complete: bool = True

    def counts(self) -> dict[str, dict[str, int]]:
        """`{split: {language: rows}}`."""
        return {split: dict(sorted(Counter(p.language for p in rows).items())) for split, rows in self.splits.items()}

    def table(self, languages: list[str]) -> str:
        """Rows per split (lines) and language (columns), with totals: what the run prints at the end."""
        counts = self.counts()
        width = max(7, *(len(language) for language in languages))
        lines = ["split      " + "".join(f"{language:>{width}}" for language in [*languages, "total"])]
        for split in SPLITS:
            row = [counts.get(split, {}).get(language, 0) for language in languages]
            lines.append(f"{split:<11}" + "".join(f"{n:>{width},}" for n in [*row, sum(row)]))
        return "\n".join(lines)


def make_backend(config: GenerationConfig) -> LLMBackend:
    """The LLM backend the config names (terminology has none)."""
    if config.backend == "gemini":
        from cie10.generation.gemini import GeminiBackend

        return GeminiBackend(config)
    if config.backend == "openai":
        from cie10.generation.openai_compat import OpenAIBackend

        return OpenAIBackend(config)
    raise ConfigError(f"backend {config.backend!r} does not call an LLM")


def build_prompts(catalog: Catalog, config: GenerationConfig) -> tuple[list[Prompt], Template]:
    """The run's prompts: sampled tasks rendered with the template."""
    template = load_template(config.prompt_template)
    tasks = sample_tasks(catalog, config)
    prompts = [
        render_prompt(catalog, task, template, max_siblings=config.max_siblings, max_negatives=5) for task in tasks
    ]
    return prompts, template


def estimate(config: GenerationConfig, backend: LLMBackend, prompts: list[Prompt], cache: ResponseCache) -> RunReport:
    """A run report before the run: prompts, those cached, estimated tokens and cost of the rest."""
    report = RunReport(backend=backend.name, model=backend.model, prompts=len(prompts))
    todo = [prompt for prompt in prompts if cache.get(backend.name, backend.key(prompt)) is None]
    report.cached = len(prompts) - len(todo)
    report.estimated_usage = estimate_usage(todo, config)
    report.estimated_cost_usd = cost_usd(report.estimated_usage, config)
    return report


def describe_estimate(report: RunReport, config: GenerationConfig) -> str:
    """One line: requests to make, tokens, and the estimated cost at the config's prices."""
    price_in, price_out = config.prices()
    mode = " in batch mode (half price)" if config.backend == "gemini" and config.gemini_batch else ""
    return (
        f"{report.prompts} prompts for {config.backend}:{config.model}{mode}, {report.cached} cached, "
        f"{report.prompts - report.cached} to request: about {report.estimated_usage.prompt_tokens:,} input and "
        f"{report.estimated_usage.output_tokens:,} output tokens, estimated cost ${report.estimated_cost_usd:.2f} "
        f"(at ${price_in:g} / ${price_out:g} per million tokens)"
    )


def dry_run(config: GenerationConfig, out: TextIO = sys.stdout, limit: int = 5) -> RunReport | None:
    """Print the prompts (the first `limit`; 0 for all) and the cost estimate; call nothing, need no key."""
    catalog = load_catalog()
    if not config.is_llm:
        pairs = source_pairs(catalog, config, CurationReport())
        out.write(
            f"terminology backend with sources {', '.join(config.sources)}: no LLM, no cost; {len(pairs)} candidate "
            f"rows before curation ({dict(Counter(p.language for p in pairs))})\n"
        )
        return None
    prompts, template = build_prompts(catalog, config)
    backend = make_backend(config)
    report = estimate(config, backend, prompts, ResponseCache(config.cache_dir))
    shown = prompts if limit <= 0 else prompts[:limit]
    out.write(f"# template {template.version} ({template.path})\n# system\n{prompts[0].system if prompts else ''}\n\n")
    for index, prompt in enumerate(shown, 1):
        out.write(f"# prompt {index}/{len(prompts)}: {prompt.task.code} in {prompt.task.language}\n{prompt.user}\n\n")
    if len(shown) < len(prompts):
        out.write(f"# ... {len(prompts) - len(shown)} more prompts (--dry-run-limit 0 prints them all)\n")
    chapters = Counter(catalog[p.task.code].chapter for p in prompts)
    languages = Counter(p.task.language for p in prompts)
    out.write(f"# prompts per language: {dict(languages)}\n# prompts per chapter: {dict(sorted(chapters.items()))}\n")
    out.write(f"# {describe_estimate(report, config)}\n")
    return report


def _llm_pairs(
    catalog: Catalog, config: GenerationConfig, curation: CurationReport
) -> tuple[list[Pair] | None, RunReport, str]:
    """Request (or read from the cache) every prompt's reply and parse them; None while batch jobs run."""
    prompts, template = build_prompts(catalog, config)
    backend = make_backend(config)
    backend.check()
    cache = ResponseCache(config.cache_dir)
    report = estimate(config, backend, prompts, cache)
    logger.info("estimate: %s", describe_estimate(report, config))
    if config.max_cost_usd is not None and report.estimated_cost_usd > config.max_cost_usd:
        raise ConfigError(
            f"estimated cost ${report.estimated_cost_usd:.2f} is above max_cost_usd ${config.max_cost_usd:.2f}: "
            "lower budget_pairs or raise max_cost_usd"
        )
    report.cached = 0  # counted again by the run itself
    if config.backend == "gemini" and config.gemini_batch:
        from cie10.generation.gemini import run_batch

        finished = run_batch(backend, prompts, cache, report)  # type: ignore[arg-type]
    else:
        run_prompts(backend, prompts, cache, report)
        finished = True
    report.cost_usd = cost_usd(report.usage, config)
    if not finished:
        return None, report, template.version
    pairs: list[Pair] = []
    missing = 0
    for prompt in prompts:
        completion = cache.get(backend.name, backend.key(prompt))
        if completion is None:
            missing += 1
            continue
        pairs.extend(pairs_from_reply(prompt, completion, backend.source, catalog, curation))
    if missing:
        curation.notes.append(f"{missing} prompts have no reply (failed: {dict(report.failed)}); rerun to retry them")
        logger.warning("%d prompts have no reply; rerunning the same command asks for them only", missing)
    logger.info("%s: %s", backend.name, report.to_json())
    return pairs, report, template.version


def source_pairs(catalog: Catalog, config: GenerationConfig, curation: CurationReport) -> list[Pair]:
    """Candidate rows of the offline sources, in the run's scope and languages (see `config.sources`).

    `translate` pivots the CodiEsp mentions of the run (when `codiesp` is a source) and the catalogue's own
    Spanish labels; without Apertium it logs how to install it and adds nothing.
    """
    entries = catalog.select(config.resolved_scope)
    by_source: dict[str, list[Pair]] = {}
    if "terminology" in config.sources:
        by_source["terminology"] = terminology_pairs(
            catalog, entries, config.languages, max_hard_negatives=config.max_hard_negatives
        )
        translated_names = set(config.translate_names_to) if "translate" in config.sources else set()
        for language, why in NO_TERMINOLOGY.items():
            if language in config.languages:
                extra = " (its names here are Apertium translations)" if language in translated_names else ""
                curation.notes.append(f"{language}: {why}{extra}")
    codiesp: list[Pair] = []
    if "codiesp" in config.sources:
        from cie10.generation.codiesp_source import codiesp_pairs

        codiesp = codiesp_pairs(
            catalog,
            entries,
            curation,
            root=config.codiesp_dir,
            context=config.codiesp_context,
            max_hard_negatives=config.max_hard_negatives,
        )
        if "es" in config.languages:
            by_source["codiesp"] = codiesp
    if "translate" in config.sources:
        from cie10.generation.translate import ApertiumTranslator, translation_pairs

        translator = ApertiumTranslator(
            config.translation_cache_dir, config.translate_batch_size, show_progress_bar=config.show_progress_bar
        )
        by_source["translate"] = translation_pairs(
            codiesp,
            catalog,
            entries,
            languages=[language for language in config.translate_languages if language in config.languages],
            names_to=[language for language in config.translate_names_to if language in config.languages],
            translator=translator,
            report=curation,
            max_unknown=config.translate_max_unknown,
            unknown_share=config.translate_unknown_share,
            max_hard_negatives=config.max_hard_negatives,
        )
    pairs: list[Pair] = []
    for source, rows in by_source.items():
        if config.max_rows_per_source is not None and len(rows) > config.max_rows_per_source:
            rows = random.Random(f"{config.seed}-{source}").sample(rows, config.max_rows_per_source)
            curation.notes.append(f"{source}: a seeded sample of {config.max_rows_per_source} rows")
        logger.info("%s: %d candidate rows", source, len(rows))
        pairs.extend(rows)
    return pairs


def generate(config: GenerationConfig, *, catalog: Catalog | None = None) -> GenerationResult:
    """Build the dataset folder `config.output_dir` from the config's backend and sources; see the module docstring."""
    catalog = catalog or load_catalog()
    curation = CurationReport()
    run: RunReport | None = None
    template_version: str | None = None
    pairs: list[Pair] = []
    if config.is_llm:
        llm_pairs, run, template_version = _llm_pairs(catalog, config, curation)
        if llm_pairs is None:
            return GenerationResult(None, run=run, complete=False)
        pairs.extend(llm_pairs)
    pairs.extend(source_pairs(catalog, config, curation))
    names = catalog_names(catalog) | {normalize_text(pair.query) for pair in pairs if pair.kind == "name"}
    rows, curation = curate(pairs, catalog, config, curation)
    splits = split_pairs(
        rows,
        catalog,
        validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
        report=curation,
        names=names,
    )
    if not any(splits.values()):
        raise Cie10Error("no rows survived curation: nothing to write (see the curation report in the log)")
    folder = write_synth_dataset(
        splits,
        config.output_dir,
        config=config,
        catalog=catalog,
        curation=curation,
        run=run,
        template_version=template_version,
    )
    result = GenerationResult(folder, splits, curation, run)
    logger.info("rows per split and language:\n%s", result.table(config.languages))
    return result


def publish(folder: str | Path, *, version: str | None = None, target: str = "local") -> str:
    """Publish a dataset folder as `<org>/cie10-synth` (tagged `version`); returns the commit sha."""
    from cie10.hub import publish_folder

    repo_id = get_settings().repo_id(SYNTH_REPO_NAME)
    sha = publish_folder(Path(folder), repo_id, "dataset", version=version, target=target)  # type: ignore[arg-type]
    logger.info("published %s at %s (%s)", repo_id, version or "main", sha[:10])
    return sha
