"""Geometry and schema rules on a corpus of real files, one defect class each.

Each case asserts the exact rule code, the source row it names, and where it puts
the problem (WGS 84, lon/lat). Defective rings are written as GeoJSON text, so the
bytes on disk are exactly the defect (GDAL writers would refuse or repair some).
"""

from __future__ import annotations

import json

import pytest
import shapely
from pyproj import Transformer

from gisportal.services.ingest import check_file
from tests.conftest import DUC_TRONG_XY, parcel_grid

X0, Y0 = DUC_TRONG_XY
TO_LL = Transformer.from_crs(5899, 4326, always_xy=True)


def _ring(coords):
    return [list(TO_LL.transform(X0 + x, Y0 + y)) for x, y in coords]


SQUARE = [(0, 0), (20, 0), (20, 20), (0, 20), (0, 0)]
DEFECTS = {
    # name: (geometry as GeoJSON in local metres, expected rule, expected point (m) or None)
    "bow-tie": ({"type": "Polygon", "coordinates": [[(0, 0), (20, 20), (20, 0), (0, 20),
                                                      (0, 0)]]}, "GEOM-INVALID", (10, 10)),
    "hole outside shell": ({"type": "Polygon", "coordinates": [
        SQUARE, [(30, 30), (40, 30), (40, 40), (30, 30)]]}, "GEOM-INVALID", (30, 30)),
    "nested shells": ({"type": "MultiPolygon", "coordinates": [
        [SQUARE], [[(5, 5), (10, 5), (10, 10), (5, 5)]]]}, "GEOM-INVALID", (5, 5)),
    "self-touching ring": ({"type": "Polygon", "coordinates": [[
        (0, 0), (20, 0), (10, 10), (20, 20), (0, 20), (10, 10), (0, 0)]]},
        "GEOM-INVALID", (10, 10)),
    "spike": ({"type": "Polygon", "coordinates": [[
        (0, 0), (20, 0), (20, 20), (10, 20), (10, 30), (10, 20), (0, 20), (0, 0)]]},
        "GEOM-INVALID", (10, 20)),  # GEOS names the spike's root
    "repeated points": ({"type": "Polygon", "coordinates": [[
        (0, 0), (20, 0), (20, 0), (20, 20), (0, 20), (0, 20), (0, 0)]]},
        "GEOM-REPEATED-POINTS", None),
    "unclosed ring": ({"type": "Polygon", "coordinates": [[(0, 0), (20, 0), (20, 20),
                                                           (0, 20)]]},
                      "READ-GEOMETRY-FIXED", None),
    "sliver": ({"type": "Polygon", "coordinates": [[(0, 0), (300, 0), (300, 0.05), (0, 0.05),
                                                    (0, 0)]]}, "GEOM-SLIVER", None),
    "tiny polygon": ({"type": "Polygon", "coordinates": [[(0, 0), (1.5, 0), (1.5, 1.5),
                                                          (0, 1.5), (0, 0)]]},
                     "GEOM-TINY", None),
    "wrong geometry type": ({"type": "LineString", "coordinates": [(0, 0), (20, 20)]},
                            "GEOM-TYPE", None),
}


def _geojson(tmp_path, geometries, props=None):
    feats = []
    for i, g in enumerate(geometries):
        g = dict(g)
        if g["type"] == "Polygon":
            g["coordinates"] = [_ring(r) for r in g["coordinates"]]
        elif g["type"] == "MultiPolygon":
            g["coordinates"] = [[_ring(r) for r in p] for p in g["coordinates"]]
        else:
            g["coordinates"] = _ring(g["coordinates"])
        p = {"SoTo": 1, "SoThua": i + 1, "LoaiDat": "ONT"}
        p.update((props or {}).get(i, {}))
        feats.append({"type": "Feature", "properties": p, "geometry": g})
    path = tmp_path / "corpus.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


@pytest.mark.parametrize("name", list(DEFECTS))
def test_each_defect_is_found_named_and_located(tmp_path, name):
    geom, rule, point = DEFECTS[name]
    clean = {"type": "Polygon", "coordinates": [[(1000, 0), (1020, 0), (1020, 20), (1000, 20),
                                                  (1000, 0)]]}
    path = _geojson(tmp_path, [clean, geom])
    report = check_file(path, "parcels", district="678").report
    hits = [f for f in report.findings if f.rule == rule]
    assert len(hits) == 1, [(f.rule, f.row) for f in report.findings]
    f = hits[0]
    assert f.row == 1
    if rule != "READ-GEOMETRY-FIXED":
        assert f.key == {"commune": None, "sheet": 1, "parcel": 2}
    # Nothing is reported about the clean feature (row 0) apart from file-level facts.
    assert all(x.row != 0 for x in report.findings)
    if point is not None:
        lon, lat = f.location["coordinates"]
        ex, ey = TO_LL.transform(X0 + point[0], Y0 + point[1])
        assert abs(lon - ex) < 1e-6 and abs(lat - ey) < 1e-6, f.params
    if rule == "GEOM-INVALID":
        assert f.params["reason"] and f.params["reason_vi"]


