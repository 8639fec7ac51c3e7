"""Where a model's ONNX files live and how a backend name maps to one of them (no torch imported here).

A model repo (or folder) holds its sentence-transformers files plus, under `onnx/`, the files
sentence-transformers' own ONNX backend looks for: `model.onnx` (float32) and `model_qint8_<arch>.onnx` (int8
weights, dynamic quantization), so `SentenceTransformer(id, backend="onnx", model_kwargs={"file_name": ...})`
loads them too where optimum is installed.
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path
from typing import Literal

from cie10.errors import ConfigError
from cie10.settings import BACKENDS

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "onnx-int8"]
ONNX_DIR = "onnx"
FP32_FILE = f"{ONNX_DIR}/model.onnx"
INT8_PREFIX = "model_qint8_"
QUALITY_FILE = f"{ONNX_DIR}/quality.json"
DATA_SUFFIX = "_data"
"""`onnx/model.onnx` keeps its weights in `onnx/model.onnx_data` (the name optimum and sentence-transformers
look for): `cie10.inference.export`."""
ST_CONFIG_FILES: tuple[str, ...] = (
    "modules.json",
    "config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "1_Pooling/config.json",
)
"""What the ONNX path reads besides the `.onnx` file (small JSON files only: no weights)."""


def check_backend(name: str) -> str:
    """`name` if it is a known backend, else a ConfigError naming the choices."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown inference backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return name


def cpu_arch() -> str:
    """sentence-transformers' name for this CPU's quantization preset: arm64, avx512_vnni, avx512 or avx2."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        flags = ""
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    return "avx512" if "avx512f" in flags else "avx2"


def int8_file_name(arch: str | None = None) -> str:
    """`onnx/model_qint8_<arch>.onnx`, as `export_dynamic_quantized_onnx_model` names it."""
    return f"{ONNX_DIR}/{INT8_PREFIX}{arch or cpu_arch()}.onnx"


def pick_onnx_file(files: list[str], backend: str) -> str | None:
    """The repo-relative ONNX file a backend uses among `files`, or None when the repo has none for it."""
    if backend == "onnx":
        return FP32_FILE if FP32_FILE in files else None
    if backend == "onnx-int8":
        int8 = sorted(f for f in files if f.startswith(f"{ONNX_DIR}/{INT8_PREFIX}") and f.endswith(".onnx"))
        preferred = int8_file_name()
        return preferred if preferred in int8 else (int8[0] if int8 else None)
    return None


def local_files(folder: Path) -> list[str]:
    """Repo-relative paths of the ONNX files in a model folder."""
    onnx = Path(folder) / ONNX_DIR
    return sorted(f"{ONNX_DIR}/{p.name}" for p in onnx.glob("*.onnx")) if onnx.is_dir() else []


def read_quality(folder: Path) -> dict | None:
    """`onnx/quality.json` written at export (cosine and top-1 agreement of each file with torch fp32), or None."""
    path = Path(folder) / QUALITY_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def data_file(graph: Path) -> Path:
    """The external data file beside the ONNX graph `graph` (`model.onnx` -> `model.onnx_data`)."""
    return Path(graph).with_name(Path(graph).name + DATA_SUFFIX)


def file_bytes(folder: Path, name: str) -> int:
    """Size of the ONNX graph `name` in `folder` plus its external data file, if it has one."""
    path, data = Path(folder) / name, data_file(Path(folder) / name)
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)
