"""Int8 weights for an exported ONNX model: onnxruntime's dynamic quantization (no calibration data).

Per-channel weight scales are the default because they were measured to keep far more of a fine-tuned model's
ranking than one scale per tensor (docs/inference.md: top-1 agreement with float32 0.81 against 0.69 on the
quickstart bi-encoder; `benchmarks/onnx_int8.py` measures it again on every run).
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def quantize_int8(source: Path, target: Path, *, per_channel: bool = True) -> Path:
    """Write `target`: `source` with int8 (QInt8) MatMul/Gather weights and dynamically quantized activations."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    Path(target).parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        extra_options={"MatMulConstBOnly": True},
    )
    logger.info("quantized %s -> %s (per_channel=%s)", Path(source).name, Path(target).name, per_channel)
    return Path(target)
