"""End to end in headless Chromium (Debian's `chromium`, driven by Playwright): a Spanish query, then the reranker.

Needs `/usr/bin/chromium` and the `playwright` package: `scripts/install_browser.sh` installs both (`make test`
runs it; this module runs it too when either is missing, unless `CIE10_NO_BROWSER_INSTALL=1`). Playwright's own
browser download is never used. A failing run leaves a screenshot in `outputs/test-artifacts/`.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "outputs" / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _playwright_ready() -> bool:
    importlib.invalidate_caches()
    try:
        importlib.import_module("playwright.sync_api")
    except ImportError:
        return False
    return CHROMIUM.exists()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory):
    """A fresh persistent Chromium profile (a new `--user-data-dir`), headless."""
    if not _playwright_ready() and os.environ.get("CIE10_NO_BROWSER_INSTALL") != "1":
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install_browser.sh")], check=False, timeout=900)
    if not _playwright_ready():
        pytest.skip("needs /usr/bin/chromium and the playwright package: run scripts/install_browser.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1600},
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


def test_spanish_query_and_reranker_toggle(browser_context, space_url: str) -> None:
    from playwright.sync_api import expect

    page = browser_context.new_page()
    try:
        page.goto(space_url, wait_until="domcontentloaded")
        query = page.locator("#query textarea")
        expect(query).to_be_visible(timeout=60_000)
        # the test reranker's head is untrained: a shortlist of 10 keeps the bi-encoder's top 10 on screen
        shortlist = page.locator("#rerank-top input[type=number]")
        shortlist.fill("10")
        shortlist.press("Enter")

        query.fill("infarto agudo de miocardio")
        query.press("Enter")
        results, status = page.locator("#results"), page.locator("#status")
        expect(results.locator("tr[data-code='I21']")).to_be_visible()
        expect(results).to_contain_text("Infarto agudo del miocardio")  # the Spanish title
        expect(status).to_contain_text("Español (es)")
        expect(results.locator("th", has_text="Rerank")).to_be_visible()

        rerank = page.locator("#rerank input[type=checkbox]")
        expect(rerank).to_be_checked()
        rerank.uncheck()
        expect(status).to_contain_text("rerank off")
        expect(results.locator("th", has_text="Rerank")).to_have_count(0)
        codes = results.locator("tbody tr").evaluate_all("rows => rows.map(row => row.dataset.code)")
        assert "I21" in codes[:5], codes

        rerank.check()
        expect(results.locator("th", has_text="Rerank")).to_be_visible()
        expect(results.locator("tr[data-code='I21']")).to_be_visible()

        page.locator("#query textarea").fill("   ")
        page.locator("#search-button").click()
        expect(status).to_contain_text("Empty query")
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "space-browser-failure.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}")
        raise
    finally:
        page.close()
