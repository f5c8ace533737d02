"""Headless Chromium through Playwright, the way every browser test starts it.

Debian's ``chromium`` package (``/usr/bin/chromium``) — never a browser downloaded by
Playwright — with the flags that keep it off the network it cannot reach here.
Screenshots go to ``tests/artifacts/`` (ignored by git, kept by CI as artifacts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("GISPORTAL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def live_server(home: Path) -> Iterator[str]:
    """The app over ``home`` on 127.0.0.1 and a free port, in a thread; yields its URL."""
    import threading

    from werkzeug.serving import make_server

    from gisportal.web.app import create_app

    server = make_server("127.0.0.1", 0, create_app({"home": str(home)}), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def outside_requests(base: str, requests: list[str]) -> list[str]:
    """The requested URLs that went anywhere but the server (data: and about: are local)."""
    from urllib.parse import urlparse

    host = urlparse(base).netloc
    return [u for u in requests if urlparse(u).netloc not in (host, "")
            and not u.startswith(("data:", "about:"))]


@contextmanager
def chromium_page() -> Iterator[tuple[object, list[str], list[str]]]:
    """A fresh page, the console errors and every URL it requested."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium package "
                           "(the README's test command does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            yield page, errors, requests
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
