"""The zoning checks: indicators, overlaps, gaps, lot codes, red-line widths, project area.

Each test asserts the rule codes and the rows (or bordering rows) they point at, on a
grid of 50 m × 40 m lots in Đức Trọng built as a consultant's GeoPackage.
"""

from __future__ import annotations

import json
import time

import geopandas as gpd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gisportal.pipeline.validation import ValidationContext, validate
from gisportal.pipeline.validation.zoning import check_lot_topology, check_red_lines
from gisportal.services.ingest import check_file
from tests.conftest import DUC_TRONG_XY

X0, Y0 = DUC_TRONG_XY


def lot(i: float, j: float, w: float = 50.0, h: float = 40.0) -> shapely.Polygon:
    return shapely.box(X0 + i * w, Y0 + j * h, X0 + (i + 1) * w, Y0 + (j + 1) * h)


def clean_lots() -> gpd.GeoDataFrame:
    """A 3 × 2 block of lots whose indicators agree (FAR ≤ density × floors)."""
    cells = [(i, j) for j in range(2) for i in range(3)]
    return gpd.GeoDataFrame({
        "malo": [f"A{k + 1}" for k in range(6)],
        "chucnang": ["ODM", "ODM", "CX", "HH", "GD", "GT"],
        "dientich": [2000.0] * 6,
        "mdxd": ["60%", "60%", "5%", "50%", "40%", ""],
        "tangcao": ["3-5", "3-5", "1", "≤ 9", "2÷3", ""],
        "hssdd": ["2,5", "2,5", "0,05", "4,0", "1,2", ""],
        "danso": ["120", "110", "", "300", "", ""],
    }, geometry=[lot(i, j) for i, j in cells], crs="EPSG:5899")


def write(frame: gpd.GeoDataFrame, path) -> str:
    frame.to_file(path, driver="GPKG")
    return str(path)


def findings(checked, rule: str):
    return [f for f in checked.report.findings if f.rule == rule]


def errors(checked) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in checked.report.findings:
        if f.level == "error":
            out.setdefault(f.rule, []).append(f.row)
    return out


# -- lots ------------------------------------------------------------------------------


def test_a_clean_plan_has_no_error_and_says_what_was_not_checked(home, tmp_path):
    checked = check_file(write(clean_lots(), tmp_path / "lots.gpkg"), "zoning_lots")
    assert errors(checked) == {}
    note = findings(checked, "ZONING-NO-PROJECT-AREA")
    assert len(note) == 1 and note[0].level == "info" and note[0].row is None
    assert "ZONING-OUTSIDE-PROJECT" in note[0].message("en")


def test_indicators_out_of_range_point_at_their_lots(home, tmp_path):
    frame = clean_lots()
    frame.loc[0, "mdxd"] = "120%"  # density over 100 %
    frame.loc[1, "tangcao"] = "5-3"  # minimum above maximum
    frame.loc[2, "hssdd"] = "-1"  # negative FAR
    frame.loc[3, "danso"] = "-20"
    frame.loc[4, "tangcao"] = "150"
    checked = check_file(write(frame, tmp_path / "lots.gpkg"), "zoning_lots")
    assert errors(checked) == {"ZONING-DENSITY-RANGE": [0], "ZONING-FLOORS-RANGE": [1, 4],
                               "ZONING-FAR-RANGE": [2], "ZONING-POPULATION-RANGE": [3]}
    floors = findings(checked, "ZONING-FLOORS-RANGE")
    assert "minimum floors 5 above maximum floors 3" in floors[0].message("en")
    assert "150 floors, outside 0–100" in floors[1].message("en")
    density = findings(checked, "ZONING-DENSITY-RANGE")[0]
    assert density.params["column"] == "mdxd" and density.params["value"] == "120"
    assert density.key == {"lot_code": "A1"}
    assert density.location["type"] == "Point"


