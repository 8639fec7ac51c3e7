"""The Hub, real or local: where artifacts are published and loaded from by id.

`HF_ENDPOINT` decides where the real `huggingface_hub` / `datasets` / `sentence-transformers` clients go: the
real Hub (unset), or the local Hub that `cie10 hub serve` starts on loopback. The local Hub is olah (a
Hub-compatible server) reading git repos laid out as
`<hub_dir>/mirrors/{models,datasets,spaces}/<org>/<name>`, with its upstream pointed at a dead loopback port
so that nothing leaves the machine.

Versions are git tags (`v1.0`, ...): `publish_folder(..., version="v1.0")` tags the commit, and a client
loading with `revision="v1.0"` gets exactly that content.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cie10.errors import HubError
from cie10.settings import Settings, get_settings

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: tuple[str, ...] = ("model", "dataset", "space")
HUB_URL = "https://huggingface.co"
"""The real Hub, used when `HF_ENDPOINT` is unset."""
DEFAULT_PORT = 8090
"""Port of `cie10 hub serve` (so `HF_ENDPOINT=http://127.0.0.1:8090`)."""
DEAD_UPSTREAM = "127.0.0.1:9"
"""olah's "upstream Hub": the loopback discard port, where nothing listens, so nothing leaves the machine."""
MAIN_BRANCH = "main"
CHAT_TEMPLATES_PLACEHOLDER = "additional_chat_templates/README.md"
"""Added to model repos: transformers lists `additional_chat_templates/`, and olah answers a missing folder
with 'repository not found', which transformers does not forgive."""
_CHAT_TEMPLATES_TEXT = b"No additional chat templates: this file keeps the folder listable on a local Hub.\n"
_SKIPPED_DIRS = (".git", ".cache")
"""Never published (the Hub client refuses them too)."""
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ZERO_SHA = "0" * 40
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "cie10",
    "GIT_AUTHOR_EMAIL": "cie10@localhost",
    "GIT_COMMITTER_NAME": "cie10",
    "GIT_COMMITTER_EMAIL": "cie10@localhost",
}


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


def mirror_path(repo_id: str, repo_type: RepoType = "model", settings: Settings | None = None) -> Path:
    """The local Hub's git repo for `repo_id`: `<hub_dir>/mirrors/<type>s/<org>/<name>` (bare)."""
    _check_repo_type(repo_type)
    org, name = split_repo_id(repo_id)
    return (settings or get_settings()).hub_dir / "mirrors" / f"{repo_type}s" / org / name


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


# ---------------------------------------------------------------------------------------------- publish


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
        return _publish_local(files, repo_id, repo_type, version, message, settings or get_settings())
    if target == "hub":
        return _publish_hub(folder, files, repo_id, repo_type, version, message)
    raise HubError(f"unknown publish target {target!r}: expected 'local' or 'hub'")


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


