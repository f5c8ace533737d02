"""Boundary layers are checked, not trusted: levels, the district's own unit, its outline.

Files are built here as offices and download sites export them: GeoPackages with the
national field names (Cap, Ma, Ten), GADM-style files (GID_2, NAME_2, TYPE_2,
ENGTYPE_2), GeoJSON in WGS 84. District outlines are irregular polygons of the real
district's area around its real centre (seeds/admin_units.json), cut into communes.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gisportal.base import crs as vncrs
from gisportal.base import seeds, units
from gisportal.pipeline.validation.context import context_from_boundary
from gisportal.services.ingest import check_file, ingest_file
from tests.conftest import parcel_grid

BOUNDARY_RULES = {"BOUNDARY-LEVEL-UNKNOWN", "BOUNDARY-DISTRICT-MISSING",
                  "BOUNDARY-OUTLINE-MISFIT", "BOUNDARY-OTHER-UNITS",
                  "BOUNDARY-COMMUNE-UNKNOWN", "BOUNDARY-CONTEXT-UNUSABLE"}


def outline(code: str, *, at: tuple[float, float] | None = None, area_km2: float | None = None,
            unit: seeds.AdminUnit | None = None) -> shapely.Polygon:
    """An irregular polygon (EPSG:5899) of the district's area around its centre."""
    u = unit or seeds.district(code)
    cx, cy = vncrs.from_lonlat(*(at or u.centre_lonlat))
    r = math.sqrt((area_km2 or u.area_km2) * 1e6 / math.pi)
    a = np.linspace(0, 2 * math.pi, 240, endpoint=False)
    wobble = 1 + 0.10 * np.sin(5 * a) + 0.04 * np.sin(13 * a + 1.0)
    wobble /= math.sqrt(np.mean(wobble ** 2))  # keep the area
    return shapely.Polygon(np.column_stack([cx + r * wobble * np.cos(a),
                                            cy + r * wobble * np.sin(a)]))


def communes_of(shape: shapely.Polygon, codes: list[str]) -> list[shapely.Geometry]:
    """``shape`` cut into one pie slice per code."""
    c = shape.centroid
    big = 1e6
    out = []
    for i in range(len(codes)):
        a0, a1 = 2 * math.pi * i / len(codes), 2 * math.pi * (i + 1) / len(codes)
        arc = [(c.x + big * math.cos(t), c.y + big * math.sin(t))
               for t in np.linspace(a0, a1, 16)]
        out.append(shape.intersection(shapely.Polygon([(c.x, c.y), *arc])))
    return out


def district_file(tmp_path, code="678", *, name="ranh_gioi.gpkg", communes: int = 4,
                  shape=None, level_words=("Huyện", "Xã"), extra_rows=()) -> object:
    """A district boundary as a land office exports it: Cap / Ma / Ten, district + communes."""
    shape = shape if shape is not None else outline(code)
    codes = list(seeds.communes_of(code))[:communes]
    names = [seeds.communes()[c].name for c in codes]
    rows = [{"Cap": level_words[0], "Ma": code, "Ten": seeds.district(code).name,
             "geometry": shape}]
    rows += [{"Cap": level_words[1], "Ma": c, "Ten": n, "geometry": g}
             for c, n, g in zip(codes, names, communes_of(shape, codes), strict=True)]
    rows += list(extra_rows)
    path = tmp_path / name
    gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:5899").to_file(path, driver="GPKG")
    return path


def boundary_findings(report):
    return [f for f in report.findings if f.rule in BOUNDARY_RULES]


# ----------------------------------------------------------------------------- vocabulary