def test_a_far_above_density_times_floors_is_an_error_of_the_table(home, tmp_path):
    frame = clean_lots()
    frame.loc[4, "hssdd"] = "1,5"  # 40 % × 3 floors = 1.2
    frame.loc[1, "hssdd"] = "3,05"  # 60 % × 5 = 3.0: within the rounding tolerance
    checked = check_file(write(frame, tmp_path / "lots.gpkg"), "zoning_lots")
    assert errors(checked) == {"ZONING-FAR-INCONSISTENT": [4]}
    f = findings(checked, "ZONING-FAR-INCONSISTENT")[0]
    assert f.params == {"far": "1.5", "density": "40", "floors": "3", "bound": "1.2"}
    assert "40 % × 3 = 1.2" in f.message("en") and "40% × 3 = 1.2" in f.message("vi")


def test_overlapping_lots_and_duplicate_codes(home, tmp_path):
    frame = clean_lots()
    frame.loc[1, "geometry"] = lot(0.5, 0)  # half over A1, leaving a hole where it was
    frame.loc[5, "malo"] = "A1"
    frame.loc[6] = ["A7", "CX", 2000.0, "5%", "1", "0,05", "", lot(0, 0)]  # A1 drawn twice
    checked = check_file(write(frame, tmp_path / "lots.gpkg"), "zoning_lots")
    overlaps = findings(checked, "TOPO-OVERLAP")
    assert [(f.row, f.params["other_row"]) for f in overlaps] == [(0, 1), (1, 6)]
    assert overlaps[0].params["area_m2"] == pytest.approx(1000.0)
    assert overlaps[0].location["type"] == "Polygon"
    dup = findings(checked, "GEOM-DUPLICATE")
    assert [(f.row, f.params["other_row"]) for f in dup] == [(0, 6)]
    keys = findings(checked, "KEY-DUPLICATE")
    assert [f.row for f in keys] == [0, 5] and keys[0].params["rows"] == "5"


def test_a_gap_between_lots_is_an_error_and_a_large_hole_is_land_left_out(home, tmp_path):
    frame = clean_lots()
    frame.loc[1, "geometry"] = shapely.box(X0 + 50, Y0, X0 + 100, Y0 + 39)  # 1 m short
    gap = check_file(write(frame, tmp_path / "gap.gpkg"), "zoning_lots")
    assert errors(gap) == {"TOPO-GAP": [None]}
    f = findings(gap, "TOPO-GAP")[0]
    assert f.params["area_m2"] == pytest.approx(50.0)
    assert f.params["width_m"] == pytest.approx(1.0, abs=0.01)
    assert f.params["bordering_rows"] == [0, 1, 2, 3, 4, 5]  # sides and corners
    assert f.location["type"] == "Polygon"
    # A lot-sized hole in the middle of a 3 × 3 block: land the plan leaves out.
    ring = gpd.GeoDataFrame({
        "malo": [f"B{k}" for k in range(8)], "chucnang": ["ODM"] * 8,
    }, geometry=[lot(i, j) for j in range(3) for i in range(3) if (i, j) != (1, 1)],
        crs="EPSG:5899")
    left = check_file(write(ring, tmp_path / "ring.gpkg"), "zoning_lots")
    assert errors(left) == {}
    hole = findings(left, "ZONING-HOLE-LEFT-OUT")
    assert len(hole) == 1 and hole[0].params["total_m2"] == pytest.approx(2000.0)


