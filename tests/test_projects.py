"""Planning projects end to end: the catalogue, uploads against a project, the decision,
publishing, and what a resident's look-up says of a parcel in a planned town.

The cadastre is `parcel_grid`'s 4 × 5 parcels of 20 m × 25 m in Đức Trọng; the project's
lots are drawn over it as a consultant's GeoPackage: a road lot (GT) 12 m wide along the
south edge of the block, cutting 2 m into the first row of parcels, and lots of housing
and green space north of it.
"""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely

from gisportal.base.errors import NotFoundError, StoreError, UsageError
from gisportal.services import lookup as lk
from gisportal.services import projects, workflow
from gisportal.services.decisions import attach_decision
from gisportal.services.ingest import ingest_file
from gisportal.store import projects as catalogue
from tests.conftest import DUC_TRONG_XY, parcel_grid, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY
PID = "678-lien-nghia-2000"
#: The road's north edge: 2 m into the first row of parcels (y0 .. y0 + 25).
ROAD_NORTH = Y0 + 2.0


def lots_frame() -> gpd.GeoDataFrame:
    """Lots covering x0-20 .. x0+120, y0-10 .. y0+110 without gaps, the road in the south."""
    road = shapely.box(X0 - 20, Y0 - 10, X0 + 120, ROAD_NORTH)
    west = shapely.box(X0 - 20, ROAD_NORTH, X0 + 50, Y0 + 110)
    east = shapely.box(X0 + 50, ROAD_NORTH, X0 + 120, Y0 + 110)
    return gpd.GeoDataFrame({
        "KyHieuLo": ["GT-01", "OM-01", "CX-01"],
        "ChucNang": ["Đất giao thông", "Đất ở mới", "CX"],
        "MatDoXD": ["", "60%", "5%"],
        "TangCao": ["", "3-5", "1"],
        "HeSoSDD": ["", "2,4", "0,05"],
    }, geometry=[road, west, east], crs="EPSG:5899")


def lines_frame() -> gpd.GeoDataFrame:
    """The road's red line (its north edge), and a building line 4 m behind it."""
    return gpd.GeoDataFrame({
        "TenDuong": ["Đường Thống Nhất", None],
        "LoGioi": ["12", None],
        "LoaiChiGioi": ["Chỉ giới đường đỏ", "CGXD"],
    }, geometry=[shapely.LineString([(X0 - 20, ROAD_NORTH), (X0 + 120, ROAD_NORTH)]),
                 shapely.LineString([(X0 - 20, ROAD_NORTH + 4), (X0 + 120, ROAD_NORTH + 4)])],
        crs="EPSG:5899")


@pytest.fixture
def town(store, tmp_path):
    """Published parcels in 678 and an empty project over them."""
    zip_path = write_shapefile_zip(parcel_grid(), tmp_path / "thua.zip")
    assert ingest_file(store, zip_path, "parcels", "678", publish=True).published
    projects.create(store.home, project_id=PID, district="678",
                    name="Quy hoạch phân khu đô thị Liên Nghĩa", level="phân khu",
                    scale="1/2.000", status="đã phê duyệt", by="planner")
    return store


def upload(store, tmp_path, frame, kind, name, **kwargs):
    path = tmp_path / name
    frame.to_file(path, driver="GPKG")
    return ingest_file(store, path, kind, None, project=PID, user="planner", **kwargs)


#: A small file that is a PDF as `store_pdf` checks one.
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def approve(store, version_id):
    attach_decision(store, version_id, number="1234/QĐ-UBND", date="2019-06-30",
                    authority="UBND tỉnh Lâm Đồng", pdf=PDF, pdf_name="QD-1234.pdf")


