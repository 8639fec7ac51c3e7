"""`cie10 hub`: run the local Hub (olah on loopback), check an endpoint, publish a folder, list versions."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from cie10 import hub
from cie10.errors import HubError
from cie10.ranges import PORT, POSITIVE, float_option, int_option

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `hub` subcommand and its actions."""
    parser = subparsers.add_parser("hub", help="run the local Hub, check an endpoint, publish, list versions")
    actions = parser.add_subparsers(dest="hub_command", required=True, metavar="ACTION")

    serve = actions.add_parser("serve", help="start the local Hub (olah) on 127.0.0.1")
    serve.add_argument(
        "--port", type=int_option("--port", PORT), default=hub.DEFAULT_PORT, help="port (default %(default)s)"
    )
    serve.add_argument(
        "--background", action="store_true", help="return once it answers; stop it with `cie10 hub stop`"
    )
    serve.add_argument(
        "--timeout", type=float_option("--timeout", POSITIVE), default=60.0, help="seconds to wait for it to answer"
    )
    serve.set_defaults(func=_serve)

    stop = actions.add_parser("stop", help="stop the local Hub started by `cie10 hub serve`")
    stop.add_argument(
        "--port", type=int_option("--port", PORT), default=None, help="port (default: HF_ENDPOINT's, else 8090)"
    )
    stop.set_defaults(func=_stop)

    status = actions.add_parser("status", help="print the Hub endpoint and whether it answers")
    status.add_argument("--endpoint", default=None, help="endpoint to check (default: HF_ENDPOINT)")
    status.set_defaults(func=_status)

    publish = actions.add_parser("publish", help="publish a folder as a repo version")
    publish.add_argument("folder", type=Path)
    publish.add_argument("repo_id", help="<org>/<name>")
    publish.add_argument("--type", dest="repo_type", choices=hub.REPO_TYPES, default="model")
    publish.add_argument("--version", default=None, help="git tag such as v1.0")
    publish.add_argument("--target", choices=("local", "hub"), default="local")
    publish.add_argument("--message", default=None, help="commit message")
    publish.set_defaults(func=_publish)

    tags = actions.add_parser("tags", help="list the versions (git tags) of a repo")
    tags.add_argument("repo_id", help="<org>/<name>")
    tags.add_argument("--type", dest="repo_type", choices=hub.REPO_TYPES, default="model")
    tags.set_defaults(func=_tags)


def _serve(args: argparse.Namespace) -> int:
    server = hub.LocalHubServer(args.port, startup_timeout=args.timeout)
    if args.background:
        pid = hub.background_pid(args.port)
        if pid is not None and hub.is_ready(server.url):
            logger.info("the local Hub already runs on %s (pid %d)", server.url, pid)
        else:
            server.start(detach=True)
        print(f"export HF_ENDPOINT={server.url}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # SIGTERM stops olah too, as Ctrl-C does
    server.start()
    logger.info("local Hub on %s: export HF_ENDPOINT=%s (Ctrl-C stops it)", server.url, server.url)
    try:
        code = server.wait()
    finally:
        server.stop()
    if code != 0:
        raise HubError(f"the local Hub exited with code {code}: see {server.log_path}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    port = args.port or hub.default_port()
    if not hub.stop_background(port):
        logger.info("no local Hub started by cie10 runs on port %d", port)
    return 0


def _status(args: argparse.Namespace) -> int:
    url = (args.endpoint or hub.endpoint()).rstrip("/")
    hub.check_endpoint(url)
    where = "local Hub" if hub.is_local_endpoint(url) else "Hub"
    print(f"{where} {url}: up")
    return 0


def _publish(args: argparse.Namespace) -> int:
    sha = hub.publish_folder(
        args.folder,
        args.repo_id,
        args.repo_type,
        version=args.version,
        target=args.target,
        commit_message=args.message,
    )
    print(sha)
    return 0


def _tags(args: argparse.Namespace) -> int:
    for tag in hub.list_tags(args.repo_id, args.repo_type):
        print(tag)
    return 0
