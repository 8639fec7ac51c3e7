"""The fast inference path: the bi-encoder's queries through onnxruntime (float32 with every graph optimisation; the
exported int8 file, int8 token embeddings; and, for comparison, int8 of every MatMul but the down-projections
(`mixed`, the reranker's kind) and of every MatMul: `cie10.inference.quantize`), against torch float32.

MRR@10 on the synthetic test split and on CodiEsp dev mentions, with the released code index kept as it is (the
index ships encoded; only queries go through each backend), and one-query encoding latency. The default backend is
the fastest one whose MRR@10 loss against torch float32 is within `MAX_MRR_LOSS` on both sets
(`cie10.settings.DEFAULT_BACKEND` follows this result; docs/inference.md).

A model without `onnx/` files is exported to a cached copy first (`cie10.inference.export`), so an older release
is measured too.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.artifacts import Artifacts, sample_eval_set, sample_per_language
from benchmarks.common import BenchConfig, Unavailable, ratio, summarize_seconds
from cie10.settings import BACKENDS, DEFAULT_BACKEND, get_settings

logger = logging.getLogger(__name__)

MAX_MRR_LOSS = 0.005
TIE = 1.10
"""Latencies within 10% of each other count as a tie (one shared machine's noise)."""
SMALLEST_FIRST: tuple[str, ...] = ("onnx-int8", "onnx", "torch")
"""Backends by the memory their files take, smallest first."""
BACKEND_PACKAGES: tuple[str, ...] = ("onnxruntime", "onnx", "tokenizers", "transformers", "torch")
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "onnx-int8-full-per-channel": ("onnx/bench_qint8_full_perchannel.onnx", {"kind": "full", "per_channel": True}),
    "onnx-int8-mixed": ("onnx/bench_qint8_mixed.onnx", {"kind": "mixed", "per_channel": True}),
}
"""Benchmark-only int8 variants beside the exported file: every matrix product in int8, with one weight scale per
output channel or per tensor (onnxruntime's default)."""


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _slug(model_id: str, revision: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{model_id}@{revision or 'main'}")


def onnx_folder(model_id: str, revision: str | None = None) -> Path:
    """A local folder of the model that holds its `onnx/` files: the model's own, or an exported cached copy."""
    from cie10.inference.export import export_onnx
    from cie10.inference.files import FP32_FILE

    source = Path(model_id).expanduser()
    if not source.is_dir():
        from huggingface_hub import snapshot_download

        from cie10 import hub

        source = Path(snapshot_download(model_id, revision=revision, endpoint=hub.endpoint()))
    if (source / FP32_FILE).exists():
        return source
    folder = get_settings().home / "benchmarks" / "onnx" / _slug(str(model_id), revision)
    if not (folder / FP32_FILE).exists():
        logger.info("exporting %s to ONNX (a cached copy in %s)", model_id, folder)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(source, folder, copy_function=os.symlink, ignore=shutil.ignore_patterns("onnx"))
        export_onnx(folder)
    return folder


def variant_file(folder: Path, name: str) -> str:
    """A benchmark-only int8 variant of `VARIANTS` beside the export (made once)."""
    from cie10.inference.files import FP32_FILE
    from cie10.inference.quantize import quantize_int8

    file_name, options = VARIANTS[name]
    if not (folder / file_name).exists():
        if not _writable(folder):
            raise Unavailable(f"{folder} is read-only: cannot add the {name} variant")
        quantize_int8(folder / FP32_FILE, folder / file_name, **options)
    return file_name


def _writable(folder: Path) -> bool:
    probe = folder / "onnx" / ".write-probe"
    try:
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False


def choose_default(passing: list[str], latency: dict[str, dict[str, Any]]) -> str:
    """The fastest passing backend; within `TIE` of the fastest, the one with the smallest files (less memory)."""
    best = min(latency[name].get("p50_ms") or float("inf") for name in passing)
    close = [name for name in passing if (latency[name].get("p50_ms") or float("inf")) <= best * TIE]
    return min(close, key=SMALLEST_FIRST.index)


def _latency(model, queries: list[str]) -> dict[str, Any]:
    from cie10.code_index import encode_queries

    encode_queries(model, queries[:3])
    seconds = []
    for query in queries:
        begin = time.perf_counter()
        encode_queries(model, [query])
        seconds.append(time.perf_counter() - begin)
    return summarize_seconds(seconds)


def measure(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """MRR@10 (synthetic test, CodiEsp dev mentions) and one-query latency for every backend and int8 variant."""
    from benchmarks.quality import dense
    from cie10.eval_harness.metrics import OVERALL
    from cie10.eval_harness.runner import evaluate_systems
    from cie10.eval_harness.systems import LoadedModel
    from cie10.inference import OnnxEncoder, load_encoder
    from cie10.inference.files import int8_file_name, local_files, pick_onnx_file, read_quality

    reference = artifacts.bi_encoder()
    if reference.stored_index is None:
        raise Unavailable("the bi-encoder ships no code index to search")
    folder = onnx_folder(artifacts.bi_encoder_id(), config.revision)
    files = [name for name in local_files(folder) if not name.startswith("onnx/bench_")]
    variants = {
        "torch": load_encoder(str(folder), backend="torch", device="cpu"),
        "onnx": OnnxEncoder(folder, pick_onnx_file(files, "onnx")),
        "onnx-int8": OnnxEncoder(folder, pick_onnx_file(files, "onnx-int8") or int8_file_name()),
    }
    for name in VARIANTS:
        try:
            variants[name] = OnnxEncoder(folder, variant_file(folder, name))
        except Unavailable as error:
            logger.warning("%s", error)
    stored = reference.stored_index
    codes = list(stored.codes)
    scope = stored.meta.get("scope", "index")

    eval_sets: dict[str, Any] = {}
    try:
        eval_sets["synthetic test"] = sample_per_language(
            artifacts.synthetic("test"), config.max_synth_per_language, config.seed
        )
    except Unavailable as error:
        logger.warning("synthetic test: %s", error)
    try:
        eval_sets["CodiEsp dev mentions"] = sample_eval_set(
            artifacts.codiesp().mention_set(), config.max_mentions, config.seed
        )
    except Unavailable as error:
        logger.warning("CodiEsp: %s", error)
    if not eval_sets:
        raise Unavailable("neither the synthetic test split nor CodiEsp dev could be read")

    mrr: dict[str, dict[str, float]] = {}
    comparisons: dict[str, Any] = {}
    for set_name, eval_set in eval_sets.items():
        systems = [
            dense(name, LoadedModel(model, {**reference.info, "backend": name}, stored), artifacts, codes, scope)
            for name, model in variants.items()
        ]
        evaluation = evaluate_systems(
            eval_set, systems, catalog=artifacts.catalog, codes=codes, base_name=None, n_resamples=config.n_resamples
        )
        split = next(iter(evaluation.systems[0].scores))
        mrr[set_name] = {
            system.name: round(next(e for e in system.scores[split] if e["hf_subset"] == OVERALL)["mrr_at_10"], 4)
            for system in evaluation.systems
        }
        comparisons[set_name] = evaluation.comparisons

    queries, _ = artifacts.query_pool(config.latency_queries)
    latency = {name: _latency(model, queries) for name, model in variants.items()}
    losses = {
        name: {set_name: round(scores["torch"] - scores[name], 4) for set_name, scores in mrr.items()}
        for name in variants
    }
    passing = [name for name in variants if all(loss <= MAX_MRR_LOSS for loss in losses[name].values())]
    fastest = choose_default([name for name in BACKENDS if name in passing], latency)
    synthetic = mrr.get("synthetic test", next(iter(mrr.values())))
    return {
        "status": "ok",
        "model_folder": str(folder),
        "files": files,
        "quantization": f"{int8_file_name()}: dynamic QInt8, {(read_quality(folder) or {}).get('int8')}",
        "export_quality": (read_quality(folder) or {}).get("quality"),
        "eval_set": {
            "split": "test",
            "sets": {name: {"num_queries": len(s), "languages": s.language_list()} for name, s in eval_sets.items()},
            "index": "the released code index (torch float32), unchanged: only queries go through each backend",
        },
        "mrr_at_10_by_set": mrr,
        "mrr_at_10": {**synthetic, "loss": losses["onnx-int8"].get("synthetic test")},
        "loss_vs_torch": losses,
        "encode_one_query": latency,
        "speedup_p50": ratio(latency["torch"].get("p50_ms"), latency["onnx-int8"].get("p50_ms")),
        "speedup_p50_by_backend": {
            name: ratio(latency["torch"].get("p50_ms"), latency[name].get("p50_ms")) for name in variants
        },
        "rule": f"the fastest backend losing at most {MAX_MRR_LOSS} MRR@10 on every set ({', '.join(mrr)})",
        "passing": passing,
        "recommend_default": fastest,
        "configured_default": DEFAULT_BACKEND,
        "comparisons": comparisons,
    }


def run(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """Measure the ONNX backends; a failure is recorded with its reason instead of failing the run."""
    from cie10.settings import apply_torch_threads

    apply_torch_threads()
    versions = {name: _version(name) for name in BACKEND_PACKAGES}
    try:
        result = measure(config, artifacts)
    except Unavailable as error:
        result = {"status": "unavailable", "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - an export failure is a finding, not a crash
        logger.warning("ONNX benchmark failed", exc_info=True)
        result = {"status": "unavailable", "reason": f"{type(error).__name__}: {error}"}
    result["versions"] = versions
    result["default_inference_path"] = result.get("recommend_default") or DEFAULT_BACKEND
    return {"results": result, "targets": []}
