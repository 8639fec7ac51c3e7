"""Curation: rule-based checks, language identification, deduplication and evaluation-overlap removal.

Each step drops rows for a named reason and counts them (with a few examples) in a `CurationReport` that is
saved with the dataset. Steps, in order: `reply` (LLM replies that are malformed or empty), `source`
(rows a source could not use: CodiEsp codes missing from ICD-10-CM 2026, translations with unknown words),
`scope` (codes outside the run's catalogue scope), `unknown_code`,
`not_a_mention` (placeholders such as "nan", instructional notes), `length`, `code_string` (the mention
contains a code), `copied_title` (the mention is the English title, i.e. the retrieval document itself, or for
an LLM row the official label it was shown), `language` (lingua disagrees with the target language),
`duplicate` (exact, or one text for unrelated codes), `near_duplicate` (embedding cosine within a code),
`eval_overlap` (the text is an evaluation query), and after splitting `held_out_name` (names of held-out
categories: names never test) and `split_leak` (a held-out query equal to a code name or a training row).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cie10.catalog import Catalog
from cie10.generation.cache import Completion
from cie10.generation.config import GenerationConfig
from cie10.generation.pairs import CODIESP_SOURCE, Pair, normalize_text
from cie10.generation.prompts import MentionsReply, Prompt

logger = logging.getLogger(__name__)

STEPS: tuple[str, ...] = (
    "reply",
    "source",
    "scope",
    "unknown_code",
    "not_a_mention",
    "length",
    "code_string",
    "copied_title",
    "language",
    "duplicate",
    "near_duplicate",
    "eval_overlap",
    "held_out_name",
    "split_leak",
)
STEP_DESCRIPTIONS: dict[str, str] = {
    "reply": "LLM reply malformed (not JSON of the schema), empty or blocked",
    "source": "a source row that cannot be used (CodiEsp code not in ICD-10-CM 2026, translation with unknown words)",
    "scope": "code outside the run's catalogue scope (never remapped to another code)",
    "unknown_code": "code not in the catalogue",
    "not_a_mention": "a placeholder (nan, none, ...) or an instructional note, not a mention",
    "length": "shorter or longer than the length bounds",
    "code_string": "the mention contains an ICD-10 code",
    "copied_title": "the mention is the code's English title (the retrieval document) or the label shown",
    "language": "language identification (lingua) disagrees with the target language",
    "duplicate": "the same text twice for a code, or one text for unrelated codes",
    "near_duplicate": "embedding cosine at or above the threshold to a kept mention of the same code and language",
    "eval_overlap": "the text is a query of an evaluation set",
    "held_out_name": "a name (official or translated label) of a held-out category: held-out splits are queries only",
    "split_leak": "a held-out query equal to a code name or a training row, or a text in two splits",
}
PLACEHOLDERS = frozenset({"nan", "none", "null", "n a", "na", "nos", "unknown", "tbd", "todo", "x", "xx"})
_NOTE = re.compile(
    r"\b(should be coded|be coded|code (?:also|first|to)|use additional|is the testing|this (?:code|category) is|"
    r"these codes|for use as an additional code)\b",
    re.IGNORECASE,
)
_CODE_TOKEN = re.compile(r"(?<![0-9A-Za-z])([A-Za-z][0-9][0-9A-Za-z](?:\.?[0-9A-Za-z]{1,4})?)(?![0-9A-Za-z])")
LINGUA_LANGUAGES: dict[str, str] = {
    "en": "ENGLISH",
    "es": "SPANISH",
    "ca": "CATALAN",
    "it": "ITALIAN",
    "pt": "PORTUGUESE",
    "fr": "FRENCH",
    "de": "GERMAN",
}
"""Languages lingua tells apart: the six query languages, plus German as a decoy (WHO labels have it)."""
EXAMPLES_PER_REASON = 3


@dataclass
class CurationReport:
    """What each step dropped and why, with a few examples; saved as JSON and shown in the card."""

    input_rows: int = 0
    output_rows: int = 0
    dropped: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))
    skipped: Counter = field(default_factory=Counter)
    """Checks not applied, by reason (e.g. language check on short mentions)."""
    hard_negatives_removed: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def drop(self, step: str, reason: str, pair: Pair | None = None, text: str | None = None) -> None:
        """Count one dropped row (or reply) under `step` / `reason`, keeping a few examples."""
        self.dropped[step][reason] += 1
        key = f"{step}: {reason}"
        if len(self.examples[key]) < EXAMPLES_PER_REASON:
            example = {"text": text if text is not None else (pair.query if pair else "")}
            if pair is not None:
                example.update(code=pair.code, language=pair.language)
            self.examples[key].append(example)

    def total(self, step: str) -> int:
        """Rows dropped by a step."""
        return sum(self.dropped.get(step, Counter()).values())

    def to_json(self) -> dict[str, Any]:
        """Plain data, steps in order."""
        return {
            "input_rows": self.input_rows,
            "output_rows": self.output_rows,
            "steps": [
                {
                    "step": step,
                    "description": STEP_DESCRIPTIONS[step],
                    "dropped": self.total(step),
                    "reasons": dict(self.dropped[step].most_common()),
                }
                for step in STEPS
                if step in self.dropped
            ],
            "examples": {key: value for key, value in self.examples.items() if value},
            "skipped": dict(self.skipped),
            "hard_negatives_removed": dict(self.hard_negatives_removed),
            "notes": list(self.notes),
        }

    def markdown(self) -> str:
        """A table of steps and reasons for the dataset card."""
        lines = ["| step | reason | dropped | example |", "|---|---|---|---|"]
        for step in STEPS:
            for reason, count in self.dropped.get(step, Counter()).most_common():
                example = (self.examples.get(f"{step}: {reason}") or [{}])[0].get("text", "")
                example = example.replace("|", "\\|").replace("\n", " ")
                example = example if len(example) <= 70 else example[:67] + "..."
                lines.append(f"| {step} | {reason} | {count} | {example} |")
        if len(lines) == 2:
            lines.append("| - | nothing dropped | 0 | |")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ LLM replies


def pairs_from_reply(
    prompt: Prompt, completion: Completion, source: str, catalog: Catalog, report: CurationReport
) -> list[Pair]:
    """Rows from one LLM reply; a malformed or empty reply is dropped whole under `reply` with its reason."""
    task = prompt.task
    text = completion.text.strip()
    if not text:
        report.drop("reply", f"empty reply ({completion.finish_reason or 'no text'})", text="")
        return []
    try:
        reply = MentionsReply.model_validate_json(_strip_fences(text))
    except ValidationError as error:
        kind = "not JSON" if any(e["type"] == "json_invalid" for e in error.errors()) else "JSON not of the schema"
        report.drop("reply", f"malformed reply: {kind}", text=text[:200])
        return []
    if completion.finish_reason.upper() in ("SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST"):
        report.drop("reply", f"blocked reply ({completion.finish_reason})", text=text[:200])
        return []
    allowed = set(prompt.siblings)
    negatives: list[str] = []
    for negative in reply.hard_negatives:
        code = negative.code.strip()
        if code not in catalog:
            report.hard_negatives_removed["not in the catalogue"] += 1
        elif catalog[code].code not in allowed:
            report.hard_negatives_removed["not a sibling shown in the prompt"] += 1
        elif catalog[code].code not in negatives:
            negatives.append(catalog[code].code)
    return [Pair(mention.strip(), task.code, task.language, source, list(negatives)) for mention in reply.mentions]


def _strip_fences(text: str) -> str:
    """JSON without a Markdown code fence around it (some OpenAI-compatible servers add one)."""
    match = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.DOTALL)
    return match.group(1) if match else text


# ------------------------------------------------------------------------------------------ rule checks


def check_codes(pairs: list[Pair], catalog: Catalog, report: CurationReport, max_hard_negatives: int) -> list[Pair]:
    """Drop rows whose code is unknown; remove unknown, duplicate or self hard negatives."""
    canonical: dict[str, str | None] = {}

    def known(code: str) -> str | None:
        """The catalogue's spelling of `code` (None if unknown), looked up once per distinct string."""
        if code not in canonical:
            canonical[code] = catalog[code].code if code in catalog else None
        return canonical[code]

    kept = []
    for pair in pairs:
        code = known(pair.code)
        if code is None:
            report.drop("unknown_code", "code not in the catalogue", pair)
            continue
        pair.code = code
        negatives: list[str] = []
        for raw in pair.hard_negatives:
            negative = known(raw)
            if negative is None:
                report.hard_negatives_removed["not in the catalogue"] += 1
            elif negative == pair.code:
                report.hard_negatives_removed["the positive code itself"] += 1
            elif negative not in negatives:
                negatives.append(negative)
        pair.hard_negatives = negatives[:max_hard_negatives]
        kept.append(pair)
    return kept