class _Git:
    """git plumbing on one repo (its git dir), isolated from the user's git configuration."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        self.env = {
            **os.environ,
            **_GIT_IDENTITY,
            "GIT_DIR": str(git_dir),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
        }
        for var in ("GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE"):
            self.env.pop(var, None)

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        # no zlib for objects: model weights and parquet hardly compress, and level 0 publishes 3x faster
        command = ["git", "-c", "core.looseCompression=0", "-c", "core.compression=0", *args]
        result = subprocess.run(command, input=input, env=self.env, capture_output=True, check=False)
        if check and result.returncode != 0:
            raise HubError(f"git {args[0]} failed in {self.git_dir}: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode().strip()

    def rev(self, ref: str) -> str | None:
        """The commit a ref points to, or None."""
        out = self("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return out or None

    def tree_of(self, commit: str) -> str:
        return self("rev-parse", f"{commit}^{{tree}}")


def _write_tree(git: _Git, blobs: dict[str, tuple[str, str]]) -> str:
    """Write a nested tree from `{path: (mode, blob sha)}` with `git mktree`; return its sha."""
    root: dict[str, Any] = {}
    for path, entry in blobs.items():
        node = root
        *dirs, name = path.split("/")
        for part in dirs:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise HubError(f"cannot publish: {path} clashes with a file of the same name")
        node[name] = entry

    def write(node: dict[str, Any]) -> str:
        lines = []
        for name, entry in node.items():
            if isinstance(entry, dict):
                lines.append(f"040000 tree {write(entry)}\t{name}")
            else:
                lines.append(f"{entry[0]} blob {entry[1]}\t{name}")
        return git("mktree", "-z", input=("\0".join(lines) + "\0").encode() if lines else b"")

    return write(root)


def _commit_content(
    git: _Git, files: dict[str, Path], repo_type: str, message: str
) -> tuple[str, str | None, str | None]:
    """Write the folder's blobs and tree; return (tree, new commit or None when unchanged, parent)."""
    paths = "".join(f"{path}\n" for path in files.values()).encode()
    shas = git("hash-object", "-w", "--no-filters", "--stdin-paths", input=paths).split()
    blobs = {
        rel: ("100755" if os.access(path, os.X_OK) else "100644", sha)
        for (rel, path), sha in zip(files.items(), shas, strict=True)
    }
    if repo_type == "model" and not any(p.startswith("additional_chat_templates/") for p in blobs):
        placeholder = git("hash-object", "-w", "--stdin", input=_CHAT_TEMPLATES_TEXT)
        blobs[CHAT_TEMPLATES_PLACEHOLDER] = ("100644", placeholder)
    tree = _write_tree(git, blobs)
    parent = git.rev(f"refs/heads/{MAIN_BRANCH}")
    if parent is not None and git.tree_of(parent) == tree:
        return tree, None, parent
    args = ["commit-tree", tree, "-m", message]
    if parent is not None:
        args += ["-p", parent]
    return tree, git(*args), parent


def _publish_local(
    files: dict[str, Path],
    repo_id: str,
    repo_type: RepoType,
    version: str | None,
    message: str,
    settings: Settings,
) -> str:
    """Commit into the bare mirror: blobs first, then one atomic ref transaction (main + tag)."""
    mirror = mirror_path(repo_id, repo_type, settings)
    with _repo_lock(settings.hub_dir, repo_type, repo_id):
        staging: Path | None = None
        if mirror.exists():
            git = _Git(mirror / ".git" if (mirror / ".git").is_dir() else mirror)
        else:
            # a new repo is built aside and renamed into place: it appears whole or not at all
            tmp_root = settings.hub_dir / ".tmp"
            tmp_root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix="publish-", dir=tmp_root))
            git = _Git(staging / "repo.git")
            git("init", "--quiet", "--bare", f"--initial-branch={MAIN_BRANCH}", str(git.git_dir))
        try:
            tree, commit, parent = _commit_content(git, files, repo_type, message)
            head = commit or parent
            assert head is not None
            if version is not None:
                tagged = git.rev(f"refs/tags/{version}")
                if tagged is not None:
                    if git.tree_of(tagged) != tree:
                        raise HubError(
                            f"version {version} of {repo_id} already exists with different content: "
                            "publish a new version instead"
                        )
                    logger.info("%s %s is already published with this content", repo_id, version)
                    return tagged
            updates = []
            if commit is not None:
                updates.append(f"update refs/heads/{MAIN_BRANCH} {commit} {parent or _ZERO_SHA}")
            if version is not None:
                updates.append(f"create refs/tags/{version} {head}")
            if updates:
                git(
                    "update-ref",
                    "--stdin",
                    input=("\n".join(["start", *updates, "prepare", "commit"]) + "\n").encode(),
                )
            if staging is not None:
                mirror.parent.mkdir(parents=True, exist_ok=True)
                os.rename(git.git_dir, mirror)
            _write_meta_head(settings, repo_id, repo_type, git if staging is None else _Git(mirror))
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
    if commit is None and version is None:
        logger.info("%s: nothing changed since %s", repo_id, head[:12])
    else:
        logger.info(
            "published %s %s (%s) to %s",
            repo_id,
            version or MAIN_BRANCH,
            head[:12],
            repo_url(repo_id, repo_type),
        )
    return head


