"""The parcel sheet's content and its PDF: corners in the survey zone, the map, the
address, a dense parcel, several planned uses, the PDF made on the server.

One home for the module (built once): Đức Trọng (678) with a 4 × 5 block of parcels of
Thị trấn Liên Nghĩa (today Xã Đức Trọng) whose parcel 1/8 is a ring of 3 000 vertices,
a plan of five land uses in strips across the block with its decision (and a signed
PDF), and a 2026 annual-plan project over parcel 1/8; Phan Thiết (593), surveyed on
TM-3 108°30′ (EPSG:9218), with parcels as its office exports them in that zone.
"""

from __future__ import annotations

import re
from io import BytesIO

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from gisportal.base import seeds
from gisportal.outputs.sheet.corners import MAX_CORNERS, corner_table
from gisportal.outputs.sheet.pdf import local_fetcher
from gisportal.outputs.sheet.svgmap import frame_around, map_svg, scale_length
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web.app import create_app
from tests.conftest import DUC_TRONG_XY, parcel_grid

X0, Y0 = DUC_TRONG_XY
LIEN_NGHIA = "24958"
DENSE = 3000
#: Sheet 1, parcel 8 (row 7 of the grid): the dense ring.
DENSE_ROW = 7
STRIPS = ["ODT", "CLN", "DGT", "LUC", "HNK"]
PROJECT = "Mở rộng đường Nguyễn Văn Cừ đoạn qua thị trấn Liên Nghĩa"
SHA = "ab" * 32
PHAN_THIET = (108.100, 10.930)
MUI_NE = "22915"


def dense_ring(bounds, n: int = DENSE) -> shapely.Polygon:
    """A near-circle of `n` vertices inside `bounds` with a 5 cm ripple."""
    x0, y0, x1, y1 = bounds
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2 - 0.5
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rr = r + 0.05 * np.sin(300 * t)
    return shapely.Polygon(np.column_stack([cx + rr * np.cos(t), cy + rr * np.sin(t)]))


def phan_thiet_grid() -> gpd.GeoDataFrame:
    """Parcels of Mũi Né in the office's own zone (EPSG:9218), sheet 7."""
    x0, y0 = Transformer.from_crs(4326, 9218, always_xy=True).transform(*PHAN_THIET)
    xs, ys = np.meshgrid(np.arange(3) * 23.7 + x0, np.arange(2) * 31.3 + y0)
    geoms = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 23.7, ys.ravel() + 31.3)
    return gpd.GeoDataFrame({"maxa": [MUI_NE] * 6, "sohieuto": [7] * 6,
                             "sothua": list(range(1, 7)), "loaidat": ["ONT"] * 6},
                            geometry=geoms, crs="EPSG:9218")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sheet")
    home = tmp / "home"
    store = open_store(home, crs="EPSG:5899")
    grid = parcel_grid(4, 5)
    grid["MaXa"] = LIEN_NGHIA
    grid["DiaChiThua"] = [f"Tổ dân phố {i % 3 + 1}, đường Thống Nhất" for i in range(len(grid))]
    grid.loc[DENSE_ROW, "geometry"] = dense_ring(grid.geometry.iloc[DENSE_ROW].bounds)
    grid.to_file(tmp / "parcels.gpkg", driver="GPKG")
    assert ingest_file(store, tmp / "parcels.gpkg", "parcels", "678", publish=True).published
    edges = X0 + np.linspace(35, 65, len(STRIPS) + 1)  # 6 m strips across parcels 3 and 8
    plan = gpd.GeoDataFrame({"MaLoaiDat": STRIPS},
                            geometry=[shapely.box(a, Y0 - 200, b, Y0 + 300)
                                      for a, b in zip(edges[:-1], edges[1:], strict=True)],
                            crs="EPSG:5899")
    plan.to_file(tmp / "plan.gpkg", driver="GPKG")
    assert ingest_file(store, tmp / "plan.gpkg", "plan", "678", publish=True, meta={
        "decision": {"number": "456/QĐ-UBND", "date": "2023-06-30",
                     "authority": "UBND tỉnh Lâm Đồng", "pdf_sha256": SHA}}).published
    b = grid.geometry.iloc[DENSE_ROW].bounds
    annual = gpd.GeoDataFrame({"TEN_CT": [PROJECT], "MA_DA": ["DA-07"], "MLD": ["DGT"],
                               "DIENTICH": [5400.0], "SO_QD": ["789/QĐ-UBND"]},
                              geometry=[shapely.box(b[0] - 30, b[1], b[2] + 30, b[1] + 8)],
                              crs="EPSG:5899")
    annual.to_file(tmp / "annual.gpkg", driver="GPKG")
    assert ingest_file(store, tmp / "annual.gpkg", "annual_plan", "678", year=2026,
                       publish=True).published
    phan_thiet_grid().to_file(tmp / "pt.gpkg", driver="GPKG")
    assert ingest_file(store, tmp / "pt.gpkg", "parcels", "593", publish=True).published
    store.close()
    return home