@pytest.mark.parametrize("value,code,level", [
    ("district", "678", "district"), ("District", None, "district"),
    ("HUYỆN", "678", "district"), ("huyen", None, "district"), ("Huyện", None, "district"),
    ("Quận", "001", "district"), ("Thị xã", None, "district"), ("TX.", None, "district"),
    ("Thành phố", "672", "district"), ("Thành phố", "68", "province"),
    ("Thành phố", "VNM.23.4_1", "district"), ("City", None, "district"),
    ("city", "01", "province"), ("Town", None, "district"), ("Town", "24958", "commune"),
    ("Thành phố thuộc tỉnh", None, "district"), ("Urban District", None, "district"),
    ("commune", None, "commune"), ("Xã", None, "commune"), ("XA", None, "commune"),
    ("Phường", None, "commune"), ("phuong", None, "commune"), ("Ward", None, "commune"),
    ("Thị trấn", None, "commune"), ("thi tran", None, "commune"),
    ("Township", None, "commune"), ("Đặc khu", None, "commune"),
    ("Special zone", None, "commune"), ("Tỉnh", None, "province"),
    ("Thành phố trực thuộc trung ương", None, "province"), ("Province", None, "province"),
    ("1", None, "province"), ("2", None, "district"), ("2.0", None, "district"),
    ("3", None, "commune"), ("Cấp huyện", None, "district"),
])
def test_level_words_of_real_files(value, code, level):
    assert units.level_vocabulary().canonical(value, code) == level


@pytest.mark.parametrize("value", ["Thôn", "Ấp", "hamlet", "Huyện Đức Trọng", "5", "x"])
def test_words_for_no_level_are_unknown(value):
    assert units.level_vocabulary().canonical(value, "678") is None


def test_a_unit_with_no_level_takes_its_gso_code_level():
    levels, unknown = units.canonical_levels([None, "", None, None, "Xã"],
                                             ["678", "24958", "68", "VNM.23.4_1", 24961.0])
    assert list(levels) == ["district", "commune", "province", None, "commune"]
    assert not unknown.any()
    assert units.gso_code(672.0) == "672" and units.looks_like_gadm("VNM.23.4_1")


# ----------------------------------------------------------------------------- levels


def test_a_real_district_file_publishes_with_canonical_levels(tmp_path, store):
    path = district_file(tmp_path)
    res = ingest_file(store, path, "boundary", "678", publish=True)
    assert boundary_findings(res.report) == []
    assert res.published
    stored = store.read(res.version.id)
    assert list(stored["level"]) == ["district"] + ["commune"] * 4
    assert list(stored["src:Cap"]) == ["Huyện"] + ["Xã"] * 4  # what was read is kept


def test_levels_in_english_gadm_words_and_numbers(tmp_path):
    for i, words in enumerate([("District", "Commune"), ("2", "3"), ("City", "Ward")]):
        path = district_file(tmp_path, "672" if words[0] == "City" else "678",
                             name=f"b{i}.gpkg", level_words=words)
        report = check_file(path, "boundary", district="672" if words[0] == "City" else "678"
                            ).report
        assert boundary_findings(report) == [], words


def test_unknown_level_values_are_an_error_naming_them(tmp_path):
    c = outline("678").centroid
    extra = [{"Cap": "Thôn", "Ma": "x1", "Ten": "Thôn 1", "geometry": c.buffer(200)},
             {"Cap": "Thôn", "Ma": "x2", "Ten": "Thôn 2", "geometry": c.buffer(400)}]
    path = district_file(tmp_path, extra_rows=extra)
    report = check_file(path, "boundary", district="678").report
    found = [f for f in report.findings if f.rule == "BOUNDARY-LEVEL-UNKNOWN"]
    assert len(found) == 1
    f = found[0]
    assert f.level == "error" and f.row == 5
    assert f.params["value"] == "Thôn" and f.params["count"] == 2 and f.params["rows"] == "5, 6"
    assert "Thôn" in f.message("vi") and "huyện" in f.message("vi")
    assert "district" in f.message("en") and "thị trấn" in f.message("en")
    assert report.has_errors


def test_a_level_column_named_like_gadm_is_read(tmp_path):
    shape = outline("678")
    gdf = gpd.GeoDataFrame({"MaHC": ["678"], "NAME_2": ["Đức Trọng"], "TYPE_2": ["Huyện"],
                            "ENGTYPE_2": ["District"]}, geometry=[shape], crs="EPSG:5899")
    path = tmp_path / "gadm_like.gpkg"
    gdf.to_file(path, driver="GPKG")
    checked = check_file(path, "boundary", district="678")
    assert checked.layer.mapping.mapped["level"] == "TYPE_2"
    assert boundary_findings(checked.report) == []


