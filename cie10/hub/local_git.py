"""Local publishing: commits written with git plumbing straight into the local Hub's mirrors.

The local Hub is olah reading bare git repos laid out as `<hub_dir>/mirrors/{models,datasets,spaces}/<org>/<name>`;
clients cannot write to it, so `publish_folder(..., target="local")` commits here: the folder's blobs and tree,
then one atomic ref transaction that moves `main` and creates the version tag.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cie10.errors import HubError
from cie10.hub.client import MAIN_BRANCH, RepoType, _check_repo_type, repo_url, split_repo_id
from cie10.settings import Settings, get_settings

logger = logging.getLogger(__name__)

CHAT_TEMPLATES_PLACEHOLDER = "additional_chat_templates/README.md"
"""Added to model repos: transformers lists `additional_chat_templates/`, and olah answers a missing folder
with 'repository not found', which transformers does not forgive."""
_CHAT_TEMPLATES_TEXT = b"No additional chat templates: this file keeps the folder listable on a local Hub.\n"
_ZERO_SHA = "0" * 40
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "cie10",
    "GIT_AUTHOR_EMAIL": "cie10@localhost",
    "GIT_COMMITTER_NAME": "cie10",
    "GIT_COMMITTER_EMAIL": "cie10@localhost",
}


def mirror_path(repo_id: str, repo_type: RepoType = "model", settings: Settings | None = None) -> Path:
    """The local Hub's git repo for `repo_id`: `<hub_dir>/mirrors/<type>s/<org>/<name>` (bare)."""
    _check_repo_type(repo_type)
    org, name = split_repo_id(repo_id)
    return (settings or get_settings()).hub_dir / "mirrors" / f"{repo_type}s" / org / name


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


def publish_to_mirror(
    files: dict[str, Path],
    repo_id: str,
    repo_type: RepoType,
    version: str | None,
    message: str,
    settings: Settings,
) -> str:
    """Commit into the bare mirror: blobs first, then one atomic ref transaction (main + tag); return the sha."""
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
