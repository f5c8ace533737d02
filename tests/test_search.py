"""The resident's search box: gisportal.services.search.search() and GET /api/search."""

from __future__ import annotations

import pytest
import shapely

from gisportal.base.crs import from_lonlat
from gisportal.base.errors import NotFoundError, UsageError
from gisportal.base.text import fold
from gisportal.services import lookup as lk
from gisportal.services.demo import build_demo
from gisportal.services.search import MAX_PLACES, search
from gisportal.store import open_store
from gisportal.web.app import create_app


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """District 678 of the demo province: 200 parcels, plan, boundary with named communes."""
    home = tmp_path_factory.mktemp("search-home")
    store = open_store(home, crs="EPSG:5899")
    build_demo(store, parcels_per_district=200, districts=["678"])
    parcels = store.read(store.published("678", "parcels").id)
    yield home, store, parcels
    store.close()


@pytest.fixture(scope="module")
def client(demo):
    home = demo[0]
    app = create_app({"home": str(home)})
    app.config["TESTING"] = True
    return app.test_client()


def _key(ans):
    p = ans["parcel"]
    return p["commune"], p["sheet"], p["parcel"]


def _unique_parcel(parcels):
    counts = parcels.groupby(["sheet", "parcel"]).size()
    sheet, parcel = counts[counts == 1].index[0]
    return int(sheet), int(parcel)


# ------------------------------------------------------------------------- places


def test_district_name_without_diacritics(demo):
    _, store, _ = demo
    ans = search(store, "duc trong", None)
    assert ans["kind"] == "places"
    first = ans["places"][0]
    assert (first["level"], first["code"], first["name"]) == ("district", "678", "Huyện Đức Trọng")
    w, s, e, n = first["bbox"]
    assert 107 < w < e < 109 and 11 < s < n < 12.5  # WGS 84 lon/lat, not metres


def test_place_names_fold_case_and_accents(demo):
    _, store, _ = demo
    for q in ("Đà Lạt", "da lat", "ĐÀ  LẠT"):
        places = search(store, q, "678")["places"]
        assert places[0]["code"] == "672" and places[0]["level"] == "district"


def test_commune_name_without_diacritics(demo):
    _, store, _ = demo
    places = search(store, "lien nghia", "678")["places"]
    assert places[0] == {**places[0], "level": "commune", "code": "24958",
                         "name": "Thị trấn Liên Nghĩa", "district": "678"}
    w, s, e, n = places[0]["bbox"]
    assert w < e and s < n
    assert search(store, "Thị trấn Liên Nghĩa", "678")["places"][0]["code"] == "24958"


def test_places_best_first_and_capped(demo):
    _, store, _ = demo
    places = search(store, "xa", "678")["places"]
    assert 0 < len(places) <= MAX_PLACES
    # "duc": the district (prefix of "duc trong") comes before the communes that merely
    # contain it; every answer contains the query, in its name or, for today's unit
    # found by a former commune, in that commune's name.
    places = search(store, "duc", "678")["places"]
    assert places[0]["code"] == "678"
    assert all("duc" in fold(p["name"]) or "duc" in fold(p["former"]["name"])
               for p in places)
    # Exact short name first: "Hiệp An", not "Hiệp Thạnh" or others.
    assert search(store, "hiep an", "678")["places"][0]["name"] == "Xã Hiệp An"


def test_nothing_found_is_an_empty_list(demo):
    _, store, _ = demo
    assert search(store, "khong co noi nay", "678") == {"kind": "places", "places": [],
                                                        "parcels": [], "projects": []}


# ------------------------------------------------------------------------- parcels


@pytest.mark.parametrize("q", ["1/3 Liên Nghĩa", "tờ 1 thửa 3 Liên Nghĩa", "to 1 thua 3 lien nghia",
                               "Tờ 1, thửa 3, Thị trấn Liên Nghĩa", "1 3 24958",
                               "Liên Nghĩa, tờ 1 thửa 3"])
def test_sheet_and_parcel_forms(demo, q):
    _, store, _ = demo
    ans = search(store, q, "678")
    assert ans["kind"] == "parcel"
    assert _key(ans["result"]) == ("24958", 1, 3)
    assert ans["result"] == lk.lookup_key(store, "678", 1, 3, "24958")


def test_sheet_and_parcel_without_commune(demo):
    _, store, parcels = demo
    sheet, parcel = _unique_parcel(parcels)
    for q in (f"{sheet}/{parcel}", f"{sheet} {parcel}", f"tờ {sheet} thửa {parcel}"):
        ans = search(store, q, "678")
        assert ans["kind"] == "parcel"
        assert _key(ans["result"])[1:] == (sheet, parcel)