# ----------------------------------------------------------------------------- the district


def gadm_file(tmp_path, *, with_gso_column=False):
    """A GADM level-2 download of (former) Lâm Đồng: GID_2 ids, no GSO code column."""
    rows = []
    for i, d in enumerate((d for d in seeds.districts() if d.parent == "68"), start=1):
        row = {"GID_0": "VNM", "GID_1": "VNM.23_1", "NAME_1": "Lâm Đồng",
               "GID_2": f"VNM.23.{i}_1", "NAME_2": d.short_name,
               "TYPE_2": "Thành phố" if d.type == "city" else "Huyện",
               "ENGTYPE_2": "City" if d.type == "city" else "District",
               "geometry": outline(d.code)}
        if with_gso_column:
            row["CC_2"] = d.code
        rows.append(row)
    path = tmp_path / "gadm41_VNM_2_lam_dong.gpkg"
    gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:5899").to_crs(4326).to_file(
        path, driver="GPKG")
    return path


def test_a_gadm_file_is_not_district_672s_boundary(tmp_path, store):
    path = gadm_file(tmp_path)
    res = ingest_file(store, path, "boundary", "672", publish=True, fields={"code": "GID_2"})
    assert not res.published and store.published("672", "boundary") is None
    (f,) = [f for f in res.report.findings if f.rule == "BOUNDARY-DISTRICT-MISSING"]
    assert f.level == "error"
    assert "GADM" in f.message("en") and "VNM.23.1_1" in f.message("en")
    assert "--field code=" in f.message("en") and "--field code=" in f.message("vi")
    assert "672" in f.message("vi") and "Đà Lạt" in f.message("vi")


def test_the_column_holding_the_gso_code_is_named(tmp_path):
    path = gadm_file(tmp_path, with_gso_column=True)
    report = check_file(path, "boundary", district="672", fields={"code": "GID_2"}).report
    (f,) = [f for f in report.findings if f.rule == "BOUNDARY-DISTRICT-MISSING"]
    assert f.params["column"] == "CC_2" and "--field code=CC_2" in f.message("en")
    # Following the advice: the district is found, the 11 others are ignored with a warning.
    report = check_file(path, "boundary", district="672", fields={"code": "CC_2"}).report
    assert not report.has_errors, [f.to_dict() for f in report.findings if f.level == "error"]
    (other,) = [f for f in report.findings if f.rule == "BOUNDARY-OTHER-UNITS"]
    assert other.level == "warning" and other.params["count"] == 11
    assert "673 Thành phố Bảo Lộc (district)" in other.message("en")
    assert "673 Thành phố Bảo Lộc (huyện)" in other.message("vi")


def test_another_districts_boundary_is_named(tmp_path):
    path = district_file(tmp_path, "673")
    report = check_file(path, "boundary", district="678").report
    (f,) = [f for f in report.findings if f.rule == "BOUNDARY-DISTRICT-MISSING"]
    assert "673 Thành phố Bảo Lộc" in f.message("en")


def test_communes_alone_are_no_district_outline(tmp_path):
    shape = outline("678")
    codes = list(seeds.communes_of("678"))[:3]
    gdf = gpd.GeoDataFrame({"Cap": ["Xã"] * 3, "Ma": codes},
                           geometry=communes_of(shape, codes), crs="EPSG:5899")
    path = tmp_path / "xa.gpkg"
    gdf.to_file(path, driver="GPKG")
    report = check_file(path, "boundary", district="678").report
    (f,) = [f for f in report.findings if f.rule == "BOUNDARY-DISTRICT-MISSING"]
    assert "only communes" in f.message("en")


# ----------------------------------------------------------------------------- the outline


def misfit(tmp_path, code, shape, name="b.gpkg"):
    report = check_file(district_file(tmp_path, code, shape=shape, name=name), "boundary",
                        district=code).report
    return [f for f in report.findings if f.rule == "BOUNDARY-OUTLINE-MISFIT"]


