"""Comparing two versions: every known edit is found, classified and measured exactly.

The versions are real: parcels go through the planner's path (zipped Shapefile with the
field names of the national database → ingest), plan zones are stored directly. The
expected m² are worked out here from the edits themselves, not from the engine.
"""

from __future__ import annotations

import json
from collections import Counter

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from gisportal.base.errors import NotFoundError, UsageError
from gisportal.cli.main import cli
from gisportal.outputs.compare import compare_versions
from gisportal.outputs.compare.areas import canonical_code
from gisportal.services.ingest import ingest_file
from tests.conftest import DUC_TRONG_XY, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY
W, H = 20.0, 25.0  # every parcel of the grid is 20 m × 25 m = 500 m²
CELL = W * H
ROWS, COLS = 6, 10
CODES = ["ONT", "CLN", "HNK", "DGT", "ONT+CLN"]
OWNERS = ["Nguyễn Văn Hùng", "Trần Thị Lan", "K'Brêu"]

# The known edits of version 2 (positions in the 6 × 10 grid of version 1).
ADDED = [("ODT", 0), ("ODT", 1), ("CLN", 2)]  # code, column of a new 7th row (sheet 3)
REMOVED = [58, 59]
EDGES = {0: 5.0, 12: -4.0}  # the edge between i and i + 1 moves by this many metres
USE = {20: "TMD", 21: "TMD", 22: "TMD", 23: "TMD", 24: "TMD"}
RENUMBERED = {30: 101, 31: 102}  # same shape, new parcel number
TURNED = range(40, 46)  # same shape, ring stored from another vertex, the other way round


def code_of(i: int) -> str:
    return CODES[i % len(CODES)]


def key_of(i: int) -> tuple[int, int]:
    return 1 + i // 30, 1 + i % 30


