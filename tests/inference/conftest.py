"""Session fixtures: the embedded base model exported to ONNX once, as a bi-encoder and as a cross-encoder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def _linked_copy(source: Path, target: Path) -> Path:
    """A model folder whose files are symlinks to `source` (the export writes only `onnx/` beside them)."""
    shutil.copytree(source, target, copy_function=os.symlink)
    return target


@pytest.fixture(scope="session")
def onnx_bi_encoder(base_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base model folder with `onnx/model.onnx` and `onnx/model_qint8_<arch>.onnx` (no quality run)."""
    from cie10.inference.export import export_onnx

    folder = _linked_copy(base_model_path, tmp_path_factory.mktemp("onnx") / "bi")
    export_onnx(folder, quality=False)
    return folder


@pytest.fixture(scope="session")
def onnx_cross_encoder(base_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base model with a seeded one-logit head (a CrossEncoder), saved and exported to ONNX."""
    import torch
    from sentence_transformers import CrossEncoder

    from cie10.inference.export import export_onnx

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("onnx") / "rerank"
    CrossEncoder(str(base_model_path), num_labels=1, device="cpu").save(str(folder))
    export_onnx(folder, quality=False)
    return folder