def test_clean_file_gives_no_feature_findings(make_shapefile_zip):
    report = check_file(make_shapefile_zip(), "parcels", district="678").report
    assert [f.rule for f in report.findings if f.row is not None] == []
    assert not report.has_errors


def test_unknown_and_legacy_codes_part_by_part(tmp_path):
    gdf = parcel_grid(1, 4)
    gdf["LoaiDat"] = ["ONT+XYZ", "BHK", "ONT+CLN", "QQQ"]
    path = tmp_path / "codes.gpkg"
    gdf.to_file(path, driver="GPKG")
    report = check_file(path, "parcels").report
    got = sorted((f.rule, f.row, f.params.get("code")) for f in report.findings
                 if f.rule.startswith("CODE-"))
    # An unknown code is an error on its feature; a legacy code one warning for the
    # layer, naming its features as examples.
    assert got == [("CODE-LEGACY", None, "BHK"), ("CODE-UNKNOWN", 0, "XYZ"),
                   ("CODE-UNKNOWN", 3, "QQQ")]
    legacy = next(f for f in report.findings if f.rule == "CODE-LEGACY")
    assert (legacy.params["count"], legacy.params["rows"]) == (1, [1])
    assert "HNK" in legacy.message("en")


def test_area_mismatch_and_required_null(tmp_path):
    gdf = parcel_grid(1, 3)
    gdf.loc[0, "DienTich"] = 650.0  # true area 500 m²
    gdf.loc[1, "SoThua"] = None
    path = tmp_path / "attrs.gpkg"
    gdf.to_file(path, driver="GPKG")
    report = check_file(path, "parcels").report
    area = [f for f in report.findings if f.rule == "AREA-MISMATCH"]
    assert [(f.row, f.params["declared"], f.params["computed"]) for f in area] == [
        (0, 650.0, 500.0)]
    assert [(f.rule, f.row) for f in report.findings if f.rule == "ATTR-NULL"] == [
        ("ATTR-NULL", 1)]


def test_commune_not_in_district(store, tmp_path):
    import geopandas as gpd

    # 2 km is no outline of Đức Trọng (an upload is refused: BOUNDARY-OUTLINE-MISFIT);
    # the commune check only needs a published one, so it is stored as published.
    b = gpd.GeoDataFrame({"level": ["district", "commune"], "code": ["678", "24778"],
                          "name": ["Huyện Đức Trọng", "Xã Hiệp An"]},
                         geometry=[shapely.box(X0 - 1000, Y0 - 1000, X0 + 1000, Y0 + 1000)] * 2,
                         crs="EPSG:5899")
    store.publish(store.add_version("678", "boundary", b, source_name="b.gpkg",
                                    source_sha256="b" * 64, created_by="test").id, by="test")
    gdf = parcel_grid(1, 2)
    gdf.loc[1, "MaXa"] = "99999"
    path = tmp_path / "p.gpkg"
    gdf.to_file(path, driver="GPKG")
    report = check_file(path, "parcels", district="678", store=store).report
    bad = [(f.rule, f.row, f.params["commune"]) for f in report.findings
           if f.rule == "ATTR-COMMUNE-UNKNOWN"]
    assert bad == [("ATTR-COMMUNE-UNKNOWN", 1, "99999")]


def test_shape_findings_do_not_depend_on_the_chunk(tmp_path, monkeypatch):
    """check_shape measures SHAPE_CHUNK features at a time (to bound its memory beside
    topology): cut into chunks of one or two features, the findings are the same, in
    the same order, as from one pass."""
    from gisportal.pipeline.validation import checks

    names = ["tiny polygon", "sliver", "repeated points", "bow-tie", "tiny polygon",
             "repeated points", "sliver"]
    clean = {"type": "Polygon", "coordinates": [[(1000, 0), (1020, 0), (1020, 20),
                                                  (1000, 20), (1000, 0)]]}
    shifted = []
    for i, name in enumerate(names):
        geom = json.loads(json.dumps(DEFECTS[name][0]))
        geom["coordinates"] = [[(x + 100 * i, y + 500) for x, y in ring]
                               for ring in geom["coordinates"]]
        shifted += [geom, clean]
    checked = check_file(_geojson(tmp_path, shifted), "parcels", district="678")

    def shape_findings():
        return [(f.rule, f.row, f.key, f.location, f.params)
                for f in checks.check_shape(checked.layer, None)]

    whole = shape_findings()
    assert {r for r, *_ in whole} == {"GEOM-TINY", "GEOM-SLIVER", "GEOM-REPEATED-POINTS"}
    assert len(whole) == 6
    for chunk in (1, 2, 3):
        monkeypatch.setattr(checks, "SHAPE_CHUNK", chunk)
        assert shape_findings() == whole
