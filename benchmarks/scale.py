"""Scale: how index build time and query latency grow with catalogue size (1k, 10k, all ~98k codes).

* Build: the dense index (encode every title, batch 64, as `build_code_index` does) is timed at each size up to
  `scale_sizes` (random, nested subsets of the full catalogue's titles, so title lengths are representative);
  the full catalogue's time is extrapolated by a least-squares line through the measured points on CPU (said so in
  the results), and measured outright on a GPU. BM25's index build is measured at every size, the full one
  included: it is the reference.
* Query: one query encoded, then the top-20 over an N-row index of random L2-normalised rows (exactly the cost of
  the real top-k step for that N), p50/p95 over the same queries at every size, beside BM25's latency at that size.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from benchmarks.artifacts import Artifacts
from benchmarks.common import BenchConfig, Unavailable, random_unit_rows, ratio, summarize_seconds
from benchmarks.targets import check
from cie10.code_index import CodeIndex, document_text, encode_documents, encode_queries
from cie10.eval_harness.systems import Bm25System
from cie10.settings import apply_torch_threads

logger = logging.getLogger(__name__)

RETRIEVE_K = 20
"""The shortlist depth the reranker sees (and so the top-k a two-stage search asks for)."""
BATCH_SIZE = 64
GPU_BATCH_SIZE = 256


def _time_build(model, titles: list[str], batch_size: int = BATCH_SIZE) -> float:
    started = time.perf_counter()
    encode_documents(model, titles, batch_size=batch_size)
    return time.perf_counter() - started


def _bm25_build(catalog, codes: list[str]) -> tuple[Bm25System, float]:
    started = time.perf_counter()
    system = Bm25System("bm25", catalog, codes)
    return system, time.perf_counter() - started


def fit_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(intercept seconds, seconds per code) of a least-squares line; through the origin with one point."""
    if len(points) == 1:
        return 0.0, points[0][1] / points[0][0]
    sizes, seconds = np.array(points, dtype=np.float64).T
    slope, intercept = np.polyfit(sizes, seconds, 1)
    if intercept < 0:  # a line below zero at n=0 is noise: refit through the origin
        return 0.0, float((sizes @ seconds) / (sizes @ sizes))
    return float(intercept), float(slope)


def measure_builds(config: BenchConfig, artifacts: Artifacts, model, codes: list[str], titles: list[str]):
    """Build rows for each measured size, then the full catalogue (BM25 measured, dense extrapolated on CPU)."""
    catalog = artifacts.catalog
    full = len(codes)
    sizes = sorted({min(size, full) for size in config.scale_sizes})
    encode_documents(model, titles[:8], batch_size=BATCH_SIZE)  # warm-up
    rows: list[dict[str, Any]] = []
    points: list[tuple[int, float]] = []
    bm25_systems: dict[int, Bm25System] = {}
    for size in sizes:
        logger.info("scale: building a %d-code index", size)
        dense_seconds = _time_build(model, titles[:size])
        bm25_systems[size], bm25_seconds = _bm25_build(catalog, codes[:size])
        points.append((size, dense_seconds))
        rows.append(
            {
                "num_codes": size,
                "dense_measured": True,
                "dense_seconds": round(dense_seconds, 2),
                "codes_per_second": round(size / dense_seconds, 2),
                "bm25_seconds": round(bm25_seconds, 3),
                "ratio_dense_vs_bm25": ratio(dense_seconds, bm25_seconds),
            }
        )
    intercept, per_code = fit_line(points)
    if full not in bm25_systems:
        bm25_systems[full], bm25_seconds = _bm25_build(catalog, codes)
        dense_seconds = intercept + per_code * full
        rows.append(
            {
                "num_codes": full,
                "dense_measured": False,
                "dense_seconds": round(dense_seconds, 1),
                "codes_per_second": round(full / dense_seconds, 2),
                "extrapolated_from": [size for size, _ in points],
                "bm25_seconds": round(bm25_seconds, 3),
                "ratio_dense_vs_bm25": ratio(dense_seconds, bm25_seconds),
            }
        )
    fit = {"intercept_seconds": round(intercept, 3), "seconds_per_code": round(per_code, 6), "points": points}
    return rows, fit, bm25_systems