def test_a_resident_sees_the_lot_its_indicators_and_the_road(town, tmp_path):
    lots = upload(town, tmp_path, lots_frame(), "zoning_lots", "lo.gpkg")
    assert not lots.report.has_errors, lots.report.summary()
    assert lots.version.project == PID and lots.version.district == "678"
    # Without its decision the plan cannot reach residents.
    with pytest.raises(StoreError) as err:
        workflow.publish(town, lots.version.id, "planner")
    assert err.value.code == "PLAN-NO-DECISION"
    approve(town, lots.version.id)
    workflow.publish(town, lots.version.id, "planner")
    lines = upload(town, tmp_path, lines_frame(), "red_lines", "cg.gpkg", publish=True)
    assert lines.published, lines.not_published

    ans = lk.lookup_key(town, "678", 1, 1)  # the south-west parcel: x0..x0+20, y0..y0+25
    [plan] = ans["zoning"]
    assert plan["project"]["id"] == PID
    assert plan["project"]["name"] == "Quy hoạch phân khu đô thị Liên Nghĩa"
    assert (plan["project"]["level"], plan["project"]["scale"]) == ("zoning", "1/2000")
    assert plan["project"]["decision"]["number"] == "1234/QĐ-UBND"
    by_code = {lot["code"]: lot for lot in plan["lots"]}
    assert set(by_code) == {"OM-01", "GT-01"}
    om = by_code["OM-01"]
    assert (om["function"], om["max_density_pct"], om["floors_min"], om["floors_max"],
            om["far"]) == ("ODM", 60.0, 3, 5, 2.4)
    assert om["area_m2"] == pytest.approx(20 * 23, abs=0.2)
    assert om["share"] == pytest.approx(23 / 25, abs=1e-3)
    assert by_code["GT-01"]["area_m2"] == pytest.approx(40.0, abs=0.2)
    red = plan["red_line"]
    assert red["area_m2"] == pytest.approx(40.0, abs=0.2)
    assert red["share"] == pytest.approx(0.08, abs=1e-3)
    assert red["roads"] == [{"name": "Đường Thống Nhất", "width_m": 12.0}]
    assert red["building_line_m"] == pytest.approx(4.0, abs=0.05)

    # A parcel of the second row lies wholly in the housing lot: no road takes from it.
    north = lk.lookup_key(town, "678", 1, 6)
    [plan] = north["zoning"]
    assert [lot["code"] for lot in plan["lots"]] == ["OM-01"]
    assert plan["lots"][0]["share"] == pytest.approx(1.0)
    assert plan["red_line"] is None


def test_a_district_without_projects_answers_an_empty_zoning(town):
    assert lk.lookup_key(town, "678", 1, 1)["zoning"] == []


def test_an_adjustment_replaces_what_residents_see_and_can_be_rolled_back(town, tmp_path):
    first = upload(town, tmp_path, lots_frame(), "zoning_lots", "lo.gpkg")
    approve(town, first.version.id)
    workflow.publish(town, first.version.id, "planner")
    adjusted = lots_frame()
    adjusted.loc[1, "ChucNang"] = "HH"   # the housing lot becomes mixed use
    adjusted.loc[1, "TangCao"] = "5-9"
    adjusted.loc[1, "HeSoSDD"] = "4,5"
    second = upload(town, tmp_path, adjusted, "zoning_lots", "lo_dc.gpkg")
    approve(town, second.version.id)
    pre = workflow.preview(town, second.version.id)
    assert pre.previous.id == first.version.id and pre.counts.get("use_changed") == 1
    workflow.publish(town, second.version.id, "planner")
    lot = lk.lookup_key(town, "678", 1, 6)["zoning"][0]["lots"][0]
    assert (lot["function"], lot["floors_max"]) == ("HH", 9)
    workflow.rollback_project(town, PID, "zoning_lots", first.version.id, "planner")
    lot = lk.lookup_key(town, "678", 1, 6)["zoning"][0]["lots"][0]
    assert (lot["function"], lot["floors_max"]) == ("ODM", 5)
    # The district's own history knows nothing of the project.
    assert all(v.project is None for v in town.versions("678"))