def test_with_a_project_area_uncovered_land_and_lots_outside_are_errors(home, tmp_path):
    frame = clean_lots()
    checked = check_file(write(frame, tmp_path / "lots.gpkg"), "zoning_lots")
    # The project runs 20 m further north than the lots, and stops 10 m short of the
    # eastern lots (A3, A6): a strip no lot covers and two lots partly outside.
    project = shapely.box(X0, Y0, X0 + 140, Y0 + 100)
    found = check_lot_topology(checked.layer, project)
    gaps = [f for f in found if f.rule == "TOPO-GAP"]
    assert len(gaps) == 1 and gaps[0].params["area_m2"] == pytest.approx(140 * 20)
    assert gaps[0].params["bordering_rows"] == [3, 4, 5]
    outside = [f for f in found if f.rule == "ZONING-OUTSIDE-PROJECT"]
    assert [(f.row, f.params["amount"], f.params["unit"]) for f in outside] == [
        (2, 400.0, "m²"), (5, 400.0, "m²")]
    # The engine takes the project area from the context.
    report = validate(checked.source, checked.layer, ValidationContext(project_area=project))
    assert {f.rule for f in report.findings if f.level == "error"} == {
        "TOPO-GAP", "ZONING-OUTSIDE-PROJECT"}
    assert not [f for f in report.findings if f.rule == "ZONING-NO-PROJECT-AREA"]


def test_unknown_functions_are_one_warning_per_value(home, tmp_path):
    frame = clean_lots()
    frame.loc[[0, 1, 3], "chucnang"] = ["Đất ở biệt lập", "Đất ở biệt lập", "XYZ"]
    checked = check_file(write(frame, tmp_path / "lots.gpkg"), "zoning_lots")
    unknown = findings(checked, "ZONING-FUNCTION-UNKNOWN")
    assert [(f.params["value"], f.params["rows"], f.level) for f in unknown] == [
        ("XYZ", [3], "warning"), ("Đất ở biệt lập", [0, 1], "warning")]
    assert unknown[1].location["type"] == "MultiPoint"
    assert errors(checked) == {}


def test_three_thousand_lots_are_checked_without_comparing_pairs(home, tmp_path):
    """A 1/2000 plan's size: 60 × 50 lots, one overlap and one gap planted."""
    cells = [(i, j) for j in range(50) for i in range(60)]
    geoms = [lot(i, j, 20, 16) for i, j in cells]
    geoms[1234] = shapely.box(*shapely.bounds(geoms[1234])[:2],
                              shapely.bounds(geoms[1234])[2] + 2,
                              shapely.bounds(geoms[1234])[3])  # 2 m over its neighbour
    geoms[2222] = shapely.box(*shapely.bounds(geoms[2222])[:3],
                              shapely.bounds(geoms[2222])[3] - 1)  # 1 m short
    frame = gpd.GeoDataFrame({"malo": [f"L{k}" for k in range(len(cells))],
                              "chucnang": ["ODM"] * len(cells), "mdxd": [60.0] * len(cells),
                              "tangcao": [5] * len(cells), "hssdd": [3.0] * len(cells)},
                             geometry=geoms, crs="EPSG:5899")
    start = time.perf_counter()
    checked = check_file(write(frame, tmp_path / "plan.gpkg"), "zoning_lots")
    assert time.perf_counter() - start < 60
    assert [f.row for f in findings(checked, "TOPO-OVERLAP")] == [1234]
    assert [f.params["bordering_rows"] for f in findings(checked, "TOPO-GAP")] == [
        [2221, 2222, 2223, 2281, 2282, 2283]]


# -- red lines -------------------------------------------------------------------------


def red_lines() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "TenDuong": ["Hùng Vương", "Hùng Vương", "Đường số 3", "Đường số 4", "Đường số 5"],
        "LoGioi": ["24", "", "", "350", "20"],
        "MatCat": ["5-14-5", "", "1-1", "", "5-14-5"],
        "LoaiChiGioi": ["đỏ", "đỏ", "đỏ", "đỏ", "xây dựng"],
    }, geometry=[shapely.LineString([(X0 + 10 * i, Y0), (X0 + 10 * i, Y0 + 200)])
                 for i in range(5)], crs="EPSG:5899")


