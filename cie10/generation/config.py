"""`GenerationConfig`: every setting of a `cie10 generate` run, from flags or a YAML file (`HfArgumentParser`)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cie10.catalog import SCOPES
from cie10.errors import ConfigError
from cie10.settings import get_settings

QUERY_LANGUAGES: tuple[str, ...] = ("en", "es", "ca", "it", "pt", "fr")
"""Languages a generated mention may be written in."""
BACKENDS: tuple[str, ...] = ("terminology", "gemini", "openai")
SOURCES: tuple[str, ...] = ("terminology", "codiesp", "translate")
"""Offline sources, mixed with the LLM backend's rows: official labels, CodiEsp train mentions, Apertium pivots."""
TRANSLATION_LANGUAGES: tuple[str, ...] = ("ca", "pt", "fr", "it", "en")
"""Languages the `translate` source writes from Spanish rows."""
SYNTH_REPO_NAME = "cie10-synth"
"""The dataset is published as `<org>/cie10-synth`."""

MODEL_PRICES: dict[str, tuple[float, float]] = {
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.0-flash": (0.10, 0.40),
}
"""USD per million input and output tokens (Gemini API list prices, standard tier, when this was written;
batch mode is half). Override with `price_input_per_mtok` / `price_output_per_mtok`."""


def _default_cache_dir() -> str:
    return str(get_settings().home / "llm-cache")


def _default_translation_cache() -> str:
    return str(get_settings().home / "translation-cache")


def _default_output_dir() -> str:
    return str(get_settings().home / "build" / SYNTH_REPO_NAME)