def test_the_first_lots_give_a_project_its_area_and_red_lines_are_checked_against_it(
        town, tmp_path):
    lots = upload(town, tmp_path, lots_frame(), "zoning_lots", "lo.gpkg")
    area = catalogue.get(town.home, PID).boundary
    assert area is not None and area.area == pytest.approx(140 * 120, rel=1e-6)
    outside = lines_frame()
    outside.loc[0, "geometry"] = shapely.LineString([(X0 - 20, ROAD_NORTH),
                                                     (X0 + 400, ROAD_NORTH)])
    checked = upload(town, tmp_path, outside, "red_lines", "cg.gpkg")
    rules = {f.rule for f in checked.report.findings if f.level == "error"}
    assert "ZONING-OUTSIDE-PROJECT" in rules and checked.version.has_errors
    assert lots.version.project == PID


def test_facts_changed_in_the_catalogue_reach_the_next_look_up(town, tmp_path):
    lots = upload(town, tmp_path, lots_frame(), "zoning_lots", "lo.gpkg")
    approve(town, lots.version.id)
    workflow.publish(town, lots.version.id, "planner")
    projects.update(town, PID, by="admin", name="Điều chỉnh quy hoạch phân khu Liên Nghĩa",
                    status="adjusted")
    info = lk.lookup_key(town, "678", 1, 6)["zoning"][0]["project"]
    assert (info["name"], info["status"]) == ("Điều chỉnh quy hoạch phân khu Liên Nghĩa",
                                              "adjusted")


def test_project_input_is_checked_the_way_a_clerk_writes_it(town, tmp_path):
    home = town.home
    for bad in ({"level": "huyện"}, {"scale": "lớn"}, {"name": "  "},
                {"level": "detailed", "scale": "1/2000"}):
        args = {"project_id": "678-x", "district": "678", "name": "QH", "level": "zoning",
                **bad}
        with pytest.raises(UsageError):
            projects.create(home, by="p", **args)
    with pytest.raises(NotFoundError):
        projects.create(home, project_id="678-x", district="999", name="QH", level="zoning",
                        by="p")
    with pytest.raises(UsageError) as bad_id:
        projects.create(home, project_id="Liên Nghĩa", district="678", name="QH",
                        level="zoning", by="p")
    assert bad_id.value.code == "PROJECT-ID"
    with pytest.raises(StoreError) as err:
        projects.create(home, project_id=PID, district="678", name="QH", level="zoning",
                        by="p")
    assert err.value.code == "PROJECT-EXISTS"
    # A district layer cannot be uploaded against a project, nor lots without one.
    path = tmp_path / "lo.gpkg"
    lots_frame().to_file(path, driver="GPKG")
    with pytest.raises(UsageError):
        ingest_file(town, path, "zoning_lots", "678")
    with pytest.raises(UsageError):
        ingest_file(town, path, "plan", None, project=PID)
    with pytest.raises(UsageError):
        ingest_file(town, path, "zoning_lots", "672", project=PID)


