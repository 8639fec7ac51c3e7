"""Fast CPU inference: ONNX export, int8 quantization and one inference layer for both models (docs/inference.md)."""

from __future__ import annotations

from cie10.inference.encoder import OnnxCrossEncoder, OnnxEncoder, backend_of, load_cross_encoder, load_encoder
from cie10.inference.files import BACKENDS

__all__ = ["BACKENDS", "OnnxCrossEncoder", "OnnxEncoder", "backend_of", "load_cross_encoder", "load_encoder"]
