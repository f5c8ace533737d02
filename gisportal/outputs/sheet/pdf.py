"""The sheet as a PDF made on the server, by WeasyPrint, from the page's own HTML.

The PDF is the HTML page the same template renders, laid out by WeasyPrint with the
page's print stylesheet (``@page`` A4, no site header): one source of content, so the
download cannot differ from what the resident sees and prints. The map is inline SVG,
which WeasyPrint draws as vectors.

WeasyPrint fetches what a page links to (stylesheets, images) and would follow any
URL an HTML text carried. `local_fetcher` answers only ``data:`` URIs and the portal's
own static files (``/static/…`` on the page's own host, read from the package folder,
never over HTTP); every other URL is refused, so rendering a sheet makes no network
request whatever its content says — a land-use code or an address from an uploaded
file cannot make the server fetch anything.
"""

from __future__ import annotations

import mimetypes
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["local_fetcher", "render_pdf"]


@cache
def _fetcher_class():
    from weasyprint import URLFetcher
    from weasyprint.urls import URLFetcherResponse

    class LocalFetcher(URLFetcher):
        """Data URIs and the portal's static files; nothing else (see the module doc)."""

        def __init__(self, base_url: str, static_dir: Path) -> None:
            super().__init__(allowed_protocols=("data", "http", "https"))
            self.host = urlsplit(base_url).netloc
            self.static_dir = Path(static_dir).resolve()
            self.refused: list[str] = []

        def fetch(self, url: str, headers=None):
            if url.startswith("data:"):
                return super().fetch(url, headers)  # urllib's DataHandler: no network
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc == self.host \
                    and parts.path.startswith("/static/"):
                path = (self.static_dir / unquote(parts.path[len("/static/"):])).resolve()
                if path.is_relative_to(self.static_dir) and path.is_file():
                    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, path.read_bytes(),
                                              {"Content-Type": kind})
            self.refused.append(url)
            raise ValueError(f"the sheet's PDF loads only the portal's static files: {url}")

    return LocalFetcher


def local_fetcher(base_url: str, static_dir: Path):
    """A WeasyPrint URL fetcher limited to `static_dir` (served as ``/static/`` on
    `base_url`'s host) and ``data:``. WeasyPrint is imported on first use: the web
    process that never makes a PDF does not pay its import."""
    return _fetcher_class()(base_url, static_dir)


def render_pdf(html: str, *, base_url: str, static_dir: Path, title: str = "") -> bytes:
    """`html` (a page of the portal, at `base_url`) as PDF bytes, print media, A4 as
    its ``@page`` rule says. Links stay live: relative ones become absolute on
    `base_url` (the decision's PDF link works from the downloaded file)."""
    from weasyprint import HTML

    fetcher = local_fetcher(base_url, static_dir)
    document = HTML(string=html, base_url=base_url, url_fetcher=fetcher,
                    media_type="print").render()
    if title:
        document.metadata.title = title
    return document.write_pdf()