def check_text(pairs: list[Pair], catalog: Catalog, config: GenerationConfig, report: CurationReport) -> list[Pair]:
    """Placeholders and notes, length bounds, code strings, copies of the title (or of the label shown)."""
    kept = []
    for pair in pairs:
        pair.query = " ".join(pair.query.split())
        normalized = normalize_text(pair.query)
        entry = catalog[pair.code]
        if not normalized or normalized in PLACEHOLDERS:
            report.drop("not_a_mention", "placeholder text", pair)
        elif _NOTE.search(pair.query):
            report.drop("not_a_mention", "instructional note", pair)
        elif len(pair.query) < config.min_chars:
            report.drop("length", f"shorter than {config.min_chars} characters", pair)
        elif len(pair.query) > config.max_chars:
            report.drop("length", f"longer than {config.max_chars} characters", pair)
        elif _contains_code(pair.query, pair.code, catalog):
            report.drop("code_string", "contains an ICD-10 code", pair)
        elif normalized == normalize_text(entry.title):
            report.drop("copied_title", "same as the English title (the retrieval document)", pair)
        elif pair.is_llm and any(normalized == normalize_text(label.text) for label in entry.own_labels(pair.language)):
            report.drop("copied_title", "same as the official label shown in the prompt", pair)
        else:
            kept.append(pair)
    return kept