def grid_boxes() -> np.ndarray:
    i = np.arange(ROWS * COLS)
    x, y = X0 + (i % COLS) * W, Y0 + (i // COLS) * H
    return shapely.box(x, y, x + W, y + H)


def parcels_v1() -> gpd.GeoDataFrame:
    """60 parcels in two sheets, with the real field names and owners (personal)."""
    n = ROWS * COLS
    return gpd.GeoDataFrame({
        "MaXa": ["24778"] * n,
        "SoTo": [key_of(i)[0] for i in range(n)],
        "SoThua": [key_of(i)[1] for i in range(n)],
        "LoaiDat": [code_of(i) for i in range(n)],
        "TenChu": [OWNERS[i % len(OWNERS)] for i in range(n)],
    }, geometry=grid_boxes(), crs="EPSG:5899")


def parcels_v2() -> gpd.GeoDataFrame:
    gdf = parcels_v1()
    geoms = gdf.geometry.values.copy()
    for i, dx in EDGES.items():
        x0, y0, x1, y1 = geoms[i].bounds
        geoms[i] = shapely.box(x0, y0, x1 + dx, y1)
        x0, y0, x1, y1 = geoms[i + 1].bounds
        geoms[i + 1] = shapely.box(x0 + dx, y0, x1, y1)
    for i in TURNED:
        ring = list(geoms[i].exterior.coords)[:-1]
        ring = ring[2:] + ring[:2]
        geoms[i] = shapely.Polygon(ring[::-1])
    gdf = gdf.set_geometry(geoms)
    for i, code in USE.items():
        gdf.loc[i, "LoaiDat"] = code
    for i, number in RENUMBERED.items():
        gdf.loc[i, "SoThua"] = number
    gdf = gdf.drop(index=REMOVED)
    new = gpd.GeoDataFrame({
        "MaXa": ["24778"] * len(ADDED), "SoTo": [3] * len(ADDED),
        "SoThua": list(range(1, len(ADDED) + 1)), "LoaiDat": [c for c, _ in ADDED],
        "TenChu": ["Lê Đức Trọng"] * len(ADDED),
    }, geometry=[shapely.box(X0 + col * W, Y0 + ROWS * H, X0 + (col + 1) * W,
                             Y0 + (ROWS + 1) * H) for _, col in ADDED], crs="EPSG:5899")
    return gpd.GeoDataFrame(
        [*gdf.to_dict("records"), *new.to_dict("records")], crs="EPSG:5899")


def expected_deltas() -> dict[str, float]:
    """m² change per code, from the edits alone."""
    delta: Counter[str] = Counter({c: 0.0 for c in CODES})
    for code, _ in ADDED:
        delta[code] += CELL
    for i in REMOVED:
        delta[code_of(i)] -= CELL
    for i, dx in EDGES.items():
        delta[code_of(i)] += dx * H
        delta[code_of(i + 1)] -= dx * H
    for i, code in USE.items():
        delta[code_of(i)] -= CELL
        delta[code] += CELL
    return dict(delta)


def ingest_parcels(store, tmp_path, gdf, name: str):
    path = write_shapefile_zip(gdf, tmp_path / f"{name}.zip")
    return ingest_file(store, path, "parcels", "678").version


@pytest.fixture
def parcel_versions(store, tmp_path):
    return (ingest_parcels(store, tmp_path, parcels_v1(), "v1"),
            ingest_parcels(store, tmp_path, parcels_v2(), "v2"))


def by_type(result) -> dict[str, set]:
    """Main type → {(key before, key after)} with keys as (sheet, parcel) or None."""
    out: dict[str, set] = {}
    for f in result.features.itertuples():
        before = None if f.type == "added" else (int(f.sheet_before), int(f.parcel_before))
        after = None if f.type == "removed" else (int(f.sheet_after), int(f.parcel_after))
        out.setdefault(f.type, set()).add((before, after))
    return out


# -- parcels ----------------------------------------------------------------------------


def test_every_known_parcel_edit_is_classified_exactly(store, parcel_versions):
    v1, v2 = parcel_versions
    result = compare_versions(store, v1.id, v2.id)
    assert result.key == ("commune", "sheet", "parcel")
    assert result.counts == {"added": 3, "removed": 2, "use_changed": 5, "reshaped": 4,
                             "renumbered": 2, "unchanged": 60 - 2 - 4 - 5 - 2}
    assert result.flags == {"use_changed": 5, "reshaped": 4, "renumbered": 2}
    assert result.matched == {"key": 60 - 2 - 2, "geometry": 2}
    same = [(key_of(i), key_of(i)) for i in range(60)]
    assert by_type(result) == {
        "added": {(None, (3, n)) for n in (1, 2, 3)},
        "removed": {(key_of(i), None) for i in REMOVED},
        "reshaped": {same[i] for i in (0, 1, 12, 13)},
        "use_changed": {same[i] for i in USE},
        "renumbered": {(key_of(i), (key_of(i)[0], n)) for i, n in RENUMBERED.items()},
    }
    # Nothing else: the parcels whose ring starts elsewhere and turns the other way, in
    # particular, are unchanged.
    assert len(result.features) == 3 + 2 + 4 + 5 + 2
    f = result.features.set_index(["type", "parcel_before"]).sort_index()
    assert f.loc[("reshaped", 1), "area_before_m2"] == pytest.approx(CELL)
    assert f.loc[("reshaped", 1), "area_after_m2"] == pytest.approx(CELL + 5 * H)
    assert f.loc[("reshaped", 13), "area_delta_m2"] == pytest.approx(-4 * H)
    assert f.loc[("use_changed", 21), "code_before"] == "ONT"
    assert f.loc[("use_changed", 25), "code_before"] == "ONT+CLN"
    assert f.loc[("use_changed", 25), "code_after"] == "TMD"
    assert f.loc[("renumbered", 1), "matched_by"] == "geometry"
    assert f.loc[("renumbered", 1), "iou"] == pytest.approx(1.0)
    assert f.loc[("reshaped", 2), "iou"] == pytest.approx((CELL - 5 * H) / CELL)


def test_area_deltas_per_code_match_the_edits(store, parcel_versions):
    v1, v2 = parcel_versions
    summary = compare_versions(store, v1.id, v2.id).summary()
    rows = {r["code"]: r for r in summary["areas"]}
    want = expected_deltas()
    assert set(rows) == set(want)
    for code, delta in want.items():
        assert rows[code]["delta_m2"] == pytest.approx(delta), code
        before = sum(CELL for i in range(60) if code_of(i) == code)
        assert rows[code]["before_m2"] == pytest.approx(before), code
        assert rows[code]["after_m2"] == pytest.approx(before + delta), code
    # Largest change first; the combined code stays one row, with its main part's colour.
    deltas = [abs(r["delta_m2"]) for r in summary["areas"]]
    assert deltas == sorted(deltas, reverse=True)
    assert rows["ONT+CLN"]["color"] == rows["ONT"]["color"]
    assert summary["total_area_m2"]["delta"] == pytest.approx(
        (len(ADDED) - len(REMOVED)) * CELL)


def test_json_and_geojson_are_wgs84_and_carry_no_personal_data(store, parcel_versions):
    v1, v2 = parcel_versions
    result = compare_versions(store, v1.id, v2.id)
    doc = result.to_dict()
    text = json.dumps(doc, ensure_ascii=False, allow_nan=False)
    for name in [*OWNERS, "Lê Đức Trọng", "TenChu", "owner"]:
        assert name not in text
    s = doc["summary"]
    assert s["from"]["id"] == v1.id and s["to"]["id"] == v2.id
    assert s["from"]["status"] == "draft" and s["district"] == "678"
    assert s["counts"]["renumbered"] == 2 and s["changed_features"] == 16
    features = doc["features"]["features"]
    assert len(features) == 16
    lon, lat = shapely.get_coordinates(
        shapely.from_geojson(json.dumps(features[0]["geometry"])))[0]
    assert 108.0 < lon < 108.6 and 11.5 < lat < 12.0
    reshaped = [f for f in features if f["properties"]["type"] == "reshaped"]
    assert all(f["properties"]["before"]["type"] == "Polygon" for f in reshaped)
    assert all(f["properties"]["before"] is None for f in features
               if f["properties"]["type"] != "reshaped")
    renumbered = next(f for f in features if f["properties"]["type"] == "renumbered")
    assert renumbered["properties"]["key_before"] == {"commune": "24778", "sheet": 2,
                                                      "parcel": 1}
    assert renumbered["properties"]["key_after"] == {"commune": "24778", "sheet": 2,
                                                     "parcel": 101}
    removed = next(f for f in features if f["properties"]["type"] == "removed")
    assert removed["properties"]["key_after"] is None
    assert removed["properties"]["area_delta_m2"] == -CELL
    assert result.geojson() == doc["features"]


def test_the_other_way_round_swaps_added_and_removed(store, parcel_versions):
    v1, v2 = parcel_versions
    back = compare_versions(store, v2.id, v1.id)
    assert back.counts["added"] == 2 and back.counts["removed"] == 3
    assert back.counts["reshaped"] == 4 and back.counts["use_changed"] == 5
    rows = {r.code: r.delta_m2 for r in back.areas.itertuples()}
    for code, delta in expected_deltas().items():
        assert rows[code] == pytest.approx(-delta)


def test_a_version_against_itself_is_all_unchanged(store, parcel_versions):
    v1, _ = parcel_versions
    result = compare_versions(store, v1.id, v1.id)
    assert result.counts == {"added": 0, "removed": 0, "use_changed": 0, "reshaped": 0,
                             "renumbered": 0, "unchanged": 60}
    assert result.features.empty
    assert all(r.delta_m2 == 0 for r in result.areas.itertuples())
    assert result.geojson() == {"type": "FeatureCollection", "features": []}


def add(store, gdf, kind="parcels", district="678", meta=None):
    return store.add_version(district, kind, gdf, source_name="t.gpkg", source_sha256="0",
                             created_by="t", meta=meta)


def canonical_parcels(codes, geoms, parcels=None) -> gpd.GeoDataFrame:
    n = len(geoms)
    return gpd.GeoDataFrame({"commune": ["24778"] * n, "sheet": [1] * n,
                             "parcel": parcels or list(range(1, n + 1)), "land_use": codes},
                            geometry=list(geoms), crs="EPSG:5899")


def test_swapped_numbers_are_paired_by_shape_not_by_the_reused_key(store):
    boxes = grid_boxes()[:3]
    v1 = add(store, canonical_parcels(["ONT", "CLN", "HNK"], boxes, [5, 6, 7]))
    v2 = add(store, canonical_parcels(["ONT", "CLN", "HNK"], boxes, [6, 5, 7]))
    result = compare_versions(store, v1.id, v2.id)
    assert result.counts["renumbered"] == 2 and result.counts["unchanged"] == 1
    assert result.counts["added"] == result.counts["removed"] == 0
    pairs = {(int(f.parcel_before), int(f.parcel_after)) for f in result.features.itertuples()}
    assert pairs == {(5, 6), (6, 5)}


def test_reshaped_with_a_new_use_carries_both_changes(store):
    boxes = grid_boxes()[:2]
    v1 = add(store, canonical_parcels(["ONT", "CLN"], boxes))
    moved = [shapely.box(X0, Y0, X0 + W + 3, Y0 + H), shapely.box(X0 + W + 3, Y0, X0 + 2 * W,
                                                                  Y0 + H)]
    v2 = add(store, canonical_parcels(["ODT", "CLN"], moved))
    result = compare_versions(store, v1.id, v2.id)
    first = result.features[result.features["parcel_before"] == 1].iloc[0]
    assert first["type"] == "use_changed"
    assert first["changes"] == "use_changed+reshaped"
    assert result.counts == {"added": 0, "removed": 0, "use_changed": 1, "reshaped": 1,
                             "renumbered": 0, "unchanged": 0}
    assert result.flags == {"use_changed": 1, "reshaped": 2, "renumbered": 0}
    props = result.geojson()["features"][0]["properties"]
    assert props["changes"] == ["use_changed", "reshaped"] and props["before"] is not None


def test_small_shape_changes_within_the_tolerance_are_not_reshapes(store):
    boxes = grid_boxes()[:2]
    v1 = add(store, canonical_parcels(["ONT", "CLN"], boxes))
    # 0.02 m × 25 m = 0.5 m² moved between the two: below the parcels' 1 m² tolerance.
    nudged = [shapely.box(X0, Y0, X0 + W + 0.02, Y0 + H),
              shapely.box(X0 + W + 0.02, Y0, X0 + 2 * W, Y0 + H)]
    v2 = add(store, canonical_parcels(["ONT", "CLN"], nudged))
    assert compare_versions(store, v1.id, v2.id).counts["unchanged"] == 2
    tight = compare_versions(store, v1.id, v2.id, area_tolerance_m2=0.1)
    assert tight.counts["reshaped"] == 2 and tight.area_tolerance_m2 == 0.1


def test_combined_codes_are_tidied_but_their_order_is_a_change(store):
    boxes = grid_boxes()[:3]
    v1 = add(store, canonical_parcels(["ONT+CLN", "ONT+CLN", "ONT"], boxes))
    v2 = add(store, canonical_parcels(["ONT, CLN", "CLN+ONT", "ont"], boxes))
    result = compare_versions(store, v1.id, v2.id)
    assert result.counts["use_changed"] == 1 and result.counts["unchanged"] == 2
    assert result.features.iloc[0]["code_after"] == "CLN+ONT"
    rows = {r.code: r.delta_m2 for r in result.areas.itertuples()}
    assert rows == {"ONT+CLN": pytest.approx(-CELL), "CLN+ONT": pytest.approx(CELL),
                    "ONT": 0.0}
    assert canonical_code(" ont ; cln;ONT") == "ONT+CLN" and canonical_code("  ") is None


# -- plan ------------------------------------------------------------------------------

#: Plan zones of 100 m units: (zone id, code, xmin, ymin, xmax, ymax).
PLAN_V1 = [("QH1", "CLN", 0, 0, 200, 100), ("QH2", "HNK", 200, 0, 300, 100),
           ("QH3", "ONT", 0, 100, 100, 200), ("QH4", "RSX", 100, 100, 300, 200)]
#: QH1 is split: 60 % stays CLN, 40 % becomes a new ODT zone QH5; QH4 absorbs QH3.
PLAN_V2 = [("QH1", "CLN", 0, 0, 120, 100), ("QH5", "ODT", 120, 0, 200, 100),
           ("QH2", "HNK", 200, 0, 300, 100), ("QH4", "RSX", 0, 100, 300, 200)]


def plan_frame(zones, ids: bool = True) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "zone_id": [z[0] if ids else str(i) for i, z in enumerate(zones)],
        "land_use": [z[1] for z in zones],
    }, geometry=[shapely.box(X0 + z[2], Y0 + z[3], X0 + z[4], Y0 + z[5]) for z in zones],
        crs="EPSG:5899")


