"""Speed: query latency (p50/p95) of BM25, the bi-encoder, and the bi-encoder with reranking of the top 20, over an
index the size of the full catalogue, on each inference backend (torch float32 as the reference, onnxruntime float32
and int8: `cie10.inference`); document encoding throughput per backend and a measured catalogue encode on both cores
(`ENCODE_TITLES`, or every title with `CIE10_BENCH_FULL_ENCODE=1`); and bi-encoder training throughput (pairs/s).

Absolute times vary between machines, so each figure also comes as a ratio against a reference measured in the same
run: search latency against BM25's over the same codes and queries, reranking against the bi-encoder alone,
training pairs/s against the same base model's inference rate (titles/s). On a GPU machine the latencies are
measured again with the models on the GPU (BM25 stays on the CPU as the reference).

The full-catalogue index holds the released index's real rows (its scope, e.g. quickstart) and random L2-normalised
rows for every other code: the top-k step costs the same for any unit vectors, so this times the real search over
~98k codes without encoding them all on a CPU.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from benchmarks.artifacts import Artifacts
from benchmarks.common import BenchConfig, Unavailable, random_unit_rows, ratio, summarize_seconds, time_each
from benchmarks.targets import check
from cie10.code_index import CodeIndex, document_text, encode_documents, encode_queries
from cie10.eval_harness.systems import Bm25System
from cie10.settings import BACKENDS, apply_torch_threads, get_settings

logger = logging.getLogger(__name__)

TOP_K = 10
"""Codes shown per query (the Space's default)."""


def full_size_index(stored: CodeIndex | None, catalog, dimension: int, seed: int) -> tuple[CodeIndex, dict[str, Any]]:
    """An index over every code of the `full` scope: the released index itself when it holds them all (every name
    row, as the Space scans it), else its title rows where it has them and random unit rows elsewhere."""
    codes = [entry.code for entry in catalog.select("full")]
    shape = {"scope": "full", "num_codes": len(codes), "dimension": dimension}
    if stored is not None and all(code in stored.row_of for code in codes):
        index = stored if list(stored.codes) == codes else stored.subset(codes)
        meta = {
            **shape,
            "num_rows": index.num_rows,
            "real_rows": index.num_rows,
            "random_rows": 0,
            "every_name_row": True,
            "note": "the released code index as the Space searches it: every name row of every code",
        }
        return index, meta
    matrix = random_unit_rows(len(codes), dimension, seed)
    real = 0
    if stored is not None:
        pairs = [(row, stored.row_of[code]) for row, code in enumerate(codes) if code in stored.row_of]
        if pairs:
            matrix[[row for row, _ in pairs]] = stored.embeddings[[source for _, source in pairs]]
        real = len(pairs)
    meta = {
        **shape,
        "num_rows": len(codes),
        "real_rows": real,
        "random_rows": len(codes) - real,
        "note": "real rows from the released code index; random unit rows for the other codes (timing only)",
    }
    return CodeIndex(codes, matrix, meta), meta


def _stage_summary(timings: list[dict[str, float]]) -> dict[str, Any]:
    return {name: summarize_seconds([t[name] for t in timings]) for name in ("encode_s", "retrieve_s", "rerank_s")}


def measure_latency(searcher, queries: list[str], rerank_top: int) -> dict[str, Any]:
    """p50/p95 of one-query searches: bi-encoder alone, then with reranking of the top `rerank_top`."""
    stages: list[dict[str, float]] = []

    def bi_encoder(query: str) -> None:
        stages.append(searcher.search(query, top_k=TOP_K, rerank=False).timings)

    def two_stage(query: str) -> None:
        stages.append(searcher.search(query, top_k=TOP_K, rerank=True, rerank_top=rerank_top).timings)

    bi_times = time_each(bi_encoder, queries)
    bi_stages, stages = stages[-len(queries) :], []
    rerank_times = time_each(two_stage, queries)
    rerank_stages = stages[-len(queries) :]
    return {
        "bi_encoder": {**summarize_seconds(bi_times), "stages": _stage_summary(bi_stages)},
        "bi_encoder_rerank": {
            **summarize_seconds(rerank_times),
            "rerank_top": rerank_top,
            "stages": _stage_summary(rerank_stages),
        },
    }


def encode_rate(model, titles: list[str]) -> dict[str, Any]:
    """Titles/s of document encoding (batch 64, the index build's setting) over `titles`."""
    encode_documents(model, titles[:8], batch_size=64)  # warm-up
    started = time.perf_counter()
    encode_documents(model, titles, batch_size=64)
    seconds = time.perf_counter() - started
    return {"titles": len(titles), "seconds": round(seconds, 3), "titles_per_second": round(len(titles) / seconds, 2)}


def measure_training(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """Bi-encoder training pairs/s with the training defaults (`cie10.training.throughput`), and its reference."""
    from cie10.training.config import BiEncoderConfig
    from cie10.training.throughput import measure_throughput

    defaults = BiEncoderConfig()
    threads = get_settings().torch_threads
    result = measure_throughput(
        defaults.base_model,
        threads=threads,
        freeze_embeddings=defaults.freeze_embeddings,
        freeze_layers=defaults.freeze_layers,
        batch_size=config.train_batch_size,
        steps=config.train_steps,
        max_seq_length=defaults.max_seq_length,
    ).to_dict()
    apply_torch_threads()
    entry: dict[str, Any] = {
        **result,
        "base_model": defaults.base_model,
        "max_seq_length": defaults.max_seq_length,
        "row": "(query, title, sibling title): MultipleNegativesRankingLoss forward + backward + AdamW step",
    }
    try:
        base = artifacts.base() if defaults.base_model == "default" else None
    except Unavailable:
        base = None
    if base is not None:
        rng = np.random.default_rng(config.seed)
        entries = artifacts.catalog.select("full")
        rows = rng.choice(len(entries), size=min(config.encode_reference_titles, len(entries)), replace=False)
        reference = encode_rate(base.model, [document_text(entries[int(i)]) for i in rows])
        entry["reference"] = {"name": "inference: titles/s encoded by the same base model", **reference}
        entry["ratio_vs_reference"] = ratio(result["pairs_per_second"], reference["titles_per_second"])
    return entry


def _devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


ENCODE_TITLES = 10_000
"""Titles of the full catalogue encoded (seeded sample) for the catalogue-encode measurement; all of them (about
98k) with `CIE10_BENCH_FULL_ENCODE=1`, which is the measurement the `encode_catalogue` target wants."""


def measure_catalogue_encode(model, catalog, count: int, seed: int) -> dict[str, Any]:
    """Seconds to encode `count` catalogue titles with `encode_documents` (ONNX: one worker process per core)."""
    from cie10.inference import backend_of
    from cie10.inference.parallel import default_workers

    entries = catalog.select("full")
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(entries), size=min(count, len(entries)), replace=False)
    titles = [document_text(entries[int(i)]) for i in rows]
    encode_documents(model, titles[:1100], batch_size=64)  # warm-up (starts the workers of an ONNX encoder)
    started = time.perf_counter()
    encode_documents(model, titles, batch_size=64)
    seconds = time.perf_counter() - started
    return {
        "backend": backend_of(model),
        "titles": len(titles),
        "of_catalogue": len(entries),
        "seconds": round(seconds, 1),
        "titles_per_second": round(len(titles) / seconds, 1),
        "workers": default_workers() if backend_of(model) != "torch" else 1,
        "measured_full": len(titles) == len(entries),
        "full_catalogue_seconds_at_this_rate": round(len(entries) * seconds / len(titles), 1),
    }


def _backend_models(artifacts: Artifacts, config: BenchConfig, reranker_info: dict[str, Any]):
    """(backend, bi-encoder, reranker) for torch and each ONNX backend, ONNX files exported to a cache if missing."""
    from benchmarks.onnx_int8 import onnx_folder
    from cie10.inference import load_cross_encoder, load_encoder

    bi_folder = onnx_folder(artifacts.bi_encoder_id(), config.revision)
    reranker_id = str(reranker_info.get("path") or reranker_info["id"])
    rerank_folder = onnx_folder(reranker_id, None if reranker_info.get("standin") else config.revision)
    for backend in BACKENDS:
        yield (
            backend,
            load_encoder(str(bi_folder), backend=backend, device="cpu"),
            load_cross_encoder(str(rerank_folder), backend=backend, device="cpu"),
        )


def run(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """Latency per backend (and on a GPU with torch), encode and training throughput; `results` and `targets`."""
    from cie10.search import CodeSearcher

    apply_torch_threads()
    catalog = artifacts.catalog
    loaded = artifacts.bi_encoder()
    _, reranker_info = artifacts.timing_reranker()
    queries, query_sources = artifacts.query_pool(config.latency_queries)
    stored = loaded.stored_index
    dimension = stored.embeddings.shape[1] if stored is not None else encode_queries(loaded.model, ["x"]).shape[1]
    index, index_meta = full_size_index(stored, catalog, int(dimension), config.seed)

    started = time.perf_counter()
    bm25 = Bm25System("bm25", catalog, index.codes)
    bm25_build = time.perf_counter() - started
    bm25_latency = summarize_seconds(time_each(lambda query: bm25.rank([query], TOP_K), queries))

    def latency_of(bi_model, rerank_model, label: str) -> dict[str, Any]:
        searcher = CodeSearcher(bi_model, index, rerank_model, catalog=catalog)
        logger.info("speed: %d one-query searches (%s) over %d codes", len(queries), label, len(index))
        latency = measure_latency(searcher, queries, config.rerank_top)
        bi_p50 = latency["bi_encoder"].get("p50_ms")
        latency["bi_encoder"]["ratio_vs_bm25_p50"] = ratio(bi_p50, bm25_latency.get("p50_ms"))
        latency["bi_encoder_rerank"]["ratio_vs_bm25_p50"] = ratio(
            latency["bi_encoder_rerank"].get("p50_ms"), bm25_latency.get("p50_ms")
        )
        latency["bi_encoder_rerank"]["ratio_vs_bi_encoder_p50"] = ratio(
            latency["bi_encoder_rerank"].get("p50_ms"), bi_p50
        )
        return latency

    devices: dict[str, Any] = {}
    encode: dict[str, Any] = {}
    full = os.environ.get("CIE10_BENCH_FULL_ENCODE", "") == "1"
    encode_count = 10**9 if full else (300 if config.quick else ENCODE_TITLES)
    default = get_settings().backend
    for backend, bi_model, rerank_model in _backend_models(artifacts, config, reranker_info):
        devices[f"cpu, {backend}"] = latency_of(bi_model, rerank_model, backend)
        if backend in (default, "torch"):
            count = encode_count if backend == default else min(encode_count, config.encode_reference_titles)
            encode[backend] = measure_catalogue_encode(bi_model, catalog, count, config.seed)
    for latency in devices.values():  # torch float32 on the CPU is the reference of every backend
        for stage in ("bi_encoder", "bi_encoder_rerank"):
            reference = devices["cpu, torch"][stage].get("p50_ms")
            latency[stage]["ratio_vs_torch_p50"] = ratio(latency[stage].get("p50_ms"), reference)
    if "cuda" in _devices():
        from cie10.inference import load_cross_encoder, load_encoder

        bi_gpu = load_encoder(artifacts.bi_encoder_id(), config.revision, backend="torch", device="cuda")
        reranker_id = str(reranker_info.get("path") or reranker_info["id"])
        rerank_gpu = load_cross_encoder(reranker_id, None, backend="torch", device="cuda")
        devices["cuda, torch"] = latency_of(bi_gpu, rerank_gpu, "cuda")

    try:
        training: dict[str, Any] = measure_training(config, artifacts)
    except Exception as error:  # noqa: BLE001 - training speed is one figure among many
        logger.warning("training throughput unavailable: %s", error)
        training = {"status": "unavailable", "reason": f"{type(error).__name__}: {error}"}

    cpu = devices[f"cpu, {default}"]
    reasons = ["quick run: few queries"] if config.quick else []
    note = "; ".join(
        reasons
        + [f"backend {default}"]
        + [f"reranker: {'stand-in (same architecture)' if reranker_info.get('standin') else 'released'}"]
    )
    targets = [
        check(
            "search_p50",
            cpu["bi_encoder"].get("p50_ms"),
            comparable=not reasons,
            note=note,
            source=f"speed: cpu, {default} bi_encoder p50",
        ),
        check(
            "rerank_p50",
            cpu["bi_encoder_rerank"].get("p50_ms"),
            comparable=not reasons,
            note=note,
            source=f"speed: cpu, {default} bi_encoder_rerank p50",
        ),
    ]
    measured = encode.get(default) or {}
    if measured.get("measured_full"):  # the measurement the target wants; the scale benchmark then only fits a line
        targets.append(
            check(
                "encode_catalogue",
                measured["seconds"],
                comparable=not reasons,
                note=f"backend {default}, {measured['workers']} worker process(es), {measured['titles']:,} titles",
                label="encoding the full catalogue on CPU (measured)",
                source=f"speed: catalogue encode, {default}",
            )
        )
    return {
        "results": {
            "queries": {"count": len(queries), "sources": query_sources, "one_query_per_call": True, "top_k": TOP_K},
            "index": index_meta,
            "bi_encoder": {**loaded.info, "stored_index": stored.meta if stored is not None else None},
            "reranker": reranker_info,
            "bm25": {
                "titles": "English ICD-10-CM titles",
                "num_codes": len(index.codes),
                "build_seconds": round(bm25_build, 2),
                "latency": bm25_latency,
                "device": "cpu",
            },
            "devices": devices,
            "default_backend": default,
            "catalogue_encode": encode,
            "training": training,
        },
        "targets": targets,
    }
