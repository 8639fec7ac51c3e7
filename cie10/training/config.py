"""Training run settings: one dataclass per model kind, read from a YAML file and/or flags (`HfArgumentParser`).

Everything a run does is in its config, and the config is saved beside the run (`models/<run_name>/config.yaml`),
so a run can be repeated or resumed. Presets ship as YAML files next to this module (`quickstart`, `gpu`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from cie10.catalog import SCOPES
from cie10.errors import ConfigError
from cie10.ranges import AT_LEAST_ONE, NOT_NEGATIVE, POSITIVE, SHARE, Range, check_ranges
from cie10.settings import get_settings

SYNTH_REPO_NAME = "cie10-synth"
"""The training dataset (`<org>/cie10-synth`), made by `cie10 generate`."""
BI_ENCODER_REPO_NAME = "cie10-bi"
RERANKER_REPO_NAME = "cie10-rerank"
STUDY_BASE_MODEL = "PlanTL-GOB-ES/bsc-bio-ehr-es"
"""The study's Spanish biomedical base model (needs the real Hub): `--base_model PlanTL-GOB-ES/bsc-bio-ehr-es`."""
PRESETS_DIR = Path(__file__).with_name("presets")

ConfigT = TypeVar("ConfigT", bound="TrainingRunConfig")