@contextlib.contextmanager
def _repo_lock(hub_dir: Path, repo_type: str, repo_id: str) -> Iterator[None]:
    """Serialize publishes to one repo across processes."""
    lock_dir = hub_dir / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{repo_type}s--{repo_id.replace('/', '--')}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_meta_head(settings: Settings, repo_id: str, repo_type: RepoType, git: _Git) -> None:
    """No-revision lookups go to main: olah reads `repos/api/<type>s/<id>/revision/*/meta_head.json`."""
    sha = git.rev(f"refs/heads/{MAIN_BRANCH}")
    if sha is None:
        return
    path = settings.hub_dir / "repos" / "api" / f"{repo_type}s" / repo_id / "revision" / MAIN_BRANCH
    path = path / "meta_head.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"id": repo_id, "sha": sha, "lastModified": now}))
    os.replace(tmp, path)


def _git_blob_sha(path: Path) -> str:
    import hashlib

    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    import hashlib

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


def _publish_hub(
    folder: Path, files: dict[str, Path], repo_id: str, repo_type: RepoType, version: str | None, message: str
) -> str:
    """Publish to `HF_ENDPOINT` with the real client: create_repo, upload_folder, create_tag."""
    if is_local_endpoint():
        raise HubError(
            f"HF_ENDPOINT={endpoint()} is the local Hub, which is read-only for clients: publish to it with "
            "target 'local', or point HF_ENDPOINT at the real Hub for target 'hub'"
        )
    check_endpoint()
    api = _hf_api()
    with hub_errors(repo_id, repo_type, version):
        api.create_repo(repo_id, repo_type=repo_type, exist_ok=True)
        if version is not None:
            refs = api.list_repo_refs(repo_id, repo_type=repo_type)
            tagged = {tag.name: tag.target_commit for tag in refs.tags}
            if version in tagged:
                if not _remote_matches(api, repo_id, repo_type, version, files):
                    raise HubError(
                        f"version {version} of {repo_id} already exists with different content: "
                        "publish a new version instead"
                    )
                logger.info("%s %s is already published with this content", repo_id, version)
                return tagged[version]
        info = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            commit_message=message,
            delete_patterns="*",
        )
        sha = info.oid
        if version is not None:
            api.create_tag(repo_id, tag=version, revision=sha, repo_type=repo_type, tag_message=message)
    logger.info("published %s %s (%s) to %s", repo_id, version or MAIN_BRANCH, sha[:12], repo_url(repo_id, repo_type))
    return sha


# ------------------------------------------------------------------------------------------ local server


def olah_bin() -> str:
    """The olah-cli executable: `CIE10_OLAH_BIN`, else `<repo>/.venv-olah/bin/olah-cli`, else on PATH."""
    configured = os.environ.get("CIE10_OLAH_BIN", "").strip()
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise HubError(f"CIE10_OLAH_BIN={configured} is not an executable file")
        return configured
    bundled = Path(__file__).resolve().parents[2] / ".venv-olah" / "bin" / "olah-cli"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    found = shutil.which("olah-cli")
    if found:
        return found
    raise HubError(
        f"olah (the local Hub server) is not installed: expected {bundled} (`make install` creates it), "
        "olah-cli on PATH, or CIE10_OLAH_BIN"
    )


