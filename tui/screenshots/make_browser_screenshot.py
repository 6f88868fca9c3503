"""Regenerate the README's picture of the app in a browser: python tui/screenshots/make_browser_screenshot.py

Starts `rvi-tui serve` on a free port of 127.0.0.1, opens it in Debian's Chromium (/usr/bin/chromium) through
Playwright, runs the default workload for two seconds in nested view, steps once, and saves served.png.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rvi_tui.tui.cli", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL)
    try:
        time.sleep(3)
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            context = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium", args=FLAGS,
                                                           headless=True, viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("body.-first-byte", state="attached", timeout=30_000)
            page.focus("textarea.xterm-helper-textarea")
            page.wait_for_timeout(3000)
            page.keyboard.press("p")
            page.wait_for_timeout(2000)
            page.keyboard.press("p")
            page.wait_for_timeout(500)
            page.keyboard.press(" ")
            page.wait_for_timeout(1500)
            page.screenshot(path=os.path.join(HERE, "served.png"))
            context.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
