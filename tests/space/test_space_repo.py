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


def _pins() -> dict[str, str]:
    """`requirements.txt` as {package: pinned version}."""
    lines = [line.strip() for line in (SPACE / "requirements.txt").read_text().splitlines()]
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_requirements_are_pinned_to_the_installed_stack() -> None:
    pins = _pins()
    assert "gradio" not in pins  # the sdk_version decides it
    for name, version in pins.items():
        assert importlib.metadata.version(name).split("+")[0] == version, name


def test_app_is_thin() -> None:
    tree = ast.parse((SPACE / "app.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "cie10.space_app" in imported and not any(isinstance(node, ast.FunctionDef) for node in tree.body)


_SEARCH_PROBE = """
import sys
import numpy as np
from cie10.inference.scan import IntegerScan
from cie10.space_app import detect_language
import cie10.search, cie10.inference.encoder, tokenizers
rows = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
IntegerScan(rows).scores(rows[:1])  # the code index's scan: onnxruntime
detect_language("dolor torácico opresivo")  # lingua
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _provided(names: list[str]) -> set[str]:
    """Distributions installed with `names` (their runtime dependencies, transitively; extras left out)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    provided, todo = set(), list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in provided:
            continue
        provided.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return provided


def test_requirements_install_what_a_search_imports() -> None:
    """Every package a search imports (the index scan's onnxruntime, tokenizers, lingua) comes with the Space's
    requirements or gradio: a Space missing one fails on its first query, not at build time."""
    import subprocess
    import sys

    from packaging.utils import canonicalize_name

    provided = _provided([*_pins(), "gradio"])
    modules = subprocess.run(
        [sys.executable, "-c", _SEARCH_PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    distributions = importlib.metadata.packages_distributions()
    imported = {canonicalize_name(dist) for module in modules for dist in distributions.get(module, [])}
    imported -= {"cie10"}
    assert sorted(imported - provided) == []
