"""End to end in headless Chromium (Debian's `chromium`, driven by Playwright): a Spanish query, then the reranker.

Needs `/usr/bin/chromium` and the `playwright` package: `scripts/install_browser.sh` installs both (`make test`
runs it; this module runs it too when either is missing, unless `CIE10_NO_BROWSER_INSTALL=1`). Playwright's own
browser download is never used. A failing run leaves a screenshot in `outputs/test-artifacts/`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def open_page(browser_context, failure_name: str) -> Iterator[Any]:
    """A new page, closed after use; a failure inside leaves a full-page screenshot in `ARTIFACTS`."""
    page = browser_context.new_page()
    try:
        yield page
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / failure_name
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}")
        raise
    finally:
        page.close()


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

    with open_page(browser_context, "space-browser-failure.png") as page:
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
        # I21.x codes inherit I21's Spanish label: each such row also shows the code's own English title
        own_titles = results.locator("tbody tr .own").all_inner_texts()
        assert own_titles and all(text.startswith("en: ") for text in own_titles), own_titles
        assert len(set(own_titles)) == len(own_titles), own_titles
        assert len(own_titles) == results.locator("tbody tr", has_text="inherited").count()

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


def test_header_links_coverage_and_unsupported_language(
    browser_context, space_url: str, space_backend, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from cie10 import hub

    unnamed = tmp_path / "patients.csv"
    unnamed.write_text("patient_id,note\n17,asthma attack\n", encoding="utf-8")
    binary = tmp_path / "scan.csv"
    binary.write_bytes(bytes(range(256)) * 40)
    with open_page(browser_context, "space-browser-header-failure.png") as page:
        page.goto(space_url, wait_until="domcontentloaded")
        header = page.locator("#header")
        expect(header).to_contain_text(f"This index searches {len(space_backend.searcher.index):,} of the ")
        expect(header).to_contain_text("It is an aid for coders, not a coding decision")
        for source in space_backend.sources.values():
            prefix = "datasets/" if source.kind == "dataset" else ""
            url = f"{hub.endpoint()}/{prefix}{source.repo_id}/tree/{source.revision}"
            expect(header.locator(f'a[href="{url}"]')).to_contain_text(f"{source.repo_id}@{source.revision}")
        page.get_by_role("tab", name="Batch").click()
        upload, batch_status = page.locator("#batch-file input[type=file]"), page.locator("#batch-status")
        upload.set_input_files(str(binary))
        expect(batch_status).to_contain_text("scan.csv is not a text file")
        page.locator("#batch-file button[aria-label='Clear']").click()
        upload.set_input_files(str(unnamed))
        expect(batch_status).to_contain_text("Which column holds the queries?")
        page.locator("#batch-column input").click()
        page.get_by_role("option", name="note").click()
        page.locator("#batch-button").click()
        expect(batch_status).to_contain_text("1 queries ranked", timeout=60_000)
        expect(page.locator("#batch-table")).to_contain_text("asthma attack")

        page.get_by_role("tab", name="About").click()
        expect(page.get_by_text("What is loaded")).to_be_visible()
        hrefs = page.locator("a[href]").evaluate_all("links => links.map(link => link.getAttribute('href'))")
        assert hrefs and not [href for href in hrefs if href.startswith("mailto:")], hrefs

        page.get_by_role("tab", name="Search").click()
        query = page.locator("#query textarea")
        query.fill("急性心肌梗死")
        query.press("Enter")
        status = page.locator("#status")
        expect(status).to_contain_text("Chinese (not supported)", timeout=60_000)
        expect(status).to_contain_text("Chinese is not a supported language")
        expect(page.locator("#results tbody tr").first).to_be_visible()  # still searched


def test_clinical_note_tab(browser_context, space_url: str) -> None:
    from playwright.sync_api import expect

    with open_page(browser_context, "space-note-failure.png") as page:
        page.goto(space_url, wait_until="domcontentloaded")
        rerank = page.locator("#rerank input[type=checkbox]")
        expect(rerank).to_be_visible(timeout=60_000)
        rerank.uncheck()  # the test reranker's head is untrained: it would pick each passage's code at random
        page.get_by_role("tab", name="Clinical note").click()
        note = page.locator("#note-text textarea")
        expect(note).to_be_visible()
        note.fill(
            "Mujer de 70 años con fibrilación auricular, que ingresa por embolia pulmonar y bronquitis aguda. "
            "No refiere fiebre."
        )
        page.locator("#note-button").click()
        results = page.locator("#note-results")
        expect(results.locator("th", has_text="Found in")).to_be_visible()
        expect(page.locator("#note-status")).to_contain_text("sentences and clauses searched")
        codes = results.locator("tbody tr").evaluate_all("rows => rows.map(row => row.dataset.code)")
        assert {"I26", "I48"} <= {code[:3] for code in codes}, codes
        expect(results.locator("td.segment", has_text="embolia pulmonar").first).to_be_visible()
        negated = results.locator("td.segment", has_text="No refiere fiebre.")
        expect(negated.locator(".tag.negation")).to_have_text("negation: no")
        expect(results.locator("td.segment", has_text="embolia pulmonar").locator(".tag")).to_have_count(0)

        note.fill("  ")
        page.locator("#note-button").click()
        expect(page.locator("#note-status")).to_contain_text("Empty note")
