"""Target `hub`: the real `huggingface_hub` write calls against a stand-in of the Hub's commit API, over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cie10 import hub
from cie10.errors import HubError
from tests.fixtures.hub_standin import HubStandIn

TOKEN = "hf_standin_write_token"


@pytest.fixture
def remote(hub_standin: HubStandIn, monkeypatch: pytest.MonkeyPatch) -> HubStandIn:
    """`HF_ENDPOINT` on the stand-in, with a write token, for one test."""
    monkeypatch.setenv("HF_ENDPOINT", hub_standin.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return hub_standin


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _read_back(repo_id: str, repo_type: str, revision: str) -> dict[str, bytes]:
    """Every file of a version, through the client's cache (`.gitattributes`, added by the Hub, aside)."""
    files = _tree(hub.download_snapshot(repo_id, repo_type=repo_type, revision=revision))
    files.pop(".gitattributes", None)
    return files


def test_versions_publish_as_one_commit_each_and_read_back_at_their_tags(remote: HubStandIn, tmp_path: Path) -> None:
    repo_id = "standin-org/model-versions"
    card = b"---\nlicense: mit\n---\n# "
    v1 = _folder(
        tmp_path / "v1",
        {"README.md": card + b"v1\n", "weights.bin": bytes(range(256)) * 40, "sub/config.json": b'{"a": 1}'},
    )
    sha1 = hub.publish_folder(v1, repo_id, "model", version="v1.0", target="hub")

    v2 = _folder(tmp_path / "v2", {"README.md": card + b"v2\n", "weights.bin": bytes(range(255, -1, -1)) * 40})
    sha2 = hub.publish_folder(v2, repo_id, "model", version="v1.1", target="hub")
    assert sha2 != sha1

    # each tag reads back exactly its folder: files and bytes (sub/config.json is gone from v1.1)
    assert _read_back(repo_id, "model", "v1.0") == _tree(v1)
    assert _read_back(repo_id, "model", "v1.1") == _tree(v2)
    assert hub.list_tags(repo_id) == ["v1.0", "v1.1"]

    # what the client called: create, preupload, one commit per version, one tag per version; all with the token
    assert len(remote.calls("POST", r"^/api/repos/create$")) == 2
    assert len(remote.calls("POST", rf"^/api/models/{repo_id}/preupload/main$")) == 2
    assert len(remote.calls("POST", rf"^/api/models/{repo_id}/commit/main$")) == 2
    assert remote.calls("POST", rf"^/api/models/{repo_id}/tag/") == [
        f"/api/models/{repo_id}/tag/{sha1}",
        f"/api/models/{repo_id}/tag/{sha2}",
    ]
    assert remote.tokens == {TOKEN}

    # the same content again under an existing version: nothing is written
    commits = len(remote.calls("POST", r"/commit/"))
    assert hub.publish_folder(v1, repo_id, "model", version="v1.0", target="hub") == sha1
    assert len(remote.calls("POST", r"/commit/")) == commits
    # other content under an existing version: refused, and the tag still reads back as before
    with pytest.raises(HubError, match="already exists with different content"):
        hub.publish_folder(v2, repo_id, "model", version="v1.0", target="hub")
    assert _read_back(repo_id, "model", "v1.0") == _tree(v1)


def test_a_space_is_created_with_its_readme_sdk(remote: HubStandIn, tmp_path: Path) -> None:
    card = b"---\ntitle: t\nsdk: gradio\napp_file: app.py\n---\n"
    app = _folder(tmp_path / "space", {"README.md": card, "app.py": b"print('hi')\n"})
    hub.publish_folder(app, "standin-org/demo", "space", version="v1.0", target="hub")
    assert remote.repos[("space", "standin-org/demo")].sdk == "gradio"
    assert _read_back("standin-org/demo", "space", "v1.0") == _tree(app)


def test_a_moved_main_branch_refuses_the_commit(remote: HubStandIn, tmp_path: Path) -> None:
    """The commit is parented on the `main` it read: a concurrent push makes it fail, not mix two versions."""
    repo_id = "standin-org/raced"
    folder = _folder(tmp_path / "a", {"a.txt": b"a"})
    hub.publish_folder(folder, repo_id, "dataset", target="hub")
    repo = remote.repos[("dataset", repo_id)]
    original = remote.commit

    def concurrent_push_first(repo_arg, revision, lines):  # another client commits between our read and our write
        repo.branches["main"] = repo.add_commit({"other.txt": b"x"}, repo.branches["main"], "elsewhere").sha
        remote.commit = original
        return original(repo_arg, revision, lines)

    remote.commit = concurrent_push_first
    (folder / "a.txt").write_bytes(b"b")
    with pytest.raises(HubError, match=r"refused to publish dataset repo standin-org/raced \(HTTP 412\)"):
        hub.publish_folder(folder, repo_id, "dataset", version="v1.0", target="hub")
    assert hub.list_tags(repo_id, "dataset") == []


def test_an_unreachable_hub_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "f", {"a.txt": b"a"})
    dead = "http://127.0.0.1:9"
    result = subprocess.run(
        [sys.executable, "-m", "cie10", "hub", "publish", str(folder), "standin-org/x", "--target", "hub"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_ENDPOINT": dead, "HF_TOKEN": TOKEN},
        timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"Hub endpoint {dead} is not reachable" in lines[0], result.stderr
    assert result.stdout == ""


def test_the_local_hub_refuses_target_hub(local_hub, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "f", {"a.txt": b"a"})
    with pytest.raises(HubError, match="is the local Hub, which is read-only for clients"):
        hub.publish_folder(folder, "standin-org/x", "model", target="hub")