@pytest.fixture(scope="module")
def app(site):
    return create_app({"home": str(site)})


@pytest.fixture
def client(app):
    """A fresh client per test: ``?lang=en`` is remembered in a cookie."""
    return app.test_client()


def article(page: str) -> str:
    """The sheet itself (the site header around it is the portal's, not the sheet's)."""
    return page[page.index('<article class="gp-sheet"'):page.index("</article>")]


def visible(html: str) -> str:
    """The text a reader sees (tags, ids and classes left out)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def pdf_pages_and_text(data: bytes) -> tuple[int, str]:
    """Page count and text of a PDF (pypdf; else pdftotext; else skip)."""
    assert data.startswith(b"%PDF-")
    try:
        from pypdf import PdfReader
    except ImportError:
        import shutil
        import subprocess

        if not shutil.which("pdftotext"):
            pytest.skip("neither pypdf nor pdftotext to read the PDF's text")
        pages = len(re.findall(rb"/Type\s*/Page\b", data))
        text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data,
                              capture_output=True, check=True).stdout.decode()
        return pages, text
    reader = PdfReader(BytesIO(data))
    return len(reader.pages), "\n".join(p.extract_text() for p in reader.pages)


# -- the corner table --------------------------------------------------------------------


def test_corners_are_the_ring_in_order_with_surveyor_xy_and_edges():
    box = shapely.Polygon([(500000, 1300000), (500020, 1300000), (500020, 1300025),
                           (500000, 1300025), (500000, 1300000)])
    table = corner_table(box, "678")
    assert table.epsg == 5899 and table.total == 4 and not table.thinned
    assert [(c.number, c.x_north, c.y_east, round(c.edge_m, 6)) for c in table.corners] == [
        (1, 1300000, 500000, 20), (2, 1300000, 500020, 25), (3, 1300025, 500020, 20),
        (4, 1300025, 500000, 25)]


def test_a_district_of_the_other_zone_gets_its_own_coordinates(client):
    """Phan Thiết's parcels were surveyed on EPSG:9218: the sheet gives back the
    office's own numbers to the centimetre (stored on EPSG:5899 in between)."""
    page = client.get(f"/parcels/593/7/1?commune={MUI_NE}").get_data(as_text=True)
    assert "EPSG:9218" in page and "108°30′" in page
    src = phan_thiet_grid().geometry.iloc[0]
    rows = re.findall(r"<tr><td>(\d+)</td><td class=\"num\">([\d,]+)</td>"
                      r"<td class=\"num\">([\d,]+)</td><td class=\"num\">([\d,]+)</td>",
                      article(page))
    expected = np.asarray(src.exterior.coords)[:-1]
    assert len(rows) == 4
    for (_n, x, y, edge), (east, north) in zip(rows, expected, strict=True):
        assert float(x.replace(",", ".")) == pytest.approx(north, abs=0.006)  # X = northing
        assert float(y.replace(",", ".")) == pytest.approx(east, abs=0.006)
        assert edge in ("23,70", "31,30")
    assert "Phường Mũi Né" in page  # the former ward, named as on the certificate