_OLAH_LAUNCHER = '''"""Written by cie10: run olah with fixes for serving large files from local git mirrors.

olah 0.5.4 answers HEAD of a mirrored file by reading the blob three times, and GET in 4 KiB chunks each
handed to a worker thread: a 470 MB model takes ~7 s per HEAD (every load does one) and ~2 min per GET.
The fixes read the size from git's index of objects and stream 1 MiB chunks. Without them (other olah
versions), olah runs unpatched.
"""

import sys


def _patch() -> None:
    from olah.mirror.repos import LocalMirrorRepo

    original_get_file = LocalMirrorRepo.get_file
    original_get_file_head = LocalMirrorRepo.get_file_head
    chunk = 1 << 20

    def blob_of(self, commit_hash, path):
        try:
            commit = self._git_repo.commit(commit_hash)
            if not self._contain_path(path, commit.tree):
                return commit, None
            entry = commit.tree[path]
        except Exception:
            return None, None
        return commit, (entry if entry.type == "blob" else None)

    def may_be_lfs_pointer(blob):
        return 120 < blob.size < 150

    def get_file_head(self, commit_hash, path):
        commit, blob = blob_of(self, commit_hash, path)
        if blob is None or may_be_lfs_pointer(blob):
            return original_get_file_head(self, commit_hash, path) if blob is not None else None
        return {"content-length": str(blob.size), "x-repo-commit": commit.hexsha, "etag": blob.hexsha}

    def get_file(self, commit_hash, path):
        commit, blob = blob_of(self, commit_hash, path)
        if blob is None or may_be_lfs_pointer(blob):
            return original_get_file(self, commit_hash, path) if blob is not None else None
        data = memoryview(blob.data_stream.read())

        def chunks():
            for start in range(0, len(data), chunk):
                yield bytes(data[start : start + chunk])

        return chunks()

    LocalMirrorRepo.get_file_head = get_file_head
    LocalMirrorRepo.get_file = get_file


try:
    _patch()
except Exception as error:  # another olah version: serve unpatched
    print(f"cie10: olah runs unpatched ({error!r})", file=sys.stderr)

from olah.server import cli  # noqa: E402

sys.argv[0] = "olah-cli"
sys.exit(cli())
'''
"""Started instead of olah-cli (with olah's own Python) when that Python can be found."""


