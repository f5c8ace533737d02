"""Zoning plans' lots and red lines read as consultants export them.

Column names lower-case, DBF-truncated or Vietnamese labels; values typed by hand in the
drawing's table: decimal commas, floors as "3-5" / "3÷5" / "≤5", densities as fractions
or with a % sign, populations with thousands separators, a cross-section instead of a
width; lots drawn in CAD as closed polylines (a DXF, a GeoPackage of lines), functions on
the DXF layer names; an empty column and owners' names under a header no alias knows.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from gisportal.base import seeds
from gisportal.base.models import KINDS, layer_model, match_fields
from gisportal.outputs.privacy import public_columns_for
from gisportal.pipeline.values import parse_column, parse_count, parse_range, parse_sum
from gisportal.services.ingest import check_file
from tests.conftest import DUC_TRONG_XY, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY


def lot(i: int, j: int, w: float = 50.0, h: float = 40.0) -> shapely.Polygon:
    """The lot in column i, row j of a grid of 50 m × 40 m lots in Đức Trọng."""
    return shapely.box(X0 + i * w, Y0 + j * h, X0 + (i + 1) * w, Y0 + (j + 1) * h)


def rows_of(findings, rule: str) -> list[int | None]:
    return [f.row for f in findings if f.rule == rule]


# -- the models ------------------------------------------------------------------------


def test_the_zoning_kinds_are_models_but_not_stored_kinds():
    from gisportal.store.base import KINDS as STORED

    assert {"zoning_lots", "red_lines"} <= set(KINDS)
    assert not {"zoning_lots", "red_lines"} & set(STORED)
    lots, lines = layer_model("zoning_lots"), layer_model("red_lines")
    assert (lots.geometry, lines.geometry) == ("polygon", "line")
    assert lots.key == ("lot_code",) and lots.options["closed_lines_as_polygons"]
    assert {f.name for f in lots.fields if f.required} == {"lot_code", "function"}
    assert lots.personal_fields == () and lines.personal_fields == ()


@pytest.mark.parametrize("columns", [
    ["MaLo", "ChucNang", "DienTich", "MatDoXD", "TangCao", "TangToiThieu", "HSSDD", "DanSo"],
    ["malo", "chucnangsd", "dt", "mdxd", "tctd", "tctt", "hssd", "ds"],
    ["KYHIEULO", "CN_SDD", "S_M2", "MD_XD", "TANGTOIDA", "TANGTOITHI", "HESOSDD", "DANSODUKIE"],
    ["O_QH", "LOAIDAT", "DIENTICH", "MATDOXAYDU", "TANGCAO", "TCTT", "HESOSUDUNG", "DAN_SO"],
    ["Mã lô", "Chức năng", "Diện tích", "Mật độ XD", "Tầng cao", "Tầng tối thiểu",
     "Hệ số SDĐ", "Dân số"],
    ["KH_O", "ChucNangSD", "DT", "MDXD", "TCTD", "TCTT", "HeSoSDD", "DS"],
])
def test_consultants_column_names_map_to_the_lot_fields(columns):
    m = match_fields(layer_model("zoning_lots"), columns)
    assert [m.mapped.get(f) for f in ("lot_code", "function", "area_m2", "density_pct",
                                      "floors_max", "floors_min", "far", "population")] \
        == columns
    assert m.unmapped_source == [] and m.personal_source == []


@pytest.mark.parametrize("columns", [
    ["TenDuong", "LoGioi", "MatCat", "LoaiChiGioi"],
    ["ten_duong", "lg", "mat_cat", "loaicg"],
    ["TENTUYENDU", "CHIEURONG", "MATCATNGAN", "LOAICHIGIO"],
    ["Tên đường", "Lộ giới", "Mặt cắt", "Loại chỉ giới"],
])
def test_consultants_column_names_map_to_the_red_line_fields(columns):
    m = match_fields(layer_model("red_lines"), columns)
    assert [m.mapped.get(f) for f in ("road_name", "width_m", "cross_section",
                                      "line_type")] == columns
    assert m.unmapped_source == []


def test_the_functions_catalogue_resolves_codes_names_and_abbreviations():
    cat = seeds.zoning_functions()
    assert len(cat) >= 25
    assert {f.code for f in cat} >= {"OHT", "ODM", "HH", "CC", "GD", "YT", "VH", "TG", "CX",
                                      "TM", "CN", "HTKT", "GT", "MN", "AN", "QP"}
    for text, code in [("Đất ở mới", "ODM"), ("dat o moi", "ODM"), ("om", "ODM"),
                       ("ĐẤT Ở HIỆN TRẠNG", "OHT"), ("Đất cây xanh", "CX"), ("CVCX", "CX"),
                       ("BĐX", "BDX"), ("Đất trường học", "GD"), ("NT", "GD"),
                       ("Mặt nước", "MN"), ("Đất giao thông", "GT"), ("TMDV", "TM")]:
        assert cat.resolve(text) == code, text
    assert cat.resolve("A1") is None and cat.resolve("ODM-01") is None
    assert all(f.color.startswith("#") and len(f.color) == 7 for f in cat)


# -- values ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("3-5", (3, 5)), ("3÷5", (3, 5)), ("3 - 5", (3, 5)), ("3–5", (3, 5)), ("3~5", (3, 5)),
    ("3 đến 5", (3, 5)), ("≤5", (None, 5)), ("<= 5", (None, 5)), ("tối đa 5 tầng", (None, 5)),
    ("≥3", (3, None)), ("5", (None, 5)), ("5 tầng", (None, 5)), ("năm", None),
])
def test_floors_are_read_as_drawings_write_them(text, expected):
    assert parse_range(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("5-10.5-5", 20.5), ("5-10,5-5", 20.5), ("5+10.5+5", 20.5), ("(5-14-5)", 24.0),
    ("24", 24.0), ("24m", 24.0), ("24,5 m", 24.5), ("3,5-7-3,5", 14.0),
    ("1-1", None), ("A-A", None), ("mặt cắt", None),
])
def test_cross_sections_are_read_as_their_total(text, expected):
    assert parse_sum(text) == expected


def test_counts_read_vietnamese_thousands_and_densities_fractions():
    assert parse_count("1.200") == 1200 and parse_count("1 200 người") == 1200
    assert parse_count("35") == 35 and parse_count("1,5") == 1.5
    frac = parse_column(gpd.pd.Series([0.6, 0.45, None]), "percent")
    assert list(frac.values[:2]) == [60.0, 45.0] and frac.fractions == 2
    # A % sign says percent; one value of 1 among 40 and 60 is 1 %, not 100 %.
    mixed = parse_column(gpd.pd.Series(["60%", "0,5%", "40"]), "percent")
    assert list(mixed.values) == [60.0, 0.5, 40.0] and mixed.fractions == 0
    ones = parse_column(gpd.pd.Series([1, 40, 60]), "percent")
    assert list(ones.values) == [1.0, 40.0, 60.0] and ones.fractions == 0


# -- files -------------------------------------------------------------------------------


def consultant_lots() -> gpd.GeoDataFrame:
    """Four lots as a consultant's shapefile holds them: truncated upper-case names, the
    table's values as text with decimal commas, floors as ranges, densities as fractions,
    an empty GHICHU and the owners' names under a header no alias knows."""
    return gpd.GeoDataFrame({
        "KYHIEULO": ["A1", "A2", "A3", "A4"],
        "CHUCNANGSD": ["Đất ở mới", "cx", "HH", "Đất trường học"],
        "DIENTICH": ["2000", "2000", "2000,0", "2000"],
        "MATDOXAYDU": [0.6, 0.05, 0.5, 0.4],
        "TANGCAO": ["3-5", "1", "≤ 9", "2÷3"],
        "HESOSDD": ["2,5", "0,05", "4,0", "1,2"],
        "DANSO": ["1.200", "", "300", ""],
        "GHICHU": ["", "", "", ""],
        "NGUOILH": ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung"],
    }, geometry=[lot(0, 0), lot(1, 0), lot(0, 1), lot(1, 1)], crs="EPSG:5899")