def _contains_code(text: str, code: str, catalog: Catalog) -> bool:
    """The row's own code (with or without its dot), or any dotted catalogue code, appears as a token."""
    forms = {code.upper(), code.replace(".", "").upper()}
    for token in _CODE_TOKEN.findall(text):
        token = token.upper()
        if token in forms or ("." in token and token in catalog):
            return True
    return False


# ------------------------------------------------------------------------------------------ language


@functools.lru_cache(maxsize=1)
def _lingua_detector() -> tuple[Any, dict[Any, str]]:
    """lingua's detector for the query languages (built once: its models load on first use, ~8 s)."""
    from lingua import Language, LanguageDetectorBuilder

    languages = {getattr(Language, name): code for code, name in LINGUA_LANGUAGES.items()}
    return LanguageDetectorBuilder.from_languages(*languages).build(), languages


def check_language(pairs: list[Pair], config: GenerationConfig, report: CurationReport) -> list[Pair]:
    """Drop a mention when lingua gives its target language a confidence below `langid_floor` and prefers another.

    Mentions shorter than `langid_min_words` are not checked (abbreviations such as "HTA" or "IAM" are
    shared across languages and fool any detector), nor official labels unless `langid_terminology`: their
    source fixes their language, and lingua misreads the medical Latin many of them are made of.
    """
    to_check: list[int] = []
    for index, pair in enumerate(pairs):
        if pair.is_terminology and not config.langid_terminology:
            report.skipped["language check: official label"] += 1
        elif pair.language_fixed and not pair.is_terminology:
            report.skipped["language check: real text of a known language (CodiEsp)"] += 1
        elif len(pair.query.split()) < config.langid_min_words:
            report.skipped[f"language check: fewer than {config.langid_min_words} words"] += 1
        else:
            to_check.append(index)
    if not to_check:
        return pairs
    detector, codes = _lingua_detector()
    confidences = detector.compute_language_confidence_values_in_parallel([pairs[i].query for i in to_check])
    rejected: set[int] = set()
    for index, values in zip(to_check, confidences, strict=True):
        pair = pairs[index]
        scores = {codes[value.language]: value.value for value in values}
        top = codes[values[0].language]
        if top != pair.language and scores.get(pair.language, 0.0) < config.langid_floor:
            rejected.add(index)
            report.drop("language", f"{pair.language} mention detected as {top}", pair)
    return [pair for index, pair in enumerate(pairs) if index not in rejected]


# ------------------------------------------------------------------------------------------ duplicates


