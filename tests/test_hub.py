"""The local Hub: publish → load round trips through the real clients, versions as tags, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cie10 import hub
from cie10.errors import HubError
from cie10.hub import LocalHubServer
from cie10.settings import get_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _repo(name: str) -> str:
    return get_settings().repo_id(name)


def _dataset_folder(folder: Path, rows: list[dict], extra: str | None = None) -> Path:
    import datasets

    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# test dataset\n")
    if extra is not None:
        (folder / "extra.txt").write_text(extra)
    return folder


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cie10", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_dataset_versions_round_trip(local_hub: LocalHubServer, tmp_path: Path) -> None:
    from huggingface_hub import HfApi

    repo_id = _repo("tiny-dataset")
    v1 = _dataset_folder(tmp_path / "v1", [{"code": "A00", "text": "cólera"}], extra="only in v1.0")
    v2 = _dataset_folder(tmp_path / "v2", [{"code": "B01", "text": "varicela"}, {"code": "C50", "text": "mama"}])
    sha1 = hub.publish_folder(v1, repo_id, "dataset", version="v1.0")
    sha2 = hub.publish_folder(v2, repo_id, "dataset", version="v1.1")
    assert sha1 != sha2

    assert hub.list_tags(repo_id, "dataset") == ["v1.0", "v1.1"]
    assert hub.mirror_path(repo_id, "dataset").is_dir()
    assert hub.repo_url(repo_id, "dataset") == f"{local_hub.url}/datasets/{repo_id}"

    assert hub.load_dataset(repo_id, revision="v1.0")["train"]["code"] == ["A00"]
    assert hub.load_dataset(repo_id, revision="v1.1")["train"]["code"] == ["B01", "C50"]
    import datasets

    assert datasets.load_dataset(repo_id)["train"]["text"] == ["varicela", "mama"]  # no revision: main

    api = HfApi()
    assert "extra.txt" in api.list_repo_files(repo_id, repo_type="dataset", revision="v1.0")
    assert "extra.txt" not in api.list_repo_files(repo_id, repo_type="dataset", revision="v1.1")
    assert api.dataset_info(repo_id).sha == sha2
    # the check target "hub" uses before re-tagging, run against the local Hub
    assert hub._remote_matches(api, repo_id, "dataset", "v1.1", hub._folder_files(v2))
    assert not hub._remote_matches(api, repo_id, "dataset", "v1.0", hub._folder_files(v2))

    # same content under an existing version: a no-op; different content: refused, nothing changes
    assert hub.publish_folder(v2, repo_id, "dataset", version="v1.1") == sha2
    with pytest.raises(HubError, match="v1.0 .* already exists with different content"):
        hub.publish_folder(v2, repo_id, "dataset", version="v1.0")
    assert hub.list_tags(repo_id, "dataset") == ["v1.0", "v1.1"]
    assert api.dataset_info(repo_id).sha == sha2

    with pytest.raises(HubError, match="version v9.9 not found .*published: v1.0, v1.1"):
        hub.load_dataset(repo_id, revision="v9.9")


def _tiny_bert(folder: Path, seed: int) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "fiebre", "tos", "dolor"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    special = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, mask_token="[MASK]", **special).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    return folder


def test_model_versions_round_trip(local_hub: LocalHubServer, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    repo_id = _repo("tiny-bert")
    folders = {v: _tiny_bert(tmp_path / v, seed) for v, seed in (("v1.0", 0), ("v1.1", 1))}
    for version, folder in folders.items():
        hub.publish_folder(folder, repo_id, "model", version=version)

    for version, folder in folders.items():
        with hub.hub_errors(repo_id, "model", version):
            loaded = AutoModel.from_pretrained(repo_id, revision=version)
        expected = AutoModel.from_pretrained(folder)
        assert torch.equal(loaded.embeddings.word_embeddings.weight, expected.embeddings.word_embeddings.weight)
    latest = AutoModel.from_pretrained(repo_id)  # no revision: main = v1.1
    assert torch.equal(latest.pooler.dense.weight, AutoModel.from_pretrained(folders["v1.1"]).pooler.dense.weight)
    tokenizer = AutoTokenizer.from_pretrained(repo_id, revision="v1.0")
    assert tokenizer("fiebre tos")["input_ids"] == [5, 6]

    with pytest.raises(HubError, match=r"version v9\.9 not found .*\(published: v1\.0, v1\.1\)"):
        with hub.hub_errors(repo_id, "model", "v9.9"):
            AutoModel.from_pretrained(repo_id, revision="v9.9")
    with pytest.raises(HubError, match="tiny-bert-missing on .* not found"):
        with hub.hub_errors(repo_id + "-missing", "model"):
            AutoModel.from_pretrained(repo_id + "-missing")


def test_binary_download_is_byte_identical(local_hub: LocalHubServer, tmp_path: Path) -> None:
    repo_id = _repo("binary")
    folder = tmp_path / "bin"
    (folder / "weights").mkdir(parents=True)
    payload = os.urandom(8 * 1024 * 1024 + 123)  # big enough to cross olah's and git's small-object paths
    (folder / "weights" / "blob.bin").write_bytes(payload)
    (folder / "small.bin").write_bytes(bytes(range(256)))
    (folder / "lfs-pointer-sized.txt").write_bytes(b"x" * 130)  # olah checks 121-149-byte files for LFS
    hub.publish_folder(folder, repo_id, "model", version="v1.0")
    downloaded = hub.download_file(repo_id, "weights/blob.bin", revision="v1.0")
    assert downloaded.read_bytes() == payload
    assert hub.download_file(repo_id, "small.bin", revision="v1.0").read_bytes() == bytes(range(256))
    assert hub.download_file(repo_id, "lfs-pointer-sized.txt").read_bytes() == b"x" * 130
    with pytest.raises(HubError, match="lacks a file"):
        hub.download_file(repo_id, "no-such-file.bin", revision="v1.0")


def test_failed_publish_leaves_repo_intact(
    local_hub: LocalHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_id = _repo("atomic")
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.txt").write_text("v1")
    sha = hub.publish_folder(good, repo_id, "dataset", version="v1.0")
    new_repo = _repo("never-created")

    def broken(*args: object, **kwargs: object) -> str:
        raise HubError("disk full (simulated)")

    monkeypatch.setattr(hub.local_git, "_write_tree", broken)
    (good / "a.txt").write_text("v2")
    with pytest.raises(HubError, match="simulated"):
        hub.publish_folder(good, repo_id, "dataset", version="v1.1")
    with pytest.raises(HubError, match="simulated"):
        hub.publish_folder(good, new_repo, "dataset", version="v1.0")
    monkeypatch.undo()

    assert hub.list_tags(repo_id, "dataset") == ["v1.0"]
    assert not hub.mirror_path(new_repo, "dataset").exists()
    assert hub.list_tags(new_repo, "dataset") == []
    assert hub.download_file(repo_id, "a.txt", repo_type="dataset").read_text() == "v1"
    assert hub.publish_folder(good, repo_id, "dataset", version="v1.1") != sha


def test_stopped_server_gives_clear_errors(local_hub: LocalHubServer, tmp_path: Path) -> None:
    port = _free_port()
    with LocalHubServer(port, hub_dir=local_hub.hub_dir) as server:
        hub.check_endpoint(server.url)
    message = f"Hub endpoint {server.url} is not reachable: start it with `cie10 hub serve` or set HF_ENDPOINT"
    with pytest.raises(HubError) as caught:
        hub.check_endpoint(server.url)
    assert str(caught.value) == message

    # the kit's helpers report the same line, not a client traceback
    os.environ["HF_ENDPOINT"] = server.url
    try:
        with pytest.raises(HubError, match="is not reachable"):
            hub.download_file(_repo("binary"), "small.bin", revision="v1.0")
        with pytest.raises(HubError, match="is not reachable"):
            hub.list_tags(_repo("binary"))
    finally:
        os.environ["HF_ENDPOINT"] = local_hub.url


def test_cli_status_on_dead_port_is_one_clear_line() -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    result = _cli("hub", "status", HF_ENDPOINT=dead)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"Hub endpoint {dead} is not reachable" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_serve_background_status_stop(tmp_path: Path) -> None:
    port = _free_port()
    env = {"CIE10_HUB_DIR": str(tmp_path / "hub"), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    started = _cli("hub", "serve", "--port", str(port), "--background", **env)
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"export HF_ENDPOINT=http://127.0.0.1:{port}"
        assert (tmp_path / "hub" / f"olah-{port}.pid").is_file()
        status = _cli("hub", "status", **env)
        assert status.returncode == 0 and "up" in status.stdout
    finally:
        stopped = _cli("hub", "stop", **env)
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "hub" / f"olah-{port}.pid").exists()
    assert _cli("hub", "status", **env).returncode != 0
