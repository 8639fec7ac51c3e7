"""Shared fixtures of the eval-harness tests: the catalogue, tiny evaluation sets, the CodiEsp-format fixture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CODIESP_FIXTURE = DATA / "codiesp" / "dev"

TINY_ROWS: list[dict] = [
    {"query": "asthma", "code": "J45", "language": "en"},
    {"query": "pneumonia", "code": "J18", "language": "en"},
    {"query": "chronic obstructive pulmonary disease", "code": "J44", "language": "en"},
    {"query": "acute bronchitis", "code": "J20", "language": "en"},
    {"query": "asma bronquial", "code": "J45", "language": "es"},
    {"query": "neumonía", "code": "J18", "language": "es"},
    {"query": "gripe", "code": "J11", "language": "es"},
    {"query": "insuficiencia respiratoria aguda", "code": "J96.00", "language": "es"},
]
"""Respiratory queries (chapter 10): with `--scope categories --chapter 10` every system searches 64 codes, and
J96.00 (not a category) is outside them, a gold code kept as a miss."""


@pytest.fixture(scope="session")
def catalog():
    from cie10.catalog import load_catalog

    return load_catalog()


def save_dataset(folder: Path, splits: dict[str, list[dict]]) -> Path:
    """A `save_to_disk` DatasetDict folder."""
    import datasets

    def table(rows: list[dict]) -> datasets.Dataset:
        if rows:
            return datasets.Dataset.from_list(rows)
        string = datasets.Value("string")
        return datasets.Dataset.from_dict(
            {"query": [], "code": [], "language": []},
            features=datasets.Features({"query": string, "code": string, "language": string}),
        )

    datasets.DatasetDict({name: table(rows) for name, rows in splits.items()}).save_to_disk(str(folder))
    return folder


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    rows = [{**row, "source": "hand", "hard_negatives": []} for row in TINY_ROWS]
    return save_dataset(tmp_path / "tiny-synth", {"train": rows[:2], "test": rows})


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m cie10 ...` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cie10", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ERROR lines a failed command logged."""
    return [line for line in result.stderr.splitlines() if " ERROR " in line]


def make_tiny_bi_encoder(folder: Path, catalog, *, index_scope: str | None = "categories") -> Path:
    """A random 16-d BERT sentence-transformer with a word-level vocabulary (and a `code_index/` of a scope).

    It stands in for a tuned `<org>/cie10-bi` where only the plumbing is under test: it loads, ships an index,
    ranks codes fast. Its rankings are meaningless.
    """
    import re

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from cie10.code_index import build_code_index

    titles = " ".join(entry.title for entry in catalog.select("categories"))
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(re.findall(r"[a-z]+", titles.lower())))
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    hf_dir = folder.parent / f"{folder.name}-hf"
    special = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, mask_token="[MASK]", **special).save_pretrained(hf_dir)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    model = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()], device="cpu"
    )
    model.save(str(folder), create_model_card=False)
    if index_scope is not None:
        build_code_index(model, catalog, index_scope, model_id=folder.name).save(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bi_encoder(tmp_path_factory, catalog) -> Path:
    """A tiny sentence-transformers folder with a `code_index/` over the categories scope."""
    return make_tiny_bi_encoder(tmp_path_factory.mktemp("models") / "tiny-bi", catalog)
