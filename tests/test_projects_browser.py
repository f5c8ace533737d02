"""Planning projects in a real browser: the district page's answer shows the plan over
the parcel, and the project's page draws its lots, labels and red lines (screenshots
in tests/artifacts)."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, live_server, outside_requests, screenshot
from tests.test_projects import PID
from tests.test_projects_web import build_town


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    home, _ = build_town(tmp_path_factory.mktemp("projects-browser"))
    return home


@pytest.mark.parametrize("width", [1200, 360])
def test_the_answer_panel_shows_the_lot_and_the_road(town, width):
    with live_server(town) as base, chromium_page() as (page, errors, requests):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{base}/districts/678")
        page.wait_for_function("() => !!(window.GP && GP.lookup && GP.state && GP.state.result)")
        page.evaluate("GP.lookup({district: '678', sheet: 1, parcel: 1})")
        block = page.locator(".gp-zoning")
        block.wait_for()
        text = block.inner_text()
        assert "Quy hoạch xây dựng, đô thị" in text
        assert "OM-01" in text and "Mật độ xây dựng tối đa 60 %" in text
        assert "Tầng cao 3–5" in text and "Hệ số sử dụng đất 2,4" in text
        assert "Đường Thống Nhất (Lộ giới 12 m)" in text and "lùi 4 m" in text
        assert block.locator("a").get_attribute("href") == f"/projects/{PID}"
        # No sideways scroll on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        screenshot(page, f"projects-panel-{width}")
        assert not errors, errors
        assert not outside_requests(base, requests)


def test_the_project_page_draws_lots_labels_and_red_lines(town):
    with live_server(town) as base, chromium_page() as (page, errors, requests):
        page.goto(f"{base}/projects/{PID}")
        page.wait_for_selector("#gp-project-legend li")
        legend = page.locator("#gp-project-legend li").all_inner_texts()
        assert {t.split()[0] for t in legend} == {"GT", "ODM", "CX"}
        paths = page.locator("path.leaflet-interactive")
        assert paths.count() >= 5  # 3 lots, the red line and the building line
        assert page.locator("path[stroke='#d7191c']").count() == 1
        assert page.locator("path[stroke='#2b6cb0']").count() == 1
        page.locator("path.leaflet-interactive").nth(1).click(force=True)
        panel = page.locator("#gp-project-lot")
        panel.locator("dl").wait_for()
        assert "Chức năng" in panel.inner_text()
        screenshot(page, "projects-page")
        assert not errors, errors
        assert not outside_requests(base, requests)