def test_a_sheet_and_parcel_several_communes_share_lists_them_to_choose(demo):
    """The commonest search, tờ + thửa without the commune, where several communes of
    the district have that number: the parcels to choose from, not an error."""
    _, store, parcels = demo
    want = parcels[(parcels["sheet"] == 1) & (parcels["parcel"] == 3)]
    assert len(want) > 1
    ans = search(store, "tờ 1 thửa 3", "678")
    assert ans["kind"] == "choices" and (ans["sheet"], ans["parcel"]) == (1, 3)
    choices = ans["choices"]
    assert sorted(c["commune"] for c in choices) == sorted(want["commune"])
    liên_nghĩa = next(c for c in choices if c["commune"] == "24958")
    assert liên_nghĩa["commune_name"] == "Thị trấn Liên Nghĩa"
    assert liên_nghĩa["unit_today"]  # the former town is in one of today's communes
    for c in choices:  # each one opens as the look-up of its key
        one = lk.lookup_key(store, "678", 1, 3, c["commune"])
        assert c["point"] == one["parcel"]["point"]
        assert c["address"] == one["parcel"]["attributes"].get("DiaChiThua", c["address"])
        assert "owner" not in c and "TenChu" not in str(c)  # nothing personal


def test_sheet_and_parcel_errors(demo):
    _, store, _ = demo
    with pytest.raises(UsageError, match="needs a district"):
        search(store, "1/3", None)
    with pytest.raises(UsageError, match="no commune"):
        search(store, "1/3 Không Có Xã", "678")
    with pytest.raises(NotFoundError):
        search(store, "tờ 999 thửa 999 Liên Nghĩa", "678")


# ------------------------------------------------------------------------- coordinates


@pytest.fixture(scope="module")
def a_parcel(demo):
    _, store, parcels = demo
    row = parcels.iloc[10]
    pt = shapely.point_on_surface(row.geometry)
    ans = lk.lookup_xy(store, pt.y, pt.x, "678")  # surveyor X = northing
    return (row["commune"], int(row["sheet"]), int(row["parcel"])), pt, ans


def test_lat_lon(demo, a_parcel):
    _, store, _ = demo
    key, _, ans = a_parcel
    lat, lon = ans["parcel"]["point"]["lat"], ans["parcel"]["point"]["lon"]
    comma = f"{lat} {lon}".replace(".", ",")  # Vietnamese decimal commas
    for q in (f"{lat}, {lon}", f"{lat} {lon}", f"{lon}, {lat}", comma):
        got = search(store, q, "678")
        assert got["kind"] == "latlon"
        assert _key(got["result"]) == key
    assert _key(search(store, f"{lat},{lon}", None)["result"]) == key  # district found


def test_surveyor_x_is_northing(demo, a_parcel):
    _, store, _ = demo
    key, pt, _ = a_parcel
    got = search(store, f"{pt.y:.2f} {pt.x:.2f}", "678")  # X (northing) first
    assert got["kind"] == "xy" and got["x"] == pytest.approx(pt.y, abs=0.01)
    assert not got["swapped"] and _key(got["result"]) == key
    got = search(store, f"{pt.y:.2f}, {pt.x:.2f}", None)
    assert _key(got["result"]) == key
    # Typed Y X: a northing is always larger than a TM-3 easting in Vietnam, so it is put right.
    got = search(store, f"{pt.x:.2f} {pt.y:.2f}", "678")
    assert got["swapped"] and _key(got["result"]) == key


def test_point_without_parcel(demo):
    _, store, _ = demo
    b = store.read(store.published("678", "boundary").id)
    parcels = store.read(store.published("678", "parcels").id)
    empty = b[b["level"] == "district"].geometry.iloc[0].representative_point()
    assert not parcels.intersects(empty).any()
    got = search(store, f"{empty.y:.1f} {empty.x:.1f}", "678")
    assert got["kind"] == "xy" and got["result"]["parcel"] is None
    ex, ny = from_lonlat(got["point"]["lon"], got["point"]["lat"])
    assert (ex, ny) == pytest.approx((empty.x, empty.y), abs=0.5)


# ------------------------------------------------------------------------- bad queries


@pytest.mark.parametrize("q", ["", "   ", "x", "12", "1294512.3 12.5", "12.5.3", "a" * 201,
                               "91.5, 200.5", "tờ 12"])
def test_bad_queries_are_usage_errors(demo, q):
    _, store, _ = demo
    with pytest.raises(UsageError) as err:
        search(store, q, "678")
    assert err.value.fix


def test_bad_district_is_a_usage_error(demo):
    _, store, _ = demo
    with pytest.raises(UsageError):
        search(store, "duc trong", "not-a-code")


