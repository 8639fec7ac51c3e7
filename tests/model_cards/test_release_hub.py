"""`cie10 release --target hub`, what a user with a token runs, against a stand-in of the Hub's commit API."""

from __future__ import annotations

from pathlib import Path

import pytest

from cie10 import hub
from cie10.cli import main
from cie10.model_cards.repos import ReleaseRepos
from tests.fixtures.hub_standin import HubStandIn

pytestmark = pytest.mark.slow


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_release_pushed_to_the_hub_reads_back_identically_at_its_tag(
    hub_standin: HubStandIn, release_v1, codes_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub_standin.url)
    monkeypatch.setenv("HF_TOKEN", "hf_standin_write_token")
    monkeypatch.setenv("CIE10_ORG", "cie10-remote")
    stage = tmp_path / "stage"
    argv = ["release", "--version", "v1.0", "--target", "hub", "--stage-dir", str(stage), "--bi", str(release_v1.bi),
            "--reranker", str(release_v1.reranker), "--synth", str(release_v1.synth), "--space", str(release_v1.space),
            "--codes", str(codes_folder)]  # fmt: skip
    for results in release_v1.results:
        argv += ["--results", str(results)]
    assert main(argv) == 0

    # every repo of the release: created on the Hub, one commit, tagged v1.0, and identical at the tag
    repos = ReleaseRepos.for_version("v1.0").ordered()
    assert {(r.repo_type, r.repo_id) for r in repos} == set(hub_standin.repos)
    for released in repos:
        repo = hub_standin.repos[(released.repo_type, released.repo_id)]
        assert list(repo.tags) == ["v1.0"] and repo.tags["v1.0"] == repo.branches["main"]
        assert len(repo.commits) == 2  # the Hub's initial commit, then the release's one
        snapshot = _tree(hub.download_snapshot(released.repo_id, repo_type=released.repo_type, revision="v1.0"))
        snapshot.pop(".gitattributes")
        assert snapshot == _tree(stage / released.key), released.repo_id

    # releasing the same version again writes nothing
    commits = len(hub_standin.calls("POST", r"/commit/"))
    assert main(argv) == 0
    assert len(hub_standin.calls("POST", r"/commit/")) == commits
