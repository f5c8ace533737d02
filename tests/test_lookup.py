"""Parcel look-up by key, lat/lon and VN-2000 X/Y, with planned-use shares."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gisportal.base import seeds
from gisportal.base.crs import to_lonlat
from gisportal.base.errors import NotFoundError, UsageError
from gisportal.services import lookup as lk
from gisportal.services.ingest import ingest_file
from tests.conftest import DUC_TRONG_XY

X0, Y0 = DUC_TRONG_XY


@pytest.fixture
def home(backend, home):
    """The data home on the embedded backends, and once more (``production``) on
    PostgreSQL/PostGIS + S3 (`tests.conftest.backend`)."""
    return home


@pytest.fixture
def published(store, tmp_path, make_shapefile_zip):
    """Parcels 4×5 of 20 m × 25 m; plan: west 50 m ODT, east 50 m CLN (split mid-parcel)."""
    p = ingest_file(store, make_shapefile_zip(), "parcels", "678", publish=True)
    plan = gpd.GeoDataFrame({"MaLoaiDat": ["ODT", "CLN"], "MaVung": ["Z1", "Z2"]},
                            geometry=[shapely.box(X0 - 500, Y0 - 500, X0 + 50, Y0 + 600),
                                      shapely.box(X0 + 50, Y0 - 500, X0 + 600, Y0 + 600)],
                            crs="EPSG:5899")
    path = tmp_path / "plan.gpkg"
    plan.to_file(path, driver="GPKG")
    q = ingest_file(store, path, "plan", "678", publish=True,
                    meta={"decision": {"number": "123/QĐ-UBND", "date": "2023-06-30",
                                       "authority": "UBND tỉnh Lâm Đồng"}})
    assert p.published and q.published
    return p.version, q.version


def test_lookup_by_key_gives_planned_shares(store, published):
    parcels, plan = published
    # Parcel at column 2 (x 40–60 m) straddles the zone edge at 50 m: half ODT, half CLN.
    ans = lk.lookup_key(store, "678", 1, 3)
    assert ans["parcel"]["sheet"] == 1 and ans["parcel"]["parcel"] == 3
    assert ans["parcel"]["commune"] == "24778"
    assert ans["parcel"]["current_use"] == "ONT+CLN"
    assert ans["parcel"]["area_m2"] == 500.0
    shares = {p["code"]: p for p in ans["planned"]}
    assert set(shares) == {"ODT", "CLN"}
    assert shares["ODT"]["share"] == pytest.approx(0.5, abs=1e-3)
    assert shares["ODT"]["area_m2"] == pytest.approx(250.0, abs=0.1)
    assert ans["plan"]["decision"] == "123/QĐ-UBND"
    assert ans["plan"]["version"] == plan.id


def test_public_answers_hide_personal_fields(store, published):
    public = lk.lookup_key(store, "678", 1, 1)
    # An allow-list (gisportal.outputs.privacy): no uploaded column is public until a planner
    # marks one; those a canonical field took show as that field (sheet, parcel...).
    assert public["parcel"]["attributes"] == {}
    assert public["parcel"]["sheet"] == 1
    operator = lk.lookup_key(store, "678", 1, 1, public=False)
    assert operator["parcel"]["attributes"]["TenChu"] == "Nguyễn Văn Hùng"
    assert operator["parcel"]["attributes"]["SoTo"] == "1"


def test_lookup_by_lonlat_and_by_surveyor_xy_agree(store, published):
    ex, ny = X0 + 10, Y0 + 10  # inside parcel sheet 1, parcel 1
    lon, lat = to_lonlat(ex, ny)
    by_ll = lk.lookup_lonlat(store, lat, lon, "678")
    by_xy = lk.lookup_xy(store, ny, ex, "678")  # X = northing, Y = easting
    assert by_ll["parcel"]["parcel"] == by_xy["parcel"]["parcel"] == 1
    assert by_ll["planned"][0]["code"] == "ODT"
    # Without a district, the point still finds its parcel.
    assert lk.lookup_lonlat(store, lat, lon)["parcel"]["district"] == "678"


def test_point_outside_parcels_says_so_with_the_zone(store, published):
    parcels, plan = published
    lon, lat = to_lonlat(X0 + 300, Y0 + 300)  # inside plan zone CLN, no parcel
    for district in ("678", None):  # without a boundary layer, the plan finds the district
        ans = lk.lookup_lonlat(store, lat, lon, district)
        assert ans["parcel"] is None and ans["district"] == "678"
        assert ans["reason"] == "no_parcel"
        assert (ans["message"], ans["message_en"]) == ("Không có thửa đất tại điểm này",
                                                       "No parcel here")
        assert ans["planned"] == [{"code": "CLN", "name": "Đất trồng cây lâu năm",
                                   "name_en": "Perennial-crop land", "color": "#FFD2A0",
                                   "area_m2": None, "share": None}]
        assert ans["plan"]["decision"] == "123/QĐ-UBND" and ans["plan"]["version"] == plan.id
        assert ans["point"] == {"lat": pytest.approx(lat, abs=1e-7),
                                "lon": pytest.approx(lon, abs=1e-7)}
    # The same point by VN-2000 X/Y from a certificate.
    assert lk.lookup_xy(store, Y0 + 300, X0 + 300)["planned"][0]["code"] == "CLN"


@pytest.mark.parametrize("lat,lon", [("abc", "108"), ("95", "108"), ("nan", "108"),
                                     ("11.7", "inf"), ("", "")])
def test_bad_coordinates_are_usage_errors(store, published, lat, lon):
    with pytest.raises(UsageError):
        lk.lookup_lonlat(store, lat, lon)


def test_unknown_parcel_and_unpublished_district(store, published):
    with pytest.raises(NotFoundError) as e:
        lk.lookup_key(store, "678", 99, 99)
    assert "sheet 99" in e.value.what
    with pytest.raises(NotFoundError):
        lk.lookup_key(store, "672", 1, 1)
    with pytest.raises(UsageError):
        lk.lookup_key(store, "999", 1, 1)
    with pytest.raises(UsageError):
        lk.lookup_key(store, "678", "1a", 1)


def test_far_away_point_is_outside_every_district(store, published):
    ans = lk.lookup_lonlat(store, 21.0, 105.8)  # Hà Nội
    assert ans == {"parcel": None, "planned": [], "plan": None, "district": None,
                   "point": {"lat": 21.0, "lon": 105.8}, "reason": "outside_districts",
                   "message": "Điểm này nằm ngoài các huyện có dữ liệu trên cổng thông tin",
                   "message_en": "This point is outside every district published on the "
                                 "portal", "annual_plans": [], "zoning": [], "units": None}
    # A surveyor's X/Y far from the province: the same answer, not an error.
    assert lk.lookup_xy(store, 2_300_000, 500_000)["reason"] == "outside_districts"
    # Numbers that are not coordinates still are errors.
    with pytest.raises(UsageError):
        lk.lookup_lonlat(store, 91, 105.8)


def test_district_without_published_parcels_shows_its_plan(store, published):
    # Lạc Dương (672): boundary and plan published, parcels not yet (still digitising).
    from pyproj import Transformer

    from gisportal.base import seeds

    x, y = Transformer.from_crs(4326, 5899, always_xy=True).transform(
        *seeds.district("672").anchor_lonlat)
    store.publish(store.add_version("672", "boundary", gpd.GeoDataFrame(
        {"level": ["district"], "code": ["672"]},
        geometry=[shapely.box(x - 1000, y - 1000, x + 1000, y + 1000)], crs="EPSG:5899"),
        source_name="ranh_gioi.geojson", source_sha256="2" * 64, created_by="t").id, by="t")
    store.publish(store.add_version("672", "plan", gpd.GeoDataFrame(
        {"land_use": ["RSX"], "zone_id": ["Z1"]},
        geometry=[shapely.box(x - 1000, y - 1000, x + 1000, y + 1000)], crs="EPSG:5899"),
        source_name="quy_hoach.gpkg", source_sha256="3" * 64, created_by="t").id, by="t")
    ans = lk.lookup_xy(store, y + 10, x + 10)
    assert ans["parcel"] is None and ans["district"] == "672" and ans["reason"] == "no_parcel"
    assert [z["code"] for z in ans["planned"]] == ["RSX"]
    with pytest.raises(NotFoundError):  # a key look-up there names nothing that exists
        lk.lookup_key(store, "672", 1, 1)


def test_a_new_plan_version_shows_in_the_next_lookup(store, published, tmp_path):
    from gisportal.store import open_store

    parcels, plan = published
    # A new plan version: the whole area becomes DGT. Uploaded as a draft first (layer
    # files are written before any look-up opens them, see the report on in-process
    # GDAL writes), then published by another store, as the CLI would from another
    # process, while this one keeps serving.
    new_plan = gpd.GeoDataFrame({"MaLoaiDat": ["DGT"], "MaVung": ["Z9"]},
                                geometry=[shapely.box(X0 - 500, Y0 - 500, X0 + 600, Y0 + 600)],
                                crs="EPSG:5899")
    path = tmp_path / "plan2.gpkg"
    new_plan.to_file(path, driver="GPKG")
    draft = ingest_file(store, path, "plan", "678",
                        meta={"decision": {"number": "456/QĐ-UBND"}}).version
    before = lk.lookup_key(store, "678", 1, 3)
    assert before["plan"]["version"] == plan.id
    assert {p["code"] for p in before["planned"]} == {"ODT", "CLN"}
    with open_store(store.home, crs=store.crs) as other:
        other.publish(draft.id, by="planner")
    after = lk.lookup_key(store, "678", 1, 3)
    assert after["plan"]["version"] == draft.id != plan.id
    assert after["plan"]["decision"] == "456/QĐ-UBND"
    assert [(p["code"], p["share"]) for p in after["planned"]] == [("DGT", 1.0)]
    # Rolling back through this store shows the old plan again at once.
    store.publish(plan.id, by="planner")
    assert lk.lookup_key(store, "678", 1, 3)["plan"]["version"] == plan.id
    assert lk.lookup_lonlat(store, *reversed(to_lonlat(X0 + 50, Y0 + 30)), "678")[
        "plan"]["version"] == plan.id


def test_point_lookup_finds_the_district_by_its_boundary(store, published):
    outline = shapely.box(X0 - 100, Y0 - 100, X0 + 200, Y0 + 200)
    commune = shapely.box(X0 - 100, Y0 - 100, X0 + 1000, Y0 + 1000)  # wider than the district

    def boundary(levels, geoms, n):
        return store.add_version("678", "boundary", gpd.GeoDataFrame(
            {"level": levels, "code": ["678", "24778"][:len(levels)]},
            geometry=geoms, crs="EPSG:5899"),
            source_name=f"ranh_gioi_{n}.geojson", source_sha256=str(n) * 64, created_by="t")

    narrow = boundary(["district", "commune"], [outline, commune], 1)
    wider = boundary(["district"], [commune], 2)
    store.publish(narrow.id, by="t")
    lon, lat = to_lonlat(X0 + 10, Y0 + 10)
    assert lk.lookup_lonlat(store, lat, lon)["parcel"]["parcel"] == 1
    # Inside the commune only: the district outline decides, not the plan's extent.
    lon, lat = to_lonlat(X0 + 500, Y0 + 500)
    outside = lk.lookup_lonlat(store, lat, lon)
    assert (outside["parcel"], outside["district"], outside["reason"]) == (
        None, None, "outside_districts")
    # A boundary version that covers the point is used by the next look-up.
    store.publish(wider.id, by="t")
    assert lk.lookup_lonlat(store, lat, lon)["planned"][0]["code"] == "CLN"


def test_lookups_stay_off_the_bulk_read_path(store, published, monkeypatch):
    """`read` opens the layer through GDAL (milliseconds); look-ups must not call it."""
    lon, lat = to_lonlat(X0 + 10, Y0 + 10)
    lk.lookup_lonlat(store, lat, lon)  # may read a boundary once per version

    def no_read(*args, **kwargs):
        raise AssertionError("a look-up read a whole layer")

    monkeypatch.setattr(store, "read", no_read)
    assert lk.lookup_key(store, "678", 1, 3)["planned"]
    assert lk.lookup_lonlat(store, lat, lon)["parcel"]["parcel"] == 1
    assert lk.lookup_xy(store, Y0 + 10, X0 + 10, "678")["parcel"]["parcel"] == 1
    far_lon, far_lat = to_lonlat(X0 + 300, Y0 + 300)
    assert lk.lookup_lonlat(store, far_lat, far_lon, "678")["parcel"] is None


def test_a_lookup_asks_the_catalogue_once_whatever_the_number_of_districts(
        store, published, backend, monkeypatch):
    """Which versions are published is one `published_snapshot` per look-up, never a
    `published` per district and layer: with the twelve districts of the province each
    holding a boundary, every kind of look-up sends one statement to PostgreSQL (the
    parcel, the plan zones over it and the token that confirms the snapshot, together)."""
    from pyproj import Transformer

    from gisportal.base import seeds

    to_xy = Transformer.from_crs(4326, 5899, always_xy=True).transform
    for n, unit in enumerate(seeds.districts()):
        x, y = (X0, Y0) if unit.code == "678" else to_xy(*unit.anchor_lonlat)
        store.publish(store.add_version(unit.code, "boundary", gpd.GeoDataFrame(
            {"level": ["district"], "code": [unit.code]},
            geometry=[shapely.box(x - 500, y - 500, x + 600, y + 600)], crs="EPSG:5899"),
            source_name="ranh_gioi.geojson", source_sha256=f"{n:064d}",
            created_by="t").id, by="t")
    assert len(store.published_versions()) == len(seeds.districts()) + 2
    lon, lat = to_lonlat(X0 + 50, Y0 + 30)  # sheet 1, parcel 8: half ODT, half CLN
    lookups = {
        "key": lambda: lk.lookup_key(store, "678", 1, 8),
        "point in a district": lambda: lk.lookup_lonlat(store, lat, lon, "678"),
        "point": lambda: lk.lookup_lonlat(store, lat, lon),
        "surveyor point": lambda: lk.lookup_xy(store, Y0 + 30, X0 + 50),
    }
    for ask in lookups.values():  # once to learn each version's layer facts and outline
        assert ask()["parcel"]["parcel"] == 8

    snapshots: list[str | None] = []
    statements: list[str] = []
    real = store.published_snapshot

    def published_snapshot(district=None):
        snapshots.append(district)
        return real(district)

    def one_by_one(*args, **kwargs):
        raise AssertionError("a look-up asked the catalogue layer by layer")

    monkeypatch.setattr(store, "published_snapshot", published_snapshot)
    monkeypatch.setattr(store, "published", one_by_one)
    monkeypatch.setattr(store, "districts", one_by_one)
    if backend == "production":
        import psycopg

        execute = psycopg.Cursor.execute

        def counted(cursor, query, *args, **kwargs):
            statements.append(str(query))
            return execute(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    for name, ask in lookups.items():
        snapshots.clear()
        statements.clear()
        answer = ask()
        assert answer["parcel"]["district"] == "678" and answer["parcel"]["parcel"] == 8
        assert {p["code"] for p in answer["planned"]} == {"ODT", "CLN"}, name
        assert snapshots == ["678" if "district" in name or name == "key" else None], name
        if backend == "production":
            assert len(statements) == 1, (name, statements)


# -- today's units (issue 13): the answer names today's commune and the former ones ------


def test_units_name_todays_ward_and_the_former_ward_and_city():
    from gisportal.services.lookup import units_of

    assert units_of("24778", "672") == {
        "current": {"code": "24778", "name": "Phường Lâm Viên - Đà Lạt", "level": "ward"},
        "former": [{"code": "24778", "name": "Phường 9", "level": "ward"},
                   {"code": "672", "name": "Thành phố Đà Lạt", "level": "district"}]}


def test_units_of_a_commune_of_cat_tien_name_both_former_districts():
    """Cát Tiên (683) merged into Đạ Huoai (682) on 2025-01-01, then the district level
    ended: a certificate may name either district."""
    from gisportal.services.lookup import units_of

    answer = units_of("25180", "683")
    assert answer["current"] == {"code": "25180", "name": "Xã Cát Tiên 2",
                                 "level": "commune"}
    assert answer["former"] == [
        {"code": "25180", "name": "Thị trấn Phước Cát", "level": "township"},
        {"code": "682", "name": "Huyện Đạ Huoai", "level": "district"},
        {"code": "683", "name": "Huyện Cát Tiên", "level": "district"}]


def test_units_of_a_commune_of_da_teh_name_the_district_on_its_certificate():
    """Đạ Tẻh was code 682 until 2025-01-01; the merged Đạ Huoai took that code. A parcel
    of the plans' district 682 names both districts, by name; one of the plans' Đạ Huoai
    (681) names Đạ Huoai once, the name being the same before and after the merge."""
    from gisportal.services.lookup import units_of

    assert units_of("25126", "682")["former"] == [
        {"code": "25126", "name": "Thị trấn Đạ Tẻh", "level": "township"},
        {"code": "682", "name": "Huyện Đạ Huoai", "level": "district"},
        {"code": "682", "name": "Huyện Đạ Tẻh", "level": "district"}]
    assert [u["name"] for u in units_of("25096", "681")["former"]] == [
        "Thị trấn Đạ M'ri", "Huyện Đạ Huoai"]


def test_units_say_nothing_for_an_unknown_or_foreign_commune_and_offer_both_of_a_split():
    from gisportal.base import seeds
    from gisportal.services.lookup import units_of

    assert units_of("67801", "678") is None  # the demo's synthetic code
    assert units_of(None, "678") is None
    assert units_of("24778", "678") is None  # Phường 9 of Đà Lạt is not in Đức Trọng
    split = next(p for p in seeds.lineage() if p.share == "partial")
    answer = units_of(split.code, split.district)
    assert answer["current"] is None
    assert {u["code"] for u in answer["current_options"]} == {
        u.code for u in seeds.current_units_of_former(split.code)}


def test_a_parcel_of_lien_nghia_is_answered_with_todays_commune(store, tmp_path):
    """A cadastre of Đức Trọng whose commune code is Thị trấn Liên Nghĩa's (24958): the
    answer names today's unit and the former town and district, on both backends."""
    from tests.conftest import parcel_grid, write_shapefile_zip

    grid = parcel_grid(1, 2)
    grid["MaXa"] = "24958"
    ingest_file(store, write_shapefile_zip(grid, tmp_path / "lien_nghia.zip"), "parcels",
                "678", publish=True)
    units = lk.lookup_key(store, "678", 1, 1)["units"]
    (current,) = (u for u in seeds.current_units_of_former("24958"))
    assert units["current"] == {"code": current.code, "name": current.name,
                                "level": current.level}
    assert units["former"] == [
        {"code": "24958", "name": "Thị trấn Liên Nghĩa", "level": "township"},
        {"code": "678", "name": "Huyện Đức Trọng", "level": "district"}]
