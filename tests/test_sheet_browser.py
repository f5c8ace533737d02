"""The parcel sheet in Chromium: on a desktop and a phone, printed, and its PDF.

Debian's Chromium (`tests.browser`) opens the sheet at 1280 × 800 and at 390 × 844
(screenshots in ``tests/artifacts/``), prints it with the page's print stylesheet
(``page.pdf(format="A4")``, as a resident's "Print" does) and counts the pages: one,
for an ordinary parcel and for the dense parcel with five planned uses and an annual
project (the module site of `tests.test_sheet_content`). The server's PDF of the same
sheet is one page too; it is kept beside the screenshots (and drawn as a PNG when
pypdfium2 is installed).
"""

from __future__ import annotations

from io import BytesIO

import pytest

from tests.browser import ARTIFACTS, chromium_page, live_server, outside_requests, screenshot
from tests.test_sheet_content import MUI_NE, pdf_pages_and_text
from tests.test_sheet_content import site as site  # noqa: F401 - the module's home

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SHEETS = {"ordinary": "/parcels/678/1/3", "dense": "/parcels/678/1/8",
          "zone9218": f"/parcels/593/7/1?commune={MUI_NE}"}


@pytest.fixture(scope="module")
def live(site):  # noqa: F811
    with live_server(site) as base:
        yield base


def printed_pages(pdf: bytes) -> int:
    return pdf_pages_and_text(pdf)[0]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_sheet_on_screen_and_printed_is_one_page(live, viewport):
    with chromium_page() as (page, errors, requests):
        page.set_viewport_size(VIEWPORTS[viewport])
        for name, url in SHEETS.items():
            page.goto(live + url)
            page.locator("#gp-sheet-map svg").wait_for()
            assert "Phiếu thông tin thửa đất" in page.locator("h1").inner_text()
            # Nothing wider than the screen: the sheet reflows on a phone.
            assert page.evaluate("document.documentElement.scrollWidth") <= \
                VIEWPORTS[viewport]["width"] + 1
            box = page.locator("#gp-sheet-map svg").bounding_box()
            assert box["width"] > 300 and box["height"] > 250
            screenshot(page, f"parcel-sheet-{name}-{viewport}")
            # Printed (what page.pdf lays out): the sheet only, no header, no buttons.
            page.emulate_media(media="print")
            assert not page.locator(".gp-top").is_visible()
            assert not page.locator(".gp-actions").is_visible()
            pdf = page.pdf(format="A4", print_background=True)
            (ARTIFACTS / f"parcel-sheet-{name}-{viewport}-printed.pdf").write_bytes(pdf)
            assert printed_pages(pdf) == 1, (name, viewport)
            page.emulate_media(media="screen")
    assert errors == [], errors
    assert outside_requests(live, requests) == []


def test_the_download_link_gives_the_servers_one_page_pdf(live):
    with chromium_page() as (page, errors, requests):
        page.set_viewport_size(VIEWPORTS["desktop"])
        page.goto(live + SHEETS["dense"])
        link = page.locator("#gp-sheet-pdf")
        assert link.get_attribute("href") == "/parcels/678/1/8.pdf"
        with page.expect_download() as info:
            link.click()
        data = info.value.path().read_bytes()
    assert errors == [], errors
    pages, text = pdf_pages_and_text(data)
    assert pages == 1 and "Xã Đức Trọng" in text and "456/QĐ-UBND" in text
    (ARTIFACTS / "parcel-sheet-dense-server.pdf").write_bytes(data)
    try:
        import pypdfium2
    except ImportError:
        return
    image = pypdfium2.PdfDocument(BytesIO(data))[0].render(scale=1.5).to_pil()
    image.save(ARTIFACTS / "parcel-sheet-dense-server-pdf.png")
