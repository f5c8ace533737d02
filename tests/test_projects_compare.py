"""Comparing two versions of a planning project (issue 15): which lots changed function
or indicators, which were split or removed, and the m² per function — in the engine, on
the public page ``/projects/<id>/compare``, in its API and on the command line.

The versions are real uploads: a consultant's GeoPackage with the field names drawings
use (``KyHieuLo``, ``ChucNang``, ``MatDoXD``, ``TangCao``, ``HeSoSDD``), ingested against
the project, each approved by a decision and published through the one publish path.
The adjustment (version 2) makes one edit of each kind, on lots of 100 m × 100 m:

- A-01 changes function (ODM → TM), nothing else;
- B-01 keeps its function, its floors go from 3-5 to 3-7;
- C-01 (HH) is split: C-01a keeps 60 % as HH, C-01b (40 %) becomes a park (CX);
- D-01 (CX) is removed, its land joined to E-01 (reshaped, same code).

The expected m² per function are worked out here from those edits, not from the engine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner

from gisportal.base import seeds
from gisportal.base.errors import NotFoundError, UsageError
from gisportal.cli.main import cli
from gisportal.outputs.compare import compare_versions
from gisportal.services import projects, workflow
from gisportal.services.decisions import attach_decision
from gisportal.services.demo import build_demo
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web.app import create_app
from tests.browser import chromium_page, live_server, outside_requests, screenshot
from tests.conftest import DUC_TRONG_XY
from tests.test_projects import PDF
from tests.vietnamese import english_in, visible_texts

X0, Y0 = DUC_TRONG_XY
PID = "678-lien-nghia-dieu-chinh"
#: A second project, published once: nothing to compare.
ONCE = "678-lien-nghia-mot-lan"

#: (code, function, density, floors, FAR, xmin, ymin, xmax, ymax) in metres from X0, Y0.
LOTS_V1 = [
    ("GT-01", "Đất giao thông", "", "", "", 0, 0, 300, 20),
    ("A-01", "Đất ở mới", "60%", "3-5", "2,4", 0, 20, 100, 120),
    ("B-01", "ODM", "60%", "3-5", "2,4", 100, 20, 200, 120),
    ("C-01", "HH", "50%", "5-9", "3,6", 200, 20, 300, 120),
    ("D-01", "CX", "5%", "1", "0,05", 0, 120, 100, 200),
    ("E-01", "ODM", "70%", "3-5", "3", 100, 120, 300, 200),
]
LOTS_V2 = [
    ("GT-01", "Đất giao thông", "", "", "", 0, 0, 300, 20),
    ("A-01", "TM", "60%", "3-5", "2,4", 0, 20, 100, 120),
    ("B-01", "ODM", "60%", "3-7", "2,4", 100, 20, 200, 120),
    ("C-01a", "HH", "50%", "5-9", "3,6", 200, 20, 260, 120),
    ("C-01b", "Đất cây xanh", "5%", "1", "0,05", 260, 20, 300, 120),
    ("E-01", "ODM", "70%", "3-5", "3", 0, 120, 300, 200),
]
#: m² per function, before and after, from the edits above.
AREAS = {"GT": (6000, 6000), "ODM": (36000, 34000), "TM": (0, 10000),
         "HH": (10000, 6000), "CX": (8000, 4000)}


def lots_frame(lots) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"KyHieuLo": [r[0] for r in lots], "ChucNang": [r[1] for r in lots],
         "MatDoXD": [r[2] for r in lots], "TangCao": [r[3] for r in lots],
         "HeSoSDD": [r[4] for r in lots]},
        geometry=[shapely.box(X0 + r[5], Y0 + r[6], X0 + r[7], Y0 + r[8]) for r in lots],
        crs="EPSG:5899")


def upload(store, tmp: Path, project: str, lots, name: str, *, publish: bool = True,
           decision: str = "1/QĐ-UBND"):
    """Ingest `lots` against `project` as a GeoPackage; with `publish`, approve it by a
    decision and publish it (what a planner does)."""
    path = tmp / f"{name}.gpkg"
    lots_frame(lots).to_file(path, driver="GPKG")
    result = ingest_file(store, path, "zoning_lots", None, project=project, user="planner")
    assert not result.report.has_errors, result.report.summary()
    if publish:
        attach_decision(store, result.version.id, number=decision, date="2024-06-30",
                        authority="UBND tỉnh Lâm Đồng", pdf=PDF, pdf_name="qd.pdf")
        workflow.publish(store, result.version.id, "planner", confirm_removals=True)
    return result.version


def build(home: Path, tmp: Path) -> dict[str, int]:
    """The two projects of the module doc, and a draft adjustment of the first (v3)."""
    with open_store(home, crs="EPSG:5899") as store:
        projects.create(store.home, project_id=PID, district="678",
                        name="Điều chỉnh quy hoạch phân khu Liên Nghĩa", level="zoning",
                        scale="1/2000", status="adjusted", by="planner")
        projects.create(store.home, project_id=ONCE, district="678",
                        name="Quy hoạch chi tiết một lần", level="detailed",
                        scale="1/500", status="approved", by="planner")
        v1 = upload(store, tmp, PID, LOTS_V1, "v1", decision="12/QĐ-UBND")
        v2 = upload(store, tmp, PID, LOTS_V2, "v2", decision="345/QĐ-UBND")
        draft = [("GT-01", "GT", "", "", "", 0, 0, 300, 20),
                 *[(c, "CQ", *rest) for c, _f, *rest in LOTS_V2[1:]]]
        v3 = upload(store, tmp, PID, draft, "v3", publish=False)
        once = upload(store, tmp, ONCE, LOTS_V1, "once")
    return {"v1": v1.id, "v2": v2.id, "draft": v3.id, "once": once.id}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("projects-compare")
    home = tmp / "home"
    ids = build(home, tmp)
    return {"home": home, **ids}


@pytest.fixture(scope="module")
def store(site):
    s = open_store(site["home"], crs="EPSG:5899")
    yield s
    s.close()


# -- the engine ----------------------------------------------------------------------------


def test_every_edit_of_the_adjustment_is_found(store, site):
    result = compare_versions(store, site["v1"], site["v2"], project=PID,
                              kind="zoning_lots")
    assert result.key == ("lot_code",)
    assert result.counts == {"added": 1, "removed": 1, "use_changed": 1,
                             "indicators_changed": 1, "reshaped": 2, "renumbered": 0,
                             "unchanged": 1}
    assert result.flags == {"use_changed": 1, "indicators_changed": 1, "reshaped": 2,
                            "renumbered": 1}
    f = {(r.type, r.lot_code_before if r.type != "added" else None,
          r.lot_code_after if r.type != "removed" else None): r
         for r in result.features.itertuples()}
    assert set(f) == {("use_changed", "A-01", "A-01"), ("indicators_changed", "B-01", "B-01"),
                      ("reshaped", "C-01", "C-01a"), ("added", None, "C-01b"),
                      ("removed", "D-01", None), ("reshaped", "E-01", "E-01")}
    a = f[("use_changed", "A-01", "A-01")]
    assert (a.code_before, a.code_after, a.changes) == ("ODM", "TM", "use_changed")
    assert a.indicators == ""  # its indicators are the same
    b = f[("indicators_changed", "B-01", "B-01")]
    assert (b.code_before, b.code_after, b.indicators) == ("ODM", "ODM", "floors_max")
    assert (b.floors_max_before, b.floors_max_after) == (5, 7)
    assert (b.floors_min_before, b.floors_min_after) == (3, 3)
    assert (b.far_before, b.far_after) == (pytest.approx(2.4), pytest.approx(2.4))
    c = f[("reshaped", "C-01", "C-01a")]
    assert c.changes == "reshaped+renumbered" and c.matched_by == "geometry"
    assert c.iou == pytest.approx(0.6)
    assert c.area_after_m2 == pytest.approx(6000)
    e = f[("reshaped", "E-01", "E-01")]
    assert e.matched_by == "key" and e.area_delta_m2 == pytest.approx(8000)


def test_indicators_before_and_after_in_the_geojson(store, site):
    doc = compare_versions(store, site["v1"], site["v2"], project=PID).to_dict()
    by_code = {(p["key_before"] or p["key_after"])["lot_code"]: p
               for p in (f["properties"] for f in doc["features"]["features"])}
    assert by_code["B-01"]["indicators"] == {"floors_max": {"before": 5, "after": 7}}
    assert by_code["B-01"]["changes"] == ["indicators_changed"]
    assert by_code["A-01"]["indicators"] == {}
    assert by_code["C-01b"]["indicators"] == {}
    s = doc["summary"]
    assert s["project"] == PID and s["kind"] == "zoning_lots"
    assert s["indicator_fields"] == ["density_pct", "floors_min", "floors_max", "far"]
    json.dumps(doc, allow_nan=False)  # JSON as is: no NaN, no numpy types


def test_area_per_function_named_from_the_zoning_functions(store, site):
    result = compare_versions(store, site["v1"], site["v2"], project=PID)
    rows = {r["code"]: r for r in result.summary()["areas"]}
    assert set(rows) == set(AREAS)
    for code, (before, after) in AREAS.items():
        assert rows[code]["before_m2"] == pytest.approx(before), code
        assert rows[code]["after_m2"] == pytest.approx(after), code
        assert rows[code]["delta_m2"] == pytest.approx(after - before), code
    # names and colours of seeds/zoning_functions.csv, not of the land-use codes
    assert (rows["TM"]["name"], rows["TM"]["name_en"], rows["TM"]["color"]) == (
        "Đất thương mại dịch vụ", "Commercial and services land", "#FF9966")
    assert rows["ODM"]["name"] == "Đất ở mới" and rows["ODM"]["color"] == "#FFD24D"
    functions = seeds.zoning_functions()
    for code, row in rows.items():
        f = functions.get(code)
        assert (row["name"], row["name_en"], row["color"]) == (f.name_vi, f.name_en, f.color)
    assert [r["code"] for r in result.summary()["areas"]][:1] == ["TM"]  # largest change
    assert result.summary()["total_area_m2"]["delta"] == pytest.approx(0)


def test_lots_against_themselves_are_all_unchanged(store, site):
    result = compare_versions(store, site["once"], site["once"])
    assert result.counts == {"added": 0, "removed": 0, "use_changed": 0,
                             "indicators_changed": 0, "reshaped": 0, "renumbered": 0,
                             "unchanged": len(LOTS_V1)}
    assert result.features.empty


def test_red_lines_have_no_area_to_compare(store):
    lines = gpd.GeoDataFrame(
        {"line_id": ["1"], "road_name": ["Đường Thống Nhất"], "width_m": [20.0],
         "line_type": ["red"]},
        geometry=[shapely.LineString([(X0, Y0 + 20), (X0 + 300, Y0 + 20)])], crs="EPSG:5899")
    ids = [store.add_version("678", "red_lines", lines, source_name="cg.gpkg",
                             source_sha256="0", created_by="t", project=PID).id
           for _ in range(2)]
    with pytest.raises(UsageError, match="holds lines") as err:
        compare_versions(store, *ids, project=PID, kind="red_lines")
    assert err.value.code == "COMPARE-LINES" and "zoning_lots" in err.value.fix


def test_versions_of_another_project_or_lines_are_refused(store, site):
    with pytest.raises(NotFoundError, match=f"not a zoning_lots layer of project {PID}"):
        compare_versions(store, site["v1"], site["once"], project=PID)
    with pytest.raises(UsageError, match=f"project {PID}.*project {ONCE}"):
        compare_versions(store, site["v1"], site["once"])
    with pytest.raises(NotFoundError, match="not a planning project id"):
        compare_versions(store, site["v1"], site["v2"], project="../x")


# -- the page, its API -------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(site):
    return create_app({"home": str(site["home"])}).test_client()


def counts_on(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-type="(\w+)"[^>]*>.*?<td class="num">(\d+)</td>', page))


def test_the_page_shows_counts_areas_and_lots_in_vietnamese(client, site):
    r = client.get(f"/projects/{PID}/compare")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    # the default pair: the published lots against the ones they replaced
    assert f'<option value="{site["v1"]}" selected>' in page
    assert f"Phiên bản {site['v2']} — đang công bố — 345/QĐ-UBND ngày 30/06/2024" in page
    counts = counts_on(page[page.index('id="gp-compare-counts"'):])
    assert counts == {"added": "1", "removed": "1", "use_changed": "1",
                      "indicators_changed": "1", "reshaped": "2", "renumbered": "0",
                      "unchanged": "1"}
    assert "Thay đổi chức năng sử dụng đất" in page and "Thay đổi chỉ tiêu quy hoạch" in page
    # m² per function, Vietnamese numbers, the function's name and drawing colour
    tm = re.search(r'<tr data-code="TM".*?</tr>', page, re.S).group(0)
    assert "Đất thương mại dịch vụ" in tm and "#FF9966" in tm
    assert ">0,0<" in tm and ">10.000,0<" in tm and "+10.000,0" in tm
    odm = re.search(r'<tr data-code="ODM".*?</tr>', page, re.S).group(0)
    assert ">36.000,0<" in odm and ">34.000,0<" in odm and "−2.000,0" in odm
    assert "Diện tích theo chức năng sử dụng đất (m²)" in page
    # the changed lots, with the indicator before and after
    lots = page[page.index('id="gp-compare-lots"'):]
    b01 = re.search(r'<tr data-type="indicators_changed">.*?</tr>', lots, re.S).group(0)
    assert "B-01" in b01 and "Tầng cao tối đa: 5 → 7" in b01
    assert "<b>C-01 → C-01a</b>" in lots and "10.000,0 → 6.000,0" in lots
    assert "Chức năng: ODM → TM" in lots
    # no English on the page, no English number
    texts = visible_texts(page)
    assert [t for t in texts if english_in(t)] == []
    assert not re.search(r"\b\d{1,3}(,\d{3})+(\.\d+)?\b", " ".join(texts))
    # the map fetches the changes from the API; the page embeds none of them
    assert (f"/api/compare?project={PID}\\u0026kind=zoning_lots\\u0026from={site['v1']}"
            f"\\u0026to={site['v2']}") in page
    assert "/static/js/compare.js" in page and f'href="/projects/{PID}"' in page


def test_the_project_page_links_the_comparison_only_when_there_is_one(client, site):
    adjusted = client.get(f"/projects/{PID}").get_data(as_text=True)
    assert f'<a href="/projects/{PID}/compare">Điều chỉnh đã thay đổi gì</a>' in adjusted
    once = client.get(f"/projects/{ONCE}").get_data(as_text=True)
    assert 'id="gp-project-compare"' not in once and f"/projects/{ONCE}/compare" not in once
    nothing = client.get(f"/projects/{ONCE}/compare")
    assert nothing.status_code == 200
    assert 'id="gp-compare-nothing"' in nothing.get_data(as_text=True)
    api = client.get(f"/api/compare?project={ONCE}&kind=zoning_lots")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "COMPARE-NOTHING"


def test_the_api_answers_the_lots_with_their_indicators(client, site):
    r = client.get(f"/api/compare?project={PID}&kind=zoning_lots&from={site['v1']}"
                   f"&to={site['v2']}")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["summary"]["project"] == PID and doc["page"]["total"] == 6
    props = {(p["key_before"] or p["key_after"])["lot_code"]: p
             for p in (f["properties"] for f in doc["features"]["features"])}
    assert props["B-01"]["indicators"] == {"floors_max": {"before": 5, "after": 7}}
    assert (props["A-01"]["code_before"], props["A-01"]["code_after"]) == ("ODM", "TM")
    summary = client.get(f"/api/compare/summary?project={PID}&kind=zoning_lots").get_json()
    assert summary["counts"]["indicators_changed"] == 1
    assert summary["from"]["id"] == site["v1"] and summary["to"]["id"] == site["v2"]


def test_a_draft_is_never_compared_publicly(client, site):
    url = f"/projects/{PID}/compare?from={site['v2']}&to={site['draft']}"
    page = client.get(url)
    assert page.status_code == 404 and "text/html" in page.content_type
    assert "Không tìm thấy" in page.get_data(as_text=True)
    api = client.get(f"/api/compare?project={PID}&kind=zoning_lots&from={site['v2']}"
                     f"&to={site['draft']}")
    missing = client.get(f"/api/compare?project={PID}&kind=zoning_lots&from={site['v2']}"
                         "&to=999999")
    assert api.status_code == missing.status_code == 404
    assert api.get_json()["error"]["message"] == missing.get_json()["error"][
        "message"].replace("999999", str(site["draft"]))
    listed = client.get(f"/projects/{PID}/compare").get_data(as_text=True)
    assert f'<option value="{site["draft"]}"' not in listed


@pytest.mark.parametrize("url,status", [
    (f"/projects/{PID}/compare?from=x&to=1", 400),
    (f"/projects/{PID}/compare?from=1", 400),
    (f"/projects/{PID}/compare?from=999999&to=999998", 404),
    ("/projects/khong-co-do-an/compare", 404),
    ("/projects/KHONG/compare", 404),
    ("/projects/%00/compare", 404),
])
def test_bad_page_input_is_a_vietnamese_page_not_a_500(client, url, status):
    r = client.get(url)
    assert r.status_code == status, url
    html = r.get_data(as_text=True)
    assert "text/html" in r.content_type and "Về trang chủ" in html
    assert [t for t in visible_texts(html) if english_in(t)] == []


def test_versions_of_another_project_are_not_found_here(client, site):
    r = client.get(f"/projects/{PID}/compare?from={site['once']}&to={site['v2']}")
    assert r.status_code == 404
    api = client.get(f"/api/compare?project={PID}&kind=zoning_lots&from={site['once']}"
                     f"&to={site['v2']}")
    assert api.status_code == 404
    assert f"not a zoning_lots layer of project {PID}" in api.get_json()["error"]["message"]


@pytest.mark.parametrize("query,status,where", [
    ({"kind": "red_lines"}, 404, "kind"),
    ({"kind": "parcels"}, 404, "kind"),
    ({"project": "khong-co-do-an"}, 404, "project"),
    ({"project": "../x"}, 404, "project"),
    ({"from": "abc"}, 400, "from"),
    ({"kind": ""}, 400, "query string"),
])
def test_bad_api_input_is_a_precise_4xx(client, site, query, status, where):
    params = {"project": PID, "kind": "zoning_lots", "from": site["v1"], "to": site["v2"],
              **query}
    r = client.get("/api/compare?" + "&".join(f"{k}={v}" for k, v in params.items()))
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.get_json()["error"]["where"] == where


def test_the_map_draws_the_lots_and_their_indicators(site):
    """compare.js on the project's page: every changed lot drawn, a lot's popup in the
    lots' words with the indicator before and after."""
    with live_server(site["home"]) as base, chromium_page() as (page, errors, requests):
        page.goto(base + f"/projects/{PID}/compare")
        page.wait_for_function("() => window.gpCompare && window.gpCompare.ready")
        assert page.evaluate("window.gpCompare.shown") == 6
        note = page.locator("#gp-compare-note").inner_text()
        assert "toàn bộ 6" in note
        # B-01's shape: the one lot of its type, drawn in its colour
        lot = page.locator('.leaflet-overlay-pane path.leaflet-interactive[fill="#e7298a"]')
        assert lot.count() == 1
        lot.click(force=True)
        popup = page.locator(".gp-cmp-popup")
        popup.wait_for()
        text = " ".join(popup.inner_text().split())
        assert text.startswith("Thay đổi chỉ tiêu quy hoạch"), text
        assert "Tầng cao tối đa 5 → 7" in text and "ODM — Đất ở mới" in text
        assert "Chức năng" in text and "Ký hiệu ô" in text and "Số hiệu" not in text
        screenshot(page, "project-compare")
        assert errors == [] and outside_requests(base, requests) == []


