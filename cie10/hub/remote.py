"""Publishing to a real Hub (`target="hub"`): the `huggingface_hub` client's write calls against `HF_ENDPOINT`.

One version is one commit: `create_repo` (exist_ok), then `create_commit` with every file of the folder added and
every other remote file deleted (parented on the current `main`, so a concurrent push fails rather than mixes),
then `create_tag` on that commit. Large files travel the way the client chooses (Xet or LFS) before the commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cie10.errors import HubError
from cie10.hub.client import MAIN_BRANCH, RepoType, _hf_api, check_endpoint, endpoint, hub_errors, repo_url
from cie10.hub.local_git import CHAT_TEMPLATES_PLACEHOLDER
from cie10.hub.server import is_local_hub

logger = logging.getLogger(__name__)

DEFAULT_SPACE_SDK = "gradio"
"""A Space's SDK when its README.md does not name one (`sdk:`): the kit's Spaces are Gradio apps."""


def _git_blob_sha(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remote_matches(api: Any, repo_id: str, repo_type: str, revision: str, files: dict[str, Path]) -> bool:
    """Whether a remote revision holds exactly these files (`.gitattributes` and placeholders aside)."""
    remote = {
        entry.path: entry
        for entry in api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
        if getattr(entry, "blob_id", None) is not None
    }
    for extra in (".gitattributes", CHAT_TEMPLATES_PLACEHOLDER):
        if extra not in files:
            remote.pop(extra, None)
    if set(remote) != set(files):
        return False
    for rel, path in files.items():
        entry = remote[rel]
        if entry.lfs is not None:
            if entry.lfs.sha256 != _sha256(path):
                return False
        elif entry.blob_id != _git_blob_sha(path):
            return False
    return True


def publish_to_hub(files: dict[str, Path], repo_id: str, repo_type: RepoType, version: str | None, message: str) -> str:
    """Publish `files` to `HF_ENDPOINT` as one commit on `main` (tagged `version`); return the commit sha."""
    if is_local_hub():
        raise HubError(
            f"HF_ENDPOINT={endpoint()} is the local Hub, which is read-only for clients: publish to it with "
            "target 'local', or point HF_ENDPOINT at the real Hub for target 'hub'"
        )
    check_endpoint()
    api = _hf_api()
    with _upload_errors(repo_id, repo_type, version):
        api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, **_space_sdk(repo_type, files))
        refs = api.list_repo_refs(repo_id, repo_type=repo_type)
        tagged = {tag.name: tag.target_commit for tag in refs.tags}
        if version is not None and version in tagged:
            if not _remote_matches(api, repo_id, repo_type, version, files):
                raise HubError(
                    f"version {version} of {repo_id} already exists with different content: "
                    "publish a new version instead"
                )
            logger.info("%s %s is already published with this content", repo_id, version)
            return tagged[version]
        head = next((branch.target_commit for branch in refs.branches if branch.name == MAIN_BRANCH), None)
        info = api.create_commit(
            repo_id,
            _operations(api, repo_id, repo_type, head, files),
            commit_message=message,
            repo_type=repo_type,
            parent_commit=head,
        )
        sha = info.oid
        if version is not None:
            api.create_tag(repo_id, tag=version, revision=sha, repo_type=repo_type, tag_message=message)
    logger.info("published %s %s (%s) to %s", repo_id, version or MAIN_BRANCH, sha[:12], repo_url(repo_id, repo_type))
    return sha


def _operations(api: Any, repo_id: str, repo_type: str, head: str | None, files: dict[str, Path]) -> list[Any]:
    """Delete what the folder no longer holds (`.gitattributes` stays), add every file of the folder."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    remote = set(api.list_repo_files(repo_id, repo_type=repo_type, revision=head)) if head else set()
    gone = sorted(remote - set(files) - {".gitattributes"})
    return [CommitOperationDelete(path_in_repo=path) for path in gone] + [
        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in files.items()
    ]


def _space_sdk(repo_type: str, files: dict[str, Path]) -> dict[str, str]:
    """`create_repo`'s `space_sdk` for a Space: the `sdk:` of its README.md, else Gradio."""
    if repo_type != "space":
        return {}
    from huggingface_hub import metadata_load

    readme = files.get("README.md")
    sdk = (metadata_load(readme) or {}).get("sdk") if readme is not None else None
    return {"space_sdk": sdk or DEFAULT_SPACE_SDK}


@contextlib.contextmanager
def _upload_errors(repo_id: str, repo_type: RepoType, version: str | None) -> Iterator[None]:
    """`hub_errors`, plus the Hub refusing a write (401, 403, 409 when `main` moved meanwhile, ...) as one line."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        with hub_errors(repo_id, repo_type, version):
            yield
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubError(
            f"{endpoint()} refused to publish {repo_type} repo {repo_id} (HTTP {status}): {reason}"
        ) from error
