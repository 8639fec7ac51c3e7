"""`cie10 release` on the local Hub: v1.0 then v1.1, each tag loads its own contents, re-runs change nothing."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cie10 import hub
from cie10.model_cards.repos import ReleaseRepos
from cie10.model_cards.scores import MODEL_INDEX_METRICS
from cie10.release import ReleaseError, ReleaseResult, release

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(local_hub, release_v1, release_v2, codes_folder) -> dict[str, ReleaseResult]:
    """v1.0 then v1.1 published to the local Hub."""
    first = release(release_v1.config("v1.0", codes=codes_folder))
    assert {item.status for item in first.repos} == {"published"}
    second = release(release_v2.config("v1.1", codes=codes_folder))
    assert {item.status for item in second.repos} == {"published"}
    return {"v1.0": first, "v1.1": second}


def _expected(inputs, system: str) -> dict[tuple[str, str], float]:
    for root in inputs.results:
        for file in sorted(root.rglob("results.json")) if root.is_dir() else [root]:
            data = json.loads(file.read_text())
            for entry in [data, *data["baselines"]]:
                if entry["name"] == system:
                    return {(e["hf_subset"], m): e[m] for e in entry["scores"]["test"] for m in MODEL_INDEX_METRICS}
    raise AssertionError(system)


def _card(card_class, repo, version: str):
    return card_class.load(hub.download_file(repo.repo_id, "README.md", repo_type=repo.repo_type, revision=version))


def test_model_index_on_the_hub_is_the_harness_json(published, release_v1, release_v2) -> None:
    from huggingface_hub import ModelCard

    repos = ReleaseRepos.for_version("v1.1")
    latest = ModelCard.load(repos.bi.repo_id)  # main: the latest release, through the local Hub
    values = {(r.dataset_config, r.metric_type): r.metric_value for r in latest.data.eval_results}
    assert values == _expected(release_v2, "tiny-bi")
    assert {r.dataset_revision for r in latest.data.eval_results} == {"v1.1"}
    for version, inputs in (("v1.0", release_v1), ("v1.1", release_v2)):
        for repo, system in ((repos.bi, "tiny-bi"), (repos.reranker, "tiny-bi+tiny-rerank")):
            card = _card(ModelCard, repo, version)
            got = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
            assert got == _expected(inputs, system), (repo.repo_id, version)
            assert card.data.base_model == "intfloat/multilingual-e5-small"


def test_every_card_parses_at_every_tag_and_names_the_others(published) -> None:
    from huggingface_hub import DatasetCard, ModelCard, SpaceCard

    classes = {"model": ModelCard, "dataset": DatasetCard, "space": SpaceCard}
    for version in ("v1.0", "v1.1"):
        repos = ReleaseRepos.for_version(version)
        for repo in repos.ordered():
            assert hub.list_tags(repo.repo_id, repo.repo_type) == ["v1.0", "v1.1"]
            card = _card(classes[repo.repo_type], repo, version)
            assert card.data.to_dict()
            for other in repos.ordered():
                assert f"[`{other.repo_id}`]({other.url(version)})" in card.text


def test_each_tag_loads_its_own_models_and_data(published, release_v1, release_v2, codes_folder) -> None:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from cie10.code_index import CodeIndex

    repos = ReleaseRepos.for_version("v1.0")
    pairs = [("asma bronquial", "Asthma"), ("neumonía", "Pneumonia, unspecified organism")]
    for version, inputs in (("v1.0", release_v1), ("v1.1", release_v2)):
        local = SentenceTransformer(str(inputs.bi), device="cpu").encode_query(["asma bronquial"])
        remote = SentenceTransformer(repos.bi.repo_id, revision=version, device="cpu").encode_query(["asma bronquial"])
        np.testing.assert_allclose(remote, local, rtol=1e-5, atol=1e-6)
        index = CodeIndex.from_hub(repos.bi.repo_id, version)
        np.testing.assert_array_equal(index.embeddings, CodeIndex.load(inputs.bi).embeddings)
        scores = CrossEncoder(repos.reranker.repo_id, revision=version, device="cpu").predict(pairs)
        np.testing.assert_allclose(scores, CrossEncoder(str(inputs.reranker), device="cpu").predict(pairs), rtol=1e-5)

        synth = hub.load_dataset(repos.synth.repo_id, revision=version, name="all")
        for split in ("train", "validation", "test"):
            files = inputs.synth.glob(f"data/*/{split}.parquet")
            assert len(synth[split]) == sum(pq.read_metadata(file).num_rows for file in files)
        codes = hub.download_file(repos.codes.repo_id, "data/codes.parquet", repo_type="dataset", revision=version)
        assert pq.read_metadata(codes).num_rows == pq.read_metadata(codes_folder / "data" / "codes.parquet").num_rows
        app = hub.download_file(repos.space.repo_id, "app.py", repo_type="space", revision=version)
        assert Path(app).read_text() == (inputs.space / "app.py").read_text()
        shipped = hub.download_file(repos.space.repo_id, "cie10/search.py", repo_type="space", revision=version)
        assert "class CodeSearcher" in Path(shipped).read_text()
        hub.download_file(repos.metric.repo_id, "cie10_retrieval.py", repo_type="space", revision=version)
    # v1.1 has no Italian or Portuguese rows; v1.0 has Portuguese
    assert "pt" not in hub.load_dataset(repos.synth.repo_id, revision="v1.1", name="all")["train"]["language"]
    assert "pt" in hub.load_dataset(repos.synth.repo_id, revision="v1.0", name="all")["train"]["language"]


def test_the_cards_snippet_searches_codes(published) -> None:
    from huggingface_hub import ModelCard

    repos = ReleaseRepos.for_version("v1.1")
    card = ModelCard.load(hub.download_file(repos.bi.repo_id, "README.md", revision="v1.1"))
    snippets = re.findall(r"```python\n(.*?)```", card.text, flags=re.S)
    two_stage = next(code for code in snippets if "reranker.rank" in code)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(two_stage, "<card snippet>", "exec"), {})  # noqa: S102 - the card's own example
    lines = printed.getvalue().splitlines()
    # ICD-10-CM categories may end in a letter (J4A, since 2026): the catalogue's own code shape
    assert len(lines) == 5 and all(re.match(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})? ", line) for line in lines)


def test_rereleasing_is_a_noop(published, release_v1, codes_folder) -> None:
    repos = ReleaseRepos.for_version("v1.0")
    main_before = {r.repo_id: hub._hf_api().list_repo_refs(r.repo_id, repo_type=r.repo_type) for r in repos.ordered()}
    again = release(release_v1.config("v1.0", codes=codes_folder))
    assert again.unchanged
    assert [item.sha for item in again.repos] == [item.sha for item in published["v1.0"].repos]
    for repo in repos.ordered():  # main still points at v1.1
        refs = hub._hf_api().list_repo_refs(repo.repo_id, repo_type=repo.repo_type)
        assert [b.target_commit for b in refs.branches] == [b.target_commit for b in main_before[repo.repo_id].branches]


def test_a_taken_version_with_other_content_publishes_nothing(published, release_v2, codes_folder) -> None:
    with pytest.raises(ReleaseError, match="already exists with different content.*nothing was published"):
        release(release_v2.config("v1.0", codes=codes_folder))
    for repo in ReleaseRepos.for_version("v1.0").ordered():
        assert hub.list_tags(repo.repo_id, repo.repo_type) == ["v1.0", "v1.1"]


def test_a_failed_release_leaves_earlier_versions_and_a_rerun_completes_it(
    published, release_v1, release_v2, codes_folder, tmp_path: Path, caplog, monkeypatch
) -> None:
    from huggingface_hub import ModelCard

    from cie10.cli import main

    repos = ReleaseRepos.for_version("v1.2")
    # a missing artifact: one message, exit code 2, nothing published
    argv = [
        "release",
        "--version",
        "v1.2",
        "--bi",
        str(release_v2.bi),
        "--reranker",
        str(tmp_path / "gone"),
        "--synth",
        str(release_v2.synth),
        "--space",
        str(release_v2.space),
        "--codes",
        str(codes_folder),
    ]
    with caplog.at_level(logging.ERROR, logger="cie10"):
        assert main(argv) == 2
    assert "missing reranker" in caplog.records[-1].getMessage()
    assert all(hub.list_tags(r.repo_id, r.repo_type) == ["v1.0", "v1.1"] for r in repos.ordered())

    # a failure while publishing (the bi-encoder's upload): the repos before it are at v1.2, nothing else moved
    real = hub.publish_folder

    def failing(folder, repo_id, repo_type, **kwargs):
        if repo_id == repos.bi.repo_id:
            raise hub.HubError("connection reset")
        return real(folder, repo_id, repo_type, **kwargs)

    monkeypatch.setattr(hub, "publish_folder", failing)
    config = release_v2.config("v1.2", codes=codes_folder, results=release_v2.results)
    with pytest.raises(ReleaseError, match="Run the same command again"):
        release(config)
    tags = {r.key: hub.list_tags(r.repo_id, r.repo_type) for r in repos.ordered()}
    assert tags["codes"] == tags["synth"] == ["v1.0", "v1.1", "v1.2"]
    assert tags["bi"] == tags["reranker"] == tags["space"] == ["v1.0", "v1.1"]
    v1 = _card(ModelCard, repos.bi, "v1.0")  # the earlier versions still load as they were
    assert {r.dataset_revision for r in v1.data.eval_results} == {"v1.0"}

    monkeypatch.setattr(hub, "publish_folder", real)
    completed = release(config)
    assert [item.status for item in completed.repos] == ["unchanged"] * 2 + ["published"] * 4
    assert all(hub.list_tags(r.repo_id, r.repo_type)[-1] == "v1.2" for r in repos.ordered())
