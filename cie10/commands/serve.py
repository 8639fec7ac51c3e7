"""`cie10 serve`: the Space (Gradio page and `/search` API) on this machine, against whatever Hub HF_ENDPOINT names.

Models, code index and codes dataset load once, by Hub id (or local folder) at `--revision`. With `--background`
the server is started detached, and the command returns once the page answers, printing its URL (`make
quickstart` ends this way); `--stop` stops a background server started on the same port.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from cie10.errors import Cie10Error
from cie10.ranges import PORT, int_option
from cie10.settings import BACKENDS, DEFAULT_BACKEND, get_settings

logger = logging.getLogger(__name__)

DEFAULT_PORT = 7860
READY_TIMEOUT_S = 600.0
"""How long `--background` waits for the models to load and the page to answer."""


def _pid_file(port: int) -> Path:
    return get_settings().home / "space" / f"serve-{port}.pid"


def _log_file(port: int) -> Path:
    return get_settings().home / "space" / f"serve-{port}.log"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}"


def add_space_options(parser: argparse.ArgumentParser) -> None:
    """The options naming what the Space loads (`serve` and `search`): models, codes, revision, backend."""
    settings = get_settings()
    parser.add_argument("--model", help=f"bi-encoder repo id or folder (default {settings.repo_id('cie10-bi')})")
    parser.add_argument("--reranker", help=f"reranker repo id or folder (default {settings.repo_id('cie10-rerank')})")
    parser.add_argument("--no-reranker", action="store_true", help="the bi-encoder ranking only (no reranker loaded)")
    parser.add_argument("--codes", help=f"codes dataset repo id or folder (default {settings.repo_id('cie10-codes')})")
    parser.add_argument("--revision", help="version (tag) of every repo, e.g. v1.0 (default: main)")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help=f"inference backend of both models (default: CIE10_BACKEND, else {DEFAULT_BACKEND}; docs/inference.md)",
    )


def load_space_backend(args: argparse.Namespace):  # -> cie10.space_app.SpaceBackend
    """The Space's backend loaded as `add_space_options`' flags say (`--backend` is read by the model loaders)."""
    from cie10.space_app import SpaceBackend, SpaceConfig

    if args.backend:
        os.environ["CIE10_BACKEND"] = args.backend
    config = SpaceConfig(
        model_id=args.model or "",
        reranker_id=None if args.no_reranker else (args.reranker or ""),
        codes_id=args.codes or "",
        revision=args.revision,
    )
    return SpaceBackend.load(config)


def _foreground(args: argparse.Namespace) -> int:
    from cie10.hub import endpoint
    from cie10.space_app import launch

    backend = load_space_backend(args)
    demo = launch(backend, host=args.host, port=args.port, block=False, quiet=True)
    print(f"cie10 space: {demo.local_url.rstrip('/')}  (Hub: {endpoint()})")
    print(f"  {backend.describe()}", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        demo.close()
    return 0


def _background(args: argparse.Namespace) -> int:
    url, pid_file, log_file = _url(args.host, args.port), _pid_file(args.port), _log_file(args.port)
    if _answers(url):
        raise Cie10Error(f"{url} is already serving (stop it with `cie10 serve --stop --port {args.port}`)")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cie10", "serve", "--host", args.host, "--port", str(args.port)]
    for flag, value in (("--model", args.model), ("--reranker", args.reranker), ("--codes", args.codes)):
        if value:
            command += [flag, value]
    if args.revision:
        command += ["--revision", args.revision]
    if args.no_reranker:
        command.append("--no-reranker")
    with log_file.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _answers(url):
        if process.poll() is not None:
            tail = "".join(log_file.read_text(errors="replace").splitlines(keepends=True)[-8:])
            pid_file.unlink(missing_ok=True)
            raise Cie10Error(f"the Space exited with code {process.returncode}; last lines of {log_file}:\n{tail}")
        if time.monotonic() > deadline:
            raise Cie10Error(f"the Space did not answer on {url} within {READY_TIMEOUT_S:.0f} s (see {log_file})")
        time.sleep(1.0)
    print(f"cie10 space: {url}  (pid {process.pid}, log {log_file}; stop: cie10 serve --stop --port {args.port})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    pid_file = _pid_file(args.port)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        print(f"no background Space recorded on port {args.port}")
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
        print(f"stopped the Space on port {args.port} (pid {pid})")
    except ProcessLookupError:
        print(f"the Space on port {args.port} (pid {pid}) had already exited")
    pid_file.unlink(missing_ok=True)
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.backend:  # inherited by a --background server
        os.environ["CIE10_BACKEND"] = args.backend
    if args.stop:
        return _stop(args)
    if args.background:
        return _background(args)
    return _foreground(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the Space (search page and /search API) locally",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_space_options(parser)
    parser.add_argument(
        "--port", type=int_option("--port", PORT), default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1, loopback only)")
    parser.add_argument("--background", action="store_true", help="start detached, print the URL once it answers")
    parser.add_argument("--stop", action="store_true", help="stop a background Space on --port")
    parser.set_defaults(func=_serve)