def test_plan_split_and_merge_by_zone_id(store):
    v1 = add(store, plan_frame(PLAN_V1), "plan")
    v2 = add(store, plan_frame(PLAN_V2), "plan")
    result = compare_versions(store, v1.id, v2.id)
    assert result.key == ("zone_id",) and result.area_tolerance_m2 == 10.0
    kinds = {(f.type, f.zone_id_before if f.type != "added" else None,
              f.zone_id_after if f.type != "removed" else None)
             for f in result.features.itertuples()}
    assert kinds == {("reshaped", "QH1", "QH1"), ("added", None, "QH5"),
                     ("removed", "QH3", None), ("reshaped", "QH4", "QH4")}
    assert result.counts["unchanged"] == 1
    deltas = {r.code: r.delta_m2 for r in result.areas.itertuples()}
    assert deltas == {"CLN": pytest.approx(-8000), "ODT": pytest.approx(8000),
                      "ONT": pytest.approx(-10000), "RSX": pytest.approx(10000),
                      "HNK": 0.0}
    assert [r.code for r in result.areas.itertuples()][-1] == "HNK"  # no change: last


def test_plan_without_zone_ids_is_compared_by_geometry(store, tmp_path):
    """A plan file with no zone id column gets row numbers: they must not pair zones."""
    paths = []
    for name, zones in (("v1", PLAN_V1), ("v2", PLAN_V2[::-1])):  # v2 rows reversed
        gdf = plan_frame(zones).drop(columns="zone_id").rename(columns={"land_use": "MaLoaiDat"})
        gdf.to_file(tmp_path / f"{name}.gpkg", driver="GPKG")
        paths.append(tmp_path / f"{name}.gpkg")
    v1, v2 = (ingest_file(store, p, "plan", "678").version for p in paths)
    assert "zone_id" not in v1.meta["read"]["fields"]["mapped"]
    result = compare_versions(store, v1.id, v2.id)
    assert result.key == () and result.matched == {"key": 0, "geometry": 3}
    # QH1 keeps 60 % of itself (IoU 0.6): reshaped; QH3 is a third of the merged zone
    # (IoU 1/3): removed, while QH4 is two thirds of it: reshaped. Nothing "renumbered".
    assert result.counts == {"added": 1, "removed": 1, "use_changed": 0, "reshaped": 2,
                             "renumbered": 0, "unchanged": 1}
    assert sorted(result.features["iou"].dropna().round(4)) == [0.6, 0.6667]
    assert result.key_fields == ()
    props = result.geojson()["features"][0]["properties"]
    assert props["key_before"] is None and props["key_after"] is None


