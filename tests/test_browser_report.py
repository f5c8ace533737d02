"""The HTML validation report in a real browser: it works from a file, offline."""

from __future__ import annotations

from gisportal.outputs.report_html import report_html
from gisportal.services.ingest import check_file
from tests.browser import chromium_page, screenshot
from tests.conftest import parcel_grid


def _report_file(tmp_path):
    gdf = parcel_grid(3, 4)
    gdf.loc[1, "LoaiDat"] = "<img src=x onerror=\"document.title='pwned'\">"
    gdf.loc[2, "SoThua"] = gdf.loc[3, "SoThua"]
    path = tmp_path / "thua.gpkg"
    gdf.to_file(path, driver="GPKG")
    checked = check_file(path, "parcels")
    out = tmp_path / "report.html"
    out.write_text(report_html(checked.report, checked.layer.frame), encoding="utf-8")
    return out, checked.report


def test_report_opens_offline_with_its_map_and_filters(tmp_path):
    out, report = _report_file(tmp_path)
    with chromium_page() as (page, errors, requests):
        page.goto(out.as_uri())
        frame = page.frame_locator("iframe")
        frame.locator(".leaflet-container").wait_for()
        markers = frame.locator("path.leaflet-interactive")
        assert markers.count() >= 3  # the KEY-DUPLICATE pair and the unknown code
        assert page.locator("#f-count").inner_text() == f"{len(report.findings)} / " \
            f"{len(report.findings)}"
        page.select_option("#f-rule", "KEY-DUPLICATE")
        assert page.locator("#f-count").inner_text().startswith("2 /")
        assert page.title().startswith("Báo cáo")  # the hostile attribute did not run
        screenshot(page, "validation-report")
    assert errors == []
    outside = [u for u in requests if not u.startswith(("file:", "data:", "about:"))]
    assert outside == [], outside