def test_the_command_line_runs_a_project_from_creation_to_publication(run, tmp_path, home):
    zip_path = write_shapefile_zip(parcel_grid(), tmp_path / "thua.zip")
    assert run("ingest", str(zip_path), "--kind", "parcels", "--district", "678",
               "--publish").exit_code == 0
    area = tmp_path / "ranh_gioi.gpkg"
    gpd.GeoDataFrame({"Ten": ["Ranh giới"]},
                     geometry=[shapely.box(X0 - 20, Y0 - 10, X0 + 120, Y0 + 110)],
                     crs="EPSG:5899").to_file(area, driver="GPKG")
    r = run("projects", "add", PID, "--district", "678", "--name",
            "Quy hoạch phân khu đô thị Liên Nghĩa", "--level", "zoning", "--scale", "1/2000",
            "--area", str(area))
    assert r.exit_code == 0, r.output
    assert "1.68 ha" in r.stdout
    lots = tmp_path / "lo.gpkg"
    lots_frame().to_file(lots, driver="GPKG")
    r = run("ingest", str(lots), "--kind", "zoning_lots", "--project", PID)
    assert r.exit_code == 0, r.output
    version = int(r.stdout.strip().splitlines()[-1])
    r = run("publish", "--project", PID, "--kind", "zoning_lots", "--version", str(version))
    assert r.exit_code == 1 and r.stdout == ""
    assert "decision" in r.stderr
    pdf = tmp_path / "QD-1234.pdf"
    pdf.write_bytes(PDF)
    assert run("decision", "--version", str(version), "--number", "1234/QĐ-UBND", "--date",
               "30/06/2019", "--authority", "UBND tỉnh Lâm Đồng",
               "--pdf", str(pdf)).exit_code == 0
    # The version is a lots layer of this project, not of another.
    r = run("publish", "--project", "678-khac", "--kind", "zoning_lots", "--version",
            str(version))
    assert r.exit_code != 0 and "not a layer of project" in r.stderr
    r = run("publish", "--project", PID, "--kind", "zoning_lots", "--version", str(version))
    assert r.exit_code == 0, r.output
    assert f"project {PID}" in r.stdout
    listed = json.loads(run("projects", "list", "--json").stdout)
    assert [(p["id"], p["published"]) for p in listed] == [(PID, ["zoning_lots"])]
    shown = json.loads(run("projects", "show", PID).stdout)
    assert shown["layers"]["zoning_lots"][0]["decision"] == "1234/QĐ-UBND"
    ans = json.loads(run("lookup", "--district", "678", "--sheet", "1", "--parcel",
                         "1").stdout)
    assert ans["zoning"][0]["lots"][0]["code"] == "OM-01"
    assert [v["project"] for v in json.loads(run("versions", "--project", PID,
                                                 "--json").stdout)] == [PID]


def test_a_project_document_is_a_pdf(town, tmp_path):
    bad = tmp_path / "thuyet_minh.pdf"
    bad.write_bytes(b"\x89PNG not a pdf")
    from gisportal.base.errors import InputError

    with pytest.raises(InputError):
        projects.add_document(town, PID, bad, kind="report", title="Thuyết minh", by="p")
    good = tmp_path / "quy_dinh.pdf"
    good.write_bytes(PDF)
    project = projects.add_document(town, PID, good, kind="regulation",
                                    title="Quy định quản lý theo đồ án", by="p")
    [doc] = project.documents
    assert (doc["kind"], doc["pdf_name"], doc["size"]) == ("regulation", "quy_dinh.pdf",
                                                           good.stat().st_size)
    described = projects.describe(project)
    assert described["documents"][0]["kind_name"] == "Quy định quản lý"
    assert described["level_name"] == "Quy hoạch phân khu"


@pytest.mark.production
def test_the_catalogue_lives_in_production_mode_too(tmp_path, production_env):
    """The projects table in PostgreSQL (``gisportal migrate`` creates it)."""
    from gisportal.store.home import DataHome

    home = DataHome.at(tmp_path / "h")
    made = projects.create(home, project_id=PID, district="678", name="QH phân khu",
                           level="zoning", by="p",
                           area=shapely.box(X0, Y0, X0 + 100, Y0 + 100))
    got = catalogue.get(home, PID)
    assert got == made and got.boundary.area == pytest.approx(10_000)
    assert [p.id for p in catalogue.list_projects(home, "678")] == [PID]
    changed = catalogue.update(home, PID, by="q", status="approved")
    assert (changed.status, changed.updated_by) == ("approved", "q")


