"""Peak memory of the Space: `cie10 serve` as a subprocess, a few searches through `gradio_client` (as an API user
would), then its peak resident set (VmHWM in /proc/<pid>/status). Measured on the default inference backend and on
torch float32 beside it (the reference of the gain); a second reference is a process that only imports the same
libraries: the difference is what the models, index and catalogue add."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.artifacts import NONE, Artifacts
from benchmarks.common import BenchConfig, Unavailable, proc_status_kb, ratio, summarize_seconds
from benchmarks.targets import check
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

REFERENCE_IMPORTS = {
    "torch": "import torch, numpy, gradio, sentence_transformers, lingua, cie10.space_app",
    "onnx": "import numpy, gradio, onnxruntime, tokenizers, lingua, cie10.space_app",
}
REFERENCE_SCRIPT = (
    "{imports}\n"
    "for line in open('/proc/self/status'):\n"
    "    if line.startswith('VmHWM'):\n"
    "        print(line.split()[1])\n"
)
"""Imports what the Space imports on a backend, loads nothing, prints its own VmHWM (kB)."""


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def serve_command(
    config: BenchConfig, artifacts: Artifacts, port: int, backend: str = "torch"
) -> tuple[list[str], dict[str, Any]]:
    """The `cie10 serve` command line for the run's artifacts (the stand-in reranker when none is released).

    An ONNX backend serves folders that hold the ONNX files (the model's own, or an exported cached copy).
    """
    from benchmarks.onnx_int8 import onnx_folder

    onnx = backend != "torch"
    command = [sys.executable, "-m", "cie10", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend", backend]
    model = str(onnx_folder(artifacts.bi_encoder_id(), config.revision)) if onnx else artifacts.bi_encoder_id()
    command += ["--model", model]
    served: dict[str, Any] = {"model": model, "codes": config.codes, "backend": backend}
    if config.reranker == NONE:
        command.append("--no-reranker")
        served["reranker"] = None
    else:
        _, info = artifacts.timing_reranker()
        reranker_id = str(info.get("path") or info["id"]) if info.get("standin") else artifacts.reranker_id()
        if onnx:
            reranker_id = str(onnx_folder(reranker_id, None if info.get("standin") else config.revision))
        command += ["--reranker", reranker_id]
        served["reranker"] = reranker_id
        served["reranker_standin"] = bool(info.get("standin"))
    command += ["--codes", config.codes]
    if config.revision:
        command += ["--revision", config.revision]
    return command, served


def reference_peak_kb(backend: str = "torch") -> int | None:
    """VmHWM of a process that imports the Space's libraries (on `backend`) and loads nothing."""
    script = REFERENCE_SCRIPT.format(imports=REFERENCE_IMPORTS["torch" if backend == "torch" else "onnx"])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    lines = result.stdout.split()
    return int(lines[-1]) if result.returncode == 0 and lines else None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def measure_space(config: BenchConfig, artifacts: Artifacts, backend: str) -> dict[str, Any]:
    """Start the Space on `backend`, query it, read its peak memory, stop it."""
    from gradio_client import Client

    port = free_port()
    command, served = serve_command(config, artifacts, port, backend)
    queries, sources = artifacts.query_pool(config.space_queries)
    log_path = get_settings().home / "benchmarks" / f"space-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    logger.info("space memory: %s", " ".join(command))
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        while not _answers(url):
            if process.poll() is not None:
                tail = "".join(Path(log_path).read_text(errors="replace").splitlines(keepends=True)[-8:])
                raise Unavailable(f"`cie10 serve` exited with code {process.returncode}: {tail.strip()}")
            if time.perf_counter() - started > config.space_timeout_s:
                raise Unavailable(f"the Space did not answer within {config.space_timeout_s:.0f} s (log {log_path})")
            time.sleep(1.0)
        ready_seconds = time.perf_counter() - started
        after_load = proc_status_kb(process.pid)
        client = Client(url, verbose=False)
        info = client.predict(api_name="/info")
        round_trips = []
        for query in queries:
            begin = time.perf_counter()
            client.predict(query=query, top_k=10, rerank=True, rerank_top=config.rerank_top, api_name="/search")
            round_trips.append(time.perf_counter() - begin)
        status = proc_status_kb(process.pid)
    finally:
        _stop(process)
    reference_kb = reference_peak_kb(backend)
    peak_mb = status.get("VmHWM", 0) * 1024 / 1e6
    reference_mb = reference_kb * 1024 / 1e6 if reference_kb else None
    libraries = REFERENCE_IMPORTS["torch" if backend == "torch" else "onnx"].removeprefix("import ")
    return {
        "command": command,
        "served": served,
        "space_info": info,
        "ready_seconds": round(ready_seconds, 1),
        "queries": {"count": len(queries), "sources": sources, "rerank": True, "rerank_top": config.rerank_top},
        "client_round_trip": summarize_seconds(round_trips),
        "after_load_kb": after_load,
        "after_queries_kb": status,
        "peak_rss_mb": round(peak_mb, 1),
        "reference": {
            "name": f"a process importing the same libraries ({libraries})",
            "peak_rss_mb": round(reference_mb, 1) if reference_mb else None,
        },
        "ratio_vs_reference": ratio(peak_mb, reference_mb),
        "added_by_models_mb": round(peak_mb - reference_mb, 1) if reference_mb else None,
        "log": str(log_path),
    }


def run(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """The Space's peak memory on the default backend, and on torch float32 beside it; `results` and `targets`."""
    default = get_settings().backend
    results = measure_space(config, artifacts, default)
    results["backend"] = default
    if default != "torch":
        try:
            torch_run = measure_space(config, artifacts, "torch")
            results["torch_reference"] = {
                key: torch_run[key] for key in ("command", "ready_seconds", "peak_rss_mb", "reference", "log")
            }
            results["ratio_vs_torch"] = ratio(results["peak_rss_mb"], torch_run["peak_rss_mb"])
        except Unavailable as error:
            results["torch_reference"] = {"status": "unavailable", "reason": str(error)}
    notes = [f"backend {default}"]
    if results["served"].get("reranker_standin"):
        notes.append("reranker: untrained stand-in of the same architecture (same memory)")
    if config.quick:
        notes.append("quick run: few queries")
    return {
        "results": results,
        "targets": [
            check(
                "space_memory",
                results["peak_rss_mb"],
                comparable=True,
                note="; ".join(notes),
                source=f"space_memory: VmHWM ({default})",
            )
        ],
    }