def test_a_dense_parcel_lists_at_most_a_page_of_corners_and_says_so(client):
    page = article(client.get("/parcels/678/1/8").get_data(as_text=True))
    listed = re.findall(r"<tr><td>(\d+)</td><td class=\"num\">", page)
    assert 3 <= len(listed) <= MAX_CORNERS
    numbers = [int(n) for n in listed]
    assert numbers == sorted(numbers) and numbers[0] == 1 and numbers[-1] <= DENSE
    note = re.search(r'id="gp-thinned">([^<]+)<', page).group(1)
    assert "3.000 đỉnh" in note and f"{len(listed)} đỉnh chính" in note


def test_thinning_keeps_the_shape_and_the_vertex_numbers():
    ring = dense_ring((0, 0, 40, 40), 10_000)
    table = corner_table(shapely.affinity.translate(ring, 500000, 1300000), "678")
    assert table.thinned and table.total == 10_000
    assert 3 <= len(table.corners) <= MAX_CORNERS
    coords = np.asarray(ring.exterior.coords)[:-1] + [500000, 1300000]
    for c in table.corners:  # each listed point is that vertex of the full ring
        assert coords[c.number - 1] == pytest.approx([c.y_east, c.x_north])
    kept = shapely.Polygon([(c.y_east, c.x_north) for c in table.corners])
    assert kept.hausdorff_distance(shapely.Polygon(coords)) <= table.tolerance_m + 0.01


# -- the map ------------------------------------------------------------------------------


@pytest.mark.parametrize("span,length", [(40, 10), (68, 10), (100, 20), (300, 50),
                                         (1000, 200), (2500, 500), (9000, 2000)])
def test_scale_bar_is_a_round_length_under_a_quarter_of_the_map(span, length):
    assert scale_length(span) == length


def test_the_map_is_svg_with_zones_neighbours_scale_and_north(client):
    page = article(client.get("/parcels/678/1/3").get_data(as_text=True))
    svg = page[page.index("<svg"):page.index("</svg>")]
    cat = seeds.land_use_catalogue()
    for code in STRIPS:  # in official colours
        assert f'fill="{cat.color(code)}"' in svg
    assert sum(f">{code}</text>" in svg for code in STRIPS) >= 3  # labelled where room
    assert 'class="gp-map-parcel"' in svg and 'class="gp-north"' in svg
    assert ">B</text>" in svg  # Bắc
    assert re.search(r">\d+ m</text>", svg)  # the scale bar's length
    assert ">2</text>" in svg and ">4</text>" in svg  # neighbours' numbers
    assert "<script" not in svg and "<style" not in svg and " on" not in svg.lower()
    en = article(client.get("/parcels/678/1/3?lang=en").get_data(as_text=True))
    assert ">N</text>" in en


def test_the_map_escapes_codes_from_files():
    frame = frame_around((0, 0, 10, 10))
    from gisportal.outputs.sheet.svgmap import Zone

    svg = map_svg(frame, shapely.box(0, 0, 10, 10),
                  zones=[Zone(shapely.box(-50, -50, 50, 50), "<script>x</script>", "#fff")])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_the_dense_parcel_stays_a_small_page(client):
    page = client.get("/parcels/678/1/8").get_data(as_text=True)
    assert len(page) < 60_000


# -- what the sheet says -------------------------------------------------------------------


def test_the_sheet_says_what_the_issue_asks(client):
    page = article(client.get("/parcels/678/1/8").get_data(as_text=True))
    assert "Xã Đức Trọng" in page  # today's commune
    assert "Thị trấn Liên Nghĩa, Huyện Đức Trọng" in page  # as on older certificates
    assert "Tổ dân phố 2, đường Thống Nhất" in page  # the address (public canonical field)
    for code in STRIPS:
        assert f"<b>{code}</b>" in page
    assert re.search(r"\d+,\d m²</td><td class=\"num\">\d+,\d %", page)
    assert "Quyết định số <b>456/QĐ-UBND</b> ngày 30/06/2023 của UBND tỉnh Lâm Đồng" in page
    assert f'href="/planner/decisions/{SHA}.pdf"' in page
    assert PROJECT in page and "DA-07" in page
    assert re.search(r'id="gp-issued">\d\d/\d\d/20\d\d<', page)
    assert re.search(r"thửa đất phiên bản \d+, quy hoạch phiên bản \d+", page)