@pytest.fixture
def lots_zip(home, tmp_path):
    return write_shapefile_zip(consultant_lots(), tmp_path / "o_quy_hoach.zip", cpg="UTF-8")


def test_a_consultants_shapefile_is_normalised_to_numbers_and_codes(lots_zip):
    checked = check_file(lots_zip, "zoning_lots")
    frame, report = checked.layer.frame, checked.report
    assert list(frame["lot_code"]) == ["A1", "A2", "A3", "A4"]
    assert list(frame["function"]) == ["ODM", "CX", "HH", "GD"]
    assert list(frame["floors_max"]) == [5, 1, 9, 3]
    assert [None if v is gpd.pd.NA else v for v in frame["floors_min"]] == [3, None, None, 2]
    assert list(frame["density_pct"]) == pytest.approx([60, 5, 50, 40])
    assert list(frame["far"]) == pytest.approx([2.5, 0.05, 4.0, 1.2])
    assert [None if v is gpd.pd.NA else v for v in frame["population"]] == [1200, None, 300,
                                                                             None]
    assert list(frame["area_m2"]) == [2000.0] * 4
    fraction = [f for f in report.findings if f.rule == "ZONING-PERCENT-FRACTION"]
    assert len(fraction) == 1 and fraction[0].params["column"] == "MATDOXAYDU"
    assert fraction[0].params["count"] == 4 and fraction[0].level == "info"
    assert report.summary()["errors"] == 0, [f.to_dict() for f in report.findings
                                            if f.level == "error"]
    # The empty column is kept as a source attribute and maps to nothing.
    assert "src:GHICHU" in frame.columns
    assert "GHICHU" in report.read["fields"]["unmapped_source"]


