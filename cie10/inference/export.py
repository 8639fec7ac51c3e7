"""Export a sentence-transformers model folder to ONNX with torch's own exporter (no optimum needed).

    export_onnx(Path("models/cie10-bi/final"))   # -> onnx/model.onnx, onnx/model_qint8_<arch>.onnx, quality.json

The bi-encoder's transformer is exported to its token embeddings (`last_hidden_state`; pooling and normalisation
stay in `cie10.inference.encoder`, read from the model's own config), the reranker's to its `logits`. The files are
named as sentence-transformers names them, so its `backend="onnx"` loads them too where optimum is installed.

Each graph keeps its weights in an external data file beside it (`model.onnx` + `model.onnx_data`, ONNX's own
format): onnxruntime maps that file into memory instead of copying it, so the rows of the token embedding table
that no query reads (most of its 250k) never become resident. Measured on the int8 bi-encoder: a loaded session
holds ~55 MB instead of ~180 MB, and loading no longer peaks ~235 MB above the start.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from cie10.errors import ConfigError
from cie10.inference.files import DATA_SUFFIX, FP32_FILE, ONNX_DIR, QUALITY_FILE, data_file, file_bytes, int8_file_name
from cie10.inference.quantize import DEFAULT_INT8

logger = logging.getLogger(__name__)

OPSET = 17


def move_weights_to_data_file(path: Path) -> Path:
    """Rewrite `path` with every initializer over 1 KB in `<path>_data` (one file), in place."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    data = data_file(path)
    data.unlink(missing_ok=True)
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=1024,
    )
    data.chmod(0o644)  # onnx writes it owner-only; it is a published file like the graph
    return path


def is_cross_encoder(folder: Path) -> bool:
    """Whether a sentence-transformers folder holds a CrossEncoder (its config says so)."""
    path = Path(folder) / "config_sentence_transformers.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return config.get("model_type") == "CrossEncoder"


def transformer_folder(folder: Path) -> Path:
    """Where the Transformer module's weights live (the folder itself for current sentence-transformers)."""
    modules = Path(folder) / "modules.json"
    if modules.exists():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if module.get("type", "").endswith("Transformer"):
                return Path(folder) / module.get("path", "")
    return Path(folder)


def export_fp32(folder: Path, target: Path, *, cross_encoder: bool | None = None) -> Path:
    """Write the float32 ONNX graph of the model in `folder` to `target` (dynamic batch and sequence axes)."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    folder = Path(folder)
    cross_encoder = is_cross_encoder(folder) if cross_encoder is None else cross_encoder
    source = transformer_folder(folder)
    auto = AutoModelForSequenceClassification if cross_encoder else AutoModel
    output = "logits" if cross_encoder else "last_hidden_state"
    model = auto.from_pretrained(str(source), attn_implementation="eager").eval()

    class Wrapper(torch.nn.Module):
        """forward(input_ids, attention_mask) with keyword arguments (positional ones clash in transformers 5)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return getattr(self.model(input_ids=input_ids, attention_mask=attention_mask), output)

    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    output_axes = {0: "batch"} if cross_encoder else axes
    target.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        torch.onnx.export(
            Wrapper(),
            (ids, mask),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=[output],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, output: output_axes},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    return target


def export_onnx(
    folder: Path,
    *,
    int8: bool = True,
    quality: bool = True,
    int8_kind: str | None = None,
) -> dict[str, Any]:
    """Export `folder` to `folder/onnx/` (float32 and, with `int8`, dynamic int8 of `int8_kind`, by default
    `DEFAULT_INT8`: see `cie10.inference.quantize`), replacing an older export.

    With `quality`, each file is compared with torch float32 on real CodiEsp *train* mentions
    (`cie10.inference.quality`) and the numbers saved as `onnx/quality.json` for the model card.
    """
    from cie10.inference.quantize import quantize_int8

    folder = Path(folder)
    if not (folder / "config.json").exists() and not transformer_folder(folder).joinpath("config.json").exists():
        raise ConfigError(f"{folder} is not a sentence-transformers model folder (no config.json)")
    started = time.perf_counter()
    staging = folder / f".{ONNX_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    cross = is_cross_encoder(folder)
    int8_kind = int8_kind or DEFAULT_INT8
    export_fp32(folder, staging / Path(FP32_FILE).name, cross_encoder=cross)
    files = [FP32_FILE]
    if int8:
        name = int8_file_name()
        quantize_int8(staging / Path(FP32_FILE).name, staging / Path(name).name, kind=int8_kind)
        files.append(name)
    for name in files:
        move_weights_to_data_file(staging / Path(name).name)
    target = folder / ONNX_DIR
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    summary: dict[str, Any] = {
        "kind": "cross-encoder" if cross else "bi-encoder",
        "files": {name: {"bytes": file_bytes(folder, name)} for name in files},
        "weights": f"external data file beside each graph (`<file>{DATA_SUFFIX}`)",
        "opset": OPSET,
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "int8": {"method": "onnxruntime.quantization.quantize_dynamic", "weights": "QInt8", "kind": int8_kind}
        if int8
        else None,
    }
    if quality:
        from cie10.inference.quality import measure_quality

        try:
            summary["quality"] = measure_quality(folder, files, cross_encoder=cross)
        except Exception as error:  # noqa: BLE001 - the export stands; the card then says "not measured"
            logger.warning("ONNX quality not measured: %s", error)
            summary["quality"] = {"status": "not measured", "reason": f"{type(error).__name__}: {error}"}
    summary["seconds"] = round(time.perf_counter() - started, 1)
    partial = folder / f"{QUALITY_FILE}.tmp"
    partial.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    partial.replace(folder / QUALITY_FILE)
    logger.info("exported %s to ONNX in %.0f s: %s", folder, summary["seconds"], ", ".join(files))
    return summary


def export_is_current(folder: Path) -> bool:
    """Whether `folder/onnx/` holds today's export: float32 and int8 files, weights in external data files, the
    int8 file of the default kind (`cie10.inference.quantize.DEFAULT_INT8`)."""
    from cie10.inference.files import read_quality

    folder = Path(folder)
    summary = read_quality(folder) or {}
    kind = (summary.get("int8") or {}).get("kind")
    return data_file(folder / FP32_FILE).exists() and kind == DEFAULT_INT8
