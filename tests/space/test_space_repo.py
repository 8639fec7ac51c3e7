"""`space/` is a real Space repo: card header, pinned requirements, and a thin `app.py` over `cie10.space_app`."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import yaml

SPACE = Path(__file__).resolve().parents[2] / "space"


def _header() -> dict:
    text = (SPACE / "README.md").read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "README.md must start with a YAML header"
    return yaml.safe_load(match[1])


def test_card_header() -> None:
    header = _header()
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py" and (SPACE / header["app_file"]).is_file()
    assert header["sdk_version"] == importlib.metadata.version("gradio")
    assert header["models"] == ["cie10/cie10-bi", "cie10/cie10-rerank"] and header["datasets"] == ["cie10/cie10-codes"]
    assert 0 < len(header["short_description"]) <= 60 and header["title"]


def test_requirements_are_pinned_to_the_installed_stack() -> None:
    lines = [line.strip() for line in (SPACE / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert "gradio" not in pins  # the sdk_version decides it
    for name, version in pins.items():
        assert importlib.metadata.version(name).split("+")[0] == version, name


def test_app_is_thin() -> None:
    tree = ast.parse((SPACE / "app.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "cie10.space_app" in imported and not any(isinstance(node, ast.FunctionDef) for node in tree.body)
