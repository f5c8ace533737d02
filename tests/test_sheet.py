"""The printable parcel information sheet: identity, planned uses, decision, units,
languages and errors (the corners, the map and the PDF: tests/test_sheet_content.py)."""

from __future__ import annotations

import re

import pytest

from gisportal.services.ingest import ingest_file
from gisportal.web.app import create_app
from tests.conftest import DUC_TRONG_XY, publish_parcels_and_plan

X0, Y0 = DUC_TRONG_XY


@pytest.fixture
def client(home, store, tmp_path, make_shapefile_zip):
    publish_parcels_and_plan(store, tmp_path, make_shapefile_zip(),
                             authority="UBND tỉnh <b>Lâm Đồng</b>")
    return create_app({"home": str(home)}).test_client()


def test_sheet_shows_identity_planned_uses_and_decision(client):
    r = client.get("/parcels/678/1/3")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "Phiếu thông tin thửa đất" in page and "Huyện Đức Trọng" in page
    assert "<b>ODT</b>" in page and "<b>CLN</b>" in page
    assert "250,0 m²" in page and "50,0 %" in page  # Vietnamese formats
    assert "123/QĐ-UBND" in page and "ngày 30/06/2023" in page
    assert "&lt;b&gt;Lâm Đồng&lt;/b&gt;" in page  # text, not markup
    assert '<link rel="stylesheet" href="/static/css/sheet.css">' in page
    css = client.get("/static/css/sheet.css").get_data(as_text=True)
    assert re.search(r"@page\s*{\s*size:\s*A4", css)
    assert 'href="/parcels/678/1/3.pdf"' in page  # the download of the same sheet
    assert "Nguyễn Văn Hùng" not in page and "TenChu" not in page  # personal data hidden
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)


def test_sheet_in_english(client):
    page = client.get("/parcels/678/1/3?lang=en").get_data(as_text=True)
    assert "Parcel information sheet" in page and "Issued on" in page
    assert "250.0 m²" in page and "50.0%" in page and "of 30 Jun 2023" in page
    assert 'href="/parcels/678/1/3.pdf?lang=en"' in page


@pytest.mark.parametrize("url,status", [
    ("/parcels/678/99/1", 404), ("/parcels/999/1/1", 400), ("/parcels/678/x/1", 400),
    ("/parcels/678/1/1?commune=00000", 404), ("/parcels/672/1/1", 404),
    ("/parcels/678/99/1.pdf", 404), ("/parcels/672/1/1.pdf", 404),
    ("/parcels/678/1/x.pdf", 400),
])
def test_bad_sheet_requests_get_a_page_not_a_500(client, url, status):
    r = client.get(url)
    assert r.status_code == status
    assert "text/html" in r.content_type
    page = r.get_data(as_text=True)
    assert "Traceback" not in page
    if status == 404:
        assert "Không tìm thấy" in page  # the portal's 404 page, Vietnamese first


def test_sheet_names_todays_commune_and_the_former_ones(home, store, tmp_path):
    """A parcel of Thị trấn Liên Nghĩa (24958): the sheet names today's commune (Xã Đức
    Trọng) and the former town and district its certificate may name; a parcel whose
    commune code is no former commune shows neither row (see the fixture's 24778 of Đà
    Lạt in Đức Trọng)."""
    from tests.conftest import parcel_grid, write_shapefile_zip

    grid = parcel_grid(1, 2)
    grid["MaXa"] = "24958"
    assert ingest_file(store, write_shapefile_zip(grid, tmp_path / "ln.zip"), "parcels",
                       "678", publish=True).published
    client = create_app({"home": str(home)}).test_client()
    page = client.get("/parcels/678/1/1").get_data(as_text=True)
    assert '<td id="gp-commune"><b>Xã Đức Trọng</b></td>' in page
    assert '<td id="gp-former">Thị trấn Liên Nghĩa, Huyện Đức Trọng</td>' in page
    assert "Xã, phường, đặc khu (từ 01/07/2025)" in page


