"""Geometry repair on real files: every defect fixed, every change listed, nothing else touched.

The corpus is written as real GeoPackages and a zipped Shapefile with pyogrio, read back
through ``check_file`` (the same read → normalise path a planner's upload takes), then
repaired. GeoPackage stores WKB as given, so every defect survives the round trip.
A Shapefile does not keep them all: GDAL sorts shapefile rings into polygons by
containment on read, so a hole lying outside its shell comes back as a valid second
polygon — that defect is tested through the GeoPackage only. An unclosed ring never
reaches repair: GEOS refuses to build one, so the reader closes it and says so
(READ-GEOMETRY-FIXED, see tests/test_validation_geometry.py).
"""

from __future__ import annotations

import dataclasses
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely import wkt

from gisportal.pipeline.normalise import NormalisedLayer
from gisportal.pipeline.repair import (
    ACTIONS,
    OVERLAP_THRESHOLD,
    SNAP_THRESHOLD,
    RepairResult,
    repair,
)
from gisportal.pipeline.validation.checks import check_geometry
from gisportal.pipeline.validation.context import ValidationContext
from gisportal.services.ingest import check_file
from tests.conftest import DUC_TRONG_XY, parcel_grid, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY

#: Isolated defects (local metres, each shifted to its own spot south of the grid).
DEFECTS = {
    "bowtie": "POLYGON((0 0, 10 10, 10 0, 0 10, 0 0))",
    "self_touching": "POLYGON((0 0, 10 0, 10 10, 5 10, 7 5, 3 5, 5 10, 0 10, 0 0))",
    "hole_outside": "POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (20 0, 25 0, 25 5, 20 5, 20 0))",
    "nested_shells": "MULTIPOLYGON(((0 0, 10 0, 10 10, 0 10, 0 0)), ((2 2, 4 2, 4 4, 2 4, 2 2)))",
    "spike": "POLYGON((0 0, 10 0, 10 5, 15 5, 10 5, 10 10, 0 10, 0 0))",
    "repeated": "POLYGON((0 0, 10 0, 10 0, 10 10, 0 10, -0.0003 10.0003, 0 0))",
    "collapsed": "POLYGON((0 0, 10 0, 20 0, 0 0))",
}
GRID_ROWS, GRID_COLS = 3, 4
N_GRID = GRID_ROWS * GRID_COLS
#: Grid rows (0-based, = src_row) with a small overlap (1 bulges 0.2 m² into 2) and
#: a big one (5 runs 2 m into 6: 50 m²).
SMALL_A, SMALL_B = 1, 2
BIG_A, BIG_B = 5, 6
SMALL_OVERLAP_M2 = 0.2


def _row(name: str) -> int:
    return N_GRID + list(DEFECTS).index(name)


def _defect(name: str) -> shapely.Geometry:
    k = list(DEFECTS).index(name)
    return shapely.affinity.translate(wkt.loads(DEFECTS[name]), X0 + 50 * k, Y0 - 200)


def _parcels(defects: list[str] | None = None) -> gpd.GeoDataFrame:
    """A 3 × 4 block of 20 × 25 m parcels with a small and a big overlap, then defects."""
    grid = parcel_grid(GRID_ROWS, GRID_COLS)
    geoms = np.asarray(grid.geometry.values).copy()
    x0, y0, x1, y1 = geoms[SMALL_A].bounds
    # A triangle 25 m long and 1.6 cm deep into the neighbour: 0.5 · 25 · 0.016 = 0.2 m².
    geoms[SMALL_A] = shapely.Polygon([(x0, y0), (x1, y0), (x1 + 0.016, (y0 + y1) / 2),
                                      (x1, y1), (x0, y1)])
    x0, y0, x1, y1 = geoms[BIG_A].bounds
    geoms[BIG_A] = shapely.box(x0, y0, x1 + 2.0, y1)
    grid = grid.set_geometry(geoms)
    names = list(DEFECTS) if defects is None else defects
    extra = parcel_grid(1, len(names))
    extra = extra.set_geometry([_defect(n) for n in names])
    extra["SoTo"] = 9
    return gpd.GeoDataFrame(pd.concat([grid, extra], ignore_index=True), crs="EPSG:5899")