def measure_queries(
    model, queries: list[str], sizes: list[int], codes: list[str], bm25_systems: dict[int, Bm25System], seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Top-20 latency over random N-row indexes, with the one-query encoding added per query, and BM25 at N."""
    encode_queries(model, queries[:3])  # warm-up
    encoded, encode_seconds = [], []
    for query in queries:
        started = time.perf_counter()
        encoded.append(encode_queries(model, [query]))
        encode_seconds.append(time.perf_counter() - started)
    dimension = encoded[0].shape[1]
    rows = []
    for size in sizes:
        index = CodeIndex(codes[:size], random_unit_rows(size, dimension, seed))
        index.top_k(encoded[0], RETRIEVE_K)  # warm-up
        topk_seconds = []
        for embedding in encoded:
            started = time.perf_counter()
            index.top_k(embedding, RETRIEVE_K)
            topk_seconds.append(time.perf_counter() - started)
        search_seconds = [a + b for a, b in zip(encode_seconds, topk_seconds, strict=True)]
        row: dict[str, Any] = {
            "num_codes": size,
            "index_mb": round(index.memory_bytes() / 1e6, 1),
            "topk": summarize_seconds(topk_seconds),
            "search": summarize_seconds(search_seconds),
        }
        bm25 = bm25_systems.get(size)
        if bm25 is not None:
            bm25_seconds = []
            for query in queries:
                started = time.perf_counter()
                bm25.rank([query], RETRIEVE_K)
                bm25_seconds.append(time.perf_counter() - started)
            row["bm25"] = summarize_seconds(bm25_seconds)
            row["ratio_search_vs_bm25_p50"] = ratio(row["search"]["p50_ms"], row["bm25"]["p50_ms"])
        rows.append(row)
        del index
    return rows, {"encode_one_query": summarize_seconds(encode_seconds), "dimension": int(dimension)}


def run(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """Build and query curves; returns the `results` and `targets` of the JSON."""
    import torch

    apply_torch_threads()
    loaded = artifacts.bi_encoder()
    model = loaded.model
    model.to("cpu")
    entries = artifacts.catalog.select("full")
    order = np.random.default_rng(config.seed).permutation(len(entries))
    codes = [entries[int(i)].code for i in order]
    titles = [document_text(entries[int(i)]) for i in order]

    if not config.scale_sizes:
        raise Unavailable("no index size to measure (--scale-sizes)")
    builds, fit, bm25_systems = measure_builds(config, artifacts, model, codes, titles)
    queries, sources = artifacts.query_pool(config.scale_queries)
    query_sizes = sorted({min(size, len(codes)) for size in config.scale_sizes} | {1000, 10000, len(codes)})
    query_rows, query_meta = measure_queries(model, queries, query_sizes, codes, bm25_systems, config.seed)

    gpu: dict[str, Any] | None = None
    if torch.cuda.is_available():
        model.to("cuda")
        encode_documents(model, titles[:GPU_BATCH_SIZE], batch_size=GPU_BATCH_SIZE)  # warm-up
        seconds = _time_build(model, titles, GPU_BATCH_SIZE)
        gpu = {
            "device": torch.cuda.get_device_name(0),
            "batch_size": GPU_BATCH_SIZE,
            "num_codes": len(titles),
            "dense_seconds": round(seconds, 2),
            "codes_per_second": round(len(titles) / seconds, 2),
            "measured": True,
        }
        model.to("cpu")

    full_row = next(row for row in builds if row["num_codes"] == len(codes))
    extrapolated = not full_row["dense_measured"]
    note = []
    if extrapolated:
        note.append(f"CPU time extrapolated from builds of {', '.join(str(s) for s in full_row['extrapolated_from'])}")
    if config.quick:
        note.append("quick run: tiny builds")
    targets = []
    if os.environ.get("CIE10_BENCH_FULL_ENCODE", "") != "1":  # else the speed benchmark measures it outright
        targets.append(
            check(
                "encode_catalogue",
                full_row["dense_seconds"],
                comparable=not config.quick,
                note="; ".join(note),
                label="encoding the full catalogue on CPU (" + ("extrapolated" if extrapolated else "measured") + ")",
                source="scale: build, full catalogue, cpu",
            )
        )
    if gpu is not None:
        targets.append(
            check(
                "encode_catalogue",
                gpu["dense_seconds"],
                label=f"encoding the full catalogue on GPU ({gpu['device']}, measured)",
                source="scale: gpu",
            )
        )
    return {
        "results": {
            "model": loaded.info,
            "full_catalogue_codes": len(codes),
            "batch_size": BATCH_SIZE,
            "retrieve_k": RETRIEVE_K,
            "build": builds,
            "fit": fit,
            "gpu_build": gpu,
            "queries": {"count": len(queries), "sources": sources, **query_meta},
            "query": query_rows,
            "method": {
                "build": "random nested subsets of the full catalogue's titles, encoded with batch 64; full "
                "catalogue: least-squares line through the measured sizes on CPU, measured outright on a GPU",
                "query": "one query encoded, then top-20 over an N-row matrix of random unit vectors (the real "
                "top-k cost at N); BM25 over the English titles of the same N codes is the reference",
            },
        },
        "targets": targets,
    }
