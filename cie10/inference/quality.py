"""What each ONNX file costs in quality, measured at export against the model's own torch float32 forward pass.

A fixed set of real queries: 200 CodiEsp *train* diagnosis mentions (never dev: dev is what the harness reports),
ranked against 1,000 catalogue titles (their gold codes' titles plus seeded random ones). For a bi-encoder:
cosine of each query embedding to torch's, and top-1 agreement of the ranking (all through the file, and the file's
queries against torch's title embeddings, i.e. a torch-built index). For a reranker: each mention with 10 titles
(its gold one and 9 random), top-1 agreement of the reordering and the largest score difference.
Without CodiEsp, the catalogue's Spanish labels stand in as queries (the JSON says which).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np

from cie10.code_index import document_text

logger = logging.getLogger(__name__)

CODIESP_TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "codiesp" / "train"
NUM_QUERIES = 200
NUM_TITLES = 1000
RERANK_QUERIES = 100
RERANK_CANDIDATES = 10
SEED = 0


def quality_queries(catalog, codiesp: Path = CODIESP_TRAIN, limit: int = NUM_QUERIES) -> tuple[list[str], list, str]:
    """(queries, gold codes, source): seeded CodiEsp train diagnosis mentions whose code is in the catalogue."""
    if (Path(codiesp) / "trainX.tsv").exists() or any(Path(codiesp).glob("*X.tsv")):
        from cie10.eval_harness.codiesp import read_codiesp

        mentions = read_codiesp(codiesp).mention_set()
        rows = [(q, g[0]) for q, g in zip(mentions.queries, mentions.gold, strict=True) if g[0] in catalog]
        source = f"CodiEsp train diagnosis mentions ({codiesp})"
    else:
        entries = catalog.select("categories")
        rows = [(label.text, e.code) for e in entries if (label := catalog.label(e.code, "es", inherit=False))]
        source = "catalogue Spanish labels (CodiEsp train not found)"
    random.Random(SEED).shuffle(rows)
    rows = rows[:limit]
    return [q for q, _ in rows], [catalog[c].code for _, c in rows], source


def candidate_codes(catalog, gold: list[str], size: int = NUM_TITLES) -> list[str]:
    """The gold codes plus seeded random codes of the full scope, `size` in all."""
    codes = list(dict.fromkeys(gold))
    pool = [entry.code for entry in catalog.select("full") if entry.code not in set(codes)]
    random.Random(SEED).shuffle(pool)
    return codes + pool[: max(0, size - len(codes))]


def _bi_encoder_quality(folder: Path, files: list[str], catalog) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    from cie10.code_index import encode_documents, encode_queries
    from cie10.inference.encoder import OnnxEncoder

    queries, gold, source = quality_queries(catalog)
    codes = candidate_codes(catalog, gold)
    titles = [document_text(catalog[code]) for code in codes]
    reference = SentenceTransformer(str(folder), device="cpu")
    ref_q = encode_queries(reference, queries)
    ref_d = encode_documents(reference, titles)
    ref_top = (ref_q @ ref_d.T).argmax(axis=1)
    result: dict[str, Any] = {"queries": source, "num_queries": len(queries), "num_titles": len(titles)}
    for name in files:
        model = OnnxEncoder(folder, name)
        q = encode_queries(model, queries)
        d = encode_documents(model, titles)
        cosine = (q * ref_q).sum(axis=1)
        result[name] = {
            "cosine_mean": round(float(cosine.mean()), 4),
            "cosine_min": round(float(cosine.min()), 4),
            "top1_agreement": round(float(((q @ d.T).argmax(axis=1) == ref_top).mean()), 4),
            "top1_agreement_torch_index": round(float(((q @ ref_d.T).argmax(axis=1) == ref_top).mean()), 4),
        }
    return result


def _reranker_quality(folder: Path, files: list[str], catalog) -> dict[str, Any]:
    from sentence_transformers import CrossEncoder

    from cie10.inference.encoder import OnnxCrossEncoder

    queries, gold, source = quality_queries(catalog, limit=RERANK_QUERIES)
    pool = candidate_codes(catalog, gold)
    rng = random.Random(SEED)
    pairs = []
    for query, code in zip(queries, gold, strict=True):
        others = rng.sample([c for c in pool if c != code], RERANK_CANDIDATES - 1)
        pairs += [(query, document_text(catalog[c])) for c in [code, *others]]
    reference = CrossEncoder(str(folder), device="cpu")
    ref = np.asarray(reference.predict(pairs, batch_size=64, show_progress_bar=False)).reshape(len(queries), -1)
    result: dict[str, Any] = {"queries": source, "num_queries": len(queries), "candidates": RERANK_CANDIDATES}
    for name in files:
        model = OnnxCrossEncoder(folder, name)
        scores = model.predict(pairs, batch_size=64).reshape(len(queries), -1)
        result[name] = {
            "top1_agreement": round(float((scores.argmax(axis=1) == ref.argmax(axis=1)).mean()), 4),
            "max_abs_score_diff": round(float(np.abs(scores - ref).max()), 5),
            "max_length": model.max_length,
        }
    return result


def measure_quality(folder: Path, files: list[str], *, cross_encoder: bool) -> dict[str, Any]:
    """Per ONNX file: agreement with the torch float32 model on the fixed query set (see the module docstring)."""
    from cie10.catalog import load_catalog

    catalog = load_catalog()
    if cross_encoder:
        return _reranker_quality(Path(folder), files, catalog)
    return _bi_encoder_quality(Path(folder), files, catalog)
