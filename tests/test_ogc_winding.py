"""RFC 7946 ring winding on every polygon /ogc serves (issue 16).

A demo district as the generator publishes it — parcels, plan zones, boundaries and the
annual plan, most of them stored clockwise as surveyors' software writes them — plus a
plan whose zone is a multipolygon with holes, its parts and holes written both ways in
the uploaded GeoPackage. Every exterior ring served must be counter-clockwise and
every hole clockwise, as shapely's `is_ccw` (GEOS) reads the coordinates: in CRS84, in
the storage CRS (easting, northing), in one feature, in the HTML page's map; with
EPSG:4326's latitude first the same rings are written mirrored, so they are tested
with their axes put back. The rings are only turned round: same vertices otherwise.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gisportal.services.demo import build_demo
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web.app import create_app

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG5899 = "http://www.opengis.net/def/crs/EPSG/0/5899"
KINDS = ("parcels", "plan", "boundary", "annual_plan")


def _ring(coords: np.ndarray, ccw: bool) -> np.ndarray:
    """`coords` (a closed ring) in the winding asked for."""
    return coords if shapely.is_ccw(shapely.LinearRing(coords)) == ccw else coords[::-1]


def odd_zones(zone: shapely.Polygon) -> tuple[shapely.MultiPolygon, list[shapely.Polygon]]:
    """`zone` as a multipolygon: its exterior written clockwise, as a Shapefile has it,
    with two 4 m holes, one written clockwise and one counter-clockwise, and an island
    (the second part, clockwise) in the first hole; and the zones that fill the holes
    around the island (a plan has no gaps): the first hole less the island, the second.
    """
    c = zone.buffer(-2.0).representative_point()
    left = shapely.box(c.x - 6, c.y - 2, c.x - 2, c.y + 2)
    right = shapely.box(c.x + 2, c.y - 2, c.x + 6, c.y + 2)
    assert zone.buffer(-1.0).contains(left.union(right)), "zone too small for the test"
    island = shapely.box(*left.buffer(-1.0).bounds)
    part = shapely.Polygon(_ring(np.asarray(zone.exterior.coords), ccw=False),
                           [_ring(np.asarray(left.exterior.coords), ccw=False),
                            _ring(np.asarray(right.exterior.coords), ccw=True)])
    piece = shapely.Polygon(_ring(np.asarray(island.exterior.coords), ccw=False))
    multi = shapely.MultiPolygon([part, piece])
    assert multi.is_valid
    return multi, [shapely.Polygon(left.exterior.coords, [island.exterior.coords]), right]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The demo district 678, its plan re-uploaded with one zone made `odd_zones`;
    (client, the stored multipolygon, its feature id)."""
    tmp = tmp_path_factory.mktemp("winding")
    home = tmp / "home"
    with open_store(home, crs="EPSG:5899") as store:
        build_demo(store, parcels_per_district=150, districts=["678"])
        plan = store.read(store.published("678", "plan").id)
        # The zone with the largest area has room for the holes.
        row = int(np.argmax(plan.geometry.area.to_numpy()))
        multi, fillers = odd_zones(plan.geometry.values[row])
        upload = gpd.GeoDataFrame(
            {"MaVung": [*plan["zone_id"], "T1", "T2"],
             "MaLoaiDat": [*plan["land_use"], *[plan["land_use"].iloc[row]] * 2],
             "MaXa": [*plan["commune"], *[plan["commune"].iloc[row]] * 2]},
            geometry=[*plan.geometry.values[:row], multi, *plan.geometry.values[row + 1:],
                      *fillers], crs="EPSG:5899")
        path = Path(tmp) / "quy_hoach.gpkg"
        upload.to_file(path, driver="GPKG")
        result = ingest_file(store, path, "plan", "678", publish=True, consultation=True)
        assert result.published, result.not_published
        stored = store.read(result.version.id)
    # Feature ids follow the upload's order.
    assert stored["zone_id"].iloc[row] == plan["zone_id"].iloc[row]
    return create_app({"home": str(home)}).test_client(), stored.geometry.values[row], row + 1


def polygons_of(geometry: dict) -> list[list[list[list[float]]]]:
    assert geometry["type"] in ("Polygon", "MultiPolygon"), geometry["type"]
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else \
        geometry["coordinates"]


def wrong_rings(features: list[dict], lat_first: bool = False) -> list[tuple[int, int, int]]:
    """(feature id, polygon, ring) of every ring against the right-hand rule."""
    wrong = []
    for feature in features:
        for p, polygon in enumerate(polygons_of(feature["geometry"])):
            for r, ring in enumerate(polygon):
                coords = np.array(ring)
                if lat_first:
                    coords = coords[:, ::-1]
                if shapely.is_ccw(shapely.LinearRing(coords)) != (r == 0):
                    wrong.append((feature["id"], p, r))
    return wrong


def all_features(client, cid: str, crs: str = CRS84) -> list[dict]:
    response = client.get(f"/ogc/collections/{cid}/items?limit=10000&crs={crs}")
    assert response.status_code == 200
    doc = json.loads(response.get_data(as_text=True))
    assert doc["numberReturned"] == doc["numberMatched"] > 0
    return doc["features"]


