"""Public output by allow-list, everywhere (gisportal/outputs/privacy.py).

The district is a real commune cadastre as old cadastral software exports it: a zipped
Shapefile in TCVN3 without a .prj, lower-case field names (``shbando``, ``shthua``,
``mdsd``), the owner under a recognised name (``TenChu``, ``cmnd``), the columns that
leaked before (``tenchusdd``, ``namsinh``), personal data under names nobody could
foresee (``ghichu2`` holding people's names, ``x_1`` CCCD numbers, ``lienhe`` phone
numbers), and harmless columns (a note, an area, the survey year). It goes through
ingest and publish as a planner's file would; then every public route is read as an
anonymous resident would, and no personal value may appear in any answer — searched as
text in the body (tiles decoded and searched byte for byte, the export unzipped member
by member).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from urllib.parse import urlencode

import geopandas as gpd
import pytest
import shapely
from pyproj import Transformer

from gisportal.accounts import users
from gisportal.base.errors import UsageError
from gisportal.outputs import privacy
from gisportal.outputs.export import export_package
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from tests.conftest import DUC_TRONG_XY, parcel_grid, sign_in, write_shapefile_zip
from tests.test_tiles import _app, decode_mvt, tile_of

X0, Y0 = DUC_TRONG_XY
ROWS, COLS = 4, 6
N = ROWS * COLS
PW = "mật khẩu đủ dài"
TO_LONLAT = Transformer.from_crs(5899, 4326, always_xy=True)

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"]
GIVEN = ["Văn Hùng", "Thị Lan", "Đức Trọng", "Minh Tuấn", "Thị Hoa", "Quang Vinh"]
#: TenChu: the owner, a recognised column (alias of the model's owner field); some
#: K'Ho owners, as in Lạc Dương or Đam Rông.
OWNERS = [f"K' Brăng {['Ha', 'Tơ', 'Jơ'][i % 3]}" if i % 6 == 5
          else f"{FAMILY[i % 8]} {GIVEN[(i // 8) % 6]} {['Anh', 'Em'][i % 2]}" for i in range(N)]
#: tenchusdd: the co-owner, as cadastral software exports it (published before the fix).
CO_OWNERS = [f"Ka {['Điệp', 'Nhi', 'Hoa', 'Brơi'][i % 4]} Liêng" if i % 4 == 0
             else f"{FAMILY[(i + 3) % 8]} Thị {['Ánh', 'Bích', 'Châu', 'Gấm', 'Hạnh'][i % 5]}"
             for i in range(N)]
#: ghichu2: a "note" column someone filled with the names of the land users' heirs.
HEIRS = [f"{FAMILY[(i + 5) % 8]} {['Hữu', 'Văn', 'Thị'][i % 3]} "
         f"{['Phước', 'Khánh', 'Duyên', 'Thắng'][(i // 3) % 4]}" for i in range(N)]
#: namsinh: birth years, as a DBF number field.
BIRTH_YEARS = [1931 + (i * 7) % 60 for i in range(N)]
#: cmnd: old 9-digit identity card numbers (Lâm Đồng's start with 25).
CMND = [f"25{(i * 7919 + 1234567) % 10_000_000:07d}" for i in range(N)]
#: x_1: 12-digit CCCD numbers (Lâm Đồng is province 068) under a meaningless name.
CCCD = [f"068{1 if i % 2 else 0}{(i * 37 + 50) % 100:02d}{(i * 104729 + 13) % 1_000_000:06d}"
        for i in range(N)]
#: lienhe: the land users' phone numbers.
PHONES = [f"09{(i * 7331 + 1000000) % 100_000_000:08d}" for i in range(N)]
#: ghichu: a harmless note column — land-use words, hamlets, a street named after a man.
NOTES = ["Đất trồng lúa", "Thôn 3", "Đường Trần Phú", "Giáp suối Đạ R'Sal", "Đang đo lại",
         "Tổ 7, thị trấn Liên Nghĩa"]

#: Every value that must stay with staff.
SECRETS = [*OWNERS, *CO_OWNERS, *HEIRS, *CMND, *CCCD, *PHONES]
#: Columns whose names must not reach the public either.
WITHHELD_COLUMNS = ["TenChu", "tenchusdd", "namsinh", "cmnd", "ghichu2", "x_1", "lienhe"]
#: Birth years are searched as whole words (a coordinate or a map's generated element id
#: may contain their digits), column names too (SQLite's "sqlite_autoindex_…_1" holds
#: "x_1").
_YEAR_RE = re.compile("|".join(rf"(?<![\w.]){y}(?![\w.])" for y in sorted(set(BIRTH_YEARS))))
_COLUMN_RE = re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(map(re.escape, WITHHELD_COLUMNS))
                        + r")(?![A-Za-z0-9_])")


def cadastre() -> gpd.GeoDataFrame:
    """The commune cadastre as uploaded (upload order = feature id - 1)."""
    grid = parcel_grid(ROWS, COLS)
    return gpd.GeoDataFrame({
        "maxa": grid["MaXa"], "shbando": grid["SoTo"], "shthua": grid["SoThua"],
        "dientich": grid["DienTich"], "mdsd": grid["LoaiDat"],
        "TenChu": OWNERS, "cmnd": CMND, "tenchusdd": CO_OWNERS,
        "namsinh": BIRTH_YEARS, "ghichu2": HEIRS, "x_1": CCCD, "lienhe": PHONES,
        "ghichu": [NOTES[i % len(NOTES)] for i in range(N)],
        "dtpl": [round(400.0 + i * 12.5, 1) for i in range(N)],
        "nam_do": [2019] * N,
    }, geometry=grid.geometry.values, crs="EPSG:5899")


def leaks(body: str | bytes) -> list[str]:
    """The personal values and column names found in an answer body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    found = [s for s in SECRETS if s in text]
    found += _COLUMN_RE.findall(text) + _YEAR_RE.findall(text)
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """678 with the cadastre published (v1), then a second version with two parcels'
    land use changed published over it (v2), so comparisons have something to show."""
    tmp = tmp_path_factory.mktemp("privacy")
    home = tmp / "home"
    store = open_store(home, crs="EPSG:5899")
    frame = cadastre()
    path = write_shapefile_zip(frame, tmp / "thua_dat_xa.zip", encoding="tcvn3", prj=False)
    first = ingest_file(store, path, "parcels", "678", user="lan")
    store.publish(first.version.id, by="lan")
    changed = frame.copy()
    changed.loc[[0, 7], "mdsd"] = "CLN"
    path2 = write_shapefile_zip(changed, tmp / "thua_dat_xa_2.zip", encoding="tcvn3",
                                prj=False)
    second = ingest_file(store, path2, "parcels", "678", user="lan")
    store.publish(second.version.id, by="lan")
    store.close()
    return {"home": home, "report": first.report, "v1": first.version.id,
            "v2": second.version.id}


