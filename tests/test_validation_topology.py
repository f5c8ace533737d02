"""Topology rules on real files (GeoPackage, zipped Shapefile), run through ``check_file``.

Each defect class asserts the exact rule code, the source row(s) it names and where it
puts the problem: locations are GeoJSON in WGS 84, taken back to VN-2000 metres here to
check their area and centre. Coordinates below are metres from a point in Đức Trọng.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from gisportal.base.findings import rules
from gisportal.pipeline.validation import topology
from gisportal.pipeline.validation.context import ValidationContext
from gisportal.services.ingest import check_file
from tests.conftest import DUC_TRONG_XY, parcel_grid, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY
TO_XY = Transformer.from_crs(4326, 5899, always_xy=True)
TOPOLOGY = {code for code, r in rules().items() if r.family == "topology"}
PLAN_CODES = ["LUA", "CLN", "ONT", "DGT", "RSX"]


# ----------------------------------------------------------------------------- helpers

def test_the_engine_runs_the_topology_checks():
    import gisportal.pipeline.validation as engine

    assert set(topology.TOPOLOGY_CHECKS) <= set(engine.CHECKS)


def box(x0, y0, x1, y1):
    """A rectangle in local metres (relative to the Đức Trọng anchor)."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def parcels(geoms) -> gpd.GeoDataFrame:
    n = len(geoms)
    return gpd.GeoDataFrame({
        "MaXa": ["24778"] * n, "SoTo": [1] * n, "SoThua": list(range(1, n + 1)),
        "LoaiDat": ["ONT"] * n}, geometry=list(geoms), crs="EPSG:5899")


def plan(geoms) -> gpd.GeoDataFrame:
    n = len(geoms)
    return gpd.GeoDataFrame({
        "MaVung": [f"QH{i:03d}" for i in range(n)],
        "MaLoaiDat": [PLAN_CODES[i % len(PLAN_CODES)] for i in range(n)],
        "MaXa": ["24778"] * n}, geometry=list(geoms), crs="EPSG:5899")


def gpkg(tmp_path, gdf, name="layer.gpkg"):
    path = tmp_path / name
    gdf.to_file(path, driver="GPKG")
    return path


def check(tmp_path, gdf, kind="parcels", store=None, name="layer.gpkg"):
    """Topology findings of ``gdf`` written as a GeoPackage and checked like an upload."""
    report = check_file(gpkg(tmp_path, gdf, name), kind, district="678", store=store).report
    return [f for f in report.findings if f.rule in TOPOLOGY]


def local(location):
    """A finding's location back in local metres (VN-2000 TM-3 minus the anchor)."""
    geom = shape(location)
    return shapely.transform(geom, lambda c: np.column_stack(
        TO_XY.transform(c[:, 0], c[:, 1])) - [X0, Y0])


def centre(location):
    c = local(location).centroid
    return c.x, c.y


def publish_boundary(store, tmp_path, outline):
    """Publish ``outline`` as district 678's boundary, for the topology rules to use.

    A few hundred metres is no outline of Đức Trọng (908 km²): uploaded, it is refused
    (BOUNDARY-OUTLINE-MISFIT, see test_boundary_checks). These tests are about the
    rules that use an outline, so it goes into the store as a published version.
    """
    b = gpd.GeoDataFrame({"level": ["district"], "code": ["678"], "name": ["Đức Trọng"]},
                         geometry=[outline], crs="EPSG:5899")
    v = store.add_version("678", "boundary", b, source_name="ranh_gioi.gpkg",
                          source_sha256="b" * 64, created_by="test")
    store.publish(v.id, by="test")


def grid_geoms(rows, cols, size=20.0, x=0.0, y=0.0):
    xs, ys = np.meshgrid(np.arange(cols) * size + x, np.arange(rows) * size + y)
    return list(box(xs.ravel(), ys.ravel(), xs.ravel() + size, ys.ravel() + size))


# ----------------------------------------------------------------------------- parcels

def test_two_overlapping_parcels(tmp_path):
    found = check(tmp_path, parcels([box(0, 0, 20, 20), box(30, 0, 50, 20),
                                      box(17, 5, 37, 15)]))
    overlaps = sorted((f.row, f.params["other_row"]) for f in found
                      if f.rule == "TOPO-OVERLAP")
    assert overlaps == [(0, 2), (1, 2)]
    by_row = {f.row: f for f in found if f.rule == "TOPO-OVERLAP"}
    f = by_row[0]
    assert f.level == "error" and f.params["area_m2"] == pytest.approx(30.0)
    assert f.params["relation"] == "overlaps" and "parcel=3" in f.params["other_key"]
    assert f.key == {"commune": "24778", "sheet": 1, "parcel": 1}
    assert local(f.location).area == pytest.approx(30.0, rel=1e-3)
    assert centre(f.location) == pytest.approx((18.5, 10.0), abs=0.01)
    assert centre(by_row[1].location) == pytest.approx((33.5, 10.0), abs=0.01)
    assert "dòng 2" in f.message("vi") and "row 2" in f.message("en")
    coords = f.location["coordinates"][0]
    assert all(len(repr(c).split(".")[1]) <= 7 for xy in coords for c in xy)


