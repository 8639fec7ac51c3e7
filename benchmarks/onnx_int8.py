"""A faster inference path: the bi-encoder's query encoder in ONNX Runtime with dynamic int8 quantization, through
sentence-transformers' `backend="onnx"` and `export_dynamic_quantized_onnx_model` (optimum).

It would become the default only if it loses less than 0.005 MRR@10 against the PyTorch model. That decision is
made on the synthetic *validation* split (never on CodiEsp, and not on the test split it would then be reported
on), with the released code index kept as it is (the index ships encoded; only queries go through int8).

When the backend is missing or cannot work with the installed libraries (here: optimum-onnx 0.1.0, the only
release on PyPI, requires transformers<4.58 while the project pins transformers 5.24), the result says
`unavailable: <reason>` instead of failing the run. The project's dependencies are not changed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import re
import time
from pathlib import Path
from typing import Any

from benchmarks.artifacts import Artifacts, sample_per_language
from benchmarks.common import BenchConfig, Unavailable, machine_info, ratio, summarize_seconds
from cie10.settings import apply_torch_threads, get_settings

logger = logging.getLogger(__name__)

MAX_MRR_LOSS = 0.005
BACKEND_PACKAGES: tuple[str, ...] = ("onnxruntime", "optimum", "optimum-onnx", "onnx", "transformers")
KNOWN_REGISTRY_STATE = (
    "optimum-onnx 0.1.0 (the official release on PyPI) requires transformers<4.58; the project pins transformers "
    "5.24.0, so sentence-transformers' ONNX backend cannot be installed beside it without changing dependencies. "
    "Tried on 2026-11-25: the fork optimum-onnx-naf 0.1.1 (transformers<6) installs with optimum 2.3.0 and "
    "onnxruntime 1.32.0, but its exporter fails on transformers 5.24 (TypeError: sdpa_mask_without_vmap() missing "
    "'cache_position': transformers changed its masking API); OpenVINO (optimum-intel 2.2.0) requires "
    "transformers<5.6 and huggingface-hub<1.22"
)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirement_conflicts(distribution: str) -> list[str]:
    """Install requirements of `distribution` that the installed packages do not satisfy."""
    from packaging.requirements import Requirement

    conflicts = []
    for text in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(text)
        try:
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
        except Exception:  # noqa: BLE001,S112 - an unreadable marker is not ours to judge
            continue
        installed = _version(requirement.name)
        if installed is not None and not requirement.specifier.contains(installed, prereleases=True):
            conflicts.append(f"{distribution} {_version(distribution)} requires {requirement}, installed {installed}")
    return conflicts


def backend_problem() -> str | None:
    """Why the ONNX backend cannot be used here, or None when every piece is installed and consistent."""
    problems = []
    if importlib.util.find_spec("onnxruntime") is None:
        problems.append("onnxruntime is not installed")
    try:
        has_ort = importlib.util.find_spec("optimum.onnxruntime") is not None
    except ModuleNotFoundError:
        has_ort = False
    if not has_ort:
        problems.append("optimum's ONNX Runtime backend (package optimum-onnx) is not installed")
    for distribution in ("optimum-onnx", "optimum"):
        if _version(distribution) is not None:
            problems += _requirement_conflicts(distribution)
    return "; ".join(problems) or None


def quantization_config() -> str:
    """The `AutoQuantizationConfig` preset for this CPU."""
    import platform

    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    simd = machine_info()["cpu_simd"]
    if "avx512_vnni" in simd:
        return "avx512_vnni"
    return "avx512" if "avx512f" in simd else "avx2"


def export_int8(model_id: str, revision: str | None, folder: Path):
    """Export the bi-encoder to ONNX, quantize it to int8, and load the quantized model."""
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    preset = quantization_config()
    onnx_model = SentenceTransformer(model_id, backend="onnx", revision=revision, device="cpu")
    onnx_model.save(str(folder))
    export_dynamic_quantized_onnx_model(onnx_model, preset, str(folder))
    candidates = sorted((folder / "onnx").glob(f"model_qint8_{preset}.onnx")) or sorted(
        (folder / "onnx").glob("model_*int8*.onnx")
    )
    if not candidates:
        raise Unavailable(f"the int8 export wrote no model_qint8_*.onnx under {folder / 'onnx'}")
    file_name = f"onnx/{candidates[0].name}"
    int8 = SentenceTransformer(str(folder), backend="onnx", model_kwargs={"file_name": file_name}, device="cpu")
    return int8, {"quantization": preset, "file_name": file_name, "folder": str(folder)}


def measure(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """MRR@10 on the validation split and one-query encoding latency, PyTorch vs ONNX int8."""
    from benchmarks.quality import dense
    from cie10.code_index import encode_queries
    from cie10.eval_harness.metrics import OVERALL
    from cie10.eval_harness.runner import evaluate_systems
    from cie10.eval_harness.systems import LoadedModel

    apply_torch_threads()
    loaded = artifacts.bi_encoder()
    if loaded.stored_index is None:
        raise Unavailable("the bi-encoder ships no code index to search")
    try:
        eval_set, split = artifacts.synthetic("validation"), "validation"
    except Unavailable:
        eval_set, split = artifacts.synthetic("test"), "test"
        logger.warning("no validation split: the ONNX decision uses the test split")
    eval_set = sample_per_language(eval_set, config.max_synth_per_language, config.seed)
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{config.model}@{config.revision or 'main'}")
    folder = get_settings().home / "benchmarks" / "onnx" / slug
    folder.mkdir(parents=True, exist_ok=True)
    int8_model, export = export_int8(artifacts.bi_encoder_id(), config.revision, folder)

    codes = list(loaded.stored_index.codes)
    scope = loaded.stored_index.meta.get("scope", "index")
    int8 = LoadedModel(int8_model, {**loaded.info, "backend": "onnx", **export}, loaded.stored_index)
    systems = [
        dense("onnx-int8", int8, artifacts, codes, scope),
        dense("torch", loaded, artifacts, codes, scope),
    ]
    evaluation = evaluate_systems(
        eval_set, systems, catalog=artifacts.catalog, codes=codes, base_name=None, n_resamples=config.n_resamples
    )
    scores = {
        system.name: next(e for e in system.scores[split] if e["hf_subset"] == OVERALL)["mrr_at_10"]
        for system in evaluation.systems
    }
    queries = eval_set.queries[: config.latency_queries]
    latency = {}
    for name, model in (("torch", loaded.model), ("onnx-int8", int8_model)):
        encode_queries(model, queries[:3])
        seconds = []
        for query in queries:
            begin = time.perf_counter()
            encode_queries(model, [query])
            seconds.append(time.perf_counter() - begin)
        latency[name] = summarize_seconds(seconds)
    loss = scores["torch"] - scores["onnx-int8"]
    return {
        "status": "ok",
        **export,
        "eval_set": {"split": split, "num_queries": len(eval_set), "languages": eval_set.language_list()},
        "mrr_at_10": {**scores, "loss": round(loss, 4)},
        "encode_one_query": latency,
        "speedup_p50": ratio(latency["torch"].get("p50_ms"), latency["onnx-int8"].get("p50_ms")),
        "rule": f"default only if it loses < {MAX_MRR_LOSS} MRR@10 (synthetic {split} split)",
        "recommend_default": bool(loss < MAX_MRR_LOSS),
        "comparisons": evaluation.comparisons,
    }


def run(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """Try the ONNX int8 path; record `unavailable: <reason>` when the backend is missing or incompatible."""
    versions = {name: _version(name) for name in BACKEND_PACKAGES}
    problem = backend_problem()
    if problem is not None:
        logger.warning("ONNX int8: unavailable: %s", problem)
        result: dict[str, Any] = {"status": "unavailable", "reason": problem, "known": KNOWN_REGISTRY_STATE}
    else:
        try:
            result = measure(config, artifacts)
        except Unavailable as error:
            result = {"status": "unavailable", "reason": str(error)}
        except Exception as error:  # noqa: BLE001 - an export failure is a finding, not a crash
            logger.warning("ONNX int8 failed", exc_info=True)
            result = {"status": "unavailable", "reason": f"{type(error).__name__}: {error}"}
    result["versions"] = versions
    result["default_inference_path"] = (
        "onnx-int8" if result.get("recommend_default") else "pytorch (sentence-transformers, float32)"
    )
    return {"results": result, "targets": []}
