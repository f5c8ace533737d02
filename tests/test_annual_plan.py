"""Annual land-use plans (kế hoạch sử dụng đất hằng năm): a layer kind with a year.

Files are shaped as district offices export them: DBF-truncated upper-case names with
no year column (the year is given for the whole file), Vietnamese names in TCVN3 with
no .cpg, an empty column; or a consolidated GeoPackage of several years in lower case.
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner

from gisportal.base.crs import to_lonlat
from gisportal.base.errors import GisportalError, InputError, UsageError
from gisportal.base.models import layer_model, match_fields
from gisportal.cli.main import cli
from gisportal.services import lookup as lk
from gisportal.services import workflow
from gisportal.services.ingest import check_file, ingest_file
from gisportal.web.app import create_app
from tests.conftest import DUC_TRONG_XY, publish_parcels_and_plan, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY
ROAD = "Đường giao thông nông thôn xã Liên Nghĩa"
SCHOOL = "Trường mầm non Hoa Sen"


@pytest.fixture
def home(backend, home):
    """The data home on the embedded backends, and once more (``production``) on
    PostgreSQL/PostGIS + S3, as the look-up suite runs (`tests.conftest.backend`)."""
    return home


def annual_2026() -> gpd.GeoDataFrame:
    """Two projects of the 2026 plan: a road over the block's south-west parcels and a
    school 300 m away where there is no parcel. No year column; an empty GHICHU."""
    return gpd.GeoDataFrame({
        "TEN_CT": [ROAD, SCHOOL],
        "MA_DA": ["DA-01", "DA-02"],
        "MLD": ["DGT", "DGD"],
        "DIENTICH": [1200.0, 10000.0],
        "SO_QD": ["456/QĐ-UBND", "456/QĐ-UBND"],
        "GHICHU": ["", ""],
    }, geometry=[shapely.box(X0 - 10, Y0 - 10, X0 + 30, Y0 + 20),
                 shapely.box(X0 + 300, Y0 + 300, X0 + 400, Y0 + 400)], crs="EPSG:5899")


@pytest.fixture
def zones_and_parcels(store, tmp_path, make_shapefile_zip):
    """Parcels 4×5 of 20 m × 25 m (sheet 1, parcels 1–10 in the first two rows) and the
    2021–2030 plan over them."""
    publish_parcels_and_plan(store, tmp_path, make_shapefile_zip())


@pytest.fixture
def annual_zip(tmp_path):
    """The 2026 file as an office sends it: TCVN3 DBF without .cpg, no year column."""
    return write_shapefile_zip(annual_2026(), tmp_path / "kh_sdd_2026.zip", encoding="tcvn3")


@pytest.fixture
def published(store, zones_and_parcels, annual_zip):
    res = ingest_file(store, annual_zip, "annual_plan", "678", year=2026, publish=True)
    assert res.published, res.not_published
    return res


# -- the model -----------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [
    ["NAM", "TEN_CT", "MA_DA", "MLD", "DIENTICH", "SO_QD", "MAXA"],
    ["nam_kh", "tenduan", "maduan", "maloaidat", "dt_kh", "soqd", "maxa"],
    ["NamKH", "TenCongTri", "MaDuAn", "LOAIDAT", "DienTich", "QUYETDINH", "MaXa"],
    ["NamKeHoach", "TEN_DUAN", "MA_DA", "KyHieuMucD", "DIENTICH", "SoQuyetDin", "MA_XA"],
    ["Năm kế hoạch", "Tên công trình", "Mã dự án", "Loại đất", "Diện tích", "Số QĐ", "Mã xã"],
])
def test_real_column_names_map_to_the_annual_plan_fields(columns):
    m = match_fields(layer_model("annual_plan"), columns)
    assert [m.mapped[f] for f in ("year", "name", "code", "land_use", "area_m2", "decision",
                                  "commune")] == columns
    assert m.unmapped_source == [] and m.personal_source == []


def test_the_model_requires_a_year_and_a_name_and_checks_land_use_codes():
    model = layer_model("annual_plan")
    assert model.geometry == "polygon"
    required = {f.name for f in model.fields if f.required}
    assert required == {"year", "name", "land_use"}
    assert model.field("land_use").type == "code"  # checked against the catalogue
    assert model.field("year").type == "int"
    assert (model.threshold("year_min"), model.threshold("year_max")) == (2021, 2035)
    assert model.personal_fields == ()


# -- ingest and publish --------------------------------------------------------------------


def test_a_file_without_years_takes_the_year_given_and_publishes(store, published):
    version, report = published.version, published.report
    assert version.kind == "annual_plan" and version.status == "published"
    assert report.summary()["errors"] == 0
    rules = {f.rule: f for f in report.findings}
    assert rules["ANNUAL-YEAR-GIVEN"].params == {"year": 2026, "count": 2}
    assert "ATTR-REQUIRED-MISSING" not in rules
    assert report.read["year_given"] == 2026
    assert report.read["encoding"] == "tcvn3"  # detected, no .cpg
    layer = store.read(version.id)
    assert list(layer["year"]) == [2026, 2026]
    assert list(layer["name"]) == [ROAD, SCHOOL]  # NFC Vietnamese from TCVN3 bytes
    assert list(layer["land_use"]) == ["DGT", "DGD"]
    # The empty column is kept as a source attribute, and maps to nothing.
    assert "src:GHICHU" in layer.columns
    # Tiles were built at publish: the district map's overlay is served.
    assert version.id in {v.id for v in store.versions("678", "annual_plan")}


def test_a_consolidated_file_of_several_years_keeps_each_year(store, zones_and_parcels,
                                                               tmp_path):
    frame = annual_2026().rename(columns={"TEN_CT": "tenduan", "MA_DA": "maduan",
                                          "MLD": "maloaidat", "DIENTICH": "dt_kh",
                                          "SO_QD": "soqd", "GHICHU": "ghichu"})
    frame.insert(0, "namkh", [2025, 2026])
    path = tmp_path / "ke_hoach.gpkg"
    frame.to_file(path, driver="GPKG")
    res = ingest_file(store, path, "annual_plan", "678", year=2026)
    assert res.report.summary()["errors"] == 0
    rules = {f.rule: f for f in res.report.findings}
    assert "ANNUAL-YEAR-GIVEN" not in rules  # every feature has its own year
    assert rules["ANNUAL-YEAR-DIFFERS"].params["years"] == "2025"
    assert list(store.read(res.version.id)["year"]) == [2025, 2026]


def test_a_file_without_years_and_no_year_given_cannot_be_published(store, zones_and_parcels,
                                                                     annual_zip):
    res = ingest_file(store, annual_zip, "annual_plan", "678", publish=True)
    assert not res.published and res.not_published.code == "STORE-HAS-ERRORS"
    missing = [f for f in res.report.findings if f.rule == "ATTR-REQUIRED-MISSING"]
    assert [f.params["field"] for f in missing] == ["year"]
    assert "NamKH" in missing[0].params["aliases"]


def test_years_out_of_range_are_errors_and_the_published_plan_stays(store, published,
                                                                     tmp_path):
    bad = annual_2026()
    bad.insert(0, "NAM", [26, 2026])  # a two-digit year
    path = write_shapefile_zip(bad, tmp_path / "sai.zip")
    res = ingest_file(store, path, "annual_plan", "678", publish=True)
    assert not res.published and res.version.status == "draft"
    found = [f for f in res.report.findings if f.rule == "ANNUAL-YEAR-RANGE"]
    assert len(found) == 1 and found[0].row == 0
    assert "2021–2035" in found[0].message("en") and "NAM" in found[0].message("vi")
    assert store.published("678", "annual_plan").id == published.version.id
    with pytest.raises(GisportalError) as err:
        workflow.publish(store, res.version.id, "t")
    assert err.value.code == "STORE-HAS-ERRORS"


@pytest.mark.parametrize("year,kind,code", [
    ("26", "annual_plan", "YEAR-INVALID"), ("2040", "annual_plan", "YEAR-INVALID"),
    ("năm 2026", "annual_plan", "YEAR-INVALID"), ("2026", "parcels", "YEAR-NOT-ANNUAL"),
])
def test_a_bad_year_option_is_refused_before_anything_is_stored(store, published, annual_zip,
                                                                 year, kind, code):
    before = store.versions("678")
    with pytest.raises(UsageError) as err:
        ingest_file(store, annual_zip, kind, "678", year=year, publish=True)
    assert err.value.code == code and err.value.where == "--year" and err.value.fix
    assert store.versions("678") == before


def test_a_file_without_geometry_is_a_clear_error_and_loses_nothing(store, published,
                                                                    tmp_path):
    path = tmp_path / "khong_hinh.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": None,
         "properties": {"NAM": 2026, "TEN_CT": ROAD, "MLD": "DGT"}}]}), encoding="utf-8")
    before = store.versions("678")
    with pytest.raises(InputError) as err:
        ingest_file(store, path, "annual_plan", "678", year=2026, publish=True)
    assert "no geometries" in err.value.what and err.value.fix
    assert store.versions("678") == before
    assert store.published("678", "annual_plan").id == published.version.id


def test_projects_may_overlap_but_not_leave_the_district(store, zones_and_parcels, tmp_path):
    """No overlap rule (a road crosses a residential project); TOPO-OUTSIDE-DISTRICT
    with a published outline."""
    store.publish(store.add_version("678", "boundary", gpd.GeoDataFrame(
        {"level": ["district"], "code": ["678"]},
        geometry=[shapely.box(X0 - 1000, Y0 - 1000, X0 + 1000, Y0 + 1000)], crs="EPSG:5899"),
        source_name="ranh_gioi.geojson", source_sha256="0" * 64, created_by="t").id, by="t")
    frame = annual_2026()
    frame.loc[1, "geometry"] = shapely.box(X0, Y0, X0 + 20, Y0 + 20)  # inside the road
    frame.loc[2] = [f"Khu dân cư {'A'}", "DA-03", "ONT", 5000.0, "456/QĐ-UBND", "",
                    shapely.box(X0 + 900, Y0, X0 + 1100, Y0 + 50)]
    path = tmp_path / "kh.gpkg"
    frame.to_file(path, driver="GPKG")
    checked = check_file(path, "annual_plan", district="678", store=store, year=2026)
    rules = [f.rule for f in checked.report.findings]
    assert "TOPO-OVERLAP" not in rules and "GEOM-DUPLICATE" not in rules
    outside = [f for f in checked.report.findings if f.rule == "TOPO-OUTSIDE-DISTRICT"]
    assert [f.row for f in outside] == [2]
    assert outside[0].params["area_m2"] == pytest.approx(5000.0)


# -- look-up -------------------------------------------------------------------------------


def test_a_parcel_inside_a_project_is_answered_with_it(store, published):
    ans = lk.lookup_key(store, "678", 1, 1)  # x 0–20, y 0–25: 400 m² of it in the road
    assert ans["annual_plans"] == [{
        "year": 2026, "name": ROAD, "code": "DA-01", "land_use": "DGT",
        "land_use_name": "Đất công trình giao thông",
        "land_use_name_en": ans["annual_plans"][0]["land_use_name_en"],
        "color": ans["annual_plans"][0]["color"],
        "area_m2": 1200.0, "area_computed_m2": 1200.0, "overlap_m2": 400.0, "share": 0.8,
        "decision": "456/QĐ-UBND"}]
    assert lk.lookup_key(store, "678", 1, 2)["annual_plans"][0]["share"] == 0.4
    # A parcel that only touches the road's edge, and one away from it: no project.
    assert lk.lookup_key(store, "678", 1, 3)["annual_plans"] == []
    assert lk.lookup_key(store, "678", 1, 5)["annual_plans"] == []


def test_a_point_without_parcel_gets_the_project_there(store, published):
    lon, lat = to_lonlat(X0 + 350, Y0 + 350)
    ans = lk.lookup_lonlat(store, lat, lon)
    assert ans["parcel"] is None and ans["reason"] == "no_parcel"
    assert [(p["year"], p["name"], p["overlap_m2"], p["share"])
            for p in ans["annual_plans"]] == [(2026, SCHOOL, None, None)]
    lon, lat = to_lonlat(X0 + 250, Y0 + 250)  # no parcel, no project
    assert lk.lookup_lonlat(store, lat, lon)["annual_plans"] == []
    assert lk.lookup_lonlat(store, 21.0, 105.8)["annual_plans"] == []  # outside districts


def test_without_an_annual_plan_the_answer_is_empty(store, zones_and_parcels):
    assert lk.lookup_key(store, "678", 1, 1)["annual_plans"] == []


def test_newest_year_first(store, zones_and_parcels, tmp_path):
    frame = annual_2026()
    frame.insert(0, "NAM", [2025, 2026])
    frame.loc[1, "geometry"] = shapely.box(X0, Y0, X0 + 10, Y0 + 10)
    path = tmp_path / "kh.gpkg"
    frame.to_file(path, driver="GPKG")
    assert ingest_file(store, path, "annual_plan", "678", publish=True).published
    years = [p["year"] for p in lk.lookup_key(store, "678", 1, 1)["annual_plans"]]
    assert years == [2026, 2025]


def test_the_annual_plan_costs_no_store_query_of_its_own(
        store, zones_and_parcels, annual_zip, backend, monkeypatch):
    """A published annual plan is read in the look-up's one `records_and_overlays`
    call (one statement on PostgreSQL), as the plan zones are: it adds no store call
    and no statement, and the call asks for it only once it is published."""
    calls: list[list[int]] = []
    statements: list[str] = []
    real = store.records_and_overlays

    def counted(version_id, **kwargs):
        calls.append([overlay[0] for overlay in kwargs.get("overlays") or ()])
        return real(version_id, **kwargs)

    monkeypatch.setattr(store, "records_and_overlays", counted)
    if backend == "production":  # (the embedded default is made of `records` calls)
        import psycopg

        monkeypatch.setattr(store, "records", lambda *a, **k: pytest.fail("a separate query"))

        execute = psycopg.Cursor.execute

        def statement(cursor, query, *args, **kwargs):
            statements.append(str(query))
            return execute(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", statement)

    def cost(ask) -> tuple[int, int]:
        ask()  # once to learn each version's layer facts
        calls.clear()
        statements.clear()
        ask()
        return len(calls), len(statements)

    lon, lat = to_lonlat(X0 + 350, Y0 + 350)
    asks = (lambda: lk.lookup_key(store, "678", 1, 1),
            lambda: lk.lookup_lonlat(store, lat, lon, "678"))
    before = [cost(ask) for ask in asks]
    assert all(c[0] == 1 for c in before)
    annual = ingest_file(store, annual_zip, "annual_plan", "678", year=2026, publish=True)
    assert annual.published
    assert [cost(ask) for ask in asks] == before
    assert all(annual.version.id in overlays for overlays in calls)
    if backend == "production":
        assert all(c[1] == 1 for c in before)


# -- the faces: HTTP, command line, sheet, map ---------------------------------------------


@pytest.fixture
def client(home, published):
    return create_app({"home": str(home)}).test_client()


def test_api_lookup_answers_annual_plans(client):
    body = client.get("/api/lookup?district=678&sheet=1&parcel=1").get_json()
    assert [(p["year"], p["name"], p["code"], p["land_use"], p["area_m2"], p["decision"])
            for p in body["annual_plans"]] == [(2026, ROAD, "DA-01", "DGT", 1200.0,
                                                "456/QĐ-UBND")]
    assert client.get("/api/lookup?district=678&sheet=1&parcel=5").get_json()[
        "annual_plans"] == []


def test_the_sheet_shows_the_project(client):
    page = client.get("/parcels/678/1/1").get_data(as_text=True)
    assert "Kế hoạch sử dụng đất năm 2026" in page and ROAD in page and "DA-01" in page
    assert "456/QĐ-UBND" in page and "80,0 %" in page
    english = client.get("/parcels/678/1/1?lang=en").get_data(as_text=True)
    assert "Annual land-use plan 2026" in english
    assert "Kế hoạch sử dụng đất năm" not in client.get("/parcels/678/1/5").get_data(
        as_text=True)


def test_the_district_map_overlays_the_annual_plan_as_tiles(client, published):
    page = client.get("/districts/678").get_data(as_text=True)
    assert "/tiles/678/annual_plan/{z}/{x}/{y}.pbf" in page
    assert ROAD not in page  # the layer goes out as tiles, never in the page
    lon, lat = to_lonlat(X0 + 10, Y0 + 5)  # in the road
    z = 15
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    tile = client.get(f"/tiles/678/annual_plan/{z}/{x}/{y}.pbf")
    assert tile.status_code == 200 and tile.data
    assert client.get("/tiles/678/annual_plan/15/0/0.pbf").status_code == 204
    # The overlay names the project under the pointer: its tooltip spec reaches the page.
    assert '"tooltips": {"annual_plan"' in page


def test_cli_ingest_with_year_and_lookup_output(home, zones_and_parcels, annual_zip):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, ["--home", str(home), *args], catch_exceptions=False)

    r = run("ingest", str(annual_zip), "--kind", "annual_plan", "--district", "678",
            "--year", "2026", "--publish")
    assert r.exit_code == 0, r.output
    assert "ANNUAL-YEAR-GIVEN" in r.output
    r = run("lookup", "--district", "678", "--sheet", "1", "--parcel", "1")
    assert r.exit_code == 0, r.output
    answer = json.loads(r.stdout)
    assert answer["annual_plans"][0]["name"] == ROAD
    r = run("ingest", str(annual_zip), "--kind", "annual_plan", "--district", "678",
            "--year", "26")
    assert r.exit_code != 0 and "--year" in r.output
    assert "Traceback" not in r.output


def test_export_and_ogc_carry_the_annual_plan(store, published, client, tmp_path):
    import zipfile

    import pyogrio

    from gisportal.outputs.export.package import export_package

    out = tmp_path / "duc_trong.zip"
    result = export_package(store, "678", out, kinds=["annual_plan"], national_names=True)
    assert [layer.version.kind for layer in result.layers] == ["annual_plan"]
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert "shapefile/annual_plan_678.zip" in names
        zf.extract("678.gpkg", tmp_path)
    table = pyogrio.read_dataframe(tmp_path / "678.gpkg", layer="annual_plan")
    assert {"NamKeHoach", "TenCongTrinh", "MaDuAn", "SoQuyetDinh"} <= set(table.columns)
    assert sorted(table["TenCongTrinh"]) == sorted([ROAD, SCHOOL])
    ids = [c["id"] for c in client.get("/ogc/collections?f=json").get_json()["collections"]]
    assert "678-annual_plan" in ids
    items = client.get("/ogc/collections/678-annual_plan/items?f=json").get_json()
    assert {f["properties"]["name"] for f in items["features"]} == {ROAD, SCHOOL}
