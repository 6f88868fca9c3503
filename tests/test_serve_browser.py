"""`rvi-tui serve` in a real browser: Debian's Chromium, driven by Playwright, against the server on 127.0.0.1.

What the user sees is checked without comparing pixels: the app's own state, through the counters it exports
(in a browser, `e` hands the files to the browser as downloads), and the page's own text for the server's
pages. One screenshot is kept for a person to look at ($RVI_TUI_ARTIFACTS, default ./artifacts).

Without /usr/bin/chromium these tests skip, unless RVI_TUI_REQUIRE_BROWSER is set (CI sets it): then a
missing browser is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.environ.get("RVI_TUI_REQUIRE_BROWSER"):
    if not os.path.exists(CHROMIUM):
        pytest.skip("no chromium (apt-get install chromium); RVI_TUI_REQUIRE_BROWSER=1 makes this a failure",
                    allow_module_level=True)
    pytest.importorskip("textual_serve")
    pytest.importorskip("playwright")

from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from serve_helpers import Served, alive, wait_until  # noqa: E402

# as /work/.library/env/machines/python.md starts Chromium here: no network but the page's own
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = os.environ.get("RVI_TUI_ARTIFACTS", "artifacts")
TERMINAL_INPUT = "textarea.xterm-helper-textarea"  # where xterm.js takes keys (a click would reach the app too)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        profile = tempfile.mkdtemp(prefix="rvi-tui-chromium-")
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=FLAGS, headless=True,
                                                       accept_downloads=True, viewport={"width": 1280, "height": 800})
        context.route("**/download/*", Exports.capture)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


class Exports:
    """The JSON files the app hands to the browser — the counters when `e` is pressed (the app's own account of
    its state), a session file for `s` — read on their way to the browser's download (a route on the download
    URLs)."""

    documents: list[dict] = []

    @classmethod
    def capture(cls, route) -> None:
        try:
            response = route.fetch()
            body = response.body()
            if response.headers.get("content-type", "").startswith("application/json"):
                cls.documents.append(json.loads(body))
            route.fulfill(response=response, body=body)
        except PlaywrightError:  # its popup was closed meanwhile (the SVG of an export already read)
            pass

    @staticmethod
    def close_popups(page, wait: bool) -> None:
        """Close the popup each download opens (waiting up to 2 s for it when one is due: one that opened after
        the next key was pressed would take that key), and give the terminal the keyboard again."""
        for _ in range(20 if wait else 1):
            popups = [p for p in page.context.pages if p.opener() == page]
            for popup in popups:
                popup.close()
            if popups:
                break
            page.wait_for_timeout(100)
        page.focus(TERMINAL_INPUT)

    @classmethod
    def until(cls, page, cond, what: str, timeout: float = 60.0, key: str = "e") -> dict:
        """Press `key` until the file it brings satisfies `cond` (the app takes `e` once its first frame is there,
        and a key reaches it a moment after it is pressed)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            seen = len(cls.documents)
            page.keyboard.press(key)
            for _ in range(30):  # up to 3 s for this export
                page.wait_for_timeout(100)
                if len(cls.documents) > seen:
                    break
            cls.close_popups(page, wait=len(cls.documents) > seen)
            if len(cls.documents) > seen and cond(cls.documents[-1]):
                return cls.documents[-1]
        last = cls.documents[-1] if cls.documents else None
        raise AssertionError(f"the app never reached {what}: " + (
            f"{last.get('ops_done')} ops, {last.get('viewed_mode')}" if last else "no file came"))


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    if not page.is_closed():
        page.close()


def open_app(page, served, path="/"):
    """Open a tab on the app and give the terminal the keyboard; the app's pid."""
    before = len(served.app_pids())
    page.goto(served.url + path)
    page.wait_for_selector("body.-first-byte", state="attached", timeout=30_000)
    pid = wait_until(lambda: served.app_pids()[before:], 20, "the app's process")[0]
    page.focus(TERMINAL_INPUT)
    return pid


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    data = tmp_path_factory.mktemp("served") / "lesson"
    data.mkdir()
    (data / "ls.txt").write_text("".join(f"R {0x10000 + 64 * i:#x}\n" for i in range(300)))
    return data


@pytest.fixture(scope="module")
def served(data):
    server = Served(data.parent, "--mode", "native", "--seed", "3", "--data", str(data))
    yield server
    server.stop()


def test_keys_in_the_browser_step_switch_mode_and_run_the_app(page, served):
    open_app(page, served)
    # the options of `rvi-tui serve` reached this tab's app
    state = Exports.until(page, lambda s: s["ops_done"] == 0, "its first frame")
    assert state["viewed_mode"] == "native" and state["run"]["seed"] == 3 and state["run"]["workload"] == "kcompile"
    page.keyboard.press(" ")
    Exports.until(page, lambda s: s["ops_done"] == 1, "one step")
    page.keyboard.press("2")
    Exports.until(page, lambda s: s["viewed_mode"] == "shadow" and s["ops_done"] == 1, "the shadow view")
    page.keyboard.press("p")
    page.wait_for_timeout(500)
    page.keyboard.press("p")
    ran = Exports.until(page, lambda s: s["ops_done"] > 1, "a run")
    assert ran["counters"]["shadow"]["accesses"] > 0
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "served-app.png"))


def test_links_open_an_offered_trace_and_a_tour_session(page, served, data):
    open_app(page, served, "/?trace=lesson/ls.txt")
    state = Exports.until(page, lambda s: s["run"]["trace"] is not None, "the trace")
    assert state["run"]["trace"] == str(data / "ls.txt")
    # the guided tour's cold 2D walk: its run (walk caches off) at its op, in its mode
    open_app(page, served, "/?session=tours/1-cold-2d-walk.rvi.json")
    state = Exports.until(page, lambda s: s["ops_done"] == 5, "the session's op 5")
    assert state["viewed_mode"] == "nested" and "pwc.enabled=false" in state["run"]["sets"]
    # s saves the session: a download too
    saved = Exports.until(page, lambda s: s.get("format") == "rvi-tui session", "a saved session", key="s")
    assert saved["view"]["op"] == 5 and saved["run"]["sets"] == state["run"]["sets"]


def test_a_path_outside_the_offered_directories_is_refused(page, served):
    opened = len(served.app_pids())
    response = page.goto(served.url + "/?trace=../../../etc/passwd")
    assert response.status == 404
    assert "Not offered here" in page.inner_text("body")
    assert len(served.app_pids()) == opened


def test_closing_the_tab_ends_its_app(page, served):
    pid = open_app(page, served)
    assert alive(pid)
    page.close()
    wait_until(lambda: not alive(pid) and served.closed(pid), 15, "the app to end after its tab closed")


def test_a_tab_beyond_the_cap_gets_the_busy_page_until_an_idle_tab_frees_its_place(browser, tmp_path):
    served = Served(tmp_path, "--max-sessions", "1", "--idle-timeout", "0.1")  # 6 s without a key
    first, second = browser.new_page(), browser.new_page()
    try:
        pid = open_app(first, served)
        response = second.goto(served.url + "/")
        assert response.status == 503
        assert "all 1 sessions are in use" in second.inner_text("body")
        assert served.app_pids() == [pid]
        # no key in the first tab: its app ends, and the page says why
        first.wait_for_selector("body.-closed", state="attached", timeout=30_000)
        assert "No key for 0.1 minutes" in first.inner_text("#ended-reason")
        wait_until(lambda: not alive(pid) and served.closed(pid), 10, "the idle app to end")
        open_app(second, served)  # its place is free again
    finally:
        for p in (first, second):
            if not p.is_closed():
                p.close()
        served.stop()