def check_duplicates(pairs: list[Pair], catalog: Catalog, report: CurationReport) -> list[Pair]:
    """Drop exact repeats within a code; for one text on several codes keep the deepest code when the others
    are its ancestors (a label shared by a category and its `.9` child), else drop them all (ambiguous)."""
    seen: set[tuple[str, str, str]] = set()
    unique: list[Pair] = []
    for pair in pairs:
        key = (normalize_text(pair.query), pair.language, pair.code)
        if key in seen:
            report.drop("duplicate", "same text twice for a code", pair)
            continue
        seen.add(key)
        unique.append(pair)
    codes_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for pair in unique:
        codes_of[(normalize_text(pair.query), pair.language)].add(pair.code)
    keep_code: dict[tuple[str, str], str | None] = {}
    for key, codes in codes_of.items():
        if len(codes) == 1:
            continue
        deepest = max(codes, key=lambda code: (len(catalog.ancestors(code)), code))
        lineage = set(catalog.ancestors(deepest))
        keep_code[key] = deepest if codes - {deepest} <= lineage else None
    kept = []
    for pair in unique:
        key = (normalize_text(pair.query), pair.language)
        if key not in keep_code or keep_code[key] == pair.code:
            kept.append(pair)
        elif keep_code[key] is None:
            report.drop("duplicate", "one text for unrelated codes (ambiguous)", pair)
        else:
            report.drop("duplicate", "one text for a code and its descendant (the descendant kept)", pair)
    return kept


def check_near_duplicates(pairs: list[Pair], config: GenerationConfig, report: CurationReport) -> list[Pair]:
    """Within each (code, language), drop a mention whose cosine to an earlier kept one is >= the threshold.

    Queries only unless `dedup_names`: official labels are distinct by construction, and comparing the tens of
    thousands of names of a full-scope run would dominate its time.

    Only pairs of mentions that are already alike as strings (difflib ratio >= `dedup_prefilter`) are
    compared, so only their texts are encoded: an encoder cosine that high does not occur between texts
    that share little, and encoding every mention would dominate the run's time on a CPU.
    """
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        if pair.kind == "query" or config.dedup_names:
            groups[(pair.code, pair.language)].append(index)
    candidates: dict[int, set[int]] = defaultdict(set)
    for indices in groups.values():
        for later_position, later in enumerate(indices):
            for earlier in indices[:later_position]:
                a, b = pairs[earlier].query.casefold(), pairs[later].query.casefold()
                if SequenceMatcher(None, a, b).ratio() >= config.dedup_prefilter:
                    candidates[later].add(earlier)
    if not candidates:
        return pairs
    involved = set(candidates) | {earlier for earliers in candidates.values() for earlier in earliers}
    texts = sorted({pairs[i].query for i in involved})
    embeddings = encode_texts(texts, config)
    position = {text: row for row, text in enumerate(texts)}
    rejected: set[int] = set()
    for index in sorted(candidates):
        vector = embeddings[position[pairs[index].query]]
        best, best_score = None, -1.0
        for earlier in candidates[index] - rejected:
            score = float(vector @ embeddings[position[pairs[earlier].query]])
            if score > best_score:
                best, best_score = earlier, score
        if best is not None and best_score >= config.dedup_threshold:
            rejected.add(index)
            report.drop(
                "near_duplicate",
                f"cosine >= {config.dedup_threshold} to a kept mention",
                pairs[index],
                text=f"{pairs[index].query} ~ {pairs[best].query} ({best_score:.3f})",
            )
    return [pair for index, pair in enumerate(pairs) if index not in rejected]


def encode_texts(texts: list[str], config: GenerationConfig) -> Any:
    """Unit-normalized query embeddings of `texts` with the dedup encoder (numpy array)."""
    from sentence_transformers import SentenceTransformer

    from cie10.embedded_model import resolve_model
    from cie10.settings import apply_torch_threads

    apply_torch_threads()
    model = SentenceTransformer(resolve_model(config.dedup_model), device="cpu")
    prompt_name = "query" if "query" in (model.prompts or {}) else None
    logger.info("near-duplicates: encoding %d mentions", len(texts))
    return model.encode(
        texts,
        prompt_name=prompt_name,
        batch_size=64,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=config.show_progress_bar,
    )


# ------------------------------------------------------------------------------------------ evaluation sets


def codiesp_dir() -> Path | None:
    """The shared CodiEsp copy (`CIE10_CODIESP_DIR`, else `<repo>/../shared/data/codiesp`), if present."""
    configured = os.environ.get("CIE10_CODIESP_DIR", "").strip()
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data" / "codiesp")
    return next((path for path in candidates if (path / "dev" / "devX.tsv").is_file()), None)