def test_personal_data_under_an_unknown_header_is_withheld_from_the_public(lots_zip):
    checked = check_file(lots_zip, "zoning_lots")
    suspected = [f for f in checked.report.findings if f.rule == "ATTR-PERSONAL-SUSPECTED"]
    assert [f.params["column"] for f in suspected] == ["NGUOILH"]
    read = checked.report.read
    assert read["fields"]["personal_source"] == ["NGUOILH"]
    meta = {"read": read}
    public = public_columns_for("zoning_lots", meta)
    assert "src:NGUOILH" not in public.columns() and not public.allows("src:NGUOILH")
    assert set(public.canonical) == set(layer_model("zoning_lots").field_names)
    # Marking it public without confirming it is personal keeps it withheld.
    marked = public_columns_for("zoning_lots", {**meta, "public_source": {
        "columns": ["NGUOILH", "GHICHU"]}})
    assert marked.source == ("GHICHU",)


def test_a_dxf_of_closed_polylines_gives_lots_with_functions_from_its_layers(home, tmp_path):
    """Lots drawn in CAD: closed polylines on one layer per function (pyogrio writes
    closed LineStrings as open LWPOLYLINEs whose last vertex is the first), one outline
    that does not close, and a layer named as drafters do (QH_CAY-XANH)."""
    frame = gpd.GeoDataFrame({"Layer": ["ODM", "QH_CAY-XANH", "ODM", "0"]}, geometry=[
        shapely.LineString(lot(0, 0).exterior.coords),
        shapely.LineString(lot(1, 0).exterior.coords),
        shapely.LineString(list(lot(0, 1).exterior.coords)[:-1]),  # not closed
        shapely.LineString(lot(1, 1).exterior.coords),
    ])
    path = tmp_path / "ban_ve.dxf"
    pyogrio.write_dataframe(frame, path, driver="DXF")
    checked = check_file(path, "zoning_lots", crs="EPSG:5899")
    layer, report = checked.layer.frame, checked.report
    types = list(shapely.get_type_id(layer.geometry.values))
    assert types == [3, 3, 1, 3]
    assert shapely.area(layer.geometry.values[0]) == pytest.approx(2000.0)
    assert list(layer["function"]) == ["ODM", "CX", "ODM", "0"]
    assert report.read["fields"]["mapped"]["function"] == "Layer"
    by_rule = {}
    for f in report.findings:
        by_rule.setdefault(f.rule, []).append(f)
    assert [f.row for f in by_rule["ZONING-LOT-NOT-CLOSED"]] == [2]
    assert by_rule["ZONING-LOT-NOT-CLOSED"][0].params["gap_m"] == pytest.approx(50.0)
    assert "GEOM-TYPE" not in by_rule  # the open outline is reported once, as not closed
    assert by_rule["ZONING-FUNCTION-FROM-LAYER"][0].params == {"known": 3, "unknown": 1}
    unknown = by_rule["ZONING-FUNCTION-UNKNOWN"]
    assert [(f.params["value"], f.params["rows"]) for f in unknown] == [("0", [3])]
    # A drawing carries no lot codes: the lots cannot be published as they are.
    assert [f.params["field"] for f in by_rule["ATTR-REQUIRED-MISSING"]] == ["lot_code"]