def test_sheet_without_a_known_former_commune_has_no_unit_rows(client):
    """24778 is a commune of Đà Lạt in the fixture's Đức Trọng: no guess of today's
    unit, the code as the data has it and the plan's district."""
    page = client.get("/parcels/678/1/3").get_data(as_text=True)
    assert "Xã, phường, đặc khu (từ 01/07/2025)" not in page
    assert '<td id="gp-commune">24778</td>' in page
    assert '<td id="gp-former">Huyện Đức Trọng</td>' in page


def test_staff_see_the_source_attributes_on_screen_never_printed(home, client,
                                                                   fast_passwords):
    """The table of source attributes (owner's name included) is on a planner's screen
    only: not in a resident's sheet, hidden when printed, never in the PDF; and a
    planner's answers are not cached."""
    from gisportal.accounts import users
    from tests.conftest import sign_in
    from tests.test_sheet_content import pdf_pages_and_text

    assert "Nguyễn Văn Hùng" not in client.get("/parcels/678/1/1").get_data(as_text=True)
    users.add_user(home, "lan", "planner", "mật khẩu đủ dài", districts=["678"])
    assert sign_in(client, "lan", "mật khẩu đủ dài").status_code == 303
    r = client.get("/parcels/678/1/1")
    page = r.get_data(as_text=True)
    assert 'id="gp-attributes"' in page and "Nguyễn Văn Hùng" in page
    assert r.headers["Cache-Control"] == "private, no-store"
    assert '<section class="gp-screen-only">' in page
    css = client.get("/static/css/sheet.css").get_data(as_text=True)
    assert re.search(r"@media print\s*{[^}]*\.gp-screen-only", css)
    r = client.get("/parcels/678/1/1.pdf")
    assert r.headers["Cache-Control"] == "private, no-store"
    pages, text = pdf_pages_and_text(r.data)
    assert pages == 1 and "Nguyễn Văn Hùng" not in text and "TenChu" not in text


def test_a_plan_under_consultation_says_so(home, store, tmp_path, make_shapefile_zip):
    """A plan published for comment, without its decision: the sheet says it is a draft
    (in the reader's language), never "approved" nor a decision number."""
    import geopandas as gpd
    import shapely

    from gisportal.services import workflow

    assert ingest_file(store, make_shapefile_zip(), "parcels", "678", publish=True).published
    plan = gpd.GeoDataFrame({"MaLoaiDat": ["ODT"]},
                            geometry=[shapely.box(X0 - 500, Y0 - 500, X0 + 600, Y0 + 600)],
                            crs="EPSG:5899")
    plan.to_file(tmp_path / "draft.gpkg", driver="GPKG")
    assert ingest_file(store, tmp_path / "draft.gpkg", "plan", "678", publish=True,
                       consultation=True).published
    client = create_app({"home": str(home)}).test_client()
    page = client.get("/parcels/678/1/3").get_data(as_text=True)
    label = re.search(r'id="gp-consultation">([^<]+)<', page).group(1)
    assert label == workflow.CONSULTATION_LABEL["vi"]
    assert "Quyết định số" not in page and "100,0 %" in page
    english = client.get("/parcels/678/1/3?lang=en").get_data(as_text=True)
    assert workflow.CONSULTATION_LABEL["en"] in english


def test_without_a_pdf_engine_the_pdf_is_a_503_in_vietnamese(monkeypatch, tmp_path):
    """A server without WeasyPrint's Pango answers the PDF with a clear 503 (the page
    still prints from the browser), never a 500."""
    from gisportal.services.demo import build_demo
    from gisportal.store import open_store
    from gisportal.web import sheet
    from gisportal.web.app import create_app

    home = tmp_path / "home"
    with open_store(home, crs="EPSG:5899") as store:
        build_demo(store, parcels_per_district=30, districts=["678"])
        row = store.read(store.published("678", "parcels").id).iloc[0]

    def no_pango(*args, **kwargs):
        raise OSError("cannot load library 'libpango-1.0-0'")

    monkeypatch.setattr(sheet, "render_pdf", no_pango)
    client = create_app({"home": str(home)}).test_client()
    url = f"/parcels/678/{int(row['sheet'])}/{int(row['parcel'])}.pdf?commune={row['commune']}"
    resp = client.get(url)
    assert resp.status_code == 503
    page = resp.get_data(as_text=True)
    assert "Máy chủ chưa tạo được tệp PDF" in page and "Traceback" not in page
