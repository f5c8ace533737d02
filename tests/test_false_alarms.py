"""False alarms and noise found on real files (issue 10, item 8), each from its real shape.

- GEOM-REPEATED-POINTS compared the last vertex of one ring with the first of the next:
  a hole starting where the shell closed, a multipolygon whose next part starts where
  the previous one ended (make_valid's output of a bow-tie, i.e. ``--repair`` itself)
  were flagged although no ring repeats a vertex.
- CODE-LEGACY was one warning per feature: a cadastre still coded under TT 27/2018 gave
  3 865 of them and buried its errors. Now one per code, with a count and examples.
- ``Ð`` (U+00D0, eth: GADM and some fonts write it for ``Đ``) did not fold to ``d``.
- An encoding the ``.cpg`` named was reported as detected "because the file did not say".

Defective rings are written as GeoJSON text, so the bytes on disk are exactly the shape
(GDAL's shapefile writer would reorder rings). Shapefiles are written byte for byte with
their legacy text and ``.cpg`` by ``tests.conftest.write_shapefile_zip``.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer

from gisportal.base.text import fold
from gisportal.cli.main import cli
from gisportal.pipeline.validation.checks import _repeated_points
from gisportal.services.ingest import check_file
from gisportal.services.search import search
from tests.conftest import DUC_TRONG_XY, parcel_grid, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY
TO_LL = Transformer.from_crs(5899, 4326, always_xy=True)


def _ring(coords):
    return [list(TO_LL.transform(X0 + x, Y0 + y)) for x, y in coords]


def _geojson(tmp_path, geometries) -> object:
    """A parcels GeoJSON (WGS 84) of ``geometries`` given in local metres."""
    feats = []
    for i, g in enumerate(geometries):
        g = dict(g)
        if g["type"] == "Polygon":
            g["coordinates"] = [_ring(r) for r in g["coordinates"]]
        else:
            g["coordinates"] = [[_ring(r) for r in p] for p in g["coordinates"]]
        feats.append({"type": "Feature", "geometry": g,
                      "properties": {"SoTo": 1, "SoThua": i + 1, "LoaiDat": "ONT"}})
    path = tmp_path / "thua.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _rules(report, rule: str) -> list:
    return [f for f in report.findings if f.rule == rule]


# --------------------------------------------------------------------------- repeated points

SHELL = [(0, 0), (40, 0), (40, 40), (0, 40), (0, 0)]
#: A hole touching the shell at the shell's first vertex, and starting there: valid (one
#: touching point), and the pair "(0, 0) closes the shell, (0, 0) opens the hole" is
#: not a repeat.
TOUCHING_HOLE = [(0, 0), (20, 10), (10, 20), (0, 0)]
HOLE = [(10, 10), (20, 10), (20, 20), (10, 20), (10, 10)]
#: Two parcels of one owner meeting at a corner, the second drawn from that corner.
TWO_PARTS = [[[(0, 0), (20, 0), (20, 20), (0, 0)]],
             [[(0, 0), (-20, 0), (-20, -20), (0, 0)]]]


@pytest.mark.parametrize("geom", [
    {"type": "Polygon", "coordinates": [SHELL, HOLE]},
    {"type": "Polygon", "coordinates": [SHELL, TOUCHING_HOLE]},
    {"type": "MultiPolygon", "coordinates": TWO_PARTS},
], ids=["hole", "hole starting at the shell's start", "two parts meeting at a corner"])
def test_rings_meeting_are_no_repeated_points(tmp_path, geom):
    path = _geojson(tmp_path, [geom])
    report = check_file(path, "parcels", district="678").report
    assert not report.has_errors, [f.to_dict() for f in report.findings]
    assert _rules(report, "GEOM-REPEATED-POINTS") == []


def test_repaired_bow_tie_is_no_repeated_points(tmp_path):
    """--repair turns this bow-tie into two triangles that both start at the crossing
    point: the validation of the repaired layer must not flag its own output."""
    bow_tie = {"type": "Polygon", "coordinates": [[(20, 20), (0, 0), (20, 0), (0, 20),
                                                    (20, 20)]]}
    checked = check_file(_geojson(tmp_path, [bow_tie]), "parcels", district="678",
                         repair=True)
    actions = [c["action"] for c in checked.report.repair["changes"]]
    assert actions == ["REPAIR-MAKE-VALID"]
    repaired = checked.layer.frame.geometry.values[0]
    assert repaired.geom_type == "MultiPolygon" and repaired.is_valid
    parts = shapely.get_parts(repaired)
    starts = shapely.get_coordinates(shapely.get_exterior_ring(parts))
    assert len(parts) == 2 and (starts[-1] == starts[len(starts) // 2]).all(), (
        "the shape no longer has a part starting where the previous one ended")
    assert _rules(checked.report, "GEOM-REPEATED-POINTS") == []
    assert not checked.report.has_errors


def test_a_truly_repeated_vertex_is_counted_per_ring(tmp_path):
    """The shell doubles (40, 0), the hole doubles (20, 10); the hole also starts where
    the shell closed, which is not a third."""
    shell = [(0, 0), (40, 0), (40, 0), (40, 40), (0, 40), (0, 0)]
    hole = [(0, 0), (20, 10), (20, 10), (10, 20), (0, 0)]
    clean = {"type": "Polygon", "coordinates": [[(100, 0), (120, 0), (120, 20), (100, 20),
                                                  (100, 0)]]}
    path = _geojson(tmp_path, [clean, {"type": "Polygon", "coordinates": [shell, hole]}])
    found = _rules(check_file(path, "parcels", district="678").report,
                   "GEOM-REPEATED-POINTS")
    assert [(f.row, f.params["count"]) for f in found] == [(1, 2)]
    assert found[0].message("en") == "2 repeated consecutive vertices."


def test_repeated_points_vectorised_over_many_geometries():
    """Thousands of single-ring parcels, with multi-ring ones and true repeats mixed in:
    each gets its own count (the ring-by-ring recount touches only the flagged)."""
    n = 5000
    xs = (np.arange(n) % 100) * 50.0
    ys = (np.arange(n) // 100) * 50.0
    geoms = shapely.box(xs, ys, xs + 40, ys + 40)
    expected = np.zeros(n, dtype=np.int64)
    for i in range(0, n, 7):  # a hole touching the shell at its start: no repeat
        x, y = xs[i], ys[i]
        geoms[i] = shapely.Polygon([(x, y), (x + 40, y), (x + 40, y + 40), (x, y + 40)],
                                   [[(x, y), (x + 20, y + 10), (x + 10, y + 20)]])
    for i in range(3, n, 11):  # a doubled vertex
        x, y = xs[i], ys[i]
        geoms[i] = shapely.Polygon([(x, y), (x + 40, y), (x + 40, y), (x + 40, y + 40),
                                    (x, y + 40)])
        expected[i] = 1
    for i in range(5, n, 13):  # two parts meeting at a corner, one doubled vertex
        x, y = xs[i], ys[i]
        geoms[i] = shapely.MultiPolygon([
            shapely.Polygon([(x + 20, y + 20), (x + 40, y + 20), (x + 40, y + 40)]),
            shapely.Polygon([(x + 20, y + 20), (x, y), (x, y), (x + 20, y)])])
        expected[i] = 1
    assert (_repeated_points(geoms, chunk=1000) == expected).all()


# --------------------------------------------------------------------------- legacy codes


def test_legacy_code_is_one_finding_for_the_layer(tmp_path):
    """4 000 parcels of a cadastre still coded BHK (TT 27/2018), two with LUN+BHK, and
    one real error: the report has one warning per legacy code and the error in view."""
    gdf = parcel_grid(40, 100)
    assert len(gdf) == 4000
    gdf["LoaiDat"] = "BHK"
    gdf.loc[[10, 3999], "LoaiDat"] = "LUN+BHK"
    gdf.loc[7, "SoThua"] = gdf.loc[8, "SoThua"]  # a duplicate key: errors on rows 7, 8
    path = tmp_path / "thua_cu.gpkg"
    gdf.to_file(path, driver="GPKG")
    report = check_file(path, "parcels").report
    legacy = {f.params["code"]: f for f in _rules(report, "CODE-LEGACY")}
    assert sorted(legacy) == ["BHK", "LUN"]
    bhk, lun = legacy["BHK"], legacy["LUN"]
    assert (bhk.level, bhk.row, dict(bhk.key)) == ("warning", None, {})
    assert (bhk.params["count"], bhk.params["rows"]) == (4000, [0, 1, 2, 3, 4])
    assert bhk.params["replaced_by"] == "HNK" and bhk.params["field"] == "land_use"
    assert bhk.params["values"] == ["BHK", "LUN+BHK"]
    assert (lun.params["count"], lun.params["rows"]) == (2, [10, 3999])
    assert bhk.message("en") == ("Land-use code 'BHK' is a legacy code (current code: HNK), "
                                 "used by 4000 features, e.g. rows 0, 1, 2, 3, 4 ….")
    assert bhk.message("vi").startswith("Mã loại đất 'BHK' là mã cũ (mã hiện hành: HNK), "
                                        "dùng ở 4000 đối tượng")
    # It still draws on the map: a point on each example feature, in WGS 84.
    assert bhk.location["type"] == "MultiPoint" and len(bhk.location["coordinates"]) == 5
    first = shapely.point_on_surface(gdf.geometry.iloc[0])
    lon, lat = TO_LL.transform(first.x, first.y)
    assert np.allclose(bhk.location["coordinates"][0], [lon, lat], atol=1e-6)
    assert lun.location["type"] == "MultiPoint" and len(lun.location["coordinates"]) == 2
    # The errors are not lost among thousands of warnings.
    assert [(f.rule, f.row) for f in report.findings if f.level == "error"] == [
        ("KEY-DUPLICATE", 7), ("KEY-DUPLICATE", 8)]
    assert report.summary()["warnings"] == 2
    assert len(json.dumps(report.to_dict(), ensure_ascii=False)) < 20_000


def test_one_legacy_feature_is_located_by_a_point(tmp_path):
    gdf = parcel_grid(1, 3)
    gdf.loc[1, "LoaiDat"] = "DTS"
    path = tmp_path / "thua.gpkg"
    gdf.to_file(path, driver="GPKG")
    (f,) = _rules(check_file(path, "parcels").report, "CODE-LEGACY")
    assert (f.params["count"], f.params["examples"], f.location["type"]) == (1, "1", "Point")


# --------------------------------------------------------------------------- Ð (eth)


def test_eth_folds_like_d_with_stroke():
    assert fold("ÐÀ LẠT") == fold("Đà Lạt") == fold("da lat") == "da lat"
    assert fold("ðức trọng") == "duc trong"


def test_search_finds_a_place_written_with_eth(store):
    """A boundary layer from GADM spells the commune with Ð (U+00D0)."""
    x, y = X0, Y0
    boundary = gpd.GeoDataFrame(
        {"level": ["district", "commune"], "code": ["678", "24778"],
         "name": ["Huyện Ðức Trọng", "Xã Ðà Lạt Mới"]},
        geometry=[shapely.box(x - 3000, y - 3000, x + 3000, y + 3000),
                  shapely.box(x - 1000, y - 1000, x + 1000, y + 1000)], crs="EPSG:5899")
    version = store.add_version("678", "boundary", boundary, source_name="gadm.gpkg",
                                source_sha256="d" * 64, created_by="test")
    store.publish(version.id, by="test")
    places = search(store, "da lat moi", "678")["places"]
    assert [(p["level"], p["code"], p["name"]) for p in places][:1] == [
        ("commune", "24778", "Xã Ðà Lạt Mới")]
    assert search(store, "Đà Lạt Mới", "678")["places"][0]["code"] == "24778"


# --------------------------------------------------------------------------- encodings

NAMES = ["Nguyễn Văn Hùng", "Trần Thị Lụa", "Phạm Đức Mạnh", "Lê Thị Hồng"]


def _owners(n: int = 4) -> gpd.GeoDataFrame:
    gdf = parcel_grid(1, n)
    gdf["TenChu"] = [NAMES[i % len(NAMES)] for i in range(n)]
    return gdf


@pytest.mark.parametrize("cpg, encoding, shown", [("UTF-8", "utf-8", "UTF-8"),
                                                   ("1258", "cp1258", "Windows-1258")])
def test_encoding_named_by_the_cpg_is_given_not_detected(tmp_path, cpg, encoding, shown):
    path = write_shapefile_zip(_owners(), tmp_path / "thua.zip", encoding=encoding, cpg=cpg)
    report = check_file(path, "parcels").report
    assert _rules(report, "READ-ENCODING-DETECTED") == []
    assert _rules(report, "READ-ENCODING-UNCERTAIN") == []
    (given,) = _rules(report, "READ-ENCODING-GIVEN")
    assert (given.level, given.params["encoding"], given.params["origin"]) == (
        "info", encoding, "cpg")
    assert given.message("en") == f"Text encoding: {shown}, as given by the .cpg file ('{cpg}')."
    assert given.message("vi") == f"Bảng mã văn bản: {shown}, theo tệp .cpg ('{cpg}')."
    assert report.read["encoding"] == encoding and report.read["encoding_origin"] == "cpg"
    assert list(check_file(path, "parcels").layer.frame["owner"]) == NAMES


def test_encoding_given_on_the_command_line(tmp_path, home):
    path = write_shapefile_zip(_owners(), tmp_path / "thua.zip", encoding="tcvn3")
    result = CliRunner().invoke(cli, ["validate", str(path), "--kind", "parcels",
                                      "--encoding", "tcvn3"], prog_name="gisportal")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    enc = [f for f in report["findings"] if f["rule"].startswith("READ-ENCODING")]
    assert [(f["rule"], f["severity"], f["detail"]["origin"]) for f in enc] == [
        ("READ-ENCODING-GIVEN", "info", "given")]
    assert enc[0]["message_en"] == "Text encoding: TCVN3, as given by --encoding."
    assert report["read"]["encoding_origin"] == "given"


def test_utf8_formats_say_so_in_the_read_section_without_a_finding(tmp_path):
    path = tmp_path / "thua.gpkg"
    _owners().to_file(path, driver="GPKG")
    report = check_file(path, "parcels").report
    assert _rules(report, "READ-ENCODING-GIVEN") == []
    assert _rules(report, "READ-ENCODING-DETECTED") == []
    assert report.read["encoding_origin"] == "format"


def test_without_cpg_the_encoding_is_still_detected(tmp_path):
    path = write_shapefile_zip(_owners(), tmp_path / "thua.zip", encoding="tcvn3")
    report = check_file(path, "parcels").report
    assert _rules(report, "READ-ENCODING-GIVEN") == []
    (detected,) = _rules(report, "READ-ENCODING-DETECTED")
    assert detected.params["encoding"] == "tcvn3"
    assert report.read["encoding_origin"] == "detected"