@pytest.fixture(scope="module")
def client(site):
    return _app(site["home"]).test_client()


def parcel_lonlat(row: int) -> tuple[float, float]:
    geom = cadastre().geometry.iloc[row]
    return TO_LONLAT.transform(geom.centroid.x, geom.centroid.y)


# --------------------------------------------------------------------------- reading


def test_reading_finds_the_personal_columns_by_name_and_by_value(site):
    report = site["report"]
    assert report.read["encoding"] == "tcvn3"
    fields = report.read["fields"]
    assert fields["mapped"]["owner"] == "TenChu" and fields["mapped"]["owner_id"] == "cmnd"
    assert fields["mapped"]["owner_birth"] == "namsinh"
    assert fields["mapped"]["sheet"] == "shbando" and fields["mapped"]["land_use"] == "mdsd"
    assert set(fields["personal_source"]) == set(WITHHELD_COLUMNS)
    suspected = fields["suspected_personal"]
    assert {c: s["pattern"] for c, s in suspected.items()} == {
        "ghichu2": "person_name", "x_1": "id_number", "lienhe": "phone"}
    assert all(s["share"] == 1.0 and s["sampled"] == N for s in suspected.values())
    findings = [f.to_dict() for f in report.findings if f.rule == "ATTR-PERSONAL-SUSPECTED"]
    assert [f["detail"]["column"] for f in findings] == ["ghichu2", "x_1", "lienhe"]
    assert all(f["severity"] == "warning" for f in findings)
    x_1 = findings[1]
    assert x_1["message"] == ("Cột 'x_1' có vẻ chứa thông tin cá nhân (số CMND/CCCD: 100% "
                              f"trong {N} giá trị đã xem). Cột này không được công bố; cán bộ "
                              "vẫn xem được. Nếu cột không chứa thông tin cá nhân, cán bộ có "
                              "thể xác nhận để công bố.")
    assert "withheld from the public; staff still see it" in x_1["message_en"]
    # The report names the columns, never their values.
    assert not leaks(json.dumps(findings, ensure_ascii=False).replace("x_1", "").replace(
        "ghichu2", "").replace("lienhe", ""))
    # The version keeps it: privacy refuses to publish them without a confirmation.
    with open_store(site["home"], crs="EPSG:5899") as store:
        meta = store.version(site["v1"]).meta
    assert set(meta["read"]["fields"]["personal_source"]) == set(WITHHELD_COLUMNS)
    assert "x_1" in meta["read"]["fields"]["suspected_personal"]


