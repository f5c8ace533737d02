"""The planner's workflow in a real browser (Debian's Chromium through Playwright).

Lâm Hà (676) has its parcels and its plan v1 (with decision) published. The planner
signs in, uploads the new plan with a gap and a small overlap, sees both on the review
map and in the findings table, repairs, enters the decision with its PDF, publishes,
sees the district map's look-up answer the new plan, compares the two versions on the
public compare page and rolls back. No console error, no request leaves the server.
"""

from __future__ import annotations

import pytest

from gisportal.base.crs import to_lonlat
from tests.browser import chromium_page, live_server, outside_requests, screenshot
from tests.test_decisions import PDF
from tests.test_planner_pages import PW, USES_V2, XY, build_home, plan_file, stop_workers

#: Generous bounds: a job starts a Python process that imports GDAL.
JOB_MS = 90_000


@pytest.fixture
def live(tmp_path, fast_passwords, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    ids = build_home(home, decision_on_v1=True)
    with live_server(home) as base:
        yield base, ids, tmp_path
    stop_workers(home)


def _click_at(page, lat: float, lon: float) -> None:
    xy = page.evaluate(
        "([lat, lon]) => { const p = window.gpMap.latLngToContainerPoint([lat, lon]);"
        " const r = window.gpMap.getContainer().getBoundingClientRect();"
        " return [p.x + r.left, p.y + r.top]; }", [lat, lon])
    page.mouse.click(xy[0], xy[1])


def _version_of(page) -> int:
    return int(page.url.rstrip("/").rsplit("/", 1)[1].split("?")[0])


def _wait_review(page) -> None:
    page.wait_for_function("() => window.gpReview && window.gpReview.findingsLoaded"
                           " && window.gpReview.featuresLoaded")


def test_planner_uploads_reviews_repairs_publishes_compares_and_rolls_back(live):
    base, ids, tmp = live
    v1 = ids["plan"]
    defective = plan_file(tmp, USES_V2, defects=True, name="QH Lâm Hà 2030.gpkg")
    decision_pdf = tmp / "QĐ 1234.pdf"
    decision_pdf.write_bytes(PDF)
    lon, lat = (float(v) for v in to_lonlat(XY[0] + 25, XY[1] + 25))  # parcel 1 of sheet 1
    with chromium_page() as (page, errors, requests):
        page.set_default_timeout(JOB_MS)
        # Sign in: the planner lands on the dashboard.
        page.goto(base + "/login")
        page.fill('input[name="username"]', "lan")
        page.fill('input[name="password"]', PW)
        page.click('button[type="submit"]')
        page.wait_for_url("**/planner/")
        assert page.locator("#gp-district-676").count() == 1
        screenshot(page, "planner-dashboard")

        # Upload the plan with known defects; the job page follows it to the end.
        page.click('#gp-district-676 tr[data-kind="plan"] a[href*="/upload"]')
        page.wait_for_url("**/planner/676/upload?kind=plan")
        assert page.locator("#gp-kind").input_value() == "plan"
        page.set_input_files("#gp-file", str(defective))
        screenshot(page, "planner-upload")
        page.click("#gp-upload-send")
        page.wait_for_url("**/planner/jobs/*")
        page.locator("#gp-job-review").wait_for()
        screenshot(page, "planner-job-done")

        # The review page: four findings in the table, the located ones on the map over
        # the nine uploaded zones.
        page.click("#gp-job-review")
        page.wait_for_url("**/planner/versions/*")
        v2 = _version_of(page)
        _wait_review(page)
        rows = page.locator("#gp-findings-table tbody tr")
        assert rows.count() == 4
        assert rows.nth(0).get_attribute("data-rule") == "TOPO-GAP"
        assert page.evaluate("window.gpReview.features") == 9
        on_map = page.evaluate("window.gpReview.findings")
        assert on_map >= 2  # the gap and the overlap (the CRS note has no place)
        assert page.locator(".leaflet-overlay-pane path").count() >= 9 + on_map
        assert page.locator("#gp-publish-blocked").inner_text().startswith(
            "Chưa công bố được: phiên bản có 1 lỗi")
        page.select_option('#gp-findings-filter select[name="severity"]', "error")
        page.wait_for_function("() => document.querySelectorAll('#gp-findings-table tbody tr')"
                               ".length === 1 && window.gpReview.findingsLoaded")
        rows.nth(0).click()  # zooms to the gap and opens its popup
        page.locator(".leaflet-popup-content").wait_for()
        assert "TOPO-GAP" in page.locator(".leaflet-popup-content").inner_text()
        screenshot(page, "planner-review-findings")

        # Repair: a new draft whose page lists the changes with the areas.
        page.click("#gp-repair-button")
        page.wait_for_url("**/planner/jobs/*")
        page.locator("#gp-job-review").click()
        page.wait_for_url("**/planner/versions/*")
        v3 = _version_of(page)
        assert v3 > v2
        _wait_review(page)
        changes = page.locator("#gp-changes tbody tr")
        assert changes.count() == 2
        assert page.locator('#gp-changes tr[data-action="REPAIR-GAP-FILLED"]').inner_text() \
            .split("\t")[2:5] == ["40.000,00", "40.008,00", "+8,00"]
        screenshot(page, "planner-repaired")

        # The decision with its signed PDF, then publish.
        page.fill("#gp-dec-number", "1234/QĐ-UBND")
        page.fill("#gp-dec-date", "30/06/2023")
        page.fill("#gp-dec-authority", "UBND tỉnh Lâm Đồng")
        page.set_input_files("#gp-dec-pdf", str(decision_pdf))
        page.click("#gp-decision-save")
        page.locator(".gp-pl-flash").wait_for()
        assert "1234/QĐ-UBND" in page.locator("#gp-decision-current").inner_text()
        page.click("#gp-publish-button")
        page.wait_for_url("**/planner/jobs/*")
        page.locator("#gp-job-map").wait_for()
        assert f"Đã công bố phiên bản {v3}" in page.locator("#gp-job-outcome").inner_text()
        screenshot(page, "planner-published")

        # The district map: a click on the parcel shows the new planned use.
        page.click("#gp-job-map")
        page.wait_for_url("**/districts/676")
        page.wait_for_function("() => window.gpMap !== undefined")
        page.evaluate("([lat, lon]) => window.gpMap.setView([lat, lon], 18, {animate: false})",
                      [lat, lon])
        page.wait_for_load_state("networkidle")
        _click_at(page, lat, lon)
        page.locator("#gp-result .gp-planned li").first.wait_for()
        planned = page.locator("#gp-result .gp-planned").inner_text()
        assert "ONT" in planned and "LUC" not in planned
        assert "1234/QĐ-UBND" in page.locator("#gp-result").inner_text()
        screenshot(page, "planner-district-after")

        # Compare the two published versions on the public page, from the history.
        page.goto(base + "/planner/676/plan/history")
        page.select_option('#gp-history-compare select[name="from"]', str(v1))
        page.select_option('#gp-history-compare select[name="to"]', str(v3))
        page.click('#gp-history-compare button[type="submit"]')
        page.wait_for_url(f"**/districts/676/plan/compare?from={v1}&to={v3}")
        page.wait_for_function("() => window.gpCompare && window.gpCompare.ready")
        assert page.locator('#gp-compare-counts tr[data-type="use_changed"] td.num') \
            .inner_text() == "1"
        screenshot(page, "planner-compare")

        # Roll back to v1: the look-up answers the old plan again.
        page.goto(base + "/planner/676/plan/history")
        page.click(f'button.gp-rollback[data-version="{v1}"]')
        page.wait_for_url("**/planner/jobs/*")
        page.locator("#gp-job-map").wait_for()
        assert f"Đã công bố phiên bản {v1}" in page.locator("#gp-job-outcome").inner_text()
        answer = page.evaluate(f"fetch('/api/lookup?lat={lat}&lon={lon}').then(r => r.json())")
        assert [p["code"] for p in answer["planned"]] == ["LUC"]
        assert answer["plan"]["version"] == v1
        page.goto(base + "/planner/676/plan/history")
        assert page.locator(f'tr[data-version="{v1}"]').get_attribute("data-status") == \
            "published"
        screenshot(page, "planner-rolled-back")
    assert errors == [], errors
    assert outside_requests(base, requests) == []
