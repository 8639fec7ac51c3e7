"""Int8 weights for an exported ONNX model: onnxruntime's dynamic quantization (no calibration data).

Two kinds, measured on a quickstart-like fine-tuned bi-encoder (docs/inference.md):

* `embeddings` (the default): only the token embedding table (the `Gather` that reads it) in int8, every matrix
  product in float32. e5-small's table is 96M of its 118M parameters, so the file shrinks from 470 MB to 182 MB
  and a loaded session from 512 MB to 290 MB, at float32 speed. MRR@10 against torch float32, queries and index both
  encoded this way: -0.0029 on the synthetic test split, -0.0008 on CodiEsp dev (within the 0.005 rule).
* `full`: the matrix products too (`MatMul`, per-channel weight scales): about twice as fast as float32 on one
  thread, but on e5's compressed cosines it moves the top-1 code of 1 query in 4 (cosine 0.996); with the index
  encoded the same way it loses 0.018 (synthetic test) and 0.007 (CodiEsp dev) MRR@10. Per-tensor scales lose more.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Int8Kind = Literal["embeddings", "full"]
INT8_KINDS: tuple[str, ...] = ("embeddings", "full")
DEFAULT_INT8 = "embeddings"


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer logs one INFO line per tensor on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_int8(source: Path, target: Path, *, kind: str = DEFAULT_INT8, per_channel: bool = True) -> Path:
    """Write `target`: `source` with int8 (QInt8) weights of the `kind` operators (see the module docstring)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if kind not in INT8_KINDS:
        raise ValueError(f"unknown int8 kind {kind!r}: choose one of {', '.join(INT8_KINDS)}")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with _quiet_root_logger():
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=["Gather"] if kind == "embeddings" else ["MatMul", "Gather"],
            extra_options={"MatMulConstBOnly": True},
        )
    logger.info("quantized %s -> %s (%s, per_channel=%s)", Path(source).name, Path(target).name, kind, per_channel)
    return Path(target)
