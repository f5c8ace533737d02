"""The HTML report: self-contained (no request leaves the file), escaped, with a map."""

from __future__ import annotations

import html
import re

from click.testing import CliRunner

from gisportal.cli.main import cli
from gisportal.outputs.report_html import report_html
from gisportal.services.ingest import check_file
from tests.conftest import parcel_grid

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def _bad_file(tmp_path):
    gdf = parcel_grid(2, 2)
    gdf.loc[1, "LoaiDat"] = "<script>alert(1)</script>"
    gdf.loc[2, "LoaiDat"] = '<img src=x onerror="alert(2)">'
    path = tmp_path / "xss.gpkg"
    gdf.to_file(path, driver="GPKG")
    return path


def test_report_is_self_contained_and_has_a_map(tmp_path):
    checked = check_file(_bad_file(tmp_path), "parcels")
    page = report_html(checked.report, checked.layer.frame)
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "<iframe" in page
    assert "L.map(" in html.unescape(page)  # the folium map, inside the iframe's srcdoc
    assert "Leaflet" in page  # ... with Leaflet itself inlined
    assert 'id="f-rule"' in page and "CODE-UNKNOWN" in page


def test_hostile_attribute_text_is_escaped_everywhere(tmp_path):
    checked = check_file(_bad_file(tmp_path), "parcels")
    page = report_html(checked.report, checked.layer.frame)
    low = page.lower()  # codes are upper-cased on reading: compare without case
    assert "<script>alert(1)" not in low
    assert "<img src=x" not in low
    assert "alert(1)" in low  # still shown, as text


def test_cli_writes_html_report(tmp_path, home):
    out = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ["--home", str(home), "validate", str(_bad_file(tmp_path)),
                                 "--kind", "parcels", "--format", "html", "--out", str(out)])
    assert r.exit_code == 1
    page = out.read_text(encoding="utf-8")
    assert "Báo cáo kiểm tra dữ liệu" in page and not EXTERNAL.search(page)