def test_plan_zone_changing_only_its_planned_use(store):
    v1 = add(store, plan_frame(PLAN_V1), "plan")
    changed = [(z[0], "SKC" if z[0] == "QH2" else z[1], *z[2:]) for z in PLAN_V1]
    v2 = add(store, plan_frame(changed), "plan")
    result = compare_versions(store, v1.id, v2.id)
    assert result.counts["use_changed"] == 1 and result.counts["unchanged"] == 3
    deltas = {r.code: r.delta_m2 for r in result.areas.itertuples()}
    assert deltas["HNK"] == pytest.approx(-10000) and deltas["SKC"] == pytest.approx(10000)


# -- bad input -------------------------------------------------------------------------


def test_unknown_and_mismatched_versions_are_refused_clearly(store):
    p = add(store, canonical_parcels(["ONT"], grid_boxes()[:1]))
    q = add(store, plan_frame(PLAN_V1), "plan")
    other = add(store, canonical_parcels(["ONT"], grid_boxes()[:1]), district="672")
    with pytest.raises(NotFoundError, match="there is no version 999") as err:
        compare_versions(store, p.id, 999)
    assert err.value.where == "to" and err.value.code == "COMPARE-NO-VERSION"
    with pytest.raises(UsageError, match=f"version {p.id} is a parcels layer of district 678 "
                                         f"and version {q.id} a plan layer"):
        compare_versions(store, p.id, q.id)
    with pytest.raises(UsageError, match="district 672"):
        compare_versions(store, p.id, other.id)
    with pytest.raises(NotFoundError, match=f"version {q.id} is not a parcels layer of "
                                            "district 678"):
        compare_versions(store, q.id, q.id, district="678", kind="parcels")
    with pytest.raises(NotFoundError, match="not a district code"):
        compare_versions(store, p.id, p.id, district="67x")
    for bad in (-1, float("nan"), "a lot"):
        with pytest.raises(UsageError, match="area tolerance"):
            compare_versions(store, p.id, p.id, area_tolerance_m2=bad)
    for bad in (1.0, -0.1, "half"):
        with pytest.raises(UsageError, match="IoU threshold"):
            compare_versions(store, p.id, p.id, iou_threshold=bad)