def test_an_address_finds_the_parcels_that_have_it(demo):
    _, store, parcels = demo
    address = parcels["address"].dropna().iloc[7]
    ans = search(store, fold(address), "678")
    assert ans["kind"] == "places" and ans["parcels"]
    assert all(fold(address) in fold(p["address"]) for p in ans["parcels"])
    first = ans["parcels"][0]
    row = parcels[(parcels["commune"] == first["commune"]) & (parcels["sheet"] == first["sheet"])
                  & (parcels["parcel"] == first["parcel"])]
    assert len(row) == 1 and fold(address) in fold(row["address"].iloc[0])
    # Searched from the province page (no district): addresses are a district's search.
    assert search(store, fold(address), None)["parcels"] == []


def test_a_personal_column_is_never_searched(demo):
    """Only the parcel's address is searched: text found only in a personal column (the
    land user's name or address, not on the allow-list) finds no parcel."""
    _, store, parcels = demo
    addresses = parcels["address"].fillna("").map(fold)
    personal = [v for column in ("owner", "owner_address") for v in parcels[column].dropna()
                if not addresses.str.contains(fold(v), regex=False).any()]
    assert personal
    for text in personal[:5]:
        assert search(store, text, "678")["parcels"] == [], text


def test_a_project_or_plan_area_name_finds_it(demo):
    _, store, _ = demo
    projects = store.read(store.published("678", "annual_plan").id)
    name, code = projects["name"].iloc[1], projects["code"].iloc[1]
    for q in (name, fold(name), code):
        found = search(store, q, "678")["projects"]
        assert any(p["name"] == name and p["code"] == code and p["year"] == 2026
                   and p["kind"] == "annual_plan" and p["district"] == "678"
                   and len(p["bbox"]) == 4 for p in found), q
    # From the province page too: these layers are small.
    assert any(p["name"] == name for p in search(store, name, None)["projects"])


def test_a_point_of_another_district_answers_where_it_is(two_districts):
    """A point searched from Đức Trọng's page that lies in Di Linh answers Di Linh's
    parcel (the page then links there), in lat/lon and in X/Y alike."""
    store = two_districts
    other = store.read(store.published("679", "parcels").id)
    pt = shapely.point_on_surface(other.geometry.iloc[5])
    lon, lat = lk.vncrs.to_lonlat(pt.x, pt.y)
    got = search(store, f"{lat:.7f}, {lon:.7f}", "678")
    assert got["result"]["parcel"]["district"] == "679"
    got = search(store, f"{pt.y:.2f} {pt.x:.2f}", "678")
    assert got["result"]["parcel"]["district"] == "679"
    assert got["result"]["zone"]["chosen"] == "district"


@pytest.fixture(scope="module")
def two_districts(tmp_path_factory):
    home = tmp_path_factory.mktemp("search-two")
    store = open_store(home, crs="EPSG:5899")
    build_demo(store, parcels_per_district=100, districts=["678", "679"])
    yield store
    store.close()


# ------------------------------------------------------------------------- HTTP


def test_api_search(client, a_parcel):
    key, pt, ans = a_parcel
    r = client.get("/api/search", query_string={"q": "duc trong"})
    assert r.status_code == 200 and r.json["places"][0]["code"] == "678"
    r = client.get("/api/search", query_string={"q": "tờ 1 thửa 3 Liên Nghĩa", "district": "678"})
    assert r.status_code == 200 and r.json["kind"] == "parcel"
    assert r.json["result"]["parcel"]["sheet"] == 1
    assert "TenChu" not in r.json["result"]["parcel"]["attributes"]  # personal field hidden
    r = client.get("/api/search", query_string={"q": f"{pt.y:.2f} {pt.x:.2f}"})
    assert r.status_code == 200 and r.json["kind"] == "xy"
    assert r.json["result"]["parcel"]["parcel"] == key[2]


def test_api_search_errors(client):
    r = client.get("/api/search")
    assert r.status_code == 400 and r.json["error"]["fix"]
    r = client.get("/api/search", query_string={"q": "1/3"})
    assert r.status_code == 400 and "district" in r.json["error"]["message"]
    r = client.get("/api/search", query_string={"q": "tờ 999 thửa 999", "district": "678"})
    assert r.status_code == 404
    r = client.get("/api/search", query_string={"q": "1/3", "district": "678"})
    assert r.status_code == 200 and r.json["kind"] == "choices" and len(r.json["choices"]) > 1