def test_allow_list_of_the_version(site):
    with open_store(site["home"], crs="EPSG:5899") as store:
        allowed = privacy.public_columns(store.version(site["v2"]))
    assert allowed.canonical == ("commune", "sheet", "parcel", "area_m2", "land_use",
                                 "address", "object_type")
    assert allowed.source == ()
    assert allowed.allows("sheet") and not allowed.allows("owner")
    assert not allowed.allows("owner_birth") and not allowed.allows("src:ghichu")
    assert not allowed.allows("src:shbando")  # the sheet field shows it


# --------------------------------------------------------------------------- every route


def test_no_personal_value_reaches_the_public_through_any_route(client, site):
    urls = ["/", "/districts/678", "/districts/678?lang=en", "/ogc", "/ogc/api",
            "/ogc/collections", "/ogc/collections/678-parcels",
            "/ogc/collections/678-parcels?f=html",
            "/ogc/collections/678-parcels/items?limit=1000",
            "/ogc/collections/678-parcels/items?limit=1000&f=html",
            "/ogc/collections/678-parcels/items?limit=1000"
            "&crs=http://www.opengis.net/def/crs/EPSG/0/5899",
            "/ogc/collections/678-parcels/items?sheet=2&parcel=3",
            "/api/compare?district=678&kind=parcels",
            f"/api/compare?district=678&kind=parcels&from={site['v1']}&to={site['v2']}",
            "/api/compare/summary?district=678&kind=parcels",
            "/districts/678/parcels/compare", "/api/openapi.json"]
    grid = cadastre()
    for row in range(N):
        sheet, parcel = int(grid["shbando"][row]), int(grid["shthua"][row])
        lon, lat = parcel_lonlat(row)
        cx, cy = grid.geometry.iloc[row].centroid.coords[0]
        urls += [f"/api/lookup?district=678&sheet={sheet}&parcel={parcel}",
                 f"/api/lookup?district=678&sheet={sheet}&parcel={parcel}&commune=24778",
                 f"/api/lookup?lat={lat}&lon={lon}",
                 f"/api/lookup?x={cy}&y={cx}",  # VN-2000: X = northing, Y = easting
                 f"/parcels/678/{sheet}/{parcel}",
                 "/api/search?" + urlencode({"q": f"tờ {sheet} thửa {parcel}",
                                             "district": "678"}),
                 "/api/search?" + urlencode({"q": f"{sheet}/{parcel}", "district": "678"}),
                 "/api/search?" + urlencode({"q": f"{lat}, {lon}"}),
                 "/api/search?" + urlencode({"q": f"{cy} {cx}"}),
                 f"/ogc/collections/678-parcels/items/{row + 1}",
                 f"/ogc/collections/678-parcels/items/{row + 1}?f=html"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.get_data(as_text=True)[:300])
        assert not leaks(response.get_data()), (url, leaks(response.get_data()))
    # The answers are real: the look-ups found their parcels, the comparison its changes.
    answer = client.get("/api/lookup?district=678&sheet=1&parcel=1").get_json()
    assert answer["parcel"]["current_use"] == "CLN" and answer["parcel"]["attributes"] == {}
    compare = client.get("/api/compare?district=678&kind=parcels").get_json()
    assert compare["summary"]["counts"]["use_changed"] == 2
    items = client.get("/ogc/collections/678-parcels/items?limit=1000").get_json()
    assert items["numberMatched"] == N
    assert set(items["features"][0]["properties"]) == {"commune", "sheet", "parcel", "area_m2",
                                                       "land_use", "address", "object_type"}