def _plan_zones() -> gpd.GeoDataFrame:
    """3 × 3 plan zones of 100 m; the centre one (row 4) stops 5 cm short of row 5."""
    xs, ys = np.meshgrid(np.arange(3) * 100.0 + X0, np.arange(3) * 100.0 + Y0)
    xs, ys = xs.ravel(), ys.ravel()
    geoms = shapely.box(xs, ys, xs + 100, ys + 100)
    geoms[4] = shapely.box(xs[4], ys[4], xs[4] + 99.95, ys[4] + 100)
    return gpd.GeoDataFrame({"MaVung": [f"QH{i:02d}" for i in range(9)],
                             "LoaiDat": ["ONT", "CLN", "HNK", "DGT", "ONT", "CLN", "LUC",
                                         "ONT", "SKC"]},
                            geometry=geoms, crs="EPSG:5899")


@pytest.fixture
def parcels_layer(home, tmp_path) -> NormalisedLayer:
    path = tmp_path / "thua.gpkg"
    pyogrio.write_dataframe(_parcels(), path)
    return check_file(path, "parcels").layer


@pytest.fixture
def parcels_result(parcels_layer) -> RepairResult:
    return repair(parcels_layer)


@pytest.fixture
def plan_layer(home, tmp_path) -> NormalisedLayer:
    path = tmp_path / "quy_hoach.gpkg"
    pyogrio.write_dataframe(_plan_zones(), path)
    return check_file(path, "plan").layer


def _by_row(result: RepairResult) -> dict[int, list]:
    out: dict[int, list] = {}
    for c in result.changes:
        out.setdefault(c.row, []).append(c)
    return out


def _wkb(frame: gpd.GeoDataFrame, rows) -> dict[int, bytes]:
    geoms = frame.geometry.values
    src = frame["src_row"].to_numpy()
    return {int(r): shapely.to_wkb(g) for r, g in zip(src, geoms, strict=True) if r in rows}


# ------------------------------------------------------------------------ the corpus

def test_corpus_survives_the_geopackage_round_trip(parcels_layer):
    """The defects really are in the layer repair gets (not fixed by reading)."""
    geoms = parcels_layer.frame.geometry.values
    src = parcels_layer.frame["src_row"].to_numpy()
    reasons = dict(zip(src.tolist(), shapely.is_valid_reason(geoms), strict=True))
    assert reasons[_row("bowtie")].startswith("Self-intersection")
    assert reasons[_row("self_touching")].startswith("Ring Self-intersection")
    assert reasons[_row("hole_outside")].startswith("Hole lies outside shell")
    assert reasons[_row("nested_shells")].startswith("Nested shells")
    assert reasons[_row("spike")].startswith("Self-intersection")
    assert reasons[_row("collapsed")].startswith("Self-intersection")
    assert reasons[_row("repeated")] == "Valid Geometry"
    ov = shapely.area(shapely.intersection(geoms[SMALL_A], geoms[SMALL_B]))
    assert ov == pytest.approx(SMALL_OVERLAP_M2, abs=1e-6)


def test_every_geometry_valid_after_repair(parcels_result, parcels_layer):
    geoms = parcels_result.frame.geometry.values
    assert shapely.is_valid(geoms).all()
    assert np.isin(shapely.get_type_id(geoms), (3, 6)).all()
    findings = check_geometry(parcels_result.apply_to(parcels_layer), ValidationContext())
    assert not [f for f in findings if f.rule == "GEOM-INVALID"]


def test_changes_name_the_right_rows_and_actions(parcels_result):
    by_row = _by_row(parcels_result)
    actions = {r: [c.action for c in cs] for r, cs in by_row.items()}
    assert actions == {
        _row("bowtie"): ["REPAIR-MAKE-VALID"],
        _row("self_touching"): ["REPAIR-MAKE-VALID"],
        _row("hole_outside"): ["REPAIR-MAKE-VALID"],
        _row("nested_shells"): ["REPAIR-MAKE-VALID"],
        _row("spike"): ["REPAIR-MAKE-VALID"],
        _row("repeated"): ["REPAIR-REPEATED-POINTS"],
        _row("collapsed"): ["REPAIR-EMPTY-DROPPED"],
        # longest_border: the overlap goes to one of the two parcels (both border it
        # for 25 m), the other is trimmed.
        _trimmed(parcels_result).row: ["REPAIR-OVERLAP-TRIMMED"],
    }
    assert all(c.action in ACTIONS for c in parcels_result.changes)
    assert [c.row for c in parcels_result.changes] == sorted(c.row for c in
                                                             parcels_result.changes)


