"""The run summary: one JSON per run with metrics per language, data revision, base model and wall time."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import subprocess
from pathlib import Path
from typing import Any

SUMMARY_FILE = "run_summary.json"
LIBRARIES: tuple[str, ...] = ("cie10", "sentence-transformers", "transformers", "torch", "datasets", "accelerate")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def git_commit() -> str | None:
    """The commit of the working tree the run was started from (None outside git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def now_iso() -> str:
    """UTC time, ISO 8601, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def write_json_atomic(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON to a temporary sibling and rename it into place: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
