"""Other libraries' INFO lines (the Hub client's every HTTP request) stay out of the log unless `-v`."""

from __future__ import annotations

import os
import subprocess
import sys

from cie10.hub import LocalHubServer


def _tags(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cie10", *flags, "hub", "tags", "cie10-test/no-such-repo"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def test_third_party_http_logs_only_with_verbose(local_hub: LocalHubServer) -> None:
    quiet = _tags()
    assert quiet.returncode == 0, quiet.stderr
    assert "HTTP Request" not in quiet.stderr and " INFO httpx" not in quiet.stderr, quiet.stderr
    verbose = _tags("-v")
    assert verbose.returncode == 0, verbose.stderr
    assert "HTTP Request: GET" in verbose.stderr