def _tiles_over_the_block(z: int) -> list[tuple[int, int]]:
    bounds = shapely.total_bounds(cadastre().geometry.values)
    (w, e), (s, n) = (TO_LONLAT.transform([bounds[0], bounds[2]], [bounds[1], bounds[3]]))
    x0, y0 = tile_of(w - 0.001, n + 0.001, z)
    x1, y1 = tile_of(e + 0.001, s - 0.001, z)
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


@pytest.mark.parametrize("z", [14, 16])
def test_tiles_carry_no_personal_value(client, z):
    features = 0
    for x, y in _tiles_over_the_block(z):
        r = client.get(f"/tiles/678/parcels/{z}/{x}/{y}.pbf", headers={"Accept-Encoding": "gzip"})
        assert r.status_code in (200, 204), r.get_data(as_text=True)
        if r.status_code == 204:
            continue
        raw = gzip.decompress(r.data)
        assert not leaks(raw), (z, x, y, leaks(raw))
        for layer in decode_mvt(raw).values():
            for feature in layer["features"]:
                assert set(feature["properties"]) <= {"commune", "sheet", "parcel",
                                                      "land_use", "area_m2", "fid"}
                features += 1
                assert not leaks(" ".join(map(str, feature["properties"].values())))
    assert features >= N  # every parcel was in some tile


def _members(zip_path) -> dict[str, bytes]:
    """Every member of the package, the zipped Shapefiles unpacked too."""
    out = {}
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            if name.endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(data)) as inner:
                    out.update({f"{name}/{n}": inner.read(n) for n in inner.namelist()})
            else:
                out[name] = data
    return out


def test_default_export_holds_only_public_columns(site, tmp_path):
    out = tmp_path / "678.zip"
    with open_store(site["home"], crs="EPSG:5899") as store:
        export_package(store, "678", out)
    members = _members(out)
    assert any(name.endswith(".dbf") for name in members)
    for name, data in members.items():
        # (QGIS's layer_styles table has a column named "owner": its definition is no data.)
        data = data.replace(b'"owner" TEXT(30)', b"")
        assert not leaks(data), (name, leaks(data))
        for text in (b"owner", b"ghichu", b"nam_do", b"dtpl"):  # unmarked: withheld too
            assert text not in data, (name, text)
    fields = members["fields.csv"].decode("utf-8-sig")
    assert "personal" in fields.splitlines()[0] and ",yes," not in fields


# --------------------------------------------------------------------------- marking public


@pytest.fixture
def marked(tmp_path):
    """A fresh district with the cadastre published, for tests that change its marks."""
    home = tmp_path / "home"
    with open_store(home, crs="EPSG:5899") as store:
        path = write_shapefile_zip(cadastre(), tmp_path / "xa.zip", encoding="tcvn3", prj=False)
        version = ingest_file(store, path, "parcels", "678", user="lan").version
        store.publish(version.id, by="lan")
    return home, version.id


def test_a_column_marked_public_shows_everywhere_public(marked, tmp_path):
    home, vid = marked
    client = _app(home).test_client()
    before = client.get("/ogc/collections/678-parcels/items?limit=2").get_json()
    assert "src:ghichu" not in before["features"][0]["properties"]
    with open_store(home, crs="EPSG:5899") as store:
        version = privacy.mark_public(store, vid, ["ghichu", "DTPL"], actor="lan")
    marks = version.meta["public_source"]
    assert marks["columns"] == ["ghichu", "dtpl"] and marks["by"] == "lan"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", marks["at"])
    answer = client.get("/api/lookup?district=678&sheet=1&parcel=3").get_json()
    assert answer["parcel"]["attributes"] == {"ghichu": "Đường Trần Phú", "dtpl": "425"}
    items = client.get("/ogc/collections/678-parcels/items?limit=2").get_json()
    props = items["features"][0]["properties"]
    assert list(props)[-2:] == ["src:ghichu", "src:dtpl"]  # upload order
    assert props["src:ghichu"] == "Đất trồng lúa"
    assert client.get("/ogc/collections/678-parcels/items?limit=1000&f=html").get_data(
        as_text=True).count("Giáp suối Đạ R&#39;Sal") == 4
    out = tmp_path / "marked.zip"
    with open_store(home, crs="EPSG:5899") as store:
        export_package(store, "678", out)
    members = _members(out)
    assert "Đường Trần Phú".encode() in members["678.gpkg"]
    for name, data in members.items():
        assert not leaks(data), (name, leaks(data))
    # Replacing the marks withdraws what is not named again.
    with open_store(home, crs="EPSG:5899") as store:
        version = privacy.mark_public(store, vid, ["dtpl"], actor="mai", replace=True)
    assert version.meta["public_source"]["columns"] == ["dtpl"]
    assert [h["by"] for h in version.meta["public_source"]["history"]] == ["lan", "mai"]
    answer = client.get("/api/lookup?district=678&sheet=1&parcel=3").get_json()
    assert answer["parcel"]["attributes"] == {"dtpl": "425"}