@dataclass
class TrainingRunConfig:
    """Settings shared by the bi-encoder and the reranker runs."""

    run_name: str = field(default="", metadata={"help": "run folder name under output_dir (default: the repo name)"})
    base_model: str = field(
        default="default",
        metadata={
            "help": "model id or path to start from; `default` is the embedded multilingual-e5-small "
            f"(offline); with a network e.g. {STUDY_BASE_MODEL}"
        },
    )
    dataset: str = field(
        default="",
        metadata={
            "help": f"training data: a Hub dataset id (default <org>/{SYNTH_REPO_NAME}) or a local folder "
            "(save_to_disk or parquet files) with train/validation/test splits"
        },
    )
    dataset_revision: str | None = field(default=None, metadata={"help": "dataset version (tag, branch or sha)"})
    languages: list[str] | None = field(
        default=None, metadata={"help": "query languages to train and evaluate on (default: all in the data)"}
    )
    scope: str = field(
        default="quickstart",
        metadata={
            "help": "catalogue scope of the retrieval corpus, the hard negatives and the code index: "
            + "; ".join(f"{name}: {text}" for name, text in SCOPES.items())
        },
    )
    chapters: list[str] | None = field(
        default=None,
        metadata={"help": "restrict the corpus (and the data) to these ICD-10-CM chapters, e.g. 9 10 (small runs)"},
    )
    eval_split: str = field(default="validation", metadata={"help": "held-out split evaluated before and after"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use at most this many training rows"})
    train_kinds: list[str] | None = field(
        default=None,
        metadata={
            "help": "train on rows of these kinds only (query: clinical mentions; name: official labels; default: all)"
        },
    )
    max_name_rows: int | None = field(
        default=None,
        metadata={
            "help": "use at most this many `name` rows (official and translated labels, drawn at random) and every "
            "clinical `query` row; max_train_samples then applies to the sum (default: no cap)"
        },
    )
    max_eval_queries: int | None = field(
        default=200, metadata={"help": "held-out queries per language (None: all of them)"}
    )
    output_dir: str = field(default="models", metadata={"help": "runs go to <output_dir>/<run_name>/"})
    num_train_epochs: float = field(default=1.0, metadata={"help": "epochs over the training rows"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many optimizer steps (-1: epochs)"})
    batch_size: int = field(default=32, metadata={"help": "rows per device per step"})
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps with a linear warm-up"})
    max_seq_length: int = field(default=64, metadata={"help": "token cap (titles and mentions are short)"})
    freeze_embeddings: bool = field(
        default=True,
        metadata={"help": "freeze the word embeddings (96M of e5-small's 118M parameters): faster steps on CPU"},
    )
    freeze_layers: int = field(
        default=0, metadata={"help": "also freeze the embeddings and the lowest N transformer layers"}
    )
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (GPUs that support it)"})
    eval_steps: int | None = field(
        default=None, metadata={"help": "also evaluate every N steps during training (None: before and after only)"}
    )
    save_steps: int = field(default=50, metadata={"help": "checkpoint every N steps"})
    save_total_limit: int = field(default=2, metadata={"help": "checkpoints kept"})
    logging_steps: int = field(default=10, metadata={"help": "log the loss every N steps"})
    seed: int = field(default=42, metadata={"help": "seed of sampling, shuffling and initialization"})
    resume: bool = field(default=False, metadata={"help": "continue from the run's last checkpoint"})
    show_progress_bar: bool = field(default=True, metadata={"help": "tqdm progress bars"})
    license: str | None = field(
        default=None, metadata={"help": "license for the card (default: the embedded model's, mit)"}
    )
    repo_name: str = field(default="", metadata={"help": "Hub repo name under <org> (default per model kind)"})
    push: bool = field(default=False, metadata={"help": "publish models/<run_name>/final to <org>/<repo_name>"})
    version: str | None = field(default=None, metadata={"help": "version tag to publish, e.g. v1.0"})
    target: Literal["local", "hub"] = field(
        default="local", metadata={"help": "publish to the local Hub's mirror or upload to HF_ENDPOINT"}
    )
    export_onnx: bool = field(
        default=True,
        metadata={"help": "write final/onnx/ (float32 and int8 ONNX files, their quality.json): docs/inference.md"},
    )

    def __post_init__(self) -> None:
        from cie10.generation.pairs import KINDS

        if self.scope not in SCOPES:
            raise ConfigError(f"unknown scope {self.scope!r}: choose one of {', '.join(SCOPES)}")
        unknown = sorted(set(self.train_kinds or ()) - set(KINDS))
        if unknown:
            choices = ", ".join(KINDS)
            raise ConfigError(f"unknown row kind(s) {', '.join(unknown)} in train_kinds: choose among {choices}")
        check_ranges(self, self.ranges())
        self._work_dir: Path | None = None
        if self.languages is not None:
            self.languages = [language.strip().lower() for language in self.languages if language.strip()]
        if self.chapters is not None:
            self.chapters = [str(chapter).strip() for chapter in self.chapters if str(chapter).strip()]
        if not self.repo_name:
            self.repo_name = self.default_repo_name()
        if not self.run_name:
            self.run_name = self.repo_name

    def default_repo_name(self) -> str:
        """The Hub repo name this kind of model is published under."""
        return BI_ENCODER_REPO_NAME

    def ranges(self) -> dict[str, Range]:
        """The allowed range of each numeric setting (checked when the config is made)."""
        return {
            "max_train_samples": AT_LEAST_ONE,
            "max_name_rows": AT_LEAST_ONE,
            "max_eval_queries": AT_LEAST_ONE,
            "num_train_epochs": POSITIVE,
            "max_steps": Range(minimum=1, also=(-1,), note="train for num_train_epochs"),
            "batch_size": AT_LEAST_ONE,
            "learning_rate": POSITIVE,
            "warmup_ratio": SHARE,
            "max_seq_length": AT_LEAST_ONE,
            "freeze_layers": NOT_NEGATIVE,
            "eval_steps": AT_LEAST_ONE,
            "save_steps": AT_LEAST_ONE,
            "save_total_limit": AT_LEAST_ONE,
            "logging_steps": AT_LEAST_ONE,
            "seed": NOT_NEGATIVE,
        }

    @property
    def dataset_id(self) -> str:
        """The dataset to load: as given, else `<org>/cie10-synth`."""
        return self.dataset or get_settings().repo_id(SYNTH_REPO_NAME)

    @property
    def repo_id(self) -> str:
        """`<org>/<repo_name>`."""
        return get_settings().repo_id(self.repo_name)

    @property
    def run_dir(self) -> Path:
        """Where this run writes: config, checkpoints, prepared data, summary and `final/`.

        `<output_dir>/<run_name>`, except while a fresh run is built beside an earlier one (`<run_name>.tmp`, see
        `cie10.training.runs.prepare_run_dir`), which it replaces once its model is saved.
        """
        return self._work_dir or self.named_run_dir

    @property
    def named_run_dir(self) -> Path:
        """`<output_dir>/<run_name>`: the run folder as users and the next stage find it."""
        return Path(self.output_dir) / self.run_name

    def write_into(self, folder: Path | None) -> None:
        """Make `run_dir` another folder for this process (None: `named_run_dir` again)."""
        self._work_dir = folder

    @property
    def final_dir(self) -> Path:
        """`<output_dir>/<run_name>/final`: the model to publish."""
        return self.run_dir / "final"

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data."""
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the settings as YAML (atomically); `load_config` reads them back."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
        partial.replace(path)
        return path


@dataclass
class BiEncoderConfig(TrainingRunConfig):
    """A bi-encoder run: (mention, title, mined negative) rows, in-batch negatives, an IR evaluator per language."""

    loss: Literal["mnrl", "cached_mnrl"] = field(
        default="mnrl",
        metadata={
            "help": "mnrl: MultipleNegativesRankingLoss; cached_mnrl: its cached (GradCache) variant, for "
            "batches larger than memory allows"
        },
    )
    mini_batch_size: int = field(default=32, metadata={"help": "cached_mnrl: rows per forward pass"})
    num_hard_negatives: int = field(
        default=1, metadata={"help": "mined hard negatives per row (0: in-batch negatives only)"}
    )
    mining_range_max: int = field(default=30, metadata={"help": "mine negatives among the top N titles"})
    mining_relative_margin: float = field(
        default=0.01,
        metadata={
            "help": "skip candidates scoring within this share of the positive's score (likely false "
            "negatives); e5's cosines are compressed (0.83-0.97), so 0.05 would leave most rows without one"
        },
    )
    sibling_fallback: bool = field(
        default=True,
        metadata={"help": "a row for which mining found no negative takes one of the generator's sibling codes"},
    )
    build_index: bool = field(
        default=True, metadata={"help": "encode every title of the scope into final/code_index/ after training"}
    )
    index_batch_size: int = field(default=64, metadata={"help": "batch size of the code index encoding"})
    index_names: str = field(
        default="title",
        metadata={
            "help": "what the code index holds per code: title (English title), all (every name: title, inclusion "
            "terms, WHO/CIE-10 labels, translated labels) or all+examples (also the training queries)"
        },
    )

    index_example_languages: list[str] | None = field(
        default=None,
        metadata={
            "help": "all+examples: only the training queries in these languages become index rows (default: all); "
            "each row costs one encode"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        from cie10.code_index import check_names_setting

        check_names_setting(self.index_names)

    def default_repo_name(self) -> str:
        return BI_ENCODER_REPO_NAME

    def ranges(self) -> dict[str, Range]:
        return {
            **super().ranges(),
            "mini_batch_size": AT_LEAST_ONE,
            "num_hard_negatives": NOT_NEGATIVE,
            "mining_range_max": AT_LEAST_ONE,
            "mining_relative_margin": SHARE,
            "index_batch_size": AT_LEAST_ONE,
        }


@dataclass
class RerankerConfig(TrainingRunConfig):
    """A reranker run: groups of the bi-encoder's top candidates plus named siblings, a listwise loss."""

    bi_encoder: str = field(
        default="",
        metadata={"help": "bi-encoder giving the candidates: a path or Hub id (default models/cie10-bi/final)"},
    )
    bi_encoder_revision: str | None = field(default=None, metadata={"help": "bi-encoder version on the Hub"})
    loss: Literal["lambda", "listnet"] = field(
        default="lambda", metadata={"help": "lambda: LambdaLoss (NDCG-Loss2++); listnet: ListNetLoss"}
    )
    candidates: int = field(default=7, metadata={"help": "bi-encoder candidates per training group"})
    sibling_negatives: int = field(default=2, metadata={"help": "named sibling negatives added per group"})
    eval_top_k: int = field(
        default=10,
        metadata={
            "help": "held-out groups: the bi-encoder's top K in its order (MRR@10 is reported, as the "
            "searcher shows 10 of its reranked top K)"
        },
    )
    batch_size: int = field(default=8, metadata={"help": "groups per device per step"})
    mini_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "(mention, title) pairs per forward pass of the listwise loss (None: the loss's default, "
            "batch_size pairs; -1: every pair of a step at once). Larger: fewer forward passes per step, if memory "
            "allows"
        },
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate"})
    head_learning_rate: float | None = field(
        default=3e-3,
        metadata={
            "help": "learning rate of the new scoring head (pooler, classifier), which starts random "
            "(None: learning_rate)"
        },
    )
    max_seq_length: int = field(default=96, metadata={"help": "token cap of a (mention, title) pair"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use at most this many groups"})

    def default_repo_name(self) -> str:
        return RERANKER_REPO_NAME

    def ranges(self) -> dict[str, Range]:
        return {
            **super().ranges(),
            "candidates": AT_LEAST_ONE,
            "sibling_negatives": NOT_NEGATIVE,
            "eval_top_k": AT_LEAST_ONE,
            "mini_batch_size": Range(minimum=1, also=(-1,), note="every pair of a step at once"),
            "head_learning_rate": POSITIVE,
        }

    @property
    def bi_encoder_id(self) -> str:
        """The candidate generator: as given, else this output_dir's `cie10-bi/final`."""
        return self.bi_encoder or str(Path(self.output_dir) / BI_ENCODER_REPO_NAME / "final")


def preset_path(name: str) -> Path | None:
    """The shipped YAML preset `name` (e.g. `quickstart-bi-encoder`), or None."""
    path = PRESETS_DIR / f"{name}.yaml"
    return path if path.is_file() else None


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping of a YAML config file (a path, or the name of a shipped preset)."""
    file = Path(path)
    if not file.is_file():
        file = preset_path(str(path)) or file
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as error:
        presets = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise ConfigError(f"cannot read config {path}: {error.strerror} (shipped presets: {presets})") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{file} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{file} must hold a mapping of settings")
    return data


def load_config(cls: type[ConfigT], path: str | os.PathLike | None = None, **overrides: Any) -> ConfigT:
    """`cls` from a YAML file (through `HfArgumentParser`, which refuses unknown keys), then `overrides`."""
    from transformers import HfArgumentParser

    values = read_config_file(path) if path is not None else {}
    values.update({key: value for key, value in overrides.items() if value is not None})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) for {cls.__name__}: {', '.join(unknown)}")
    (config,) = HfArgumentParser(cls).parse_dict(values)
    return config
