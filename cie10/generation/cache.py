"""The LLM response cache: one JSON file per request, keyed by a hash of (backend, model, prompt, params).

Each response is written (atomically) as soon as it arrives, so a run killed half-way continues where it
stopped without paying for the same request twice. A cached reply is kept whatever its content: a malformed
reply was still paid for, and curation drops it again on every run with the same reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def request_key(backend: str, model: str, system: str, user: str, params: dict[str, Any]) -> str:
    """sha256 of the request's identity: what would make a different reply if it changed."""
    identity = {"backend": backend, "model": model, "system": system, "user": user, "params": params}
    blob = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class Usage:
    """Token counts of one reply (or a sum of them)."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.output_tokens + other.output_tokens,
            self.thoughts_tokens + other.thoughts_tokens,
        )


@dataclass
class Completion:
    """A raw reply: its text (maybe malformed, maybe empty), why it stopped, and its token counts."""

    text: str
    finish_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    model_version: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Completion:
        return cls(
            text=data.get("text") or "",
            finish_reason=data.get("finish_reason") or "",
            usage=Usage(**data.get("usage", {})),
            model_version=data.get("model_version") or "",
        )


class ResponseCache:
    """Replies on disk under `<root>/<backend>/<key[:2]>/<key>.json`."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()

    def _path(self, backend: str, key: str) -> Path:
        return self.root / backend / key[:2] / f"{key}.json"

    def get(self, backend: str, key: str) -> Completion | None:
        """The cached reply, or None (an unreadable file counts as missing)."""
        path = self._path(backend, key)
        try:
            return Completion.from_json(json.loads(path.read_text(encoding="utf-8"))["completion"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def __contains__(self, item: tuple[str, str]) -> bool:
        return self.get(*item) is not None

    def put(self, backend: str, key: str, completion: Completion, request: dict[str, Any] | None = None) -> None:
        """Store a reply atomically (temporary file, then rename)."""
        path = self._path(backend, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "request": request or {}, "completion": completion.to_json()}
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(record, stream, ensure_ascii=False)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
