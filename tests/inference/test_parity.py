"""The ONNX path against sentence-transformers on the same folder: same embeddings, same scores, same top-1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cie10.code_index import encode_documents, encode_queries
from cie10.inference import OnnxCrossEncoder, OnnxEncoder, load_cross_encoder, load_encoder

QUERIES = [
    "dolor torácico opresivo",
    "asma bronquial leve intermitente",
    "fractura del coll del fèmur",
    "diabetes mellitus tipo 2 sin complicaciones",
    "heart attack",
    "insuffisance cardiaque congestive",
    "infezione delle vie urinarie",
    "hipertensão arterial essencial",
    "neumonía adquirida en la comunidad por neumococo",
    "migraña sin aura",
]
INT8_SCORE_ERROR = 0.01
"""The largest cosine change int8 (`mixed`) may make to a (query, title) score of the base model here."""
TITLES = [
    "Chest pain, unspecified",
    "Mild intermittent asthma, uncomplicated",
    "Fracture of unspecified part of neck of right femur",
    "Type 2 diabetes mellitus without complications",
    "Acute myocardial infarction, unspecified",
    "Heart failure, unspecified",
    "Urinary tract infection, site not specified",
    "Essential (primary) hypertension",
    "Pneumonia due to Streptococcus pneumoniae",
    "Migraine without aura, not intractable, without status migrainosus",
    "Acute appendicitis without perforation or gangrene",
    "Iron deficiency anemia, unspecified",
]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_bi_encoder_matches_sentence_transformers(onnx_bi_encoder: Path, backend: str) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(onnx_bi_encoder), device="cpu")  # a folder with onnx/ still loads
    model = load_encoder(str(onnx_bi_encoder), backend=backend)
    assert isinstance(model, OnnxEncoder)
    assert model.prompts == reference.prompts

    ref_q, ref_d = encode_queries(reference, QUERIES), encode_documents(reference, TITLES)
    q, d = encode_queries(model, QUERIES), encode_documents(model, TITLES)
    assert (q * ref_q).sum(axis=1).min() >= 0.99
    assert (d * ref_d).sum(axis=1).min() >= 0.99
    expected, scores = ref_q @ ref_d.T, q @ d.T
    if backend == "onnx":
        assert np.abs(q - ref_q).max() < 1e-4
        assert np.array_equal(scores.argmax(axis=1), expected.argmax(axis=1))
    else:  # int8 moves scores by ~0.005: the same top-1 wherever float32's lead over the second title exceeds that
        top2 = np.sort(expected, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > INT8_SCORE_ERROR
        assert clear.sum() >= len(QUERIES) // 2  # the check is not vacuous
        assert np.array_equal(scores.argmax(axis=1)[clear], expected.argmax(axis=1)[clear])
        assert np.abs(scores - expected).max() < 2 * INT8_SCORE_ERROR


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_reranker_matches_cross_encoder(onnx_cross_encoder: Path, backend: str) -> None:
    from sentence_transformers import CrossEncoder

    reference = CrossEncoder(str(onnx_cross_encoder), device="cpu")
    model = load_cross_encoder(str(onnx_cross_encoder), backend=backend)
    assert isinstance(model, OnnxCrossEncoder)
    pairs = [(query, title) for query in QUERIES[:4] for title in TITLES]
    expected = reference.predict(pairs, show_progress_bar=False).reshape(4, -1)
    scores = model.predict(pairs).reshape(4, -1)
    assert scores.min() >= 0 and scores.max() <= 1  # one label: sigmoid, as CrossEncoder.predict applies
    assert np.array_equal(scores.argmax(axis=1), expected.argmax(axis=1))
    assert np.abs(scores - expected).max() < (1e-4 if backend == "onnx" else 0.02)
    assert model.predict(pairs[0]).shape == ()


@pytest.mark.slow
def test_model_without_onnx_files_falls_back_to_torch(base_model_path: Path, tmp_path: Path) -> None:
    import os
    import shutil

    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "no-onnx"
    shutil.copytree(base_model_path, folder, copy_function=os.symlink, ignore=shutil.ignore_patterns("onnx"))
    assert isinstance(load_encoder(str(folder), backend="onnx"), SentenceTransformer)