def test_bowtie_becomes_its_two_triangles(parcels_result):
    (c,) = _by_row(parcels_result)[_row("bowtie")]
    assert c.area_before_m2 == pytest.approx(0.0)  # the two lobes cancel in GEOS' area
    assert c.area_after_m2 == pytest.approx(25.0 + 25.0)
    assert "split into 2 polygons" in c.detail and "tách thành 2 đa giác" in c.detail_vi
    geom = _geom(parcels_result, _row("bowtie"))
    assert geom.geom_type == "MultiPolygon"
    assert sorted(p.area for p in geom.geoms) == pytest.approx([25.0, 25.0])


def test_ring_defects_are_explained(parcels_result):
    by_row = _by_row(parcels_result)
    (touch,) = by_row[_row("self_touching")]
    assert (touch.area_before_m2, touch.area_after_m2) == pytest.approx((90.0, 90.0))
    assert "with a hole" in touch.detail
    parts = shapely.get_parts(_geom(parcels_result, _row("self_touching")))
    assert len(parts) == 1 and shapely.get_num_interior_rings(parts[0]) == 1

    (hole,) = by_row[_row("hole_outside")]
    # GEOS "structure": the stray hole becomes a polygon of its own (75 = 100 - 25 before).
    assert (hole.area_before_m2, hole.area_after_m2) == pytest.approx((75.0, 125.0))
    assert "separate polygon" in hole.detail and "đa giác riêng" in hole.detail_vi
    assert shapely.get_num_geometries(_geom(parcels_result, _row("hole_outside"))) == 2

    (nested,) = by_row[_row("nested_shells")]
    assert (nested.area_before_m2, nested.area_after_m2) == pytest.approx((104.0, 100.0))
    assert "merged" in nested.detail

    (spike,) = by_row[_row("spike")]
    assert (spike.area_before_m2, spike.area_after_m2) == pytest.approx((100.0, 100.0))
    assert "spike" in spike.detail and "gai" in spike.detail_vi
    assert shapely.equals(_geom(parcels_result, _row("spike")),
                          shapely.affinity.translate(shapely.box(0, 0, 10, 10),
                                                     X0 + 50 * list(DEFECTS).index("spike"),
                                                     Y0 - 200))
    # each detail names the GEOS point of the defect, in store-CRS metres (to the cm)
    for c, name, (lx, ly) in ((touch, "self_touching", (5, 10)), (hole, "hole_outside", (20, 0)),
                              (nested, "nested_shells", (2, 2)), (spike, "spike", (15, 5))):
        m = re.search(r"\((\d+\.\d\d) (\d+\.\d\d)\)", c.detail)
        assert m and m.group(0) in c.detail_vi
        k = list(DEFECTS).index(name)
        assert float(m.group(1)) == pytest.approx(X0 + 50 * k + lx, abs=0.01)
        assert float(m.group(2)) == pytest.approx(Y0 - 200 + ly, abs=0.01)


def test_repeated_points_removed(parcels_result, parcels_layer):
    (c,) = _by_row(parcels_result)[_row("repeated")]
    assert c.area_before_m2 == pytest.approx(c.area_after_m2, abs=1e-2)
    assert c.detail.startswith("2 repeated vertices")
    before = _geom_of(parcels_layer.frame, _row("repeated"))
    after = _geom(parcels_result, _row("repeated"))
    assert shapely.get_num_coordinates(after) == shapely.get_num_coordinates(before) - 2


def test_collapsed_feature_dropped_and_order_kept(parcels_result, parcels_layer):
    frame = parcels_result.frame
    assert list(frame.columns) == list(parcels_layer.frame.columns)
    assert frame.crs == parcels_layer.frame.crs
    expected = [r for r in parcels_layer.frame["src_row"] if r != _row("collapsed")]
    assert frame["src_row"].tolist() == expected
    assert list(frame.index) == list(range(len(expected)))
    assert parcels_result.dropped_rows == [_row("collapsed")]
    # attributes travel with their geometry
    cols = [c for c in frame.columns if c != frame.geometry.name]
    before = pd.DataFrame(parcels_layer.frame[cols]).set_index("src_row").loc[expected]
    pd.testing.assert_frame_equal(pd.DataFrame(frame[cols]).set_index("src_row"), before)


