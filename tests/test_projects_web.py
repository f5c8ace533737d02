"""Planning projects on the web: /api/lookup's ``zoning`` (contract), the project pages,
their layers as GeoJSON, decisions and documents, and what a draft never changes.

One module-wide home: the parcels of `parcel_grid` in Đức Trọng, the project of
tests/test_projects.py (lots and red lines published with a decision PDF, a document),
and a second project that has only a draft.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from gisportal.services import projects, workflow
from gisportal.services.decisions import attach_decision
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web.app import create_app
from tests.conftest import parcel_grid, write_shapefile_zip
from tests.test_projects import PDF, PID, lines_frame, lots_frame

DRAFT = "678-ban-nhap-500"


def build_town(tmp: Path) -> tuple[Path, str]:
    """The module's home under `tmp` (see the module doc); its path and the sha256 of the
    draft project's decision PDF."""
    home = tmp / "home"
    with open_store(home, crs="EPSG:5899") as store:
        zip_path = write_shapefile_zip(parcel_grid(), tmp / "thua.zip")
        assert ingest_file(store, zip_path, "parcels", "678", publish=True).published
        projects.create(store.home, project_id=PID, district="678",
                        name="Quy hoạch phân khu đô thị Liên Nghĩa", level="zoning",
                        scale="1/2000", status="approved", by="planner")
        lots_path, lines_path = tmp / "lo.gpkg", tmp / "cg.gpkg"
        lots = lots_frame()
        lots["ChuDauTu"] = ["Công ty A", "Ông Nguyễn Văn B", "UBND"]  # not on the allow-list
        lots.to_file(lots_path, driver="GPKG")
        lines_frame().to_file(lines_path, driver="GPKG")
        lots_v = ingest_file(store, lots_path, "zoning_lots", None, project=PID).version
        attach_decision(store, lots_v.id, number="1234/QĐ-UBND", date="2019-06-30",
                        authority="UBND tỉnh Lâm Đồng", pdf=PDF, pdf_name="QD-1234.pdf")
        workflow.publish(store, lots_v.id, "planner")
        assert ingest_file(store, lines_path, "red_lines", None, project=PID,
                           publish=True).published
        doc = tmp / "thuyet_minh.pdf"
        doc.write_bytes(PDF.replace(b"1 0 obj", b"2 0 obj"))
        projects.add_document(store, PID, doc, kind="report", title="Thuyết minh tổng hợp",
                              by="planner")
        # A second project whose lots are a draft with its own decision PDF: nothing of
        # it may reach residents.
        projects.create(store.home, project_id=DRAFT, district="678",
                        name="Quy hoạch chi tiết dự thảo", level="detailed",
                        scale="1/500", status="appraisal", by="planner")
        draft = lots_frame()
        draft["ChucNang"] = ["GT", "TM", "TM"]
        draft_path = tmp / "du_thao.gpkg"
        draft.to_file(draft_path, driver="GPKG")
        draft_v = ingest_file(store, draft_path, "zoning_lots", None, project=DRAFT).version
        draft_pdf = PDF.replace(b"1 0 obj", b"3 0 obj")
        attach_decision(store, draft_v.id, number="99/QĐ-UBND", date="2024-01-02",
                        authority="UBND tỉnh Lâm Đồng", pdf=draft_pdf, pdf_name="du_thao.pdf")
    return home, hashlib.sha256(draft_pdf).hexdigest()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home, draft_sha = build_town(tmp_path_factory.mktemp("projects-web"))
    app = create_app({"home": str(home)})
    yield app.test_client(), draft_sha


def test_lookup_answers_zoning_as_the_contract_says(site):
    client, _ = site
    body = client.get("/api/lookup?district=678&sheet=1&parcel=1").get_json()
    [plan] = body["zoning"]
    assert set(plan) >= {"project", "lots", "red_line"}
    assert set(plan["project"]) >= {"id", "name", "level", "decision"}
    assert plan["project"]["id"] == PID
    for lot in plan["lots"]:
        assert set(lot) >= {"code", "function", "area_m2", "share", "max_density_pct",
                            "floors_min", "floors_max", "far"}
    assert set(plan["red_line"]) >= {"area_m2", "share", "roads"}
    assert plan["red_line"]["roads"] == [{"name": "Đường Thống Nhất", "width_m": 12.0}]
    # Its decision PDF is public: its lots are published.
    pdf = plan["project"]["decision"]["pdf"]
    got = client.get(pdf)
    assert got.status_code == 200 and got.data == PDF
    assert got.headers["Content-Type"] == "application/pdf"


