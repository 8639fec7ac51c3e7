"""Test session setup: an isolated Hub cache and a loopback Hub endpoint, set before any HF library loads.

`huggingface_hub` reads `HF_ENDPOINT` once at import, so the endpoint (a free loopback port, where the
`local_hub` fixture starts olah) is fixed here, at collection time.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_SESSION_TMP = tempfile.mkdtemp(prefix="cie10-tests-")
os.environ["CIE10_TEST_HUB_PORT"] = str(_free_port())
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{os.environ['CIE10_TEST_HUB_PORT']}"
os.environ["HF_HOME"] = os.path.join(_SESSION_TMP, "hf-home")
os.environ["CIE10_HUB_DIR"] = os.path.join(_SESSION_TMP, "hub")
os.environ["CIE10_ORG"] = "cie10-test"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins: list[str] = [
    "tests.fixtures.hub",
    "tests.fixtures.models",
    "tests.fixtures.gemini_standin",
    "tests.fixtures.hub_standin",
]


def pytest_unconfigure(config: object) -> None:
    """Remove the session's Hub cache and mirror (about 2 GB) once every fixture has finished."""
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
