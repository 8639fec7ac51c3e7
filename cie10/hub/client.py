"""Hub client helpers: which Hub the clients talk to, repo names, versions, downloads, and clear errors.

`HF_ENDPOINT` decides where the real `huggingface_hub` / `datasets` / `sentence-transformers` clients go: the
real Hub (unset), or the local Hub that `cie10 hub serve` starts on loopback. Versions are git tags (`v1.0`,
...): a client loading with `revision="v1.0"` gets exactly that content.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cie10.errors import HubError

if TYPE_CHECKING:
    import datasets

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: tuple[str, ...] = ("model", "dataset", "space")
HUB_URL = "https://huggingface.co"
"""The real Hub, used when `HF_ENDPOINT` is unset."""
MAIN_BRANCH = "main"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


# --------------------------------------------------------------------------------------------- endpoints


def endpoint() -> str:
    """The Hub the clients talk to: `HF_ENDPOINT` without a trailing slash, else the real Hub."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or HUB_URL


def is_local_endpoint(url: str | None = None) -> bool:
    """Whether the endpoint is on loopback (the local Hub) rather than a remote Hub."""
    host = urllib.parse.urlsplit(url or endpoint()).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def repo_url(repo_id: str, repo_type: RepoType = "model") -> str:
    """Web address of a repo on the current endpoint (`<endpoint>/[datasets/|spaces/]<org>/<name>`)."""
    _check_repo_type(repo_type)
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    return f"{endpoint()}/{prefix}{repo_id}"


def check_endpoint(url: str | None = None, timeout: float = 5.0) -> None:
    """Raise HubError with a clear message when the Hub endpoint does not answer HTTP at all."""
    base = (url or endpoint()).rstrip("/")
    if not _answers(base, timeout=timeout):
        raise HubError(f"Hub endpoint {base} is not reachable: start it with `cie10 hub serve` or set HF_ENDPOINT")


def _urlopen(url: str, timeout: float) -> Any:
    """`urlopen`, bypassing any HTTP proxy for loopback addresses (a proxy would answer for a dead server)."""
    if is_local_endpoint(url):
        return urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=timeout)
    return urllib.request.urlopen(url, timeout=timeout)


def _answers(base: str, timeout: float = 5.0, path: str = "/docs") -> bool:
    """Whether an HTTP server answers at `base` (any status counts; a refused connection does not)."""
    try:
        with _urlopen(base.rstrip("/") + path, timeout) as response:
            response.read(0)
        return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def is_ready(base: str, timeout: float = 2.0) -> bool:
    """Whether olah's API is up: `GET /docs` answers 200."""
    try:
        with _urlopen(base.rstrip("/") + "/docs", timeout) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------- names


def _check_repo_type(repo_type: str) -> None:
    if repo_type not in REPO_TYPES:
        raise HubError(f"unknown repo type {repo_type!r}: expected one of {', '.join(REPO_TYPES)}")