def _olah_python(binary: str) -> str | None:
    """The Python interpreter of an olah-cli console script (from its `#!` line), if any."""
    try:
        with open(binary, "rb") as handle:
            first = handle.readline(512).decode(errors="replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    interpreter = first[2:].strip().split()[0] if first[2:].strip() else ""
    if "python" in Path(interpreter).name and os.access(interpreter, os.X_OK):
        return interpreter
    return None


class LocalHubServer:
    """olah serving the local mirrors on loopback; a context manager (start on enter, stop on exit).

    Files in `hub_dir`: `olah-<port>.toml` (config), `olah-<port>.log` (its output), `olah-<port>.pid`.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        host: str = "127.0.0.1",
        hub_dir: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.port = port
        self.host = host
        self.hub_dir = (Path(hub_dir) if hub_dir is not None else get_settings().hub_dir).absolute()
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The endpoint to put in `HF_ENDPOINT`."""
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.hub_dir / f"olah-{self.port}.toml"

    @property
    def log_path(self) -> Path:
        return self.hub_dir / f"olah-{self.port}.log"

    @property
    def pid_path(self) -> Path:
        return self.hub_dir / f"olah-{self.port}.pid"

    def write_config(self) -> Path:
        """Write olah's TOML config: offline, mirrors in `hub_dir/mirrors`, upstream a dead loopback port."""
        for sub in ("mirrors/models", "mirrors/datasets", "mirrors/spaces", "repos", "logs"):
            (self.hub_dir / sub).mkdir(parents=True, exist_ok=True)
        netloc = f"{self.host}:{self.port}"
        text = f"""# written by cie10 (LocalHubServer): the local Hub on {self.url}
[basic]
host = {json.dumps(self.host)}
port = {self.port}
repos-path = {json.dumps(str(self.hub_dir / "repos"))}
mirrors-path = [{json.dumps(str(self.hub_dir / "mirrors"))}]
hf-scheme = "http"
hf-netloc = "{DEAD_UPSTREAM}"
hf-lfs-netloc = "{DEAD_UPSTREAM}"
mirror-scheme = "http"
mirror-netloc = "{netloc}"
mirror-lfs-netloc = "{netloc}"
metadata-cache-ttl = 0

[accessibility]
offline = true
"""
        self.config_path.write_text(text)
        return self.config_path

    def start(self, *, detach: bool = False) -> LocalHubServer:
        """Start olah and wait until it answers; `detach` leaves it running after this process exits."""
        if self.process is not None and self.process.poll() is None:
            return self
        if _port_in_use(self.host, self.port):
            raise HubError(
                f"port {self.port} on {self.host} is already in use (a local Hub already running? "
                "see `cie10 hub status`)"
            )
        self.hub_dir.mkdir(parents=True, exist_ok=True)
        olah = self._olah_command()
        config = self.write_config()
        command = [*olah, "--config", str(config), "--log-path", str(self.hub_dir / "logs")]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.hub_dir,
                start_new_session=True,  # Ctrl-C in the terminal goes to us, and we stop it
            )
        self.pid_path.write_text(f"{self.process.pid}\n")
        logger.info("starting the local Hub on %s (pid %d, log %s)", self.url, self.process.pid, self.log_path)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        if detach:
            self.process = None  # not ours to stop any more: `cie10 hub stop` does it by pid
        return self

    def _olah_command(self) -> list[str]:
        """olah-cli, or olah's Python running the patched launcher (see `_OLAH_LAUNCHER`)."""
        binary = olah_bin()
        python = _olah_python(binary)
        if python is None or os.environ.get("CIE10_OLAH_PATCH", "1") == "0":
            return [binary]
        launcher = self.hub_dir / "olah_launcher.py"
        tmp = launcher.with_name(f".{launcher.name}.{os.getpid()}")
        tmp.write_text(_OLAH_LAUNCHER)
        os.replace(tmp, launcher)
        return [python, str(launcher)]

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HubError(
                    f"the local Hub (olah) exited with code {self.process.returncode} while starting: "
                    f"see {self.log_path}{_log_tail(self.log_path)}"
                )
            if is_ready(self.url, timeout=1.0):
                logger.info("local Hub ready on %s", self.url)
                return
            time.sleep(0.2)
        raise HubError(
            f"the local Hub (olah) did not answer on {self.url}/docs within {self.startup_timeout:.0f}s: "
            f"see {self.log_path}{_log_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server this object started (SIGTERM, then SIGKILL) and remove its pid file."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            _terminate(process.pid, timeout, wait=process.wait)
        with contextlib.suppress(FileNotFoundError, ValueError):
            if int(self.pid_path.read_text().split()[0]) == process.pid:
                self.pid_path.unlink()
        logger.info("local Hub on %s stopped", self.url)

    def wait(self) -> int:
        """Block until the server exits; return its exit code."""
        assert self.process is not None
        return self.process.wait()

    def __enter__(self) -> LocalHubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n  " + "\n  ".join(tail)) if tail else ""


def _terminate(pid: int, timeout: float, wait: Any = None) -> None:
    """SIGTERM `pid`, wait up to `timeout`, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wait is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                wait(timeout=0.1)
                return
        elif not _alive(pid):
            return
        else:
            time.sleep(0.1)
    logger.warning("olah (pid %d) did not stop in %.0fs: killing it", pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if wait is not None:
        wait()


def _alive(pid: int) -> bool:
    """Whether `pid` is a live olah process (not a zombie, not a recycled pid)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return status.rsplit(")", 1)[-1].split()[0] != "Z" and b"olah" in cmdline


def background_pid(port: int = DEFAULT_PORT, hub_dir: Path | None = None) -> int | None:
    """The pid of a running local Hub started by cie10 on `port`, from its pid file; None if none."""
    server = LocalHubServer(port, hub_dir=hub_dir)
    try:
        pid = int(server.pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if _alive(pid):
        return pid
    server.pid_path.unlink(missing_ok=True)  # stale
    return None


def stop_background(port: int = DEFAULT_PORT, hub_dir: Path | None = None, timeout: float = 10.0) -> bool:
    """Stop the local Hub started by `cie10 hub serve` on `port`; False if none was running."""
    server = LocalHubServer(port, hub_dir=hub_dir)
    pid = background_pid(port, hub_dir)
    if pid is None:
        if _port_in_use(server.host, port):
            raise HubError(
                f"something answers on port {port} but it was not started by cie10 in {server.hub_dir} "
                f"(no pid file {server.pid_path})"
            )
        return False
    _terminate(pid, timeout)
    server.pid_path.unlink(missing_ok=True)
    logger.info("local Hub on %s (pid %d) stopped", server.url, pid)
    return True


def default_port() -> int:
    """The port of `HF_ENDPOINT` when it is a loopback address, else DEFAULT_PORT."""
    url = endpoint()
    if is_local_endpoint(url):
        port = urllib.parse.urlsplit(url).port
        if port:
            return port
    return DEFAULT_PORT