def test_small_overlap_trimmed_by_its_area(parcels_result, parcels_layer):
    c = _trimmed(parcels_result)
    other = SMALL_B if c.row == SMALL_A else SMALL_A
    assert c.area_before_m2 == pytest.approx(500.0 + (SMALL_OVERLAP_M2 if c.row == SMALL_A
                                                      else 0.0))
    assert c.area_before_m2 - c.area_after_m2 == pytest.approx(SMALL_OVERLAP_M2, abs=1e-6)
    assert c.detail == f"overlap of 0.20 m² with row {other} trimmed"
    assert c.detail_vi == f"cắt 0,20 m² chồng lấn với dòng {other}"
    assert other not in {ch.row for ch in parcels_result.changes}
    a, b = _geom(parcels_result, SMALL_A), _geom(parcels_result, SMALL_B)
    assert shapely.area(shapely.intersection(a, b)) < 1e-6
    # the union is unchanged: land was reassigned, not lost or invented
    before = shapely.union(_geom_of(parcels_layer.frame, SMALL_A),
                           _geom_of(parcels_layer.frame, SMALL_B))
    assert shapely.area(shapely.symmetric_difference(before, shapely.union(a, b))) < 1e-6


def test_big_overlap_left_alone(parcels_result, parcels_layer):
    rows = {c.row for c in parcels_result.changes}
    assert BIG_A not in rows and BIG_B not in rows
    a, b = _geom(parcels_result, BIG_A), _geom(parcels_result, BIG_B)
    assert shapely.area(shapely.intersection(a, b)) == pytest.approx(50.0)


def test_unchanged_features_are_bit_identical(parcels_result, parcels_layer):
    changed = {c.row for c in parcels_result.changes}
    untouched = set(parcels_layer.frame["src_row"].tolist()) - changed
    assert len(untouched) == N_GRID - 1
    assert _wkb(parcels_result.frame, untouched) == _wkb(parcels_layer.frame, untouched)


def test_input_layer_not_modified(parcels_layer):
    before = shapely.to_wkb(parcels_layer.frame.geometry.values)
    n = len(parcels_layer.frame)
    repair(parcels_layer)
    assert len(parcels_layer.frame) == n
    assert (shapely.to_wkb(parcels_layer.frame.geometry.values) == before).all()


def test_summary_and_json(parcels_result):
    s = parcels_result.summary()
    assert s["changes"] == 8 and s["features_changed"] == 8 and s["features_dropped"] == 1
    assert s["by_action"]["REPAIR-MAKE-VALID"]["count"] == 5
    assert s["by_action"]["REPAIR-OVERLAP-TRIMMED"]["area_change_m2"] == pytest.approx(-0.2)
    total = sum(c.area_after_m2 - c.area_before_m2 for c in parcels_result.changes)
    assert s["area_change_m2"] == pytest.approx(total, abs=1e-3)
    assert (s["snap_tolerance_m"], s["overlap_tolerance_m2"]) == (0.05, 0.5)  # parcels.json
    doc = json.loads(json.dumps(parcels_result.to_dict(), ensure_ascii=False))
    assert len(doc["changes"]) == 8
    assert set(doc["changes"][0]) == {"row", "action", "area_before_m2", "area_after_m2",
                                      "area_change_m2", "detail", "detail_vi"}


def test_repair_twice_changes_nothing(parcels_result, parcels_layer):
    again = repair(parcels_result.apply_to(parcels_layer))
    assert again.changes == []


# ----------------------------------------------------------------- gaps and thresholds

def test_narrow_gap_between_plan_zones_filled(plan_layer):
    res = repair(plan_layer)
    assert len(res.changes) == 1
    (c,) = res.changes
    assert c.action == "REPAIR-GAP-FILLED" and c.row in (4, 5)
    assert c.area_after_m2 - c.area_before_m2 == pytest.approx(0.05 * 100, abs=1e-6)
    other = 5 if c.row == 4 else 4
    assert f"row {other}" in c.detail and "khe hở" in c.detail_vi
    geoms = res.frame.geometry.values
    union = shapely.union_all(geoms)
    assert union.geom_type == "Polygon" and not union.interiors  # no gap left
    assert union.area == pytest.approx(300.0 * 300.0)
    assert shapely.area(geoms).sum() == pytest.approx(union.area)  # and no overlap
    untouched = set(range(9)) - {c.row}
    assert _wkb(res.frame, untouched) == _wkb(plan_layer.frame, untouched)


