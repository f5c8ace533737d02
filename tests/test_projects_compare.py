"""Comparing two versions of a planning project (issue 15): which lots changed function
or indicators, which were split or removed, and the m² per function — in the engine, on
the public page ``/projects/<id>/compare``, in its API and on the command line.

The versions are real uploads: a consultant's GeoPackage with the field names drawings
use (``KyHieuLo``, ``ChucNang``, ``MatDoXD``, ``TangCao``, ``HeSoSDD``), ingested against
the project, each approved by a decision and published through the one publish path.
The adjustment (version 2) makes one edit of each kind, on lots of 100 m × 100 m:

- A-01 changes function (ODM → TM), nothing else;
- B-01 keeps its function, its floors go from 3-5 to 3-7;
- C-01 (HH) is split: C-01a keeps 60 % as HH, C-01b (40 %) becomes a park (CX);
- D-01 (CX) is removed, its land joined to E-01 (reshaped, same code).

The expected m² per function are worked out here from those edits, not from the engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from gisportal.base import seeds
from gisportal.base.errors import NotFoundError, UsageError
from gisportal.outputs.compare import compare_versions
from gisportal.services import projects, workflow
from gisportal.services.decisions import attach_decision
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from tests.conftest import DUC_TRONG_XY
from tests.test_projects import PDF

X0, Y0 = DUC_TRONG_XY
PID = "678-lien-nghia-dieu-chinh"
#: A second project, published once: nothing to compare.
ONCE = "678-lien-nghia-mot-lan"

#: (code, function, density, floors, FAR, xmin, ymin, xmax, ymax) in metres from X0, Y0.
LOTS_V1 = [
    ("GT-01", "Đất giao thông", "", "", "", 0, 0, 300, 20),
    ("A-01", "Đất ở mới", "60%", "3-5", "2,4", 0, 20, 100, 120),
    ("B-01", "ODM", "60%", "3-5", "2,4", 100, 20, 200, 120),
    ("C-01", "HH", "50%", "5-9", "3,6", 200, 20, 300, 120),
    ("D-01", "CX", "5%", "1", "0,05", 0, 120, 100, 200),
    ("E-01", "ODM", "70%", "3-5", "3", 100, 120, 300, 200),
]
LOTS_V2 = [
    ("GT-01", "Đất giao thông", "", "", "", 0, 0, 300, 20),
    ("A-01", "TM", "60%", "3-5", "2,4", 0, 20, 100, 120),
    ("B-01", "ODM", "60%", "3-7", "2,4", 100, 20, 200, 120),
    ("C-01a", "HH", "50%", "5-9", "3,6", 200, 20, 260, 120),
    ("C-01b", "Đất cây xanh", "5%", "1", "0,05", 260, 20, 300, 120),
    ("E-01", "ODM", "70%", "3-5", "3", 0, 120, 300, 200),
]
#: m² per function, before and after, from the edits above.
AREAS = {"GT": (6000, 6000), "ODM": (36000, 34000), "TM": (0, 10000),
         "HH": (10000, 6000), "CX": (8000, 4000)}


def lots_frame(lots) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"KyHieuLo": [r[0] for r in lots], "ChucNang": [r[1] for r in lots],
         "MatDoXD": [r[2] for r in lots], "TangCao": [r[3] for r in lots],
         "HeSoSDD": [r[4] for r in lots]},
        geometry=[shapely.box(X0 + r[5], Y0 + r[6], X0 + r[7], Y0 + r[8]) for r in lots],
        crs="EPSG:5899")


def upload(store, tmp: Path, project: str, lots, name: str, *, publish: bool = True,
           decision: str = "1/QĐ-UBND"):
    """Ingest `lots` against `project` as a GeoPackage; with `publish`, approve it by a
    decision and publish it (what a planner does)."""
    path = tmp / f"{name}.gpkg"
    lots_frame(lots).to_file(path, driver="GPKG")
    result = ingest_file(store, path, "zoning_lots", None, project=project, user="planner")
    assert not result.report.has_errors, result.report.summary()
    if publish:
        attach_decision(store, result.version.id, number=decision, date="2024-06-30",
                        authority="UBND tỉnh Lâm Đồng", pdf=PDF, pdf_name="qd.pdf")
        workflow.publish(store, result.version.id, "planner", confirm_removals=True)
    return result.version


def build(home: Path, tmp: Path) -> dict[str, int]:
    """The two projects of the module doc, and a draft adjustment of the first (v3)."""
    with open_store(home, crs="EPSG:5899") as store:
        projects.create(store.home, project_id=PID, district="678",
                        name="Điều chỉnh quy hoạch phân khu Liên Nghĩa", level="zoning",
                        scale="1/2000", status="adjusted", by="planner")
        projects.create(store.home, project_id=ONCE, district="678",
                        name="Quy hoạch chi tiết một lần", level="detailed",
                        scale="1/500", status="approved", by="planner")
        v1 = upload(store, tmp, PID, LOTS_V1, "v1", decision="12/QĐ-UBND")
        v2 = upload(store, tmp, PID, LOTS_V2, "v2", decision="345/QĐ-UBND")
        draft = [("GT-01", "GT", "", "", "", 0, 0, 300, 20),
                 *[(c, "CQ", *rest) for c, _f, *rest in LOTS_V2[1:]]]
        v3 = upload(store, tmp, PID, draft, "v3", publish=False)
        once = upload(store, tmp, ONCE, LOTS_V1, "once")
    return {"v1": v1.id, "v2": v2.id, "draft": v3.id, "once": once.id}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("projects-compare")
    home = tmp / "home"
    ids = build(home, tmp)
    return {"home": home, **ids}


@pytest.fixture(scope="module")
def store(site):
    s = open_store(site["home"], crs="EPSG:5899")
    yield s
    s.close()


# -- the engine ----------------------------------------------------------------------------


def test_every_edit_of_the_adjustment_is_found(store, site):
    result = compare_versions(store, site["v1"], site["v2"], project=PID,
                              kind="zoning_lots")
    assert result.key == ("lot_code",)
    assert result.counts == {"added": 1, "removed": 1, "use_changed": 1,
                             "indicators_changed": 1, "reshaped": 2, "renumbered": 0,
                             "unchanged": 1}
    assert result.flags == {"use_changed": 1, "indicators_changed": 1, "reshaped": 2,
                            "renumbered": 1}
    f = {(r.type, r.lot_code_before if r.type != "added" else None,
          r.lot_code_after if r.type != "removed" else None): r
         for r in result.features.itertuples()}
    assert set(f) == {("use_changed", "A-01", "A-01"), ("indicators_changed", "B-01", "B-01"),
                      ("reshaped", "C-01", "C-01a"), ("added", None, "C-01b"),
                      ("removed", "D-01", None), ("reshaped", "E-01", "E-01")}
    a = f[("use_changed", "A-01", "A-01")]
    assert (a.code_before, a.code_after, a.changes) == ("ODM", "TM", "use_changed")
    assert a.indicators == ""  # its indicators are the same
    b = f[("indicators_changed", "B-01", "B-01")]
    assert (b.code_before, b.code_after, b.indicators) == ("ODM", "ODM", "floors_max")
    assert (b.floors_max_before, b.floors_max_after) == (5, 7)
    assert (b.floors_min_before, b.floors_min_after) == (3, 3)
    assert (b.far_before, b.far_after) == (pytest.approx(2.4), pytest.approx(2.4))
    c = f[("reshaped", "C-01", "C-01a")]
    assert c.changes == "reshaped+renumbered" and c.matched_by == "geometry"
    assert c.iou == pytest.approx(0.6)
    assert c.area_after_m2 == pytest.approx(6000)
    e = f[("reshaped", "E-01", "E-01")]
    assert e.matched_by == "key" and e.area_delta_m2 == pytest.approx(8000)


def test_indicators_before_and_after_in_the_geojson(store, site):
    doc = compare_versions(store, site["v1"], site["v2"], project=PID).to_dict()
    by_code = {(p["key_before"] or p["key_after"])["lot_code"]: p
               for p in (f["properties"] for f in doc["features"]["features"])}
    assert by_code["B-01"]["indicators"] == {"floors_max": {"before": 5, "after": 7}}
    assert by_code["B-01"]["changes"] == ["indicators_changed"]
    assert by_code["A-01"]["indicators"] == {}
    assert by_code["C-01b"]["indicators"] == {}
    s = doc["summary"]
    assert s["project"] == PID and s["kind"] == "zoning_lots"
    assert s["indicator_fields"] == ["density_pct", "floors_min", "floors_max", "far"]
    json.dumps(doc, allow_nan=False)  # JSON as is: no NaN, no numpy types


def test_area_per_function_named_from_the_zoning_functions(store, site):
    result = compare_versions(store, site["v1"], site["v2"], project=PID)
    rows = {r["code"]: r for r in result.summary()["areas"]}
    assert set(rows) == set(AREAS)
    for code, (before, after) in AREAS.items():
        assert rows[code]["before_m2"] == pytest.approx(before), code
        assert rows[code]["after_m2"] == pytest.approx(after), code
        assert rows[code]["delta_m2"] == pytest.approx(after - before), code
    # names and colours of seeds/zoning_functions.csv, not of the land-use codes
    assert (rows["TM"]["name"], rows["TM"]["name_en"], rows["TM"]["color"]) == (
        "Đất thương mại dịch vụ", "Commercial and services land", "#FF9966")
    assert rows["ODM"]["name"] == "Đất ở mới" and rows["ODM"]["color"] == "#FFD24D"
    functions = seeds.zoning_functions()
    for code, row in rows.items():
        f = functions.get(code)
        assert (row["name"], row["name_en"], row["color"]) == (f.name_vi, f.name_en, f.color)
    assert [r["code"] for r in result.summary()["areas"]][:1] == ["TM"]  # largest change
    assert result.summary()["total_area_m2"]["delta"] == pytest.approx(0)


def test_lots_against_themselves_are_all_unchanged(store, site):
    result = compare_versions(store, site["once"], site["once"])
    assert result.counts == {"added": 0, "removed": 0, "use_changed": 0,
                             "indicators_changed": 0, "reshaped": 0, "renumbered": 0,
                             "unchanged": len(LOTS_V1)}
    assert result.features.empty


def test_versions_of_another_project_or_lines_are_refused(store, site):
    with pytest.raises(NotFoundError, match=f"not a zoning_lots layer of project {PID}"):
        compare_versions(store, site["v1"], site["once"], project=PID)
    with pytest.raises(UsageError, match=f"project {PID}.*project {ONCE}"):
        compare_versions(store, site["v1"], site["once"])
    with pytest.raises(NotFoundError, match="not a planning project id"):
        compare_versions(store, site["v1"], site["v2"], project="../x")