def test_the_commune_pickers_form_without_script(client, demo):
    """The picker's fields sent as a plain form (no page script): read as the search box
    reads "sheet/parcel commune"; a missing number or a bad one is a 400 that says so."""
    r = client.get("/api/search", query_string={"sheet": "1", "parcel": "3", "district": "678"})
    assert r.status_code == 200 and r.json["kind"] == "choices"
    r = client.get("/api/search", query_string={"sheet": "1", "parcel": "3",
                                                "commune": "24958", "district": "678"})
    assert r.status_code == 200 and r.json["kind"] == "parcel"
    assert r.json["result"]["parcel"]["commune"] == "24958"
    r = client.get("/api/search", query_string={"sheet": "1", "district": "678"})
    assert r.status_code == 400 and r.json["error"]["message_vi"]
    r = client.get("/api/search", query_string={"sheet": "x", "parcel": "3", "district": "678"})
    assert r.status_code == 400 and r.json["error"]["message_vi"]


def test_district_page_has_the_search_box(client):
    html = client.get("/districts/678").get_data(as_text=True)
    assert 'id="gp-search"' in html and 'id="gp-search-q"' in html
    assert "Tìm địa danh, tờ/thửa hoặc tọa độ" in html
    assert "Find a place, sheet/parcel or coordinates" in html


# ------------------------------------------------ today's units (from 2025-07-01)


def test_a_former_ward_and_city_finds_todays_ward_and_says_so(demo):
    """As an older certificate writes it: "Phường 7, Đà Lạt" is today's Phường Lang
    Biang - Đà Lạt, and the answer names the former ward and city."""
    _, store, _ = demo
    for q in ("Phường 7, Đà Lạt", "phuong 7 da lat", "Phường 7 - Thành phố Đà Lạt"):
        first = search(store, q)["places"][0]
        assert (first["code"], first["name"], first["level"], first["current"]) == (
            "24846", "Phường Lang Biang - Đà Lạt", "ward", True), q
        assert first["former"] == {"code": "24769", "name": "Phường 7", "level": "ward",
                                   "district": "672", "district_name": "Thành phố Đà Lạt"}
        assert first["note"] == ("Phường 7 (Thành phố Đà Lạt) — từ 01/07/2025 thuộc "
                                 "Phường Lang Biang - Đà Lạt")
        assert first["note_en"].endswith("since 1 July 2025 in Phường Lang Biang - Đà Lạt")
        assert first["valid_from"] == "2025-07-01"


def test_todays_unit_by_its_own_name_and_in_former_bình_thuận(demo):
    _, store, _ = demo
    first = search(store, "lang biang da lat")["places"][0]
    assert (first["code"], first["current"]) == ("24846", True)
    assert "former" not in first  # found by its own name
    # A ward of former Phan Thiết (Bình Thuận), by its former name and city.
    first = search(store, "Phường Hàm Tiến, Phan Thiết")["places"][0]
    assert (first["name"], first["former"]["district"]) == ("Phường Mũi Né", "593")


def test_a_split_former_commune_leads_to_both_units(demo):
    """A former commune split between two units: both are answered, each saying that
    only part of it went there."""
    from gisportal.base import seeds

    split = next(p for p in seeds.lineage() if p.share == "partial")
    places = [p for p in search(store_of(demo), split.name)["places"]
              if p.get("former", {}).get("code") == split.code]
    assert {p["code"] for p in places} == {u.code for u in
                                          seeds.current_units_of_former(split.code)}
    assert all("một phần" in p["note"] and "part of it" in p["note_en"] for p in places)


def test_todays_unit_takes_the_box_of_its_former_communes(demo):
    """Where the published boundary layer holds a unit's former communes (real GSO codes),
    the unit's box covers theirs; the demo's synthetic communes have other codes, so
    there the unit has no box (its button is disabled, not pointed at nowhere)."""
    from gisportal.base import seeds
    from gisportal.services import search as sr

    first, second = seeds.former_parts_of("24846")[:2]
    boxes = {first.code: (108.40, 11.93, 108.45, 11.97),
             second.code: (108.44, 11.90, 108.50, 11.95),
             "99999": (100.0, 10.0, 101.0, 11.0)}  # not one of its former communes
    unit = next(u for u in sr._unit_places() if u.code == "24846" and u.former is None)
    assert sr._unit_answer(unit, boxes)["bbox"] == [108.40, 11.90, 108.50, 11.97]
    assert sr._unit_answer(unit, {})["bbox"] is None


def store_of(demo):
    return demo[1]


@pytest.mark.parametrize("q", [",,", ", -", "a.", "( )"])
def test_punctuation_is_no_place_name(demo, q):
    """A query of punctuation (and one letter or digit) is too short, as one letter is:
    it would otherwise match the start of every unit's name."""
    _, store, _ = demo
    with pytest.raises(UsageError, match="too short"):
        search(store, q)
