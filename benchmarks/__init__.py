"""Benchmarks of the released retriever: quality, speed, scale, the Space's memory and a faster inference path.

`make bench` (`python -m benchmarks.run_all`) reads the released artifacts from the Hub that HF_ENDPOINT names, as a
user would, writes one JSON file per benchmark into `benchmarks/results/` (with provenance: command, commit,
machine) and generates `benchmarks/RESULTS.md` from those files (`benchmarks/render.py`). Not part of `make test`.

- `quality`: CodiEsp dev (held out: measured, never trained or tuned on) and the synthetic test split, every system
  side by side, through the eval harness.
- `speed`: query latency (BM25, bi-encoder, bi-encoder + reranking), training throughput.
- `scale`: index build time and query latency against catalogue size (1k, 10k, all codes).
- `space_memory`: peak resident memory of the `cie10 serve` process after a few queries.
- `onnx_int8`: ONNX Runtime int8 through sentence-transformers' `backend="onnx"`, or why it is unavailable.

Each `results/<name>.json` holds `benchmark`, `schema_version`, `provenance` (run id shared by one `run_all`,
command, git commit and dirty flag, date, wall seconds, machine: CPU model, cores, SIMD flags, RAM, load average at
the start and the end, torch threads, GPUs; package versions; Hub endpoint), `artifacts` (requested ids and
revision), `settings` (the `BenchConfig`), `results` (per benchmark; a part that could not run is
`{"status": "unavailable", "reason": ...}`) and `targets` (each: goal, measured value, `met` / `missed` /
`not comparable` / `not measured`, the gap, the conditions, and what would close it).
"""
