"""Results JSON: mteb-shaped, with provenance, round-trips; the markdown holds the per-language tables."""

from __future__ import annotations

import json
from pathlib import Path

from cie10.eval_harness.data import from_records
from cie10.eval_harness.report import render_markdown
from cie10.eval_harness.results import EvaluationRun, load_run
from cie10.eval_harness.runner import evaluate_systems
from cie10.eval_harness.systems import bm25_system, select_codes
from tests.eval_harness.conftest import TINY_ROWS


def _run(catalog, out: Path | None) -> EvaluationRun:
    eval_set = from_records(TINY_ROWS, {"id": "cie10-test/tiny", "revision": "0" * 40, "split": "test"})
    codes = select_codes(catalog, "categories", chapters=["10"])
    systems = [bm25_system("bm25-en-es", catalog, codes), bm25_system("bm25", catalog, codes)]
    return evaluate_systems(
        eval_set, systems, catalog=catalog, codes=codes, code_selection={"scope": "categories"}, out=out,
        base_name="bm25", n_resamples=100,
    )  # fmt: skip


def test_json_round_trip(catalog, tmp_path: Path) -> None:
    run = _run(catalog, tmp_path)
    loaded = load_run(tmp_path / "results.json")
    assert loaded == run
    assert load_run(tmp_path) == run
    assert EvaluationRun.from_dict(json.loads(json.dumps(run.to_dict()))) == run
    # a second save of the loaded run is byte-identical
    first = (tmp_path / "results.json").read_text()
    loaded.save(tmp_path / "again")
    assert (tmp_path / "again" / "results.json").read_text() == first


def test_mteb_shape_and_provenance(catalog, tmp_path: Path) -> None:
    _run(catalog, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["task_name"] == "CIE10Retrieval"
    assert data["dataset"]["id"] == "cie10-test/tiny" and data["dataset"]["revision"] == "0" * 40
    assert data["model"]["kind"] == "bm25" and data["model"]["version"]
    assert data["catalog"]["version"].startswith("ICD-10-CM 2026") and data["catalog"]["num_codes_searched"] == 64
    assert data["versions"]["bm25s"] and data["versions"]["cie10"]
    assert data["git_commit"] is None or len(data["git_commit"]) == 40
    assert data["date"].endswith("+00:00")
    entries = data["scores"]["test"]
    assert [e["hf_subset"] for e in entries] == ["all", "en", "es"]
    assert entries[2]["languages"] == ["spa-Latn"]
    for entry in entries:
        assert entry["main_score"] == entry["mrr_at_10"]
        for key in ("recall_at_1", "recall_at_3", "recall_at_5", "recall_at_10", "map_at_10", "ndcg_at_10"):
            assert 0.0 <= entry[key] <= 1.0 and 0.0 <= entry[f"category_{key}"] <= 1.0
    assert entries[0]["num_queries"] == 8 and entries[0]["retrievable_gold_only"]["num_queries"] == 7
    assert data["gold_coverage"]["outside_searched_codes"]["examples"] == ["J96.00"]
    assert [b["name"] for b in data["baselines"]] == ["bm25"]
    assert {c["language"] for c in data["comparisons"]} == {"all", "en", "es"}
    assert {c["metric"] for c in data["learning_gain"]} == {
        "recall_at_1", "recall_at_3", "recall_at_5", "recall_at_10", "mrr_at_10",
    }  # fmt: skip
    predictions = (tmp_path / "predictions" / "bm25.jsonl").read_text().splitlines()
    assert len(predictions) == 8 and json.loads(predictions[0])["gold"] == ["J45"]


def test_markdown(catalog) -> None:
    text = render_markdown(_run(catalog, None))
    assert "| language | n | bm25-en-es | bm25 |" in text
    assert "| es | 4 | bm25-en-es |" in text and "| es | 4 | bm25 |" in text
    assert "## Category level" in text and "## Learning gain" in text and "95% CI" in text
    assert "J96.00" in text


def test_cli_report(catalog, tmp_path: Path, capsys) -> None:
    from cie10.cli import main

    _run(catalog, tmp_path)
    assert main(["evaluate", "report", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("# CIE10Retrieval: bm25-en-es")


def test_git_state_ignores_the_files_a_run_writes(tmp_path) -> None:
    import subprocess

    from cie10.eval_harness.results import git_state

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "speed.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    commit, dirty = git_state(root=tmp_path)
    assert commit is not None and len(commit) == 40 and dirty is False
    (tmp_path / "results" / "speed.json").write_text('{"p50_ms": 1}\n')  # the run rewrote its own results
    assert git_state(root=tmp_path) == (commit, True)
    assert git_state(ignore=("results",), root=tmp_path) == (commit, False)
    (tmp_path / "code.py").write_text("x = 2\n")  # an uncommitted code change still counts
    assert git_state(ignore=("results",), root=tmp_path) == (commit, True)
