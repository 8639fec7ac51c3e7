"""The local Hub's lifecycle: olah serving the git mirrors on loopback (`cie10 hub serve|status|stop`).

olah is a Hub-compatible server; here it reads `<hub_dir>/mirrors/{models,datasets,spaces}/<org>/<name>` (written
by `cie10.hub.local_git`), offline, with its upstream pointed at a dead loopback port so that nothing leaves the
machine. It serves clients (downloads, refs, trees) and takes no uploads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

from cie10.errors import HubError
from cie10.hub.client import endpoint, is_local_endpoint, is_ready
from cie10.settings import get_settings

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8090
"""Port of `cie10 hub serve` (so `HF_ENDPOINT=http://127.0.0.1:8090`)."""
DEAD_UPSTREAM = "127.0.0.1:9"
"""olah's "upstream Hub": the loopback discard port, where nothing listens, so nothing leaves the machine."""


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


def is_local_hub(url: str | None = None) -> bool:
    """Whether `url` (default: `HF_ENDPOINT`) is a local Hub that cie10 started: olah, which takes no uploads."""
    url = url or endpoint()
    if not is_local_endpoint(url):
        return False
    port = urllib.parse.urlsplit(url).port
    return port is not None and background_pid(port) is not None
