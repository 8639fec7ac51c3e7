"""The `evaluate` module: loads from its folder and from a metric Space, agrees with the harness's metrics."""

from __future__ import annotations

import yaml

from cie10.eval_harness import MODULE_DIR, load_module, publish_module
from cie10.eval_harness.metrics import compute_metrics
from cie10.settings import get_settings

PREDICTIONS = [["J45.909", "J45.20", "I10"], ["I10"], ["E11.9", "E11.65"], []]
REFERENCES = [["J45.20"], ["I10", "I15.9"], ["E10.9"], ["R50.9"]]
LANGUAGES = ["en", "es", "es", "fr"]


def test_module_agrees_with_metrics() -> None:
    module = load_module()
    assert module.name == "cie10_retrieval"
    assert {"predictions", "references", "languages"} == set(module.features)
    result = module.compute(predictions=PREDICTIONS, references=REFERENCES, languages=LANGUAGES)
    assert result == compute_metrics(PREDICTIONS, REFERENCES, LANGUAGES)
    assert result["mrr_at_10"] == (0.5 + 1.0 + 0.0 + 0.0) / 4
    module.add_batch(predictions=PREDICTIONS[:2], references=REFERENCES[:2], languages=LANGUAGES[:2])
    module.add_batch(predictions=PREDICTIONS[2:], references=REFERENCES[2:], languages=LANGUAGES[2:])
    assert module.compute() == result


def test_module_folder() -> None:
    # one source of truth: the module's metrics.py is the harness's file
    assert (MODULE_DIR / "metrics.py").resolve() == (MODULE_DIR.parent / "metrics.py").resolve()
    text = (MODULE_DIR / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---")[1])
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py" and "evaluate" in header["tags"]
    assert header["title"] and header["short_description"]
    for name in ("mrr_at_10", "recall_at_1", "map_at_10", "ndcg_at_10", "category_", "es/mrr_at_10"):
        assert name in text
    assert "evaluate==" in (MODULE_DIR / "requirements.txt").read_text()


def test_publish_as_space_and_load_it(local_hub) -> None:
    import evaluate
    from huggingface_hub import HfApi

    repo_id = get_settings().repo_id("cie10-retrieval")
    sha = publish_module(repo_id, version="v1.0")
    files = HfApi(endpoint=local_hub.url).list_repo_files(repo_id, repo_type="space", revision="v1.0")
    assert sorted(files) == ["README.md", "app.py", "cie10-retrieval.py", "metrics.py", "requirements.txt"]
    module = evaluate.load(repo_id, revision=sha)
    result = module.compute(predictions=PREDICTIONS, references=REFERENCES, languages=LANGUAGES)
    assert result == compute_metrics(PREDICTIONS, REFERENCES, LANGUAGES)