def test_red_lines_without_a_plausible_width_are_errors(home, tmp_path):
    checked = check_file(write(red_lines(), tmp_path / "cg.gpkg"), "red_lines")
    # Row 2's only width is the name of a cross-section (1-1): it gives no width.
    assert errors(checked) == {"ZONING-WIDTH-MISSING": [1, 2], "ZONING-WIDTH-RANGE": [3]}
    missing = findings(checked, "ZONING-WIDTH-MISSING")
    assert "(road Hùng Vương)" in missing[0].message("en")
    assert "(đường Hùng Vương)" in missing[0].message("vi")
    differs = findings(checked, "ZONING-WIDTH-SECTION-DIFFERS")
    assert [(f.row, f.params["width"], f.params["total"]) for f in differs] == [(4, "20", "24")]
    assert [f.row for f in findings(checked, "ZONING-NO-PROJECT-AREA")] == [None]


def test_a_building_line_needs_no_width_and_an_odd_type_is_a_warning(home, tmp_path):
    frame = red_lines().iloc[[1, 1]].reset_index(drop=True)
    frame["LoaiChiGioi"] = ["CGXD", "ranh giới"]
    checked = check_file(write(frame, tmp_path / "cg.gpkg"), "red_lines")
    assert errors(checked) == {"ZONING-WIDTH-MISSING": [1]}
    odd = findings(checked, "ZONING-LINE-TYPE-UNKNOWN")
    assert [(f.params["value"], f.params["rows"]) for f in odd] == [("ranh giới", [1])]


def test_polygons_in_a_red_line_layer_and_lines_outside_the_project(home, tmp_path):
    frame = red_lines().iloc[[0, 0, 0]].reset_index(drop=True)
    frame.loc[1, "geometry"] = shapely.box(X0, Y0, X0 + 24, Y0 + 200)  # the road's area
    frame.loc[2, "geometry"] = shapely.LineString([(X0 + 300, Y0), (X0 + 300, Y0 + 200)])
    checked = check_file(write(frame, tmp_path / "cg.gpkg"), "red_lines")
    assert errors(checked) == {"ZONING-LINE-EXPECTED": [1]}
    project = shapely.box(X0 - 10, Y0 - 10, X0 + 200, Y0 + 300)
    found = check_red_lines(checked.layer, project)
    outside = [f for f in found if f.rule == "ZONING-OUTSIDE-PROJECT"]
    assert [(f.row, f.params["amount"], f.params["unit"]) for f in outside] == [
        (2, 200.0, "m")]
    assert outside[0].location["type"] == "LineString"
    assert not [f for f in found if f.rule == "ZONING-NO-PROJECT-AREA"]


# -- the command line ------------------------------------------------------------------


def test_cli_validates_zoning_lots_with_exit_codes_and_report(run, tmp_path):
    good = write(clean_lots(), tmp_path / "good.gpkg")
    r = run("validate", good, "--kind", "zoning_lots")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["summary"]["kind"] == "zoning_lots" and report["summary"]["errors"] == 0
    assert "ZONING-NO-PROJECT-AREA" in report["summary"]["by_rule"]
    assert report["read"]["fields"]["mapped"]["floors_max"] == "tangcao"
    assert "6 features: 0 errors" in r.stderr
    frame = clean_lots()
    frame.loc[4, "hssdd"] = "1,5"
    bad = write(frame, tmp_path / "bad.gpkg")
    r = run("validate", bad, "--kind", "zoning_lots")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    f = [x for x in report["findings"] if x["rule"] == "ZONING-FAR-INCONSISTENT"]
    assert [x["feature"]["row"] for x in f] == [4] and f[0]["feature"]["key"] == {
        "lot_code": "A5"}
    lon, lat = f[0]["location"]["coordinates"]
    assert 107 < lon < 109 and 11 < lat < 12.5
    r = run("validate", bad, "--kind", "zoning_lots", "--format", "html",
            "--out", str(tmp_path / "r.html"))
    assert r.exit_code == 1 and "ZONING-FAR-INCONSISTENT" in (tmp_path / "r.html").read_text()


