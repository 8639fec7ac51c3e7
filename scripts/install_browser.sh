#!/usr/bin/env bash
# Install what the browser test needs, idempotently: Debian's chromium (apt) and the Python `playwright`
# package (pinned, into .venv). Playwright drives /usr/bin/chromium; its own browser download is never used.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYWRIGHT_VERSION="${PLAYWRIGHT_VERSION:-1.65.2}"
VENV_PYTHON="${VENV_PYTHON:-.venv/bin/python}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [ ! -x /usr/bin/chromium ]; then
    echo "install_browser: installing Debian chromium"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
fi

installed="$("$VENV_PYTHON" -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null || true)"
if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
    echo "install_browser: installing playwright==$PLAYWRIGHT_VERSION (no browser download)"
    "$VENV_PYTHON" -m pip install -q "playwright==$PLAYWRIGHT_VERSION"
fi
echo "install_browser: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium missing'), playwright $PLAYWRIGHT_VERSION"
