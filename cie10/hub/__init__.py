"""The Hub, real or local: where artifacts are published and loaded from by id.

`HF_ENDPOINT` decides where the real `huggingface_hub` / `datasets` / `sentence-transformers` clients go: the
real Hub (unset), or the local Hub that `cie10 hub serve` starts on loopback. Versions are git tags (`v1.0`,
...): `publish_folder(..., version="v1.0")` tags the commit, and a client loading with `revision="v1.0"` gets
exactly that content. One module per job:

- `client`: the endpoint, repo names, versions (tags), downloads, and clear errors for failed client calls;
- `publish`: `publish_folder`, the one way a folder becomes a version, on either target;
- `local_git`: target `local`, commits written with git into the local Hub's mirrors;
- `remote`: target `hub`, the `huggingface_hub` client's write calls (create repo, commit, tag);
- `server`: the local Hub's lifecycle (olah on loopback).
"""

from __future__ import annotations

from cie10.errors import HubError
from cie10.hub.client import (
    HUB_URL,
    MAIN_BRANCH,
    REPO_TYPES,
    RepoType,
    _hf_api,
    check_endpoint,
    check_revision,
    download_file,
    download_snapshot,
    endpoint,
    hub_errors,
    is_local_endpoint,
    is_ready,
    list_tags,
    load_dataset,
    repo_url,
    split_repo_id,
)
from cie10.hub.local_git import CHAT_TEMPLATES_PLACEHOLDER, mirror_path
from cie10.hub.publish import _folder_files, check_local_target, publish_folder
from cie10.hub.remote import _remote_matches
from cie10.hub.server import (
    DEAD_UPSTREAM,
    DEFAULT_PORT,
    LocalHubServer,
    background_pid,
    default_port,
    is_local_hub,
    olah_bin,
    stop_background,
)

__all__ = [
    "CHAT_TEMPLATES_PLACEHOLDER",
    "DEAD_UPSTREAM",
    "DEFAULT_PORT",
    "HUB_URL",
    "MAIN_BRANCH",
    "REPO_TYPES",
    "HubError",
    "LocalHubServer",
    "RepoType",
    "_folder_files",
    "_hf_api",
    "_remote_matches",
    "background_pid",
    "check_endpoint",
    "check_local_target",
    "check_revision",
    "default_port",
    "download_file",
    "download_snapshot",
    "endpoint",
    "hub_errors",
    "is_local_endpoint",
    "is_local_hub",
    "is_ready",
    "list_tags",
    "load_dataset",
    "mirror_path",
    "olah_bin",
    "publish_folder",
    "repo_url",
    "split_repo_id",
    "stop_background",
]
