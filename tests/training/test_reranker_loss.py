"""The reranker's listwise loss takes the configured mini-batch size: fewer, larger forward passes, same loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from cie10.training.config import RerankerConfig
from cie10.training.reranker import make_loss

GROUPS = (
    ["asma", "fractura del cuello del fémur"],
    [
        ["Asthma", "Acute appendicitis", "Bronchitis"],
        ["Fracture of neck of femur", "Fracture of patella", "Asthma"],
    ],
)
LABELS = [[1, 0, 0], [1, 0, 0]]


@pytest.fixture(scope="module")
def cross_encoder(base_model_path: Path):
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(str(base_model_path), num_labels=1)
    model.eval()  # no dropout: both runs see the same network
    return model


@pytest.mark.parametrize("loss_name", ["lambda", "listnet"])
def test_mini_batch_size_sets_the_forward_passes_not_the_loss(cross_encoder, loss_name: str) -> None:
    import torch

    passes: list[int] = []
    hook = cross_encoder.register_forward_hook(lambda *_: passes.append(1))
    values = {}
    try:
        for mini_batch_size in (None, -1, 4):
            passes.clear()
            loss = make_loss(cross_encoder, RerankerConfig(loss=loss_name, mini_batch_size=mini_batch_size))
            with torch.no_grad():
                values[mini_batch_size] = (loss(GROUPS, [torch.tensor(row) for row in LABELS]).item(), len(passes))
    finally:
        hook.remove()
    # 6 pairs: the loss's default splits them by the batch size (2 groups -> 3 passes), -1 takes them at once
    # (sentence-transformers reads 0 as "the default", despite its docstring: hence -1)
    assert [values[size][1] for size in (None, -1, 4)] == [3, 1, 2]
    assert values[-1][0] == pytest.approx(values[None][0], abs=1e-4)
    assert values[4][0] == pytest.approx(values[None][0], abs=1e-4)