def split_repo_id(repo_id: str) -> tuple[str, str]:
    """`<org>/<name>` as `(org, name)`; HubError when malformed."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_NAME_RE.match(p) and ".." not in p for p in parts):
        raise HubError(f"invalid repo id {repo_id!r}: expected <org>/<name> (letters, digits, '.', '_', '-')")
    return parts[0], parts[1]


def _version_key(tag: str) -> tuple[Any, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", tag)), tag


# ------------------------------------------------------------------------------------------ client calls


def _hf_api() -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint())


def list_tags(repo_id: str, repo_type: RepoType = "model") -> list[str]:
    """Versions (git tags) of a repo, oldest first (`v1.2` < `v1.10`); [] if the repo does not exist."""
    from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError

    _check_repo_type(repo_type)
    check_endpoint()
    try:
        refs = _hf_api().list_repo_refs(repo_id, repo_type=repo_type)
    except (RepositoryNotFoundError, RemoteEntryNotFoundError):  # olah: "refs are not cached locally"
        return []
    except Exception as error:
        translated = _as_hub_error(error, repo_id, repo_type)
        if translated is error:
            raise
        raise translated from error
    return sorted((tag.name for tag in refs.tags), key=_version_key)


def check_revision(repo_id: str, repo_type: RepoType = "model", revision: str | None = None) -> None:
    """Raise HubError unless the repo exists and has `revision` (a tag, a branch or a commit sha).

    Call it before `datasets.load_dataset`: for an unknown revision, datasets quietly falls back to whatever
    version of the dataset it has cached.
    """
    from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError

    _check_repo_type(repo_type)
    check_endpoint()
    where = f"{repo_type} repo {repo_id} on {endpoint()}"
    try:
        refs = _hf_api().list_repo_refs(repo_id, repo_type=repo_type)
    except (RepositoryNotFoundError, RemoteEntryNotFoundError) as error:  # olah: "refs are not cached"
        raise HubError(f"{where} not found (not published yet?)") from error
    if revision is None or _is_sha(revision):
        return
    tags = sorted((tag.name for tag in refs.tags), key=_version_key)
    if revision not in {ref.name for ref in refs.branches} | set(tags):
        raise HubError(f"version {revision} not found in {where} (published: {', '.join(tags) or 'none'})")


def _is_sha(revision: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{7,40}", revision) is not None


def _find_hf_error(error: BaseException) -> BaseException | None:
    """The first huggingface_hub "not found" error in the cause/context chain (transformers wraps them)."""
    from huggingface_hub.errors import (
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RepositoryNotFoundError | RevisionNotFoundError | RemoteEntryNotFoundError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _as_hub_error(
    error: BaseException, repo_id: str, repo_type: RepoType = "model", revision: str | None = None
) -> BaseException:
    """A clear HubError for a failed client call, or the error itself when it is not about the Hub."""
    if isinstance(error, HubError):
        return error
    try:
        check_endpoint(timeout=3.0)
    except HubError as down:
        return down
    if _find_hf_error(error) is None:
        return error
    # olah answers a missing file or version as "repository not found": ask the refs what is missing
    try:
        check_revision(repo_id, repo_type, revision)
    except HubError as missing:
        return missing
    except Exception:  # noqa: BLE001 - the original error is the one to report
        return error
    where = f"{repo_type} repo {repo_id} on {endpoint()}"
    return HubError(f"{where} (revision {revision or MAIN_BRANCH}) lacks a file: {error}")


@contextlib.contextmanager
def hub_errors(repo_id: str, repo_type: RepoType = "model", revision: str | None = None) -> Iterator[None]:
    """Turn a client call's failure into one clear HubError: endpoint down, repo or version not found.

    Other errors pass through unchanged. Use around `from_pretrained`, `SentenceTransformer(...)`, etc.
    """
    try:
        yield
    except Exception as error:
        translated = _as_hub_error(error, repo_id, repo_type, revision)
        if translated is error:
            raise
        raise translated from error


def download_file(repo_id: str, filename: str, *, repo_type: RepoType = "model", revision: str | None = None) -> Path:
    """One file of a repo version, through the Hub cache (`hf_hub_download`)."""
    from huggingface_hub import hf_hub_download

    check_revision(repo_id, repo_type, revision)
    with hub_errors(repo_id, repo_type, revision):
        return Path(hf_hub_download(repo_id, filename, repo_type=repo_type, revision=revision, endpoint=endpoint()))


def download_snapshot(repo_id: str, *, repo_type: RepoType = "model", revision: str | None = None) -> Path:
    """All files of a repo version, through the Hub cache (`snapshot_download`)."""
    from huggingface_hub import snapshot_download

    check_revision(repo_id, repo_type, revision)
    with hub_errors(repo_id, repo_type, revision):
        return Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision, endpoint=endpoint()))


def load_dataset(repo_id: str, *, revision: str | None = None, **kwargs: Any) -> datasets.DatasetDict:
    """`datasets.load_dataset(repo_id, revision=...)`, with clear errors for a missing Hub or version."""
    import datasets

    check_revision(repo_id, "dataset", revision)
    with hub_errors(repo_id, "dataset", revision):
        return datasets.load_dataset(repo_id, revision=revision, **kwargs)