def test_a_small_box_is_no_district_outline(tmp_path):
    x, y = vncrs.from_lonlat(*seeds.district("678").anchor_lonlat)
    (f,) = misfit(tmp_path, "678", shapely.box(x - 150, y - 150, x + 150, y + 150))
    assert f.level == "error"
    assert f.params["area_km2"] == pytest.approx(0.09) and f.params["expected_area_km2"] == 908.7
    assert "908.7 km²" in f.message("en") and "0.1 km²" in f.message("vi")
    lon, lat = f.location["coordinates"]
    assert 108.3 < lon < 108.34 and 11.68 < lat < 11.71


def test_a_neighbours_outline_is_refused(tmp_path):
    # Đơn Dương's outline uploaded as Đà Lạt's: its anchor is 537 m from their border.
    (f,) = misfit(tmp_path, "672", outline("677"))
    assert "does not contain" in f.message("en") and f.params["anchor_distance_m"] > 200
    # Đạ Tẻh's and Cát Tiên's areas are alike: the anchor tells them apart.
    (f,) = misfit(tmp_path, "682", outline("683"), name="c.gpkg")
    assert "does not contain" in f.message("en")


def test_a_province_outline_is_refused(tmp_path):
    b = seeds.province_bbox_lonlat()
    x0, y0 = vncrs.from_lonlat(b[0], b[1])
    x1, y1 = vncrs.from_lonlat(b[2], b[3])
    (f,) = misfit(tmp_path, "676", shapely.box(x0, y0, x1, y1))
    assert f.params["area_ratio"] > 10 and "area" in f.message("en")


def test_a_shifted_outline_is_refused(tmp_path):
    u = seeds.district("679")
    at = (u.centre_lonlat[0] + 0.6, u.centre_lonlat[1])  # 65 km east
    (f,) = misfit(tmp_path, "679", outline("679", at=at))
    assert f.params["centre_km"] > 60 and "centre" in f.message("en")


def test_a_reused_code_fits_either_of_its_districts(tmp_path):
    merged = next(u for u in seeds.admin_units() if u.key == "682@2025-01-01")
    assert misfit(tmp_path, "682", outline("682", unit=merged)) == []
    assert misfit(tmp_path, "682", outline("682"), name="c.gpkg") == []


def test_every_seeded_district_outline_fits(tmp_path):
    for d in seeds.districts():
        assert misfit(tmp_path, d.code, outline(d.code), name=f"{d.code}.gpkg") == [], d.code


# ----------------------------------------------------------------------------- communes


def test_unknown_commune_codes_are_a_warning(tmp_path):
    shape = outline("678")
    extra = [{"Cap": "Xã", "Ma": "99999", "Ten": "Xã Lạ",
              "geometry": shape.centroid.buffer(500)}]
    report = check_file(district_file(tmp_path, extra_rows=extra), "boundary",
                        district="678").report
    (f,) = [f for f in report.findings if f.rule == "BOUNDARY-COMMUNE-UNKNOWN"]
    assert f.level == "warning" and f.row == 5 and f.params["code"] == "99999"
    assert not report.has_errors


def test_another_districts_commune_is_ignored_with_a_warning(tmp_path):
    extra = [{"Cap": "Thị trấn", "Ma": "25000", "Ten": "Thị trấn Di Linh",
              "geometry": outline("679").centroid.buffer(800)}]
    report = check_file(district_file(tmp_path, extra_rows=extra), "boundary",
                        district="678").report
    (f,) = [f for f in report.findings if f.rule == "BOUNDARY-OTHER-UNITS"]
    assert "25000 Thị trấn Di Linh (commune of district 679)" in f.message("en")
    assert not any(f.rule == "BOUNDARY-COMMUNE-UNKNOWN" for f in report.findings)


