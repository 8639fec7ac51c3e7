"""Measure bi-encoder training speed (pairs/s) for CPU settings: frozen embeddings, frozen layers, threads.

The defaults of `BiEncoderConfig` were picked with this; `cie10 train throughput` repeats the measurement on
another machine. A step is exactly what the trainer does: tokenize (query, title, negative title) rows, the
MultipleNegativesRankingLoss forward and backward, an AdamW step.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from cie10.catalog import load_catalog
from cie10.code_index import document_text

logger = logging.getLogger(__name__)


@dataclass
class Throughput:
    """One measured setting."""

    threads: int
    freeze_embeddings: bool
    freeze_layers: int
    batch_size: int
    steps: int
    pairs_per_second: float
    seconds_per_step: float
    trainable_parameters: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


def benchmark_rows(count: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(Spanish label, English title, a sibling's title) rows from the catalogue's quickstart scope."""
    catalog = load_catalog()
    rows = []
    for entry in catalog.select("quickstart"):
        siblings = catalog.siblings(entry.code)
        for label in entry.own_labels("es"):
            if siblings:
                rows.append((label.text, document_text(entry), catalog[siblings[0]].title))
    random.Random(seed).shuffle(rows)
    return rows[:count]


def measure_throughput(
    base_model: str = "default",
    *,
    threads: int = 1,
    freeze_embeddings: bool = True,
    freeze_layers: int = 0,
    batch_size: int = 32,
    steps: int = 4,
    max_seq_length: int = 64,
) -> Throughput:
    """Time `steps` training steps (after one warm-up step) with one setting."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from cie10.training.models import describe_base_model, freeze_for_cpu

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SentenceTransformer(describe_base_model(base_model).load_path)
    model.max_seq_length = max_seq_length
    counts = freeze_for_cpu(model, freeze_embeddings=freeze_embeddings, freeze_layers=freeze_layers)
    loss = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
    prompts = model.prompts or {}
    query_prompt, document_prompt = prompts.get("query", ""), prompts.get("document", "")
    rows = benchmark_rows(batch_size * (steps + 1))
    model.train()
    timings = []
    for step in range(steps + 1):
        batch = rows[step * batch_size : (step + 1) * batch_size]
        begin = time.perf_counter()
        features = [
            model.preprocess([prompt + row[column] for row in batch])
            for column, prompt in ((0, query_prompt), (1, document_prompt), (2, document_prompt))
        ]
        value = loss(features, None)
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:  # the first step warms up allocations
            timings.append(time.perf_counter() - begin)
    seconds = sum(timings) / len(timings)
    result = Throughput(
        threads,
        freeze_embeddings,
        freeze_layers,
        batch_size,
        steps,
        round(batch_size / seconds, 2),
        round(seconds, 2),
        counts["trainable_parameters"],
    )
    logger.info("%s", result)
    return result