def test_a_click_on_the_planned_road_names_the_lot_and_the_road(town, tmp_path):
    """A point with no parcel (the road south of the block) answers the lot under it,
    without areas, and the road its red line names."""
    from gisportal.base.crs import to_lonlat

    lots = upload(town, tmp_path, lots_frame(), "zoning_lots", "lo.gpkg")
    approve(town, lots.version.id)
    workflow.publish(town, lots.version.id, "planner")
    assert upload(town, tmp_path, lines_frame(), "red_lines", "cg.gpkg", publish=True).published
    lon, lat = to_lonlat(X0 + 30, Y0 - 5)
    ans = lk.lookup_lonlat(town, float(lat), float(lon))
    assert ans["parcel"] is None
    [plan] = ans["zoning"]
    assert [(lot["code"], lot["area_m2"], lot["share"]) for lot in plan["lots"]] == [
        ("GT-01", None, None)]
    assert plan["red_line"] == {"area_m2": None, "share": None,
                                "roads": [{"name": "Đường Thống Nhất", "width_m": 12.0}]}


def test_a_red_line_over_a_plan_without_road_lots_still_names_its_road(town, tmp_path):
    """A consultant's lots that leave the road out of the lots (a housing lot up to the
    block's edge) and a red line drawn across the parcel: no area is taken by a road
    lot, but the road that cuts the parcel is named; a lot of an unknown function has
    its code and no name; a line of no known type counts as a red line."""
    frame = lots_frame()
    frame.loc[0, "ChucNang"] = "ĐẤT LẠ"
    upload(town, tmp_path, frame, "zoning_lots", "lo.gpkg")
    lines = lines_frame()
    lines.loc[0, "geometry"] = shapely.LineString([(X0 - 20, Y0 + 10), (X0 + 120, Y0 + 10)])
    lines.loc[0, "LoaiChiGioi"] = None
    lines = lines.iloc[[0]]
    lots = town.versions(kind="zoning_lots", project=PID)[0]
    approve(town, lots.id)
    workflow.publish(town, lots.id, "planner")
    # The area the first lots gave: the red line is inside it.
    assert upload(town, tmp_path, lines, "red_lines", "cg.gpkg", publish=True).published
    [plan] = lk.lookup_key(town, "678", 1, 1)["zoning"]
    road = next(lot for lot in plan["lots"] if lot["code"] == "GT-01")
    assert (road["function"], road["function_name"]) == ("ĐẤT LẠ", None)
    assert plan["red_line"]["area_m2"] == 0.0
    assert plan["red_line"]["roads"] == [{"name": "Đường Thống Nhất", "width_m": 12.0}]
    assert "building_line_m" not in plan["red_line"]


def test_validate_checks_a_file_against_a_projects_area(run, tmp_path, home):
    """`gisportal validate --project`: the project's area is the context (a red line
    beyond it is an error, exit 1); an unknown project is one line, exit 2 or 1."""
    area = tmp_path / "ranh_gioi.gpkg"
    gpd.GeoDataFrame({"Ten": ["Ranh giới"]},
                     geometry=[shapely.box(X0 - 20, Y0 - 10, X0 + 120, Y0 + 110)],
                     crs="EPSG:5899").to_file(area, driver="GPKG")
    assert run("projects", "add", PID, "--district", "678", "--name", "Phân khu",
               "--level", "zoning", "--area", str(area)).exit_code == 0
    lines = lines_frame()
    lines.loc[0, "geometry"] = shapely.LineString([(X0 - 20, ROAD_NORTH), (X0 + 400, ROAD_NORTH)])
    path = tmp_path / "cg.gpkg"
    lines.to_file(path, driver="GPKG")
    r = run("validate", str(path), "--kind", "red_lines", "--project", PID)
    assert r.exit_code == 1, r.output
    rules = {f["rule"] for f in json.loads(r.stdout)["findings"]}
    assert "ZONING-OUTSIDE-PROJECT" in rules and "ZONING-NO-PROJECT-AREA" not in rules
    alone = run("validate", str(path), "--kind", "red_lines")
    assert alone.exit_code == 0 and "ZONING-NO-PROJECT-AREA" in alone.stdout
    r = run("validate", str(path), "--kind", "red_lines", "--project", "678-khong-co")
    assert r.exit_code in (1, 2) and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "678-khong-co" in r.stderr