def test_a_commune_inside_the_district_listed_elsewhere_is_named(tmp_path):
    extra = [{"Cap": "Phường", "Ma": "24778", "Ten": "Phường 9",
              "geometry": outline("678").centroid.buffer(800)}]
    report = check_file(district_file(tmp_path, extra_rows=extra), "boundary",
                        district="678").report
    (f,) = [f for f in report.findings if f.rule == "BOUNDARY-COMMUNE-UNKNOWN"]
    assert f.params["listed_for"] == "672"
    assert "the list has it in district 672: Phường 9" in f.message("en")
    assert not any(f.rule == "BOUNDARY-OTHER-UNITS" for f in report.findings)


def test_the_seeded_communes_of_a_district():
    own = seeds.communes_of("678")
    assert len(own) == 15 and own["24958"].name == "Thị trấn Liên Nghĩa"
    assert seeds.communes()["25126"].district == "682"  # Thị trấn Đạ Tẻh
    assert seeds.communes()["25159"].district == "683"  # Thị trấn Cát Tiên


# ----------------------------------------------------------------------------- context


def boundary_frame(rows):
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:5899")


def test_the_context_is_the_districts_own_unit_and_communes():
    shape678, shape679 = outline("678"), outline("679")
    inside = shape678.centroid.buffer(300)
    frame = boundary_frame([
        {"level": "district", "code": "678", "geometry": shape678},
        {"level": "district", "code": "679", "geometry": shape679},
        {"level": "Xã", "code": "24961", "geometry": inside},  # Hiệp An, listed for 678
        {"level": "commune", "code": "67801", "geometry": inside},  # not listed, inside
        {"level": "commune", "code": "67999", "geometry": shape679.centroid.buffer(300)},
        {"level": "commune", "code": "25003", "geometry": shape679.centroid.buffer(300)},
        {"level": "commune", "code": "24778", "geometry": inside},  # listed for 672, inside
        {"level": "commune", "code": "24964", "geometry": shape679.centroid.buffer(300)},
    ])
    ctx = context_from_boundary("678", frame)
    assert ctx.district_boundary.equals(shape678)
    # Inside the outline, or on the district's list (Liên Hiệp, drawn in the wrong place);
    # not the communes drawn in Di Linh that are not Đức Trọng's.
    assert set(ctx.communes) == {"24961", "67801", "24778", "24964"}
    assert ctx.notes == ()


def test_a_published_boundary_without_the_district_says_so(tmp_path, store):
    # Published before boundary layers were checked: a GADM file as Đức Trọng's boundary.
    frame = boundary_frame([{"level": "district", "code": "VNM.23.7_1",
                             "geometry": outline("673")}])
    v = store.add_version("678", "boundary", frame, source_name="gadm.gpkg",
                          source_sha256="g" * 64, created_by="test")
    store.publish(v.id, by="test")
    layer = parcel_grid(2, 2, origin=vncrs.from_lonlat(*seeds.district("673").anchor_lonlat))
    path = tmp_path / "thua.gpkg"
    layer.to_file(path, driver="GPKG")
    report = check_file(path, "parcels", district="678", store=store).report
    (note,) = [f for f in report.findings if f.rule == "BOUNDARY-CONTEXT-UNUSABLE"]
    assert note.level == "warning" and note.params["source"] == str(v.id)
    assert "TOPO-OUTSIDE-DISTRICT" in note.message("en") and "phiên bản" in note.message("vi")


def test_parcels_of_another_district_are_outside_a_two_district_boundary(tmp_path, store):
    frame = boundary_frame([{"level": "district", "code": "678", "geometry": outline("678")},
                            {"level": "district", "code": "679", "geometry": outline("679")}])
    store.publish(store.add_version("678", "boundary", frame, source_name="b.gpkg",
                                    source_sha256="h" * 64, created_by="test").id, by="test")
    layer = parcel_grid(2, 2, origin=vncrs.from_lonlat(*seeds.district("679").anchor_lonlat))
    path = tmp_path / "thua.gpkg"
    layer.to_file(path, driver="GPKG")
    report = check_file(path, "parcels", district="678", store=store).report
    outside = [f.row for f in report.findings if f.rule == "TOPO-OUTSIDE-DISTRICT"]
    assert outside == [0, 1, 2, 3]