def test_plan_overlap_default_is_the_topology_rules_one(plan_layer):
    """What TOPO-OVERLAP calls minor, repair trims: same threshold, same default."""
    expected = plan_layer.model.threshold(OVERLAP_THRESHOLD)
    assert expected == 5.0  # layers/plan.json
    assert repair(plan_layer).overlap_tolerance_m2 == expected


def test_gap_wider_than_tolerance_left(plan_layer):
    res = repair(plan_layer, snap_tolerance_m=0.02)
    assert res.changes == []
    assert res.snap_tolerance_m == 0.02


def test_open_gap_left(home, tmp_path):
    """A gap no feature closes off is a notch in the layer's outline, not a hole."""
    gdf = _plan_zones().iloc[:2].copy()
    gdf = gdf.set_geometry([shapely.box(X0, Y0, X0 + 100, Y0 + 100),
                            shapely.box(X0 + 100.04, Y0, X0 + 200, Y0 + 100)])
    path = tmp_path / "ho.gpkg"
    pyogrio.write_dataframe(gdf, path)
    assert repair(check_file(path, "plan").layer).changes == []


def test_thresholds_come_from_the_layer_model(parcels_layer):
    model = dataclasses.replace(parcels_layer.model, thresholds={
        **parcels_layer.model.thresholds, OVERLAP_THRESHOLD: 0.1, SNAP_THRESHOLD: 0.01})
    layer = dataclasses.replace(parcels_layer, model=model)
    res = repair(layer)
    assert (res.snap_tolerance_m, res.overlap_tolerance_m2) == (0.01, 0.1)
    # 0.2 m² is now a big overlap: a planner's call, not ours
    assert {SMALL_A, SMALL_B}.isdisjoint(c.row for c in res.changes)
    # an explicit argument wins over the model
    res = repair(layer, overlap_tolerance_m2=1.0)
    assert _trimmed(res).action == "REPAIR-OVERLAP-TRIMMED"


def test_unnoded_but_clean_coverage_untouched(home, tmp_path):
    """Bricks: every vertex of a row sits mid-edge of the next (T-junctions everywhere).

    GEOS flags such edges as "not matched", yet there is no overlap and no gap, so
    repair must change nothing.
    """
    geoms = []
    for j in range(4):
        off = 10.0 if j % 2 else 0.0
        for i in range(5):
            x = X0 + off + 20.0 * i
            geoms.append(shapely.box(x, Y0 + 15.0 * j, x + 20.0, Y0 + 15.0 * (j + 1)))
    gdf = parcel_grid(4, 5).set_geometry(geoms)
    path = tmp_path / "gach.gpkg"
    pyogrio.write_dataframe(gdf, path)
    layer = check_file(path, "parcels").layer
    assert not shapely.coverage_is_valid(layer.frame.geometry.values)
    res = repair(layer)
    assert res.changes == []
    assert (shapely.to_wkb(res.frame.geometry.values)
            == shapely.to_wkb(layer.frame.geometry.values)).all()


def test_clean_layer_returned_unchanged(home, tmp_path):
    path = tmp_path / "sach.gpkg"
    pyogrio.write_dataframe(parcel_grid(), path)
    layer = check_file(path, "parcels").layer
    res = repair(layer)
    assert res.changes == [] and res.summary()["changes"] == 0
    assert (shapely.to_wkb(res.frame.geometry.values)
            == shapely.to_wkb(layer.frame.geometry.values)).all()


def test_empty_and_non_polygonal_features_left(home, tmp_path):
    """No geometry and a line in a polygon layer: validation's business, not repair's."""
    gdf = _parcels(["bowtie", "repeated"])
    geoms = np.asarray(gdf.geometry.values).copy()
    geoms[0] = None
    geoms[3] = shapely.LineString(shapely.get_coordinates(geoms[3])[:3])
    gdf = gdf.set_geometry(geoms)
    path = tmp_path / "lan.gpkg"
    pyogrio.write_dataframe(gdf, path)
    layer = check_file(path, "parcels").layer
    res = repair(layer)
    rows = {c.row for c in res.changes}
    assert rows == {N_GRID, N_GRID + 1, _trimmed(res).row}
    assert res.frame.geometry.values[0] is None
    assert res.frame.geometry.values[3].geom_type == "LineString"
    assert _wkb(res.frame, {3}) == _wkb(layer.frame, {3})