@dataclass
class GenerationConfig:
    """What to generate, with which backend, how to curate it and where to write it."""

    backend: Literal["terminology", "gemini", "openai"] = field(
        default="terminology",
        metadata={"help": "terminology (offline: official labels), gemini (google-genai) or openai (compatible)"},
    )
    sources: list[str] = field(
        default_factory=lambda: list(SOURCES),
        metadata={
            "help": "offline sources mixed with the backend's rows: terminology (official labels), codiesp (CodiEsp "
            "train mentions), translate (Apertium pivots of the Spanish rows); `none` for the backend's rows only"
        },
    )
    model: str = field(
        default="gemini-2.5-flash", metadata={"help": "LLM name (gemini: a Gemini model; openai: the served model)"}
    )
    languages: list[str] = field(
        default_factory=lambda: list(QUERY_LANGUAGES), metadata={"help": "query languages (en es ca it pt fr)"}
    )
    scope: str | None = field(
        default=None,
        metadata={
            "help": "catalogue scope (full, billable, categories, quickstart); default: quickstart for "
            "terminology, billable for the LLM backends"
        },
    )
    codes: list[str] | None = field(
        default=None, metadata={"help": "generate for exactly these codes (LLM backends) instead of sampling"}
    )
    budget_pairs: int = field(
        default=19_500, metadata={"help": "LLM backends: pairs to aim for after curation (terminology: ignored)"}
    )
    mentions_per_code: int = field(default=6, metadata={"help": "mentions asked per (code, language) prompt"})
    oversample: float = field(
        default=1.15, metadata={"help": "prompts for budget_pairs * oversample pairs (curation drops some)"}
    )
    prompt_template: str = field(
        default="mentions-v1", metadata={"help": "prompt template: a name under cie10/generation/prompts or a path"}
    )
    max_siblings: int = field(default=12, metadata={"help": "sibling codes shown in a prompt"})
    max_hard_negatives: int = field(default=10, metadata={"help": "hard negatives kept per row"})
    temperature: float = field(default=0.9, metadata={"help": "LLM sampling temperature"})
    thinking_budget: int | None = field(
        default=0, metadata={"help": "gemini: thinking tokens (0 = off, cheaper; None = the model's default)"}
    )
    concurrency: int = field(default=8, metadata={"help": "LLM requests in flight at once"})
    requests_per_minute: float = field(default=600.0, metadata={"help": "LLM request rate limit (0 = none)"})
    max_retries: int = field(default=6, metadata={"help": "retries of a request on 429, 5xx or a network error"})
    retry_initial_delay: float = field(default=2.0, metadata={"help": "first backoff delay (seconds), doubled"})
    retry_max_delay: float = field(default=60.0, metadata={"help": "longest backoff delay (seconds)"})
    request_timeout: float = field(default=120.0, metadata={"help": "seconds before an LLM request times out"})
    base_url: str | None = field(
        default=None,
        metadata={
            "help": "LLM endpoint: openai: e.g. http://127.0.0.1:8000/v1 (required); gemini: overrides "
            "GOOGLE_GEMINI_BASE_URL"
        },
    )
    api_key_env: str | None = field(
        default=None, metadata={"help": "env variable with the API key (default GEMINI_API_KEY / OPENAI_API_KEY)"}
    )
    gemini_batch: bool = field(
        default=False, metadata={"help": "gemini: use batch mode (half price, asynchronous, resumable by job)"}
    )
    batch_job: list[str] | None = field(
        default=None, metadata={"help": "gemini batch: resume (collect) these job names, e.g. batches/abc123"}
    )
    batch_max_requests: int = field(default=1000, metadata={"help": "gemini batch: requests per job"})
    batch_poll_seconds: float = field(default=30.0, metadata={"help": "gemini batch: seconds between polls"})
    batch_wait: bool = field(
        default=True, metadata={"help": "gemini batch: wait for the jobs (else submit, print ids, stop)"}
    )
    price_input_per_mtok: float | None = field(
        default=None, metadata={"help": "USD per million input tokens (default: MODEL_PRICES, else 0)"}
    )
    price_output_per_mtok: float | None = field(
        default=None, metadata={"help": "USD per million output tokens (default: MODEL_PRICES, else 0)"}
    )
    max_cost_usd: float | None = field(
        default=None, metadata={"help": "refuse to start when the estimated cost is above this"}
    )
    codiesp_dir: str | None = field(
        default=None,
        metadata={
            "help": "CodiEsp folder holding train/trainX.tsv (default: CIE10_CODIESP_DIR, else ../shared/data/codiesp "
            "beside the repo); only train/ is read, dev/ never trains"
        },
    )
    codiesp_context: bool = field(
        default=True, metadata={"help": "keep the sentence around each CodiEsp mention (column `context`)"}
    )
    translate_languages: list[str] = field(
        default_factory=lambda: list(TRANSLATION_LANGUAGES),
        metadata={"help": "translate: languages written from the Spanish mentions (ca pt fr it en)"},
    )
    translate_names_to: list[str] = field(
        default_factory=lambda: ["ca", "it"],
        metadata={
            "help": "translate: languages written from the catalogue's Spanish labels (names); ca and it lack labels"
        },
    )
    translate_max_unknown: int = field(
        default=1,
        metadata={
            "help": "translate: drop a translation with more unknown words than this (Apertium's `*word`; acronyms "
            "and words with digits do not count)"
        },
    )
    translate_unknown_share: float | None = field(
        default=None,
        metadata={
            "help": "translate: also drop a translation whose unknown words are this share of its words or more "
            "(e.g. 1.0: a phrase left wholly in Spanish); off by default (single unknown words are often cognates)"
        },
    )
    translate_batch_size: int = field(default=2000, metadata={"help": "translate: phrases per Apertium process"})
    translation_cache_dir: str = field(
        default_factory=_default_translation_cache,
        metadata={"help": "translate: cache of translations by pair and text (default <CIE10_HOME>/translation-cache)"},
    )
    max_rows_per_source: int | None = field(
        default=None, metadata={"help": "keep at most this many candidate rows per source (seeded sample; None: all)"}
    )
    min_chars: int = field(default=3, metadata={"help": "shortest mention kept"})
    max_chars: int = field(default=250, metadata={"help": "longest mention kept"})
    langid_min_words: int = field(
        default=3, metadata={"help": "language check only for mentions of at least this many words"}
    )
    langid_floor: float = field(
        default=0.05, metadata={"help": "drop a mention whose target-language confidence is below this"}
    )
    langid_terminology: bool = field(
        default=False, metadata={"help": "also language-check official labels (their source fixes the language)"}
    )
    dedup: bool = field(default=True, metadata={"help": "drop near-duplicate mentions by embedding similarity"})
    dedup_names: bool = field(
        default=False, metadata={"help": "also compare names (official and translated labels) for near-duplicates"}
    )
    dedup_model: str = field(default="default", metadata={"help": "encoder for near-duplicates (default: embedded)"})
    dedup_threshold: float = field(
        default=0.985,
        metadata={
            "help": "cosine at or above which two mentions of a code are near-duplicates (e5's cosines run "
            "high: 0.97 still separates 'septic' from 'bacterial endocarditis')"
        },
    )
    dedup_prefilter: float = field(
        default=0.6, metadata={"help": "compare (and encode) only mention pairs with a difflib ratio at least this"}
    )
    exclude_queries_from: list[str] = field(
        default_factory=list,
        metadata={
            "help": "evaluation sets whose queries must not appear (parquet/jsonl/csv with `query`, or a "
            "CodiEsp devX.tsv)"
        },
    )
    exclude_codiesp: bool = field(
        default=True, metadata={"help": "also exclude CodiEsp dev mentions when the shared copy is found"}
    )
    validation_fraction: float = field(default=0.1, metadata={"help": "share of categories in validation"})
    test_fraction: float = field(
        default=0.2,
        metadata={
            "help": "share of categories in test (its queries: 0.2 gives every language at least 200 test queries "
            "from the CodiEsp train mentions at full scope)"
        },
    )
    seed: int = field(default=42, metadata={"help": "seed of sampling and splitting"})
    cache_dir: str = field(
        default_factory=_default_cache_dir, metadata={"help": "LLM response cache (default <CIE10_HOME>/llm-cache)"}
    )
    output_dir: str = field(
        default_factory=_default_output_dir,
        metadata={"help": "dataset folder written (default <CIE10_HOME>/build/cie10-synth)"},
    )
    show_progress_bar: bool = field(default=True, metadata={"help": "tqdm progress bars"})

    def __post_init__(self) -> None:
        self.languages = [language.strip().lower() for language in self.languages if language.strip()]
        unknown = [language for language in self.languages if language not in QUERY_LANGUAGES]
        if unknown or not self.languages:
            raise ConfigError(
                f"unsupported language(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(QUERY_LANGUAGES)}"
            )
        self.sources = [source.strip().lower() for source in self.sources if source.strip()]
        if self.sources == ["none"]:
            self.sources = []
        unknown_sources = [source for source in self.sources if source not in SOURCES]
        if unknown_sources:
            raise ConfigError(
                f"unknown source(s) {', '.join(unknown_sources)}: choose from {', '.join(SOURCES)} (or none)"
            )
        if not self.sources and not self.is_llm:
            raise ConfigError("no rows to make: the terminology backend needs at least one source (see --sources)")
        for name in ("translate_languages", "translate_names_to"):
            values = [language.strip().lower() for language in getattr(self, name) if language.strip()]
            wrong = [language for language in values if language not in TRANSLATION_LANGUAGES]
            if wrong:
                raise ConfigError(f"{name}: cannot translate into {', '.join(wrong)}; choose from "
                                  f"{', '.join(TRANSLATION_LANGUAGES)}")  # fmt: skip
            setattr(self, name, values)
        if self.translate_max_unknown < 0 or self.translate_batch_size < 1:
            raise ConfigError("translate_max_unknown must be at least 0 and translate_batch_size at least 1")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.mentions_per_code < 1 or self.budget_pairs < 1:
            raise ConfigError("mentions_per_code and budget_pairs must be at least 1")
        if not 0 <= self.validation_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise ConfigError("validation_fraction and test_fraction must be in [0, 1)")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ConfigError("validation_fraction + test_fraction must leave rows for train")
        if self.scope is not None and self.scope not in SCOPES:
            raise ConfigError(f"unknown scope {self.scope!r}: choose one of {', '.join(SCOPES)}")
        if self.concurrency < 1:
            raise ConfigError("concurrency must be at least 1")

    @property
    def is_llm(self) -> bool:
        """Whether the backend calls a language model."""
        return self.backend != "terminology"

    @property
    def resolved_scope(self) -> str:
        """The catalogue scope: as given, else quickstart (terminology) or billable (LLM backends)."""
        return self.scope or ("billable" if self.is_llm else "quickstart")

    @property
    def api_key_variable(self) -> str:
        """The environment variable holding the backend's API key."""
        return self.api_key_env or ("GEMINI_API_KEY" if self.backend == "gemini" else "OPENAI_API_KEY")

    def prices(self) -> tuple[float, float]:
        """USD per million (input, output) tokens for the model; batch mode halves them."""
        listed = MODEL_PRICES.get(self.model, (0.0, 0.0)) if self.backend == "gemini" else (0.0, 0.0)
        price_in = self.price_input_per_mtok if self.price_input_per_mtok is not None else listed[0]
        price_out = self.price_output_per_mtok if self.price_output_per_mtok is not None else listed[1]
        factor = 0.5 if self.backend == "gemini" and self.gemini_batch else 1.0
        return price_in * factor, price_out * factor

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (for the run report and the card)."""
        return dataclasses.asdict(self)


CONFIG_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(GenerationConfig))


def build_parser(prog: str = "cie10 generate") -> argparse.ArgumentParser:
    """An `HfArgumentParser` for `GenerationConfig`, plus the run's actions (config file, dry run, publish)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(GenerationConfig, prog=prog, description="Build the synthetic mention dataset.")
    parser.add_argument("--config", default=None, help="YAML file of GenerationConfig fields (flags override it)")
    parser.add_argument("--dry-run", "--dry_run", action="store_true", help="print the prompts and cost only")
    parser.add_argument("--dry-run-limit", "--dry_run_limit", type=int, default=5, help="prompts printed (0: all)")
    parser.add_argument("--publish", action="store_true", help="publish the folder as <org>/cie10-synth")
    parser.add_argument("--version", default=None, help="tag of the published version, e.g. v1.0")
    parser.add_argument("--target", choices=("local", "hub"), default="local", help="where to publish")
    return parser


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The fields of a YAML config file, checked against `GenerationConfig`."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    try:
        values = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {file} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"config file {file} must hold a mapping of GenerationConfig fields")
    unknown = sorted(set(values) - CONFIG_FIELDS)
    if unknown:
        raise ConfigError(f"config file {file}: unknown field(s) {', '.join(unknown)}")
    return values


def parse_args(argv: list[str]) -> tuple[GenerationConfig, argparse.Namespace]:
    """Parse `cie10 generate` flags (and `--config FILE`, which they override) into a config and actions."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    parser = build_parser()
    if known.config:
        parser.set_defaults(**read_yaml(known.config))
    try:
        config, actions = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as error:  # HfArgumentParser's way of saying "unknown arguments"
        raise ConfigError(f"cie10 generate: {error} (see cie10 generate --help)") from error
    return config, actions


def load_config(path: str | os.PathLike | None = None, **overrides: Any) -> GenerationConfig:
    """A config from an optional YAML file with keyword overrides (for Python callers and tests)."""
    values = read_yaml(path) if path is not None else {}
    unknown = sorted(set(overrides) - CONFIG_FIELDS)
    if unknown:
        raise ConfigError(f"unknown GenerationConfig field(s) {', '.join(unknown)}")
    return GenerationConfig(**{**values, **overrides})