def test_no_english_on_the_vietnamese_sheet_and_no_vietnamese_labels_in_english(client):
    page = article(client.get("/parcels/678/1/8").get_data(as_text=True))
    assert 'class="alt"' not in page and "<small" not in page  # no English twin (tr2)
    vi = visible(page)
    for word in ("Parcel", "Area", "Decision", "Issued", "Corner", "Share", "Point", "Edge",
                 "version", "Download", "Back", "sheet", " of ", " by "):
        assert word not in vi, word
    en = visible(article(client.get("/parcels/678/1/8?lang=en").get_data(as_text=True)))
    for word in ("Ngày lập phiếu", "Diện tích", "Tọa độ", "Quyết định số", "phiên bản"):
        assert word not in en, word
    assert "Decision 456/QĐ-UBND of 30 Jun 2023 by UBND tỉnh Lâm Đồng" in en
    assert "Commune or ward (since 1 July 2025)" in en and "Edge (m)" in en


# -- the PDF ------------------------------------------------------------------------------


def test_the_pdf_is_one_page_with_the_sheets_content(client):
    r = client.get(f"/parcels/593/7/1.pdf?commune={MUI_NE}")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert "attachment" in r.headers["Content-Disposition"]
    pages, text = pdf_pages_and_text(r.data)
    assert pages == 1
    page = article(client.get(f"/parcels/593/7/1?commune={MUI_NE}").get_data(as_text=True))
    x = re.search(r'<td class="num">(\d{7},\d\d)</td>', page).group(1)
    assert x in text and "Phường Mũi Né" in text and "EPSG:9218" in text
    assert "Phiếu thông tin thửa đất" in text and "Ngày lập phiếu" in text
    assert re.search(r"Tờ bản đồ số / thửa đất số\s*7 / 1", text)


def test_the_dense_parcel_with_five_uses_and_a_project_is_still_one_pdf_page(client):
    r = client.get("/parcels/678/1/8.pdf")
    pages, text = pdf_pages_and_text(r.data)
    assert pages == 1
    assert "Xã Đức Trọng" in text and "456/QĐ-UBND" in text and "3.000" in text
    for code in STRIPS:
        assert code in text


def test_the_english_pdf(client):
    pages, text = pdf_pages_and_text(client.get("/parcels/678/1/3.pdf?lang=en").data)
    assert pages == 1 and "Parcel information sheet" in text and "Issued on" in text
    assert "Ngày lập phiếu" not in text


@pytest.mark.parametrize("url,status", [
    ("/parcels/678/99/1.pdf", 404), ("/parcels/999/1/1.pdf", 400),
    ("/parcels/678/x/1.pdf", 400), ("/parcels/678/1/1.pdf?commune=00000", 404),
])
def test_a_pdf_of_no_parcel_is_the_error_page(client, url, status):
    r = client.get(url)
    assert r.status_code == status and "text/html" in r.content_type
    assert "Traceback" not in r.get_data(as_text=True)


def test_the_pdf_renderer_loads_only_the_portals_static_files(tmp_path):
    """WeasyPrint asks its fetcher for every URL a page names: only data: and the
    portal's own /static files are answered, from the package folder."""
    from gisportal.web.app import create_app

    static = create_app({"home": str(tmp_path / "h")}).static_folder
    fetch = local_fetcher("http://portal.test/", static)
    css = fetch.fetch("http://portal.test/static/css/sheet.css")
    assert b"@page" in css.read() and css.content_type == "text/css"
    assert fetch.fetch("data:text/plain,ok").read() == b"ok"
    for url in ("http://example.com/static/css/sheet.css", "https://portal.test.evil/x.css",
                "http://portal.test/static/../web/app.py", "http://portal.test/api/units",
                "file:///etc/passwd", "http://portal.test/static/%2e%2e/web/app.py"):
        with pytest.raises(ValueError):
            fetch.fetch(url)
    assert len(fetch.refused) == 6


def test_a_pdf_makes_no_request_elsewhere(client, monkeypatch):
    """An address that names an outside image: the PDF is made, the image is not fetched."""
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("the PDF tried the network")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)
    r = client.get("/parcels/678/1/3.pdf")
    assert r.status_code == 200 and r.data.startswith(b"%PDF-")