def test_one_feature_several_changes_in_order(home, tmp_path):
    """A bow-tie with a doubled vertex: the vertex goes first, then make_valid."""
    gdf = _parcels(["bowtie"])
    ring = shapely.get_coordinates(gdf.geometry.values[N_GRID])
    geoms = np.asarray(gdf.geometry.values).copy()
    geoms[N_GRID] = shapely.Polygon(np.vstack([ring[:2], ring[1:]]))
    path = tmp_path / "hai.gpkg"
    pyogrio.write_dataframe(gdf.set_geometry(geoms), path)
    res = repair(check_file(path, "parcels").layer)
    steps = [c for c in res.changes if c.row == N_GRID]
    assert [c.action for c in steps] == ["REPAIR-REPEATED-POINTS", "REPAIR-MAKE-VALID"]
    assert steps[0].detail.startswith("1 repeated vertex ")
    assert steps[1].area_after_m2 == pytest.approx(50.0)


def test_boundary_layer_gets_no_overlap_repair(home, tmp_path):
    """Communes are legal lines: their small overlaps are reported, never moved."""
    a = shapely.box(X0, Y0, X0 + 100, Y0 + 100)
    b = shapely.Polygon([(X0 + 100, Y0), (X0 + 200, Y0), (X0 + 200, Y0 + 100),
                         (X0 + 100, Y0 + 100), (X0 + 99.996, Y0 + 50)])  # 0.2 m² into a
    bowtie = shapely.affinity.translate(wkt.loads(DEFECTS["bowtie"]), X0, Y0 - 50)
    gdf = gpd.GeoDataFrame({"Cap": ["commune"] * 3, "Ma": ["24778", "24781", "24784"],
                            "Ten": ["Liên Nghĩa", "Hiệp An", "Hiệp Thạnh"]},
                           geometry=[a, b, bowtie], crs="EPSG:5899")
    path = tmp_path / "ranh.gpkg"
    pyogrio.write_dataframe(gdf, path)
    layer = check_file(path, "boundary").layer
    res = repair(layer)
    assert [(c.row, c.action) for c in res.changes] == [(2, "REPAIR-MAKE-VALID")]
    assert _wkb(res.frame, {0, 1}) == _wkb(layer.frame, {0, 1})


def test_negative_tolerance_refused(parcels_layer):
    with pytest.raises(ValueError):
        repair(parcels_layer, snap_tolerance_m=-1)


# ------------------------------------------------------------------------ shapefile

def test_zipped_shapefile_corpus(home, tmp_path):
    """The defects a Shapefile keeps, through the zipped-upload path.

    (GDAL writes rings clockwise and, reading, regroups rings by containment: the
    hole outside its shell does not survive, see the module docstring.)
    """
    kept = ["bowtie", "self_touching", "nested_shells", "spike", "repeated"]
    gdf = _parcels(kept)
    path = write_shapefile_zip(gdf, tmp_path / "thua.zip")
    layer = check_file(path, "parcels").layer
    res = repair(layer)
    actions = {c.row: c.action for c in res.changes}
    ix = {name: N_GRID + k for k, name in enumerate(kept)}
    assert actions == {
        _trimmed(res).row: "REPAIR-OVERLAP-TRIMMED",
        ix["bowtie"]: "REPAIR-MAKE-VALID",
        ix["self_touching"]: "REPAIR-MAKE-VALID",
        ix["nested_shells"]: "REPAIR-MAKE-VALID",
        ix["spike"]: "REPAIR-MAKE-VALID",
        ix["repeated"]: "REPAIR-REPEATED-POINTS",
    }
    bowtie = next(c for c in res.changes if c.row == ix["bowtie"])
    assert bowtie.area_after_m2 == pytest.approx(50.0)
    assert shapely.is_valid(res.frame.geometry.values).all()
    findings = check_geometry(res.apply_to(layer), ValidationContext())
    assert not [f for f in findings if f.rule == "GEOM-INVALID"]
    untouched = set(range(len(gdf))) - set(actions)
    assert _wkb(res.frame, untouched) == _wkb(layer.frame, untouched)


# ------------------------------------------------------------------------ helpers

def _trimmed(result: RepairResult):
    """The one change on the small-overlap pair (either parcel may be the one trimmed)."""
    (c,) = [c for c in result.changes if c.row in (SMALL_A, SMALL_B)]
    return c


def _geom_of(frame: gpd.GeoDataFrame, row: int):
    hit = np.flatnonzero(frame["src_row"].to_numpy() == row)
    assert len(hit) == 1
    return frame.geometry.values[hit[0]]


def _geom(result: RepairResult, row: int):
    return _geom_of(result.frame, row)
