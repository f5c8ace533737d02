"""The printable parcel information sheet."""

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
    assert "ODT" in page and "CLN" in page and "50.0 %" in page
    assert "123/QĐ-UBND" in page
    assert "&lt;b&gt;Lâm Đồng&lt;/b&gt;" in page  # text, not markup
    assert "@page" in page and "size:A4" in page
    assert "Nguyễn Văn Hùng" not in page and "TenChu" not in page  # personal data hidden
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)


def test_sheet_in_english(client):
    page = client.get("/parcels/678/1/3?lang=en").get_data(as_text=True)
    assert "Parcel information sheet" in page and "Issued on" in page


@pytest.mark.parametrize("url,status", [
    ("/parcels/678/99/1", 404), ("/parcels/999/1/1", 400), ("/parcels/678/x/1", 400),
    ("/parcels/678/1/1?commune=00000", 404), ("/parcels/672/1/1", 404),
])
def test_bad_sheet_requests_get_a_page_not_a_500(client, url, status):
    r = client.get(url)
    assert r.status_code == status
    assert "text/html" in r.content_type


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
    assert "Xã Đức Trọng (24958)" in page
    assert "Thị trấn Liên Nghĩa, Huyện Đức Trọng" in page
    assert "Đơn vị hành chính hiện nay" in page


def test_sheet_without_a_known_former_commune_has_no_unit_rows(client):
    page = client.get("/parcels/678/1/3").get_data(as_text=True)
    assert "Đơn vị hành chính hiện nay" not in page
