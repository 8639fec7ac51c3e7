"""Fixtures for the Space: a small test bi-encoder, reranker and codes dataset on the local Hub, and the app.

Until trained models exist, the bi-encoder is the embedded base model with a code index over chapters 9 and 10
(categories and 4-character codes, ~750 titles), and the reranker is the base model with an untrained
one-logit head. Both are published as `<org>/cie10-bi` and `<org>/cie10-rerank`, with a subset of the catalogue
as `<org>/cie10-codes`, all under the tag `TEST_REVISION`. The encoded titles and the reranker are cached under
`<CIE10_HOME>/tests/space/` so that later sessions skip the ~1 min of encoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cie10.settings import get_settings

TEST_REVISION = "v0.1-space-test"
INDEX_CHAPTERS = ("9", "10")


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cache_dir() -> Path:
    folder = get_settings().home / "tests" / "space"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _model_key(base_model_path: Path) -> str:
    provenance = json.loads((base_model_path / "provenance.json").read_text())
    return provenance["weights_source"]["sha256"][:12]


def _index_entries(catalog):
    return [entry for entry in catalog.select("quickstart") if entry.chapter in INDEX_CHAPTERS]


def _embeddings(base_model_path: Path, texts: list[str]) -> np.ndarray:
    """The titles' embeddings, read from the cache when this model and these titles were encoded before."""
    from sentence_transformers import SentenceTransformer

    from cie10.code_index import encode_documents

    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    cached = _cache_dir() / f"index-{_model_key(base_model_path)}-{digest}.npy"
    if cached.exists():
        return np.load(cached)
    model = SentenceTransformer(str(base_model_path), device="cpu")
    embeddings = encode_documents(model, texts, batch_size=64)
    partial = cached.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(partial, embeddings)
    partial.replace(cached)
    return embeddings


def _reranker_folder(base_model_path: Path) -> Path:
    """The base model with a fresh (seeded, untrained) one-logit classification head, saved once."""
    folder = _cache_dir() / f"reranker-{_model_key(base_model_path)}"
    if (folder / "config.json").exists():
        return folder
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    CrossEncoder(str(base_model_path), num_labels=1, device="cpu").save(str(staging))
    if not folder.exists():
        staging.rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def space_config(local_hub, base_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """A `SpaceConfig` for the test repos, published to the local Hub under `TEST_REVISION`."""
    import datasets

    from cie10.catalog import load_catalog
    from cie10.code_index import CodeIndex, document_text
    from cie10.hub import publish_folder
    from cie10.space_app import CODES_FILE, SpaceConfig

    settings = get_settings()
    root = tmp_path_factory.mktemp("space-repos")
    catalog = load_catalog()
    entries = _index_entries(catalog)
    codes = [entry.code for entry in entries]

    bi_folder = root / "cie10-bi"
    shutil.copytree(base_model_path, bi_folder, copy_function=os.symlink)  # publish_folder follows links
    meta = {"model": str(base_model_path), "catalog_version": catalog.version, "scope": "test: chapters 9, 10"}
    CodeIndex(codes, _embeddings(base_model_path, [document_text(e) for e in entries]), meta).save(bi_folder)
    publish_folder(bi_folder, settings.repo_id("cie10-bi"), "model", version=TEST_REVISION)

    rerank_folder = root / "cie10-rerank"
    shutil.copytree(_reranker_folder(base_model_path), rerank_folder, copy_function=os.symlink)
    publish_folder(rerank_folder, settings.repo_id("cie10-rerank"), "model", version=TEST_REVISION)

    keep = set(codes)
    for code in codes:
        keep.update(catalog.ancestors(code))
    codes_folder = root / "cie10-codes"
    (codes_folder / "data").mkdir(parents=True)
    records = catalog.to_records([entry for entry in catalog if entry.code in keep])
    datasets.Dataset.from_list(records).to_parquet(str(codes_folder / CODES_FILE))
    (codes_folder / "README.md").write_text("---\nlicense: other\n---\n# cie10-codes (test subset)\n")
    publish_folder(codes_folder, settings.repo_id("cie10-codes"), "dataset", version=TEST_REVISION)
    return SpaceConfig(revision=TEST_REVISION)


@pytest.fixture(scope="session")
def space_backend(space_config):
    """The Space's backend, loaded from the local Hub like the real Space."""
    from cie10.space_app import SpaceBackend

    return SpaceBackend.load(space_config)


@pytest.fixture(scope="session")
def space_url(space_backend) -> Iterator[str]:
    """The Space served on loopback (a free port); its URL."""
    from cie10.space_app import launch

    demo = launch(space_backend, host="127.0.0.1", port=free_port(), block=False, quiet=True)
    try:
        yield demo.local_url.rstrip("/")
    finally:
        demo.close()