def test_parcel_inside_another(tmp_path):
    found = check(tmp_path, parcels([box(0, 0, 40, 40), box(10, 10, 15, 15),
                                     box(40, 0, 80, 40)]))
    assert [(f.rule, f.row, f.params["other_row"], f.params["relation"]) for f in found] == [
        ("TOPO-OVERLAP", 0, 1, "contains")]
    assert local(found[0].location).area == pytest.approx(25.0, rel=1e-3)
    assert centre(found[0].location) == pytest.approx((12.5, 12.5), abs=0.01)


def test_parcel_inside_a_later_one_is_within(tmp_path):
    found = check(tmp_path, parcels([box(10, 10, 15, 15), box(0, 0, 40, 40)]))
    assert [(f.rule, f.row, f.params["relation"]) for f in found] == [
        ("TOPO-OVERLAP", 0, "within")]


def test_exact_duplicate(tmp_path):
    # Same land, digitised again from another vertex and in the other direction.
    again = shapely.Polygon([(X0 + 20, Y0 + 20), (X0 + 20, Y0), (X0, Y0), (X0, Y0 + 20)])
    found = check(tmp_path, parcels([box(20, 0, 40, 20), box(0, 0, 20, 20), again]))
    assert [(f.rule, f.row, f.params["other_row"]) for f in found] == [
        ("GEOM-DUPLICATE", 1, 2)]
    assert found[0].params["area_m2"] == pytest.approx(400.0)
    assert local(found[0].location).area == pytest.approx(400.0, rel=1e-3)
    assert centre(found[0].location) == pytest.approx((10.0, 10.0), abs=0.01)


def test_overlap_below_tolerance_is_only_counted(tmp_path):
    # 0.02 m × 20 m = 0.4 m² < 0.5 m²: digitising noise, one info for the layer.
    found = check(tmp_path, parcels([box(0, 0, 20, 20), box(19.98, 0, 40, 20)]))
    assert [(f.rule, f.level, f.row) for f in found] == [("TOPO-OVERLAP-MINOR", "info", None)]
    assert found[0].params["count"] == 1
    assert found[0].params["max_m2"] == pytest.approx(0.4, abs=1e-3)
    assert found[0].params["examples"] == "0/1"


def test_tolerance_comes_from_the_layer_model(tmp_path, monkeypatch):
    from gisportal.base.models import layer_model

    model = layer_model("parcels")
    monkeypatch.setitem(model.thresholds, "overlap_tolerance_m2", 0.1)
    found = check(tmp_path, parcels([box(0, 0, 20, 20), box(19.98, 0, 40, 20)]))
    assert [f.rule for f in found] == ["TOPO-OVERLAP"]


def test_sliver_gap_between_parcels_is_a_warning(tmp_path):
    geoms = grid_geoms(3, 3)
    geoms[4] = box(20.2, 20.2, 39.8, 39.8)  # middle parcel shrunk: 0.2 m ring around it
    found = check(tmp_path, parcels(geoms))
    assert [(f.rule, f.level, f.row) for f in found] == [("TOPO-GAP", "warning", None)]
    f = found[0]
    assert f.params["area_m2"] == pytest.approx(400 - 19.6 ** 2, rel=1e-3)
    # Widest at the corners: a circle against the outer corner and the inner one.
    assert f.params["width_m"] == pytest.approx(0.4 / (1 + 0.5 ** 0.5), abs=0.01)
    assert f.params["bordering_rows"] == list(range(9))
    # 7 decimals of a degree are about 1 cm: on a 0.2 m wide ring that is 1-2% of area.
    assert local(f.location).area == pytest.approx(400 - 19.6 ** 2, rel=0.02)
    assert local(f.location).bounds == pytest.approx((20, 20, 40, 40), abs=0.02)


def test_wide_unsurveyed_land_and_open_slivers_are_not_gaps(tmp_path):
    geoms = grid_geoms(3, 3)
    del geoms[4]  # a 20 m hole: land not surveyed
    geoms.append(box(60.3, 0, 80, 20))  # 0.3 m channel open to the outside
    assert check(tmp_path, parcels(geoms)) == []


