"""Training: `train_bi_encoder` and `train_reranker`, sentence-transformers recipes configured by dataclasses.

`cie10 train bi-encoder|reranker` (cie10/commands/train.py) calls the same functions; docs/training.md explains
the settings, the outputs and multi-GPU runs.
"""

from __future__ import annotations

from typing import Any

from cie10.training.config import BiEncoderConfig, RerankerConfig, load_config

__all__ = ["BiEncoderConfig", "RerankerConfig", "load_config", "train_bi_encoder", "train_reranker"]


def train_bi_encoder(config: BiEncoderConfig, **kwargs: Any) -> dict[str, Any]:
    """See `cie10.training.bi_encoder.train_bi_encoder` (imported lazily: torch is slow to import)."""
    from cie10.training.bi_encoder import train_bi_encoder as run

    return run(config, **kwargs)


def train_reranker(config: RerankerConfig, **kwargs: Any) -> dict[str, Any]:
    """See `cie10.training.reranker.train_reranker` (imported lazily: torch is slow to import)."""
    from cie10.training.reranker import train_reranker as run

    return run(config, **kwargs)