def test_a_geopackage_of_closed_lines_is_read_as_lots(home, tmp_path):
    frame = gpd.GeoDataFrame({"MaLo": ["B1", "B2"], "ChucNang": ["GT", "MN"]}, geometry=[
        shapely.LinearRing(lot(0, 0).exterior.coords),
        shapely.MultiLineString([lot(1, 0, 100, 80).exterior.coords,
                                 lot(1, 0, 100, 80).buffer(-10).exterior.coords]),
    ], crs="EPSG:5899")
    path = tmp_path / "lo.gpkg"
    frame.to_file(path, driver="GPKG")
    checked = check_file(path, "zoning_lots")
    geoms = checked.layer.frame.geometry.values
    assert list(shapely.get_type_id(geoms)) == [3, 3]
    assert shapely.area(geoms[1]) == pytest.approx(8000 - 80 * 60)  # the ring is a hole
    assert checked.report.summary()["errors"] == 0


def test_a_file_of_only_open_lines_is_refused_as_no_lots(home, tmp_path):
    from gisportal.base.errors import InputError

    frame = gpd.GeoDataFrame({"MaLo": ["C1"], "ChucNang": ["GT"]}, geometry=[
        shapely.LineString([(X0, Y0), (X0 + 100, Y0)])], crs="EPSG:5899")
    path = tmp_path / "duong.gpkg"
    frame.to_file(path, driver="GPKG")
    with pytest.raises(InputError) as err:
        check_file(path, "zoning_lots")
    assert "needs polygons" in err.value.what and err.value.code == "GEOM-TYPE"


def red_lines_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "TEN_DUONG": ["Đường Hùng Vương", "Đường Hùng Vương", "Đường số 3", "Đường số 4"],
        "LG": ["24m", "", "5-10,5-5", "30,5"],
        "MATCAT": ["5-14-5", "4-7,5-4", "", ""],
        "LOAICHIGIO": ["Chỉ giới đường đỏ", "CGĐĐ", "đỏ", "chi gioi xay dung"],
    }, geometry=[shapely.LineString([(X0 + 10 * i, Y0), (X0 + 10 * i, Y0 + 200)])
                 for i in range(4)], crs="EPSG:5899")


def test_red_lines_take_their_width_from_a_cross_section_and_their_type_from_words(
        home, tmp_path):
    path = write_shapefile_zip(red_lines_frame(), tmp_path / "chi_gioi.zip", cpg="UTF-8")
    checked = check_file(path, "red_lines")
    frame = checked.layer.frame
    assert list(frame["width_m"]) == pytest.approx([24.0, 15.5, 20.5, 30.5])
    assert list(frame["cross_section"][:2]) == ["5-14-5", "4-7,5-4"]
    assert list(frame["line_type"]) == ["red_line", "red_line", "red_line", "building_line"]
    assert list(frame["line_id"]) == ["0", "1", "2", "3"]
    assert checked.report.summary()["errors"] == 0
    assert not np.any([f.rule.startswith("GEOM-") for f in checked.report.findings])