def test_clean_parcel_grid_has_no_topology_findings(tmp_path, store):
    publish_boundary(store, tmp_path, box(-100, -100, 200, 200))
    path = write_shapefile_zip(parcel_grid(8, 10), tmp_path / "thua.zip")
    report = check_file(path, "parcels", district="678", store=store).report
    assert [f for f in report.findings if f.rule in TOPOLOGY] == []


def test_invalid_parcels_take_part_after_repair(tmp_path):
    bow_tie = shapely.Polygon([(X0, Y0), (X0 + 20, Y0 + 20), (X0 + 20, Y0), (X0, Y0 + 20)])
    found = check(tmp_path, parcels([bow_tie, box(15, 0, 35, 20)]))
    assert [(f.rule, f.row, f.params["other_row"]) for f in found] == [("TOPO-OVERLAP", 0, 1)]
    # The repaired bow-tie is two triangles; the right one (apex at 10, 10) is cut at x=15.
    assert found[0].params["area_m2"] == pytest.approx(100 - 25, rel=1e-3)
    assert centre(found[0].location)[0] == pytest.approx(17.5 + 5 / 18, abs=0.05)


def test_empty_and_tiny_layers(tmp_path):
    layer = parcels([box(0, 0, 20, 20), box(0, 0, 20, 20)])
    layer.loc[1, "geometry"] = None
    assert check(tmp_path, layer) == []


def test_degenerate_features_on_the_threaded_path(tmp_path, monkeypatch):
    monkeypatch.setattr(topology, "PARALLEL_MIN", 2)
    monkeypatch.setattr(topology, "_workers", lambda: 2)
    flat = shapely.Polygon([(X0 + 50, Y0), (X0 + 60, Y0), (X0 + 70, Y0)])  # no area at all
    layer = parcels([flat, box(0, 0, 20, 20), None, box(15, 0, 35, 20), box(100, 0, 120, 20)])
    found = check(tmp_path, layer)
    assert [(f.rule, f.row, f.params["other_row"]) for f in found] == [("TOPO-OVERLAP", 1, 3)]


# ----------------------------------------------------------------------------- outside

def test_feature_outside_the_district(tmp_path, store):
    publish_boundary(store, tmp_path, box(0, 0, 100, 100))
    layer = parcels([box(0, 0, 20, 20), box(90, 0, 110, 20),  # 200 m² outside
                     box(20, 0, 40, 20), box(40, 0, 60.04, 20),  # 0.8 m² outside: noise
                     box(300, 300, 320, 320)])  # wholly outside
    found = check(tmp_path, layer, store=store)
    assert [(f.rule, f.row, f.params["area_m2"], f.params["pct"]) for f in found] == [
        ("TOPO-OUTSIDE-DISTRICT", 1, 200.0, 50.0), ("TOPO-OUTSIDE-DISTRICT", 4, 400.0, 100.0)]
    assert local(found[0].location).area == pytest.approx(200.0, rel=1e-3)
    assert centre(found[0].location) == pytest.approx((105.0, 10.0), abs=0.01)
    assert centre(found[1].location) == pytest.approx((310.0, 310.0), abs=0.01)


def test_no_boundary_no_outside_finding(tmp_path, store):
    assert check(tmp_path, parcels([box(300, 300, 320, 320)]), store=store) == []


# ----------------------------------------------------------------------------- plan

def plan_zones():
    """Nine 100 m zones tiling (0, 0)–(300, 300)."""
    return grid_geoms(3, 3, size=100.0)


def test_clean_plan_coverage_has_no_topology_findings(tmp_path, store):
    publish_boundary(store, tmp_path, box(0, 0, 300, 300))
    assert check(tmp_path, plan(plan_zones()), "plan", store=store) == []


def test_plan_gap_against_the_district_boundary(tmp_path, store):
    publish_boundary(store, tmp_path, box(0, 0, 300, 300))
    zones = plan_zones()
    zones[8] = box(200, 200, 300, 290)  # 10 m strip along the district edge left out
    found = check(tmp_path, plan(zones), "plan", store=store)
    # Zone 7 lacks zone 8's new corner: that unmatched edge runs into the gap and is
    # left to the gap finding rather than reported again as TOPO-COVERAGE-EDGE.
    assert [(f.rule, f.level, f.row) for f in found] == [("TOPO-GAP", "error", None)]
    f = found[0]
    assert f.params["area_m2"] == pytest.approx(1000.0)
    assert f.params["bordering_rows"] == [7, 8]
    assert local(f.location).area == pytest.approx(1000.0, rel=1e-3)
    assert centre(f.location) == pytest.approx((250.0, 295.0), abs=0.01)


