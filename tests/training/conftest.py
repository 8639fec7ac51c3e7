"""Shared training fixtures: a small real dataset from the catalogue and one short bi-encoder run per session.

The dataset is what the generator's offline `terminology` backend makes: the catalogue's own Spanish, French and
Portuguese labels of the codes of two chapters (9, circulatory; 10, respiratory) as mentions, the English title
as the document, split by 3-character category. Training runs are kept to a couple of minutes on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHAPTERS = ["9", "10"]
LANGUAGES = ["es", "fr", "pt"]
SHORT_RERANKER_RUN = dict(
    max_train_samples=160,
    candidates=5,
    sibling_negatives=2,
    batch_size=8,
    learning_rate=3e-4,
    head_learning_rate=3e-3,
    freeze_layers=6,
    save_steps=1000,
    show_progress_bar=False,
    export_onnx=False,  # the bi-encoder's run tests the export; tests/inference the reranker's files
)
"""A reranker run of a couple of minutes on 2 CPU cores, from the session's bi-encoder run."""


@pytest.fixture(scope="session")
def terminology_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DatasetDict folder (train/validation/test by category) of catalogue labels in es/fr/pt."""
    import datasets

    from cie10.catalog import load_catalog
    from cie10.generation.splits import split_pairs
    from cie10.generation.terminology import terminology_pairs

    catalog = load_catalog()
    entries = [entry for entry in catalog.select("quickstart") if entry.chapter in CHAPTERS]
    pairs = terminology_pairs(catalog, entries, LANGUAGES)
    splits = split_pairs(pairs, catalog, validation_fraction=0.15, test_fraction=0.15, seed=42)
    folder = tmp_path_factory.mktemp("data") / "cie10-synth-mini"
    datasets.DatasetDict(
        {name: datasets.Dataset.from_list([pair.record() for pair in rows]) for name, rows in splits.items()}
    ).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="session")
def bi_encoder_run(
    base_model_path: Path, terminology_dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, dict[str, Any]]:
    """A short bi-encoder run from the default base model: (config, run summary)."""
    from cie10.training.bi_encoder import train_bi_encoder
    from cie10.training.config import BiEncoderConfig

    config = BiEncoderConfig(
        dataset=str(terminology_dataset),
        chapters=CHAPTERS,
        output_dir=str(tmp_path_factory.mktemp("models")),
        max_train_samples=320,
        batch_size=16,
        learning_rate=1e-4,
        freeze_layers=6,
        max_eval_queries=48,
        save_steps=1000,
        build_index=False,
        show_progress_bar=False,
    )
    return config, train_bi_encoder(config)
