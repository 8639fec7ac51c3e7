"""Every onnxruntime session of a process runs on one shared thread pool, sized once (`use_thread_pool`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json
from pathlib import Path

import numpy as np

from cie10.inference.encoder import use_thread_pool
from cie10.inference.scan import IntegerScan


def threads():
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("Threads:")).split()[1])


rows = np.random.default_rng(0).standard_normal((2000, 32)).astype(np.float32)
counts = [threads()]
for _ in range(4):
    IntegerScan(rows).scores(rows[:3])
    counts.append(threads())
print(json.dumps({"pool": use_thread_pool(7), "threads": counts}))
"""


def _run(threads: str) -> dict:
    env = {**os.environ, "CIE10_TORCH_THREADS": threads}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sessions_share_one_pool_sized_by_the_setting() -> None:
    three, one = _run("3"), _run("1")
    assert (three["pool"], one["pool"]) == (3, 1)  # the first session sized it; a later size changes nothing
    before, first, *later = three["threads"]
    assert later == [first] * 3  # three more sessions, no thread more: one pool per session would add 2 each
    grown_by_one = one["threads"][1] - one["threads"][0]  # onnxruntime's own thread, no pool thread
    assert first - before == grown_by_one + 2  # a pool of 3: the caller and 2 threads
    assert one["threads"][2:] == [one["threads"][1]] * 3