def test_drafts_and_published_versions_compare_alike(store):
    boxes = grid_boxes()[:2]
    v1 = store.publish(add(store, canonical_parcels(["ONT", "CLN"], boxes)).id, by="t")
    v2 = add(store, canonical_parcels(["ONT", "DGT"], boxes))
    result = compare_versions(store, v1.id, v2.id, district="678", kind="parcels")
    assert result.before.status == "published" and result.after.status == "draft"
    assert result.counts["use_changed"] == 1


@pytest.mark.parametrize("has_errors", [True, False])
def test_invalid_draft_shapes_do_not_stop_the_comparison(store, has_errors):
    """A bow-tie measures 0 m² as stored; made valid it is two triangles of 125 m²."""
    bow_tie = shapely.Polygon([(X0, Y0), (X0 + W, Y0 + H), (X0 + W, Y0), (X0, Y0 + H)])
    v1 = add(store, canonical_parcels(["ONT", "CLN"], grid_boxes()[:2]))
    v2 = store.add_version("678", "parcels",
                           canonical_parcels(["ONT", "CLN"], [bow_tie, grid_boxes()[1]]),
                           source_name="t", source_sha256="0", created_by="t",
                           has_errors=has_errors)
    result = compare_versions(store, v1.id, v2.id)
    assert result.counts["reshaped"] == 1 and result.counts["unchanged"] == 1
    changed = result.features.iloc[0]
    if has_errors:  # the version with errors is measured made valid, from the start
        assert changed["area_after_m2"] == pytest.approx(CELL / 2)
        assert result.areas.set_index("code").loc["ONT", "after_m2"] == pytest.approx(CELL / 2)
        assert changed["iou"] == pytest.approx(0.5)