def test_a_draft_project_changes_nothing_residents_see(site):
    client, draft_sha = site
    body = client.get("/api/lookup?district=678&sheet=1&parcel=1").get_json()
    assert [p["project"]["id"] for p in body["zoning"]] == [PID]
    listed = {p["id"]: p for p in client.get("/api/projects").get_json()}
    assert listed[DRAFT]["published"] == [] and listed[DRAFT]["layers"] == {}
    assert listed[DRAFT]["decision"] is None
    assert client.get(f"/api/projects/{DRAFT}/zoning_lots.geojson").status_code == 404
    assert client.get(f"/projects/{DRAFT}/decisions/{draft_sha}.pdf").status_code == 404
    page = client.get(f"/projects/{DRAFT}")
    assert page.status_code == 200 and "du_thao" not in page.get_data(as_text=True)


def test_the_lots_geojson_is_wgs84_counter_clockwise_and_public_columns_only(site):
    client, _ = site
    r = client.get(f"/api/projects/{PID}/zoning_lots.geojson")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    doc = r.get_json()
    assert len(doc["features"]) == 3
    for f in doc["features"]:
        geom = shapely.geometry.shape(f["geometry"])
        assert geom.exterior.is_ccw
        lon, lat = geom.exterior.coords[0]
        assert 108 < lon < 109 and 11 < lat < 12
        assert "src:ChuDauTu" not in f["properties"] and "ChuDauTu" not in f["properties"]
        assert all("Nguyễn" not in str(v) for v in f["properties"].values())
    om = next(f for f in doc["features"] if f["properties"]["lot_code"] == "OM-01")
    assert (om["properties"]["function"], om["properties"]["color"]) == ("ODM", "#FFD24D")
    assert r.headers["ETag"]
    again = client.get(f"/api/projects/{PID}/zoning_lots.geojson",
                       headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_the_project_page_lists_its_decision_and_documents_and_embeds_no_layer(site):
    client, _ = site
    page = client.get(f"/projects/{PID}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Quy hoạch phân khu đô thị Liên Nghĩa" in html and "1234/QĐ-UBND" in html
    assert "Thuyết minh tổng hợp" in html and "30/06/2019" in html
    assert "OM-01" not in html  # the lots come from the GeoJSON, not the page
    doc = next(d for d in client.get(f"/api/projects/{PID}").get_json()["documents"])
    got = client.get(doc["url"])
    assert got.status_code == 200 and got.data.startswith(b"%PDF-")
    assert client.get(f"/projects/{PID}/documents/{'0' * 64}.pdf").status_code == 404
    assert client.get(f"/projects/{PID}/documents/not-hex.pdf").status_code == 404
    listing = client.get("/projects").get_data(as_text=True)
    assert f'href="/projects/{PID}"' in listing


@pytest.mark.parametrize("url", ["/projects/KHONG", "/projects/a", "/projects/../etc",
                                 "/api/projects/%00", f"/api/projects/{PID}/parcels.geojson",
                                 f"/api/projects/{PID}/zoning_lots%00.geojson",
                                 "/api/projects/x" * 3])
def test_hostile_project_urls_are_clear_404s(site, url):
    client, _ = site
    r = client.get(url)
    assert r.status_code == 404, url
    if url.startswith("/api/"):
        assert r.get_json()["error"]["code"] in ("PROJECT-UNKNOWN", "PROJECT-LAYER-UNKNOWN",
                                                 "HTTP-404")


def test_the_lots_geojson_is_readable_by_geopandas(site, tmp_path):
    client, _ = site
    path = tmp_path / "lots.geojson"
    path.write_bytes(client.get(f"/api/projects/{PID}/zoning_lots.geojson").data)
    frame = gpd.read_file(path)
    assert frame.crs.to_epsg() == 4326 and len(frame) == 3


def test_the_parcel_sheet_shows_the_lot_and_the_road_on_one_page(site):
    client, _ = site
    page = client.get("/parcels/678/1/1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Quy hoạch xây dựng, đô thị" in html and "Quy hoạch phân khu đô thị Liên Nghĩa" in html
    assert "OM-01" in html and "GT-01" in html and "60 %" in html and "3–5" in html
    assert "2,4" in html  # the floor-area ratio, in Vietnamese numbers
    assert "Đường Thống Nhất (12,00 m)" in html and "lùi 4,00 m" in html
    pdf = client.get("/parcels/678/1/1.pdf")
    if pdf.status_code == 503:  # WeasyPrint without Pango on this machine
        pytest.skip("the server PDF needs Pango")
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf.data))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "OM-01" in text and "Thống Nhất" in text
