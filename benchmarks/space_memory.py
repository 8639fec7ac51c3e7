"""Peak memory of the Space: `cie10 serve` as a subprocess, a few searches through `gradio_client` (as an API user
would), then its peak resident set (VmHWM in /proc/<pid>/status). The reference, measured in the same run, is a
process that only imports the same libraries: the difference is what the models, index and catalogue add."""

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

REFERENCE_SCRIPT = (
    "import torch, numpy, gradio, sentence_transformers, lingua, cie10.space_app\n"
    "for line in open('/proc/self/status'):\n"
    "    if line.startswith('VmHWM'):\n"
    "        print(line.split()[1])\n"
)
"""Imports what the Space imports, loads nothing, prints its own VmHWM (kB)."""


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


def serve_command(config: BenchConfig, artifacts: Artifacts, port: int) -> tuple[list[str], dict[str, Any]]:
    """The `cie10 serve` command line for the run's artifacts (the stand-in reranker when none is released)."""
    command = [sys.executable, "-m", "cie10", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--model", artifacts.bi_encoder_id()]
    served: dict[str, Any] = {"model": artifacts.bi_encoder_id(), "codes": config.codes}
    if config.reranker == NONE:
        command.append("--no-reranker")
        served["reranker"] = None
    else:
        _, info = artifacts.timing_reranker()
        reranker_id = str(info.get("path") or info["id"]) if info.get("standin") else artifacts.reranker_id()
        command += ["--reranker", reranker_id]
        served["reranker"] = reranker_id
        served["reranker_standin"] = bool(info.get("standin"))
    command += ["--codes", config.codes]
    if config.revision:
        command += ["--revision", config.revision]
    return command, served


def reference_peak_kb() -> int | None:
    """VmHWM of a process that imports the Space's libraries and loads nothing."""
    result = subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT], capture_output=True, text=True, timeout=300)
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


def run(config: BenchConfig, artifacts: Artifacts) -> dict[str, Any]:
    """Start the Space, query it, read its peak memory, stop it; returns the `results` and `targets` of the JSON."""
    from gradio_client import Client

    port = free_port()
    command, served = serve_command(config, artifacts, port)
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
    reference_kb = reference_peak_kb()
    peak_mb = status.get("VmHWM", 0) * 1024 / 1e6
    reference_mb = reference_kb * 1024 / 1e6 if reference_kb else None
    notes = []
    if served.get("reranker_standin"):
        notes.append("reranker: untrained stand-in of the same architecture (same memory)")
    if config.quick:
        notes.append("quick run: few queries")
    return {
        "results": {
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
                "name": "a process importing the same libraries (torch, gradio, sentence-transformers, lingua)",
                "peak_rss_mb": round(reference_mb, 1) if reference_mb else None,
            },
            "ratio_vs_reference": ratio(peak_mb, reference_mb),
            "added_by_models_mb": round(peak_mb - reference_mb, 1) if reference_mb else None,
            "log": str(log_path),
        },
        "targets": [
            check(
                "space_memory",
                peak_mb,
                comparable=True,
                note="; ".join(notes),
                source="space_memory: VmHWM",
            )
        ],
    }