def test_plan_gap_without_a_boundary_is_a_hole(tmp_path):
    zones = plan_zones()
    zones[4] = box(100, 100, 200, 200).difference(box(130, 130, 170, 170))
    zones[8] = box(200, 200, 300, 290)  # an edge strip cannot be told without a boundary
    found = check(tmp_path, plan(zones), "plan")
    # ... but the corner zone 7 lacks still shows as unmatched edges.
    assert [(f.rule, f.level, f.row) for f in found] == [
        ("TOPO-GAP", "error", None), ("TOPO-COVERAGE-EDGE", "warning", 7),
        ("TOPO-COVERAGE-EDGE", "warning", 8)]
    assert found[0].params["area_m2"] == pytest.approx(1600.0)
    assert centre(found[0].location) == pytest.approx((150.0, 150.0), abs=0.01)


def test_small_plan_gap_is_tolerated(tmp_path, store):
    publish_boundary(store, tmp_path, box(0, 0, 300, 300))
    zones = plan_zones()
    zones[8] = box(200, 200, 300, 299.97)  # 3 m² along the district edge
    found = check(tmp_path, plan(zones), "plan", store=store)
    # No gap error; what remains is the unmatched corner between zones 7 and 8.
    assert sorted((f.rule, f.row) for f in found) == [("TOPO-COVERAGE-EDGE", 7),
                                                      ("TOPO-COVERAGE-EDGE", 8)]


def test_overlapping_plan_zones(tmp_path, store):
    publish_boundary(store, tmp_path, box(0, 0, 300, 300))
    zones = plan_zones()
    zones[1] = box(90, 0, 200, 100)  # 10 m into zone 0
    found = check(tmp_path, plan(zones), "plan", store=store)
    assert [(f.rule, f.row, f.params["other_row"]) for f in found] == [("TOPO-OVERLAP", 0, 1)]
    assert found[0].params["area_m2"] == pytest.approx(1000.0)
    assert found[0].key == {"zone_id": "QH000"}
    assert centre(found[0].location) == pytest.approx((95.0, 50.0), abs=0.01)


def test_plan_overlap_below_plan_tolerance(tmp_path):
    zones = plan_zones()
    zones[1] = box(99.96, 0, 200, 100)  # 4 m² < 5 m²
    found = check(tmp_path, plan(zones), "plan")
    assert "TOPO-OVERLAP" not in {f.rule for f in found}
    assert [f.params["count"] for f in found if f.rule == "TOPO-OVERLAP-MINOR"] == [1]
    # Below tolerance nothing explains the crossing edges: zones 0 and 1 overlap, and
    # zone 1's top edge no longer matches its neighbours above.
    edge_rows = {f.row for f in found if f.rule == "TOPO-COVERAGE-EDGE"}
    assert {0, 1} <= edge_rows <= {0, 1, 3, 4}


def test_plan_edges_that_do_not_match(tmp_path):
    zones = plan_zones()
    # Zone 0 has a vertex at (100, 50) that zone 1 lacks: a mismatched shared edge.
    zones[0] = shapely.Polygon([(X0, Y0), (X0 + 100, Y0), (X0 + 100, Y0 + 50),
                                (X0 + 100, Y0 + 100), (X0, Y0 + 100)])
    found = check(tmp_path, plan(zones), "plan")
    assert sorted((f.rule, f.level, f.row) for f in found) == [
        ("TOPO-COVERAGE-EDGE", "warning", 0), ("TOPO-COVERAGE-EDGE", "warning", 1)]
    for f in found:
        edge = local(f.location)
        assert f.params["length_m"] == pytest.approx(100.0)
        assert edge.length == pytest.approx(100.0, rel=1e-3)
        assert centre(f.location) == pytest.approx((100.0, 50.0), abs=0.01)


def test_boundary_layers_are_not_checked(tmp_path):
    b = gpd.GeoDataFrame({"level": ["commune", "commune"], "code": ["24778", "24779"]},
                         geometry=[box(0, 0, 100, 100), box(50, 0, 150, 100)],
                         crs="EPSG:5899")
    report = check_file(gpkg(tmp_path, b), "boundary", district="678").report
    assert [f for f in report.findings if f.rule in TOPOLOGY] == []


# ----------------------------------------------------------------------------- scale