# -- the command line --------------------------------------------------------------------


def test_cli_compare_text_json_and_geojson(home, parcel_versions, tmp_path):
    v1, v2 = parcel_versions
    runner = CliRunner()
    base = ["--home", str(home), "compare", "--district", "678", "--kind", "parcels",
            "--from", str(v1.id), "--to", str(v2.id)]
    text = runner.invoke(cli, [*base, "--format", "text"])
    assert text.exit_code == 0, text.output
    assert "renumbered             2" in text.output
    assert "TMD" in text.output and "+2,500.0" in text.output
    as_json = runner.invoke(cli, base)
    assert as_json.exit_code == 0
    doc = json.loads(as_json.output)
    assert doc["summary"]["counts"]["added"] == 3
    assert len(doc["features"]["features"]) == 16
    out = tmp_path / "diff.geojson"
    geo = runner.invoke(cli, [*base, "--format", "geojson", "--out", str(out)])
    assert geo.exit_code == 0 and "16 changed features written" in geo.output
    assert json.loads(out.read_text(encoding="utf-8"))["type"] == "FeatureCollection"


def test_cli_compare_errors_are_one_line(home, parcel_versions):
    v1, _ = parcel_versions
    runner = CliRunner()
    base = ["--home", str(home), "compare", "--kind", "parcels", "--from", str(v1.id)]
    missing = runner.invoke(cli, [*base, "--district", "678", "--to", "999"])
    assert missing.exit_code == 1
    assert "there is no version 999 [to]" in missing.output
    wrong = runner.invoke(cli, [*base, "--district", "999", "--to", str(v1.id)])
    assert wrong.exit_code == 2 and "unknown district code '999'" in wrong.output
    other = runner.invoke(cli, [*base, "--district", "672", "--to", str(v1.id)])
    assert other.exit_code == 1 and "not a parcels layer of district 672" in other.output