def test_cli_validates_red_lines(run, tmp_path):
    path = write(red_lines(), tmp_path / "cg.gpkg")
    r = run("validate", path, "--kind", "red_lines")
    assert r.exit_code == 1
    rules = {f["rule"] for f in json.loads(r.stdout)["findings"]}
    assert {"ZONING-WIDTH-MISSING", "ZONING-WIDTH-RANGE"} <= rules
    for fmt in ("html", "geojson"):
        r = run("validate", path, "--kind", "red_lines", "--format", fmt,
                "--out", str(tmp_path / f"r.{fmt}"))
        assert r.exit_code == 1, r.output
    frame = red_lines().iloc[[0]]
    r = run("validate", write(frame, tmp_path / "ok.gpkg"), "--kind", "red_lines", "--repair")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("kind,geometry,needs", [
    ("red_lines", shapely.Point(X0, Y0), "needs lines"),
    ("zoning_lots", shapely.Point(X0, Y0), "needs polygons"),
])
def test_cli_refuses_a_layer_without_the_right_geometry_in_one_line(run, tmp_path, kind,
                                                                   geometry, needs):
    path = write(gpd.GeoDataFrame({"malo": ["A1"]}, geometry=[geometry], crs="EPSG:5899"),
                 tmp_path / "x.gpkg")
    r = run("validate", path, "--kind", kind)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needs in lines[0] and "Traceback" not in r.output


@pytest.mark.parametrize("kind", ["zoning_lots", "red_lines"])
@pytest.mark.parametrize("district", [[], ["--district", "678"]])
def test_cli_ingest_of_a_zoning_kind_without_a_project_is_refused(run, tmp_path, kind,
                                                                district):
    path = write(clean_lots(), tmp_path / "lots.gpkg")
    r = run("ingest", path, "--kind", kind, *district)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("gisportal: error:") and "project" in lines[0]
    assert f"gisportal validate FILE --kind {kind}" in lines[0]
    assert r.stdout == ""


# -- anything a file can contain -------------------------------------------------------

_VALUES = st.one_of(st.none(), st.text(max_size=12), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["3-5", "≤5", "60%", "0,6", "5-10,5-5", "1.200", "1-1",
                                     "Đất ở mới", "CGXD", "đỏ", "-", "%", "÷", "≥", ""]))
_GEOMS = st.sampled_from([
    lot(0, 0), lot(0.5, 0), lot(1, 0), shapely.LineString(lot(2, 0).exterior.coords),
    shapely.LineString([(X0, Y0), (X0 + 30, Y0 + 5)]), shapely.Point(X0, Y0),
    shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)]),
    shapely.MultiLineString([[(X0, Y0), (X0, Y0 + 50)], [(X0 + 5, Y0), (X0 + 9, Y0)]]),
    shapely.GeometryCollection(), None])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["zoning_lots", "red_lines"]),
       rows=st.lists(st.tuples(_GEOMS, _VALUES, _VALUES, _VALUES, _VALUES), min_size=1,
                     max_size=6))
def test_nothing_a_file_holds_crashes_the_zoning_checks(home, tmp_path, kind, rows):
    from gisportal.base.errors import GisportalError

    frame = gpd.GeoDataFrame({
        "malo": [None if r[1] is None else str(r[1]) for r in rows],
        "tangcao": [None if r[2] is None else str(r[2]) for r in rows],
        "mdxd": [None if r[3] is None else str(r[3]) for r in rows],
        "lg": [None if r[4] is None else str(r[4]) for r in rows],
        "matcat": [None if r[2] is None else str(r[2]) for r in rows],
    }, geometry=[r[0] for r in rows], crs="EPSG:5899")
    path = tmp_path / f"f{abs(hash(repr(rows))) % 10**8}.geojson"
    frame.to_crs(4326).to_file(path, driver="GeoJSON")
    try:
        checked = check_file(path, kind)
    except GisportalError:
        return  # refused with its one-line reason (no geometry of the kind, …)
    report = checked.report.to_dict()
    assert report["summary"]["kind"] == kind
    json.dumps(report)
