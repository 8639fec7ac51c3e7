"""Loading: the backend setting, the ONNX path without torch, and ONNX files from the local Hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cie10.errors import ConfigError
from cie10.settings import get_settings


def test_backend_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIE10_BACKEND", "onnx-int8")
    assert get_settings().backend == "onnx-int8"
    monkeypatch.setenv("CIE10_BACKEND", "tensorrt")
    with pytest.raises(ConfigError, match="CIE10_BACKEND='tensorrt'"):
        get_settings()


@pytest.mark.slow
def test_onnx_search_path_does_not_import_torch(onnx_bi_encoder: Path, onnx_cross_encoder: Path) -> None:
    script = (
        "import sys\n"
        "from cie10.inference import load_cross_encoder, load_encoder\n"
        f"encoder = load_encoder({str(onnx_bi_encoder)!r}, backend='onnx-int8')\n"
        f"reranker = load_cross_encoder({str(onnx_cross_encoder)!r}, backend='onnx-int8')\n"
        "assert encoder.encode(['dolor torácico'], prompt_name='query').shape == (1, 384)\n"
        "assert reranker.predict([('dolor torácico', 'Chest pain, unspecified')]).shape == (1,)\n"
        "assert 'torch' not in sys.modules, 'the ONNX path imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_onnx_files_load_from_the_local_hub(local_hub, onnx_bi_encoder: Path, tmp_path: Path) -> None:
    from cie10 import hub
    from cie10.inference import OnnxEncoder, load_encoder
    from cie10.inference.files import int8_file_name

    # the repo as published, minus the torch weights and the float32 graph (smaller to push)
    folder = tmp_path / "repo"
    shutil.copytree(onnx_bi_encoder, folder, ignore=shutil.ignore_patterns("*.safetensors", "model.onnx*"))
    repo_id = get_settings().repo_id("tiny-onnx-bi")
    hub.publish_folder(folder, repo_id, "model", version="v1.0")
    assert os.environ["HF_ENDPOINT"] == local_hub.url

    remote = load_encoder(repo_id, revision="v1.0", backend="onnx-int8")
    assert isinstance(remote, OnnxEncoder) and remote.file_name == int8_file_name()
    local = load_encoder(str(onnx_bi_encoder), backend="onnx-int8")
    texts = ["asma bronquial", "Mild intermittent asthma, uncomplicated"]
    np.testing.assert_allclose(remote.encode(texts), local.encode(texts), atol=1e-6)


@pytest.mark.slow
def test_embedded_model_is_exported_once_for_the_workers(base_model_path: Path, tmp_path: Path) -> None:
    """`ensure_onnx_export` (before a trainer's mining and the harness's catalogue encodes): a folder without an
    export gets one that encodes as torch does; a current export is left as it is."""
    from sentence_transformers import SentenceTransformer

    from cie10.embedded_model import ensure_onnx_export
    from cie10.inference import load_encoder
    from cie10.inference.export import export_is_current

    folder = shutil.copytree(
        base_model_path, tmp_path / "base", copy_function=os.symlink, ignore=shutil.ignore_patterns("onnx")
    )
    assert not export_is_current(folder)
    ensure_onnx_export(folder)
    assert export_is_current(folder)
    written = {path.name: path.stat().st_mtime_ns for path in (folder / "onnx").iterdir()}
    ensure_onnx_export(folder)
    assert {path.name: path.stat().st_mtime_ns for path in (folder / "onnx").iterdir()} == written

    texts = ["fractura del coll del fèmur", "Fracture of unspecified part of neck of right femur"]
    exported = load_encoder(str(folder), backend="onnx").encode(texts)
    reference = SentenceTransformer(str(base_model_path), device="cpu").encode(texts)
    exported /= np.linalg.norm(exported, axis=1, keepdims=True)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.min(np.sum(exported * reference, axis=1)) > 0.9999
