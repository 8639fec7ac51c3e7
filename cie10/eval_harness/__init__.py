"""cie10.eval_harness: score code retrievers the same way everywhere.

- `metrics`: MRR@10, Recall@1/3/5/10, MAP@10, nDCG@10, code and category level (pure numpy, the single source
  of truth, also shipped in the `evaluate` module `cie10_retrieval/`).
- `systems`: BM25 over code titles (bm25s) and dense retrievers (`CodeSearcher`), on the same codes.
- `bootstrap`: paired bootstrap confidence intervals on differences, per language.
- `runner` / `results` / `report`: `cie10 evaluate`, mteb-shaped JSON with provenance, markdown tables.
- `codiesp`: the CodiEsp adapter (mention and document level); `mteb_export`: MTEB retrieval layout.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from cie10.eval_harness.metrics import ALL_METRICS, MAIN_SCORE, compute_metrics, per_query_scores

MODULE_DIR = Path(__file__).resolve().parent / "cie10_retrieval"
"""The `evaluate` module folder: `evaluate.load(str(MODULE_DIR))`."""
MODULE_SCRIPT = "cie10_retrieval.py"
MODULE_FILES: tuple[str, ...] = (MODULE_SCRIPT, "metrics.py", "README.md", "requirements.txt", "app.py")
"""What the metric Space holds (`metrics.py` is a link to the harness's own, published as a plain file)."""

__all__ = [
    "ALL_METRICS",
    "MAIN_SCORE",
    "MODULE_DIR",
    "compute_metrics",
    "load_module",
    "per_query_scores",
    "publish_module",
]


def load_module():
    """The `evaluate` module (an `evaluate.EvaluationModule`), loaded from this package."""
    import evaluate

    return evaluate.load(str(MODULE_DIR))


def publish_module(repo_id: str, *, version: str | None = None, target: str = "local") -> str:
    """Publish the module folder as a metric Space (`cie10.hub.publish_folder`); returns the commit sha."""
    from cie10.hub import publish_folder

    script = f"{repo_id.split('/')[-1]}.py"  # evaluate.load("<org>/<name>") runs <name>.py
    with tempfile.TemporaryDirectory(prefix="cie10-metric-space-") as staging:
        for name in MODULE_FILES:
            shutil.copyfile(MODULE_DIR / name, Path(staging) / name)  # follows the metrics.py link
        if script != MODULE_SCRIPT:
            (Path(staging) / MODULE_SCRIPT).rename(Path(staging) / script)
            app = Path(staging) / "app.py"
            app.write_text(app.read_text(encoding="utf-8").replace(MODULE_SCRIPT, script), encoding="utf-8")
        return publish_folder(staging, repo_id, "space", version=version, target=target)  # type: ignore[arg-type]