def test_20000_parcels_with_10_overlaps(tmp_path):
    rng = np.random.default_rng(7)
    rows, cols = 100, 200
    geoms = grid_geoms(rows, cols)
    # Interior parcels, far enough apart that no two shifted ones meet.
    picks = rng.choice([r * cols + c for r in range(2, rows - 2, 8) for c in range(2, cols - 2, 8)],
                       10, replace=False)
    for p in picks:
        geoms[p] = shapely.affinity.translate(geoms[p], 3.0, 0.0)  # 60 m² into the right one
    layer = parcels(geoms)
    layer["SoTo"] = 1 + np.arange(len(layer)) // 1000
    found = check(tmp_path, layer)
    overlaps = sorted((f.row, f.params["other_row"]) for f in found if f.rule == "TOPO-OVERLAP")
    assert overlaps == sorted((int(p), int(p) + 1) for p in picks)
    assert all(f.params["area_m2"] == pytest.approx(60.0)
               for f in found if f.rule == "TOPO-OVERLAP")
    # The 3 m strip each parcel left behind is unsurveyed land, not a sliver.
    assert {f.rule for f in found} == {"TOPO-OVERLAP"}


def test_layer_not_built_with_topology(tmp_path, monkeypatch):
    monkeypatch.setattr(topology, "PROBE_MIN", 500)
    monkeypatch.setattr(topology, "PROBE_SIZE", 400)
    geoms = grid_geoms(40, 40)
    # Every other parcel gets extra vertices its neighbours lack: nothing is noded.
    geoms = [shapely.segmentize(g, 7.0) if i % 2 else g for i, g in enumerate(geoms)]
    geoms[5] = shapely.affinity.translate(geoms[5], 2.0, 0.0)
    layer = parcels(geoms)
    layer["SoTo"] = 1 + np.arange(len(layer)) // 1000
    found = check(tmp_path, layer)
    rules_found = sorted({f.rule for f in found})
    assert "TOPO-NOT-NODED" in rules_found and "TOPO-GAP" not in rules_found
    assert [(f.row, f.params["other_row"]) for f in found if f.rule == "TOPO-OVERLAP"] == [
        (5, 6)]


def test_strips_in_threads_give_the_single_thread_answer(monkeypatch):
    rng = np.random.default_rng(3)
    geoms = np.array(grid_geoms(30, 30), dtype=object)
    moved = rng.choice(900, 30, replace=False)
    geoms[moved] = [shapely.affinity.translate(g, *rng.normal(0, 0.4, 2)) for g in geoms[moved]]
    dense = rng.choice(900, 60, replace=False)
    geoms[dense] = shapely.segmentize(geoms[dense], 7.0)
    whole = shapely.coverage_invalid_edges(geoms, gap_width=0.5)
    monkeypatch.setattr(topology, "PARALLEL_MIN", 10)
    monkeypatch.setattr(topology, "_workers", lambda: 3)
    strips = topology._coverage_edges(geoms, 0.5)
    assert all(shapely.equals_exact(strips, whole) | (shapely.is_empty(strips)
                                                       & shapely.is_empty(whole)))


def test_rules_are_catalogued():
    cat = rules()
    for code in ("TOPO-OVERLAP", "TOPO-OVERLAP-MINOR", "GEOM-DUPLICATE", "TOPO-GAP",
                 "TOPO-NOT-NODED", "TOPO-OUTSIDE-DISTRICT", "TOPO-COVERAGE-EDGE"):
        assert cat[code].family == "topology", code
    assert cat["TOPO-GAP"].severity == "error" and cat["TOPO-COVERAGE-EDGE"].severity == "warning"
    checks = topology.TOPOLOGY_CHECKS
    assert checks == (topology.check_topology,)


def test_single_rule_entry_points_agree_with_the_whole(tmp_path):
    from gisportal.base.models import layer_model
    from gisportal.pipeline.normalise import normalise
    from gisportal.pipeline.read.sources import read_source

    zones = plan_zones()
    zones[1] = box(90, 0, 200, 100)
    zones[4] = box(100, 100, 200, 200).difference(box(130, 130, 170, 170))
    path = gpkg(tmp_path, plan(zones))
    norm = normalise(read_source(path, workdir=tmp_path), layer_model("plan"))
    ctx = ValidationContext("678")
    whole = [f.rule for f in topology.check_topology(norm, ctx)]
    parts = [f.rule for check in (topology.check_overlaps, topology.check_gaps,
                                  topology.check_outside_district,
                                  topology.check_coverage_edges) for f in check(norm, ctx)]
    assert whole == parts == ["TOPO-OVERLAP", "TOPO-GAP"]