def read_eval_queries(path: str | os.PathLike) -> list[str]:
    """Queries of an evaluation file: CodiEsp `devX.tsv` (diagnosis mentions) or parquet/jsonl/csv with `query`."""
    from cie10.errors import ConfigError

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"evaluation file {file} (exclude_queries_from) does not exist")
    if file.suffix == ".tsv":
        queries = []
        for line in file.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) >= 4 and parts[1] == "DIAGNOSTICO":
                queries.append(parts[3])
        return queries
    import datasets

    kinds = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
    if file.suffix not in kinds:
        raise ConfigError(f"evaluation file {file}: expected .tsv (CodiEsp), .parquet, .jsonl or .csv")
    table = datasets.load_dataset(kinds[file.suffix], data_files=str(file), split="train")
    if "query" not in table.column_names:
        raise ConfigError(f"evaluation file {file} has no `query` column (has: {', '.join(table.column_names)})")
    return [str(query) for query in table["query"]]


def eval_queries(config: GenerationConfig, report: CurationReport, *, codiesp_dev: bool = True) -> set[str]:
    """Normalized queries of every evaluation source the config names (and CodiEsp dev when found and asked)."""
    sources = list(config.exclude_queries_from)
    if codiesp_dev and config.exclude_codiesp and (found := codiesp_dir()) is not None:
        sources.append(str(found / "dev" / "devX.tsv"))
    queries: set[str] = set()
    for source in sources:
        texts = read_eval_queries(source)
        queries.update(normalize_text(text) for text in texts)
        report.notes.append(f"excluded the {len(texts)} queries of {Path(source).name} (evaluation data)")
    return queries


def codiesp_dev_queries(config: GenerationConfig, report: CurationReport) -> set[str]:
    """Normalized CodiEsp dev mentions (when the shared copy is found and `exclude_codiesp`)."""
    found = codiesp_dir() if config.exclude_codiesp else None
    if found is None:
        return set()
    texts = read_eval_queries(found / "dev" / "devX.tsv")
    report.notes.append(
        f"excluded the {len(texts)} queries of devX.tsv (CodiEsp dev, evaluation data) from every row not derived "
        "from CodiEsp train: the same clinical phrase in a train and a dev document is the domain, not a leak"
    )
    return {normalize_text(text) for text in texts}


def from_codiesp_train(pair: Pair) -> bool:
    """Whether a row is a CodiEsp training mention or a translation of one."""
    return pair.source == CODIESP_SOURCE or pair.source.endswith("<-" + CODIESP_SOURCE)


def check_eval_overlap(
    pairs: list[Pair], queries: set[str], report: CurationReport, *, codiesp_dev: set[str] | None = None
) -> list[Pair]:
    """Drop rows whose text is an evaluation query; CodiEsp dev mentions only for rows not from CodiEsp train."""
    if not queries and not codiesp_dev:
        return pairs
    kept = []
    for pair in pairs:
        key = normalize_text(pair.query)
        if key in queries:
            report.drop("eval_overlap", "text is an evaluation query", pair)
        elif codiesp_dev and key in codiesp_dev:
            if from_codiesp_train(pair):
                report.skipped["CodiEsp dev overlap guard: CodiEsp train row (the domain, not a leak)"] += 1
                kept.append(pair)
            else:
                report.drop("eval_overlap", "text is a CodiEsp dev mention", pair)
        else:
            kept.append(pair)
    return kept


# ------------------------------------------------------------------------------------------ all steps


def curate(
    pairs: Iterable[Pair],
    catalog: Catalog,
    config: GenerationConfig,
    report: CurationReport | None = None,
    *,
    exclude: set[str] | None = None,
) -> tuple[list[Pair], CurationReport]:
    """Every row-level step in order; returns the kept rows and the report (split leaks are checked later)."""
    report = report or CurationReport()
    rows = list(pairs)
    report.input_rows += len(rows)
    rows = check_codes(rows, catalog, report, config.max_hard_negatives)
    rows = check_text(rows, catalog, config, report)
    rows = check_language(rows, config, report)
    rows = check_duplicates(rows, catalog, report)
    if config.dedup:
        rows = check_near_duplicates(rows, config, report)
    else:
        report.notes.append("near-duplicate removal by embedding was off (dedup=false)")
    if exclude is not None:
        rows = check_eval_overlap(rows, exclude, report)
    else:
        queries = eval_queries(config, report, codiesp_dev=False)
        rows = check_eval_overlap(rows, queries, report, codiesp_dev=codiesp_dev_queries(config, report))
    report.output_rows = len(rows)
    logger.info("curation: kept %d of %d rows", len(rows), report.input_rows)
    return rows, report