def test_marking_refuses_unknown_mapped_and_unconfirmed_personal_columns(marked):
    home, vid = marked
    with open_store(home, crs="EPSG:5899") as store:
        with pytest.raises(UsageError) as err:
            privacy.mark_public(store, vid, ["GhiChu3"], actor="lan")
        assert err.value.code == "PUBLIC-FIELD-UNKNOWN"
        assert "'GhiChu3'" in err.value.what and "ghichu, dtpl, nam_do" in err.value.fix
        with pytest.raises(UsageError) as err:
            privacy.mark_public(store, vid, ["shbando"], actor="lan")
        assert err.value.code == "PUBLIC-FIELD-MAPPED" and "shbando → sheet" in err.value.what
        for column in ("ghichu2", "x_1", "tenchusdd"):
            with pytest.raises(UsageError) as err:
                privacy.mark_public(store, vid, ["ghichu", column], actor="lan")
            assert err.value.code == "PUBLIC-FIELD-PERSONAL" and column in err.value.what
        assert "public_source" not in store.version(vid).meta  # nothing half-marked
        # x_1 checked by a planner: confirmed, it shows.
        version = privacy.mark_public(store, vid, ["x_1"], actor="lan", confirm_personal=True)
        assert version.meta["public_source"]["confirmed_personal"] == ["x_1"]
        assert privacy.public_columns(version).source == ("x_1",)
        status = {c.name: c for c in privacy.source_columns(store, version)}
    assert status["x_1"].public and status["x_1"].personal
    assert status["x_1"].suspected["pattern"] == "id_number"
    assert status["shbando"].field == "sheet" and not status["shbando"].public
    assert not status["ghichu"].personal and not status["ghichu"].public
    answer = _app(home).test_client().get("/api/lookup?district=678&sheet=1&parcel=1").get_json()
    assert answer["parcel"]["attributes"] == {"x_1": CCCD[0]}


# --------------------------------------------------------------------------- staff


@pytest.mark.parametrize("who,shown", [(None, False), ("mai", False), ("lan", True),
                                       ("boss", True)])
def test_staff_of_the_district_still_see_everything(site, fast_passwords, who, shown):
    home = site["home"]
    if not users.list_users(home):
        users.add_user(home, "boss", "admin", PW)
        users.add_user(home, "lan", "planner", PW, districts=["678"])
        users.add_user(home, "mai", "planner", PW, districts=["672"])
    client = _app(home).test_client()
    if who:
        assert sign_in(client, who, PW).status_code == 303
    lon, lat = parcel_lonlat(4)
    for url in ("/api/lookup?district=678&sheet=1&parcel=5", f"/api/lookup?lat={lat}&lon={lon}"):
        attributes = client.get(url).get_json()["parcel"]["attributes"]
        if shown:
            assert attributes["tenchusdd"] == CO_OWNERS[4] and attributes["x_1"] == CCCD[4]
            assert attributes["namsinh"] == str(BIRTH_YEARS[4])
            assert attributes["lienhe"] == PHONES[4] and attributes["ghichu2"] == HEIRS[4]
            assert attributes["TenChu"] == OWNERS[4] and attributes["ghichu"] == NOTES[4]
        else:
            assert attributes == {}
    page = client.get("/parcels/678/1/5").get_data(as_text=True)
    assert (HEIRS[4] in page) is shown and (CCCD[4] in page) is shown
    if not shown:
        assert not leaks(page)
