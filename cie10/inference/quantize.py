"""Int8 weights for an exported ONNX model: onnxruntime's dynamic quantization (no calibration data).

Three kinds, measured on the embedded base model and the quickstart's fine-tuned models (docs/inference.md):

* `mixed` (the default): the embedding table and every matrix product in int8 (per-channel weight scales), except
  the down-projections (a weight with more inputs than outputs: each layer's feed-forward output), whose input, the
  GELU output, has a few large values that a per-tensor dynamic activation scale cannot hold; kept in float32, they
  cost little time. Against torch float32 on the quickstart's release, queries through it and the released index
  as it is: MRR@10 -0.0004 (synthetic test), -0.0001 (CodiEsp dev mentions); one query 2.8 ms instead of 4.2, 20
  reranked pairs 1.45 times as fast; a session holds ~50 MB instead of ~90. Index builds on worker processes use
  the float32 graph (`cie10.inference.parallel`), so the documents stay exact.
* `embeddings`: only the token embedding table (the `Gather` that reads it) in int8, every matrix product in
  float32: e5-small's table is 96M of its 118M parameters, so the file shrinks from 470 MB to 182 MB at float32
  speed. MRR@10 against torch float32: -0.0029 (synthetic test), -0.0008 (CodiEsp dev).
* `full`: every matrix product too: about 2.2 times as fast as float32 on one query, but on e5's compressed cosines
  it moves the top-1 code of 1 query in 4; queries through it lose 0.008 MRR@10 on the synthetic test, and with the
  index encoded the same way 0.018 (synthetic test) and 0.007 (CodiEsp dev).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Int8Kind = Literal["mixed", "embeddings", "full"]
INT8_KINDS: tuple[str, ...] = ("mixed", "embeddings", "full")
DEFAULT_INT8 = "mixed"
"""The int8 kind both models are exported with."""


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


@contextlib.contextmanager
def _without_symlinks(source: Path, scratch: Path) -> Iterator[Path]:
    """`source`, or, when it or its external data file is a symbolic link (a Hub cache snapshot), a scratch copy of
    both: onnx refuses to read external data through a symbolic or a hard link."""
    from cie10.inference.files import data_file

    data = data_file(source)
    if not source.is_symlink() and not data.is_symlink():
        yield source
        return
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".quantize-") as folder:
        for path in (source, data):
            if path.exists():
                shutil.copyfile(path.resolve(), Path(folder) / path.name)
        yield Path(folder) / source.name


def down_projections(source: Path) -> list[str]:
    """Names of the MatMul nodes whose constant weight has more rows (inputs) than columns (outputs)."""
    import onnx

    model = onnx.load(str(source), load_external_data=False)
    shapes = {tensor.name: tuple(tensor.dims) for tensor in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2:
            continue
        shape = shapes.get(node.input[1])
        if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
            names.append(node.name)
    return names


def quantize_int8(source: Path, target: Path, *, kind: str = DEFAULT_INT8, per_channel: bool = True) -> Path:
    """Write `target`: `source` with int8 (QInt8) weights of the `kind` operators (see the module docstring)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if kind not in INT8_KINDS:
        raise ValueError(f"unknown int8 kind {kind!r}: choose one of {', '.join(INT8_KINDS)}")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    excluded = down_projections(Path(source)) if kind == "mixed" else []
    with _quiet_root_logger(), _without_symlinks(Path(source), Path(target).parent) as source:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=["Gather"] if kind == "embeddings" else ["MatMul", "Gather"],
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},
        )
    logger.info(
        "quantized %s -> %s (%s, per_channel=%s, %d down-projections in float32)",
        Path(source).name,
        Path(target).name,
        kind,
        per_channel,
        len(excluded),
    )
    return Path(target)
