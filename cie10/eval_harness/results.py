"""Results files: mteb-shaped JSON with provenance (ids, revisions, catalogue, versions, git commit).

`results.json` holds, like an mteb result, `task_name`, `dataset` {id, revision}, `model` and `scores`
{split: [{hf_subset, languages, main_score, metrics...}]} for the evaluated model, plus the same for each
baseline under `baselines`, the paired-bootstrap `comparisons`, the `learning_gain` (base → model) and the gold
code `gold_coverage`. Scores are on a 0-1 scale. Files are written atomically and read back with `load_run`.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.json"
REPORT_FILE = "results.md"
PREDICTIONS_DIR = "predictions"
PACKAGES: tuple[str, ...] = (
    "cie10",
    "sentence-transformers",
    "transformers",
    "torch",
    "datasets",
    "huggingface_hub",
    "evaluate",
    "bm25s",
    "numpy",
    "simple-icd-10-cm",
)


@dataclass
class SystemScores:
    """One system's provenance (`model`) and mteb-shaped `scores` {split: [subset entries]}."""

    name: str
    model: dict[str, Any]
    scores: dict[str, list[dict[str, Any]]]
    evaluation_time: float


@dataclass
class EvaluationRun:
    """Everything one evaluation produced; `to_dict`/`from_dict` round-trip through JSON."""

    task_name: str
    main_score: str
    dataset: dict[str, Any]
    catalog: dict[str, Any]
    name: str
    model: dict[str, Any]
    scores: dict[str, list[dict[str, Any]]]
    evaluation_time: float
    baselines: list[SystemScores] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    learning_gain: list[dict[str, Any]] = field(default_factory=list)
    gold_coverage: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    date: str = ""
    versions: dict[str, str | None] = field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = None

    @property
    def systems(self) -> list[SystemScores]:
        """The evaluated model first, then the baselines."""
        return [SystemScores(self.name, self.model, self.scores, self.evaluation_time), *self.baselines]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationRun:
        """Inverse of `to_dict`."""
        fields = dict(data)
        fields["baselines"] = [SystemScores(**baseline) for baseline in data.get("baselines", [])]
        return cls(**fields)

    def save(self, folder: Path | str) -> Path:
        """Write `<folder>/results.json` atomically; returns its path."""
        path = Path(folder) / RESULTS_FILE
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path


def load_run(path: Path | str) -> EvaluationRun:
    """Read a `results.json` (or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    return EvaluationRun.from_dict(json.loads(path.read_text(encoding="utf-8")))


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a score depends on."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(ignore: Sequence[str] = (), root: Path | None = None) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether the work tree has changes outside `ignore`) of `root` (default: the checkout `cie10`
    runs from). `ignore`: paths relative to it that a run writes itself (its own result files). None outside git.
    """
    root = root or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                *(f":(exclude){path}" for path in ignore),
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def now_iso() -> str:
    """UTC time, ISO 8601, seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def write_predictions(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    """`<folder>/predictions/<name>.jsonl`, one ranked list per query, so a run can be re-scored later."""
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in name)
    path = Path(folder) / PREDICTIONS_DIR / f"{safe}.jsonl"
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path