# -- the command line -----------------------------------------------------------------------


def test_cli_compares_a_projects_versions(site):
    runner = CliRunner()
    base = ["--home", str(site["home"]), "compare", "--project", PID, "--kind",
            "zoning_lots", "--from", str(site["v1"]), "--to", str(site["draft"])]
    as_json = runner.invoke(cli, base)  # drafts too: the command is the planners'
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert doc["summary"]["project"] == PID and doc["summary"]["to"]["status"] == "draft"
    assert doc["summary"]["counts"]["use_changed"] >= 4  # every lot but the road is CQ
    text = runner.invoke(cli, [*base[:-1], str(site["v2"]), "--format", "text"])
    assert text.exit_code == 0
    assert "indicators_changed           1" in text.output
    assert "function" in text.output and "+10,000.0" in text.output


def test_cli_refuses_a_missing_or_doubled_layer_in_one_line(site):
    runner = CliRunner()
    base = ["--home", str(site["home"]), "compare", "--kind", "zoning_lots",
            "--from", str(site["v1"]), "--to", str(site["v2"])]
    neither = runner.invoke(cli, base)
    assert neither.exit_code == 2 and "give --district or --project" in neither.output
    both = runner.invoke(cli, [*base, "--district", "678", "--project", PID])
    assert both.exit_code == 2
    other = runner.invoke(cli, [*base[:-2], "--to", str(site["once"]), "--project", PID])
    assert other.exit_code == 1 and f"not a zoning_lots layer of project {PID}" in other.output
    assert len(other.output.strip().splitlines()) == 1
    lines = runner.invoke(cli, [*base[:4], "red_lines", *base[5:], "--project", PID])
    assert lines.exit_code == 1 and "not a red_lines layer" in lines.output


# -- the demo ---------------------------------------------------------------------------


def test_the_demos_adjusted_plan_is_compared(tmp_path_factory):
    """`gisportal demo --district 679` publishes Dran's general plan twice: its page
    links the comparison, which finds the park the adjustment made of the first block."""
    home = tmp_path_factory.mktemp("demo-679") / "home"
    with open_store(home, crs="EPSG:5899") as store:
        build_demo(store, parcels_per_district=50, districts=["679"])
    client = create_app({"home": str(home)}).test_client()
    assert "/projects/679-dran-chung/compare" in client.get(
        "/projects/679-dran-chung").get_data(as_text=True)
    page = client.get("/projects/679-dran-chung/compare").get_data(as_text=True)
    counts = counts_on(page[page.index('id="gp-compare-counts"'):])
    assert int(counts["use_changed"]) >= 1 and counts["added"] == counts["removed"] == "0"
    cx = re.search(r'<tr data-code="CX".*?</tr>', page, re.S).group(0)
    assert 'class="num up"' in cx  # the new park
    assert [t for t in visible_texts(page) if english_in(t)] == []
