"""Every kind of page under its Content-Security-Policy, in a real browser.

Chromium (Debian's, through ``tests/browser.py``) opens each kind of page the portal
serves — the province and district maps, the parcel sheet, the compare page, the OGC
API's HTML pages, the sign-in and error pages, the planner's pages (dashboard, upload,
a running job, the review map, history) and the admin pages — and records every
``securitypolicyviolation`` event and console error: there must be none, and the maps
must still draw (paths, tiles). A page that lost its policy would pass silently, so
each answer's policy is checked to carry a nonce and no ``'unsafe-inline'`` script.
"""

from __future__ import annotations

import re

import pytest

from gisportal.base.crs import to_lonlat
from gisportal.outputs.mapassets import MEASURE_CSP, VENDOR, measure_csp_build
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from tests.browser import chromium_page, live_server, outside_requests, screenshot
from tests.test_planner_pages import (
    LAM_HA,
    PW,
    USES_V1,
    USES_V2,
    XY,
    build_home,
    plan_file,
    stop_workers,
)

#: Generous: a job starts a Python process that imports GDAL.
JOB_MS = 90_000

#: Collects the policy's violations in each document (an init script runs first).
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push([e.effectiveDirective, e.blockedURI, e.sourceFile + ":" + e.lineNumber,
                     e.sample].join(" "));
});
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Lâm Hà (676): parcels, plan v1 (decision) and v2 published; users lan (planner)
    and boss (admin)."""
    root = tmp_path_factory.mktemp("csp")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        from argon2 import PasswordHasher

        from gisportal.accounts import users

        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(users, "_hasher", lambda: cheap)
        build_home(home, decision_on_v1=True)
        with open_store(home, crs="EPSG:5899") as store:
            assert ingest_file(store, plan_file(root, USES_V2, name="v2.gpkg"), "plan",
                               LAM_HA, publish=True, consultation=True).published
        with live_server(home) as base:
            yield base, root
    stop_workers(home)


class Visits:
    """Opens pages in one browser tab and keeps what went wrong on each."""

    def __init__(self, page, errors: list[str], base: str) -> None:
        self.page, self.errors, self.base = page, errors, base
        self.problems: list[str] = []
        self.policies: dict[str, str] = {}
        page.add_init_script(WATCH)
        page.on("response", self._response)

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            self.policies[response.url] = response.headers.get("content-security-policy", "")

    def check(self, where: str, *, allow: str | None = None) -> None:
        """The violations of the document now open, and the console errors so far."""
        for v in self.page.evaluate("window.__csp || []"):
            self.problems.append(f"{where}: violation {v}")
        for e in self.errors:
            if not (allow and allow in e):
                self.problems.append(f"{where}: console {e}")
        self.errors.clear()

    def open(self, path: str, ready: str | None = None, *, allow: str | None = None):
        self.page.goto(self.base + path)
        if ready:
            # A function, not an expression: Playwright polls an expression with eval,
            # which the policy refuses (as it should).
            self.page.wait_for_function(f"() => {ready}")
        self.page.wait_for_load_state("networkidle")
        self.check(path, allow=allow)
        return self.page

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()


def _sign_in(v: Visits, name: str) -> None:
    v.open("/login")
    v.page.fill('input[name="username"]', name)
    v.page.fill('input[name="password"]', PW)
    v.page.click('button[type="submit"]')
    v.page.wait_for_load_state("networkidle")
    v.check(f"sign-in {name}")


def test_every_kind_of_page_runs_under_its_policy(live):
    base, root = live
    lon, lat = (float(c) for c in to_lonlat(XY[0] + 60, XY[1] + 60))  # in the parcels
    with chromium_page() as (page, errors, requests):
        page.set_default_timeout(JOB_MS)
        v = Visits(page, errors, base)

        # Residents' pages: the maps draw under the policy.
        v.open("/", "document.querySelectorAll('path.leaflet-interactive').length > 0")
        v.open(f"/districts/{LAM_HA}", "window.gpMap !== undefined")
        page.evaluate("([lat, lon]) => window.gpMap.setView([lat, lon], 17, {animate: false})",
                      [lat, lon])
        page.wait_for_function(
            "() => document.querySelectorAll('.leaflet-tile-container canvas').length > 0")
        page.wait_for_load_state("networkidle")
        # leaflet-measure, served with its templates precompiled (no eval): it measures.
        assert v.count(".leaflet-control-measure-toggle") == 1
        page.hover(".leaflet-control-measure")
        page.click(".leaflet-control-measure .js-start")
        box = page.locator(".leaflet-container").bounding_box()
        for dx in (0.4, 0.6):
            page.mouse.click(box["x"] + box["width"] * dx, box["y"] + box["height"] / 2)
        page.locator(".leaflet-control-measure .results .group").first.wait_for()
        v.check("district map, measuring")
        screenshot(page, "csp-district")
        v.open(f"/parcels/{LAM_HA}/1/3",
               "document.querySelectorAll('.gp-sheet-map path').length >= 2")
        v.open(f"/districts/{LAM_HA}/plan/compare", "window.gpCompare && window.gpCompare.ready")
        assert v.count(".leaflet-overlay-pane path") >= 1
        v.open("/ogc?f=html")
        v.open("/ogc/collections?f=html")
        v.open(f"/ogc/collections/{LAM_HA}-parcels?f=html")
        v.open(f"/ogc/collections/{LAM_HA}-parcels/items?f=html", "window.ogcMap !== undefined")
        assert v.count("#ogc-map path.leaflet-interactive") == 20
        item = page.locator(".ogc-table a[href*='/items/']").first.get_attribute("href")
        v.open(item.removeprefix(base), "window.ogcMap !== undefined")
        assert v.count("#ogc-map path.leaflet-interactive") == 1
        v.open("/ogc/conformance?f=html")
        v.open("/ogc/api?f=html")
        v.open("/districts/999", allow="status of 404")  # the error page
        screenshot(page, "csp-error")

        # A planner: dashboard, upload, the running job, the review map, history.
        _sign_in(v, "lan")
        v.open("/planner/")
        v.open(f"/planner/{LAM_HA}/upload?kind=plan")
        page.set_input_files("#gp-file", str(plan_file(root, USES_V1, defects=True,
                                                       name="v3.gpkg")))
        page.click("#gp-upload-send")
        page.wait_for_url("**/planner/jobs/*")
        page.wait_for_function("() => window.gpJob && window.gpJob.polls > 0")
        page.locator("#gp-job-review").wait_for()
        v.check("job page")
        page.click("#gp-job-review")
        page.wait_for_url("**/planner/versions/*")
        page.wait_for_function("() => window.gpReview && window.gpReview.findingsLoaded"
                               " && window.gpReview.featuresLoaded")
        page.wait_for_load_state("networkidle")
        assert v.count(".leaflet-overlay-pane path") >= 9
        v.check("review page")
        screenshot(page, "csp-review")
        report = page.request.get(page.url.split("?")[0] + "/report.html")
        assert report.ok and "attachment" in report.headers["content-disposition"]
        assert report.headers["x-content-type-options"] == "nosniff"
        v.open(f"/planner/{LAM_HA}/plan/history")
        page.click("#gp-logout")
        page.wait_for_load_state("networkidle")

        # An admin: users, audit log, export.
        _sign_in(v, "boss")
        for path in ("/admin/users", "/admin/audit", "/admin/export"):
            v.open(path)

    assert v.problems == [], "\n".join(v.problems)
    assert outside_requests(base, requests) == []
    assert len(v.policies) >= 20, sorted(v.policies)
    for url, policy in v.policies.items():
        assert re.search(r"script-src 'self' 'nonce-[\w-]{20,}'", policy), (url, policy)
        assert "unsafe-inline" not in policy.split("style-src-attr")[0], (url, policy)
        assert "unsafe-eval" not in policy, (url, policy)


def test_the_measure_build_is_the_vendored_one_precompiled():
    """``leaflet-measure.csp.min.js`` is regenerated from the vendored build, and the
    only ``new Function`` left is underscore's own, which nothing calls any more."""
    served = (VENDOR / MEASURE_CSP).read_text(encoding="utf-8")
    assert served == measure_csp_build()
    assert ".template('" not in served
    original = (VENDOR / "leaflet-measure/leaflet-measure.min.js").read_text(encoding="utf-8")
    assert original.count(".template('") == 5
