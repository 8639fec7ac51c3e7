"""Run every benchmark, write `benchmarks/results/<name>.json`, generate `benchmarks/RESULTS.md`, print the tables.

    make bench                                   # = python -m benchmarks.run_all, against the local Hub
    python -m benchmarks.run_all --quick --model default --reranker standin --dataset none   # smoke test
    python -m benchmarks.run_all --model cie10/cie10-bi --reranker cie10/cie10-rerank --revision v1.0 \\
        --dataset cie10/cie10-synth --only quality speed

The released artifacts are read by Hub id and revision from the Hub HF_ENDPOINT names, as a user would. A part that
cannot run (an artifact not published, an optional backend missing) is recorded as `unavailable: <reason>`; a
benchmark that crashes is recorded as `failed` and makes the exit code 1, after the others have run.

Cost on two CPU cores: about an hour, mostly the reranker in the quality benchmark (20 pairs per CodiEsp mention
and per sentence of each CodiEsp document) and the 1k + 10k index builds of the scale benchmark; `--max-documents`,
`--max-mentions` and `--scale-sizes 1000` shorten it. `--quick` takes a few minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import onnx_int8, quality, scale, space_memory, speed
from benchmarks.artifacts import Artifacts
from benchmarks.common import (
    BENCHMARKS,
    CODIESP_DEV,
    RESULTS_DIR,
    RESULTS_MD,
    SCHEMA_VERSION,
    BenchConfig,
    Unavailable,
    command_line,
    provenance,
    write_result,
)
from benchmarks.render import render, write

logger = logging.getLogger("benchmarks")

MODULES = {
    "quality": quality,
    "speed": speed,
    "scale": scale,
    "space_memory": space_memory,
    "onnx_int8": onnx_int8,
}


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    """Flags → `BenchConfig` (`--quick` applies the smoke preset on top of the flags)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run_all", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny subsets; results go to results/quick/")
    parser.add_argument("--model", default="", help="bi-encoder Hub id or folder, or `default` (untuned base model)")
    parser.add_argument("--reranker", default="", help="reranker Hub id or folder, `none`, or `standin`")
    parser.add_argument("--revision", default=None, help="version (tag) of the model, reranker and dataset")
    parser.add_argument(
        "--ablation",
        default="",
        help="the ablation's bi-encoder (same recipe, no CodiEsp-derived row), e.g. models/cie10-bi-zeroshot/final",
    )
    parser.add_argument("--dataset", default="", help="synthetic dataset Hub id or folder, or `none`")
    parser.add_argument("--codes", default="", help="codes dataset the Space reads titles from")
    parser.add_argument("--codiesp", type=Path, default=CODIESP_DEV, help=f"CodiEsp dev folder (default {CODIESP_DEV})")
    parser.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        default=[],
        help="catalogue scope to search in the quality benchmark (repeatable; default: the model's index scope)",
    )
    parser.add_argument("--chapter", dest="chapters", action="append", default=None, help="restrict to a chapter")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="benchmarks to run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument("--no-render", dest="render", action="store_false", help="write the JSON only")
    parser.add_argument("--max-mentions", type=int, default=None, help="sample this many CodiEsp mentions")
    parser.add_argument("--max-documents", type=int, default=None, help="sample this many CodiEsp documents")
    parser.add_argument("--max-synth-per-language", type=int, default=None, help="synthetic queries per language")
    parser.add_argument("--n-resamples", type=int, default=1000, help="paired bootstrap resamples")
    parser.add_argument("--rerank-top", type=int, default=20)
    parser.add_argument(
        "--document-rerank-top",
        type=int,
        default=BenchConfig.document_rerank_top,
        help="reranked candidates per sentence or clause of a document",
    )
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument(
        "--scale-sizes", type=int, nargs="+", default=[1000, 10000], help="index sizes whose build is measured"
    )
    parser.add_argument("--scale-queries", type=int, default=100)
    parser.add_argument("--space-queries", type=int, default=10)
    args = parser.parse_args(argv)
    options = vars(args)
    quick = options.pop("quick")
    config = BenchConfig(**options, command=command_line([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]))
    return config.apply_quick() if quick else config


def run_one(name: str, config: BenchConfig, artifacts: Artifacts, run_id: str) -> tuple[dict[str, Any], bool]:
    """Run one benchmark and write its JSON; (payload, ok)."""
    started, load_at_start = time.perf_counter(), [round(value, 2) for value in os.getloadavg()]
    logger.info("== %s", name)
    ok = True
    try:
        outcome = MODULES[name].run(config, artifacts)
    except Unavailable as error:
        logger.warning("%s unavailable: %s", name, error)
        outcome = {"results": {"status": "unavailable", "reason": str(error)}, "targets": []}
    except Exception as error:  # noqa: BLE001 - the other benchmarks still run; the exit code says it failed
        logger.error("%s failed: %s", name, error)
        outcome = {
            "results": {"status": "failed", "reason": f"{type(error).__name__}: {error}"},
            "traceback": traceback.format_exc(),
            "targets": [],
        }
        ok = False
    payload = {
        "benchmark": name,
        "schema_version": SCHEMA_VERSION,
        "provenance": provenance(config, run_id, started, load_at_start),
        "artifacts": artifacts.describe(),
        "settings": config.to_dict(),
        **outcome,
    }
    if _flat_status(payload):
        payload = {**payload, **_flat_status(payload)}
    write_result(config, name, payload)
    return payload, ok


def _flat_status(payload: dict[str, Any]) -> dict[str, Any]:
    """Top-level `status`/`reason` for a benchmark that did not run (render reads them there)."""
    results = payload.get("results") or {}
    if results.get("status") in ("unavailable", "failed") and results.get("reason"):
        return {"status": results["status"], "reason": results["reason"]}
    return {}


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks in order; render; print."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    config = parse_args(argv)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"
    artifacts = Artifacts(config)
    logger.info("benchmarks %s → %s (run %s)", ", ".join(config.only), config.out, run_id)
    failures = []
    for name in BENCHMARKS:
        if name in config.only:
            _, ok = run_one(name, config, artifacts, run_id)
            if not ok:
                failures.append(name)
    if config.render:
        markdown_path = RESULTS_MD if config.out.resolve() == RESULTS_DIR else config.out / "RESULTS.md"
        text = write(config.out, markdown_path, scaling_doc=config.out.resolve() == RESULTS_DIR and not config.quick)
    else:
        from benchmarks.common import read_results

        text = render(read_results(config.out))
    print(text)
    if failures:
        logger.error("failed: %s (see the traceback in their JSON)", ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
