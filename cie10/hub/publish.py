"""`publish_folder`: one folder becomes one version of a repo, on the local Hub (git mirror) or a real Hub."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal

from cie10.errors import HubError
from cie10.hub.client import (
    MAIN_BRANCH,
    RepoType,
    _check_repo_type,
    check_endpoint,
    endpoint,
    is_local_endpoint,
    split_repo_id,
)
from cie10.hub.local_git import publish_to_mirror
from cie10.hub.remote import publish_to_hub
from cie10.settings import Settings, get_settings

logger = logging.getLogger(__name__)

_SKIPPED_DIRS = (".git", ".cache")
"""Never published (the Hub client refuses them too)."""
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def publish_folder(
    folder: Path | str,
    repo_id: str,
    repo_type: RepoType,
    *,
    version: str | None = None,
    target: Literal["local", "hub"] = "local",
    commit_message: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Publish a folder as the new content of `repo_id` (tagged `version` if given); return the commit sha.

    The commit holds exactly the folder's files (files gone from the folder disappear), except `.git/` and
    `.cache/` folders. `target="local"` commits into the local Hub's git mirror; `target="hub"` uploads with
    the real client to `HF_ENDPOINT`. Re-publishing identical content under an existing version is a no-op;
    different content under an existing version is an error. A failure leaves the repo as it was.
    """
    folder = Path(folder)
    if target not in ("local", "hub"):
        raise HubError(f"unknown publish target {target!r}: expected 'local' or 'hub'")
    _check_repo_type(repo_type)
    split_repo_id(repo_id)
    if not folder.is_dir():
        raise HubError(f"cannot publish {folder}: not a folder")
    if version is not None and (not _VERSION_RE.match(version) or version == MAIN_BRANCH):
        raise HubError(f"invalid version {version!r}: expected a tag like v1.0")
    message = commit_message or (f"Publish {version}" if version else "Publish")
    files = _folder_files(folder)
    if not files:
        raise HubError(f"cannot publish {folder}: no files in it")
    if target == "local":
        check_local_target()
        return publish_to_mirror(files, repo_id, repo_type, version, message, settings or get_settings())
    return publish_to_hub(files, repo_id, repo_type, version, message)


def _folder_files(folder: Path) -> dict[str, Path]:
    """`{path in repo: file}` for every regular file under `folder` (symlinks followed), sorted."""
    files: dict[str, Path] = {}
    folder = Path(os.path.abspath(folder))
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(names):
            path = Path(root, name)
            rel = path.relative_to(folder).as_posix()
            if "\n" in rel or "\\" in rel:
                raise HubError(f"cannot publish {path}: unsupported character in file name")
            if path.is_file():
                files[rel] = path
            else:
                logger.warning("skipping %s: not a regular file", path)
    return dict(sorted(files.items()))


def check_local_target() -> None:
    """Before writing to the local Hub's mirror: `HF_ENDPOINT` is a loopback address where a Hub answers.

    Otherwise the publish would succeed on disk and point the user at a URL that does not answer.
    """
    url = endpoint()
    if not is_local_endpoint(url):
        raise HubError(
            f"target 'local' publishes to the local Hub, but HF_ENDPOINT is {url}: start it with "
            "`cie10 hub serve --background` and export HF_ENDPOINT=http://127.0.0.1:8090 (or use --target hub)"
        )
    check_endpoint(url)