def test_the_stored_layers_are_wound_both_ways(served) -> None:
    """What the API starts from: clockwise exteriors stored as uploaded (else the other
    tests would prove nothing)."""
    client, multi, _ = served
    part, island = multi.geoms
    assert not part.exterior.is_ccw and not island.exterior.is_ccw
    assert sorted(ring.is_ccw for ring in part.interiors) == [False, True]
    home = Path(client.application.config["GISPORTAL_HOME"])
    with open_store(home, crs="EPSG:5899") as store:
        for kind in KINDS:
            geoms = store.read(store.published("678", kind).id).geometry.values
            exteriors = shapely.get_exterior_ring(shapely.get_parts(geoms))
            assert not shapely.is_ccw(exteriors).all(), kind


@pytest.mark.parametrize("crs", [CRS84, EPSG5899, EPSG4326])
def test_every_polygon_of_every_collection_follows_the_right_hand_rule(served, crs) -> None:
    client, _, _ = served
    collections = client.get("/ogc/collections").get_json()["collections"]
    assert sorted(c["id"] for c in collections) == sorted(f"678-{k}" for k in KINDS)
    rings = 0
    for c in collections:
        features = all_features(client, c["id"], crs)
        assert wrong_rings(features, lat_first=crs == EPSG4326) == [], c["id"]
        rings += sum(len(p) for f in features for p in polygons_of(f["geometry"]))
    assert rings > 700


def test_the_multipolygon_keeps_its_rings_and_holes_turned_round(served) -> None:
    client, multi, fid = served
    for url in (f"/ogc/collections/678-plan/items/{fid}?crs={EPSG5899}",
                f"/ogc/collections/678-plan/items?limit=10000&crs={EPSG5899}"):
        doc = json.loads(client.get(url).get_data(as_text=True))
        feature = doc if doc["type"] == "Feature" else \
            next(f for f in doc["features"] if f["id"] == fid)
        assert feature["geometry"]["type"] == "MultiPolygon"
        (shell, *holes), (island,) = feature["geometry"]["coordinates"]
        assert len(holes) == 2
        assert wrong_rings([feature]) == []
        got = shapely.geometry.shape(feature["geometry"])
        # The same vertices (rounded to the millimetre), only some rings reversed.
        assert shapely.normalize(got).equals_exact(shapely.normalize(multi), 0.001)


def test_one_feature_and_the_html_map_follow_the_rule(served) -> None:
    client, _, fid = served
    one = json.loads(client.get(f"/ogc/collections/678-plan/items/{fid}").get_data())
    assert wrong_rings([one]) == []
    lat_first = json.loads(client.get(
        f"/ogc/collections/678-plan/items/{fid}?crs={EPSG4326}").get_data())
    assert wrong_rings([lat_first], lat_first=True) == []
    for cid in ("678-plan", "678-boundary"):
        page = client.get(f"/ogc/collections/{cid}/items?f=html&limit=10000")
        assert page.status_code == 200
        script = re.search(r'<script type="application/json" id="ogc-features">(.*?)</script>',
                           page.get_data(as_text=True), re.S)
        assert script is not None
        features = json.loads(script.group(1))
        assert features and wrong_rings(features) == []


def test_the_winding_agrees_with_geos_on_every_simple_ring() -> None:
    """The page writer reads each ring's winding from its signed area, without making
    ring geometries: on simple rings of every shape (convex or not, a few centimetres
    to hundreds of metres, in degrees rounded as served), what GEOS's `is_ccw` says, and
    after `_right_hand` every ring wound as its role asks."""
    from gisportal.outputs.ogc import geojson

    rng = np.random.default_rng(16)
    rings, ends = [], [0]
    for k in range(2000):
        n = int(rng.integers(3, 14))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))[:: 1 if rng.random() < 0.5 else -1]
        radius = rng.uniform(1, 5, n) * 10.0 ** rng.integers(-6, -2)
        ring = np.column_stack([108.3 + 0.01 * k + radius * np.cos(angles),
                                11.7 + radius * np.sin(angles)]).round(7)
        rings.append(np.vstack([ring, ring[:1]]))
        ends.append(ends[-1] + n + 1)
    ground, ends = np.vstack(rings), np.array(ends)
    index = np.repeat(np.arange(len(rings)), np.diff(ends))
    made = shapely.linearrings(ground, indices=index)
    simple = shapely.is_simple(made)
    assert simple.sum() > 1500
    assert (geojson._ccw(ground, ends) == shapely.is_ccw(made))[simple].all()
    exterior = rng.random(len(rings)) < 0.5
    wound = shapely.linearrings(geojson._right_hand(ground, ends, exterior), indices=index)
    assert (shapely.is_ccw(wound) == exterior)[simple].all()
    # The same rings, reversed or not, hold the same points.
    assert shapely.equals(shapely.polygons(wound), shapely.polygons(made))[simple].all()
