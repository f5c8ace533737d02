"""VN-2000 geodesy against PROJ's EPSG definitions, and CRS inference."""

import pytest
from pyproj import CRS, Geod, Transformer

from gisportal.base import crs as vncrs
from gisportal.base import seeds
from gisportal.base.errors import CRSError

GEOD = Geod(ellps="WGS84")
# Points across Lâm Đồng in EPSG:5899 (easting, northing).
POINTS = [(500000.0, 1300000.0), (447500.0, 1241000.0), (606000.0, 1362000.0),
          (533123.456, 1318765.432)]


def _distance_m(a, b):
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def _custom_tm3(meridian, towgs):
    return CRS.from_proj4(
        f"+proj=tmerc +lat_0=0 +lon_0={meridian} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
        f"+towgs84={','.join(map(str, towgs))} +units=m +no_defs +type=crs")


def test_store_crs_is_epsg_5899():
    assert vncrs.store_crs().to_epsg() == 5899


def test_custom_tm3_definition_agrees_with_epsg_5899_to_1cm():
    epsg = Transformer.from_crs(5899, 4326, always_xy=True)
    ours = Transformer.from_crs(_custom_tm3(107.75, vncrs.TOWGS84_PV), 4326, always_xy=True)
    for x, y in POINTS:
        assert _distance_m(epsg.transform(x, y), ours.transform(x, y)) < 0.01


def test_decision_signs_pasted_into_towgs84_are_wrong_by_decimetres():
    """The classic mistake (coordinate-frame signs in a position-vector slot) is caught."""
    cf = list(vncrs.TOWGS84_PV)
    cf[3:6] = [-v for v in cf[3:6]]
    epsg = Transformer.from_crs(5899, 4326, always_xy=True)
    wrong = Transformer.from_crs(_custom_tm3(107.75, cf), 4326, always_xy=True)
    x, y = POINTS[0]
    assert _distance_m(epsg.transform(x, y), wrong.transform(x, y)) > 0.3


@pytest.mark.parametrize("meridian,epsg", [(108.5, 9218), (105.5, 9209), (103.0, 9205)])
def test_tm3_crs_for_other_provinces_matches_epsg(meridian, epsg):
    assert vncrs.tm3_crs(meridian).to_epsg() == epsg
    custom = Transformer.from_crs(_custom_tm3(meridian, vncrs.TOWGS84_PV), 4326, always_xy=True)
    ref = Transformer.from_crs(epsg, 4326, always_xy=True)
    for x, y in POINTS:
        assert _distance_m(ref.transform(x, y), custom.transform(x, y)) < 0.01


def test_meridian_without_verified_epsg_gets_a_custom_definition():
    c = vncrs.tm3_crs(105.0)  # EPSG 5897 is only "believed" for Hà Nội
    assert c.to_epsg() is None
    assert "towgs84=-191.904" in c.to_wkt()
    # ... and it transforms like PROJ's own VN-2000 / TM-3 105° (EPSG:5897) pipeline.
    ours = Transformer.from_crs(c, 4326, always_xy=True)
    ref = Transformer.from_crs(5897, 4326, always_xy=True)
    for x, y in POINTS:
        assert _distance_m(ref.transform(x, y), ours.transform(x, y)) < 0.01


def test_to_lonlat_matches_proj_and_round_trips():
    lon, lat = vncrs.to_lonlat(500000.0, 1300000.0)
    ref = Transformer.from_crs(5899, 4326, always_xy=True).transform(500000.0, 1300000.0)
    assert _distance_m((lon, lat), ref) < 0.001
    x, y = vncrs.from_lonlat(lon, lat)
    assert abs(x - 500000.0) < 0.001 and abs(y - 1300000.0) < 0.001


def test_surveyor_order_is_swapped_exactly_once():
    # A certificate says X = 1300000 (northing), Y = 500000 (easting).
    east, north = vncrs.surveyor_to_xy(1300000.0, 500000.0)
    assert (east, north) == (500000.0, 1300000.0)
    lon, lat = vncrs.to_lonlat(east, north)
    ref = Transformer.from_crs(5899, 4326, always_xy=True).transform(500000.0, 1300000.0)
    assert _distance_m((lon, lat), ref) < 0.01
    # Not swapping would put the point ~900 km away, in the sea: the swap matters.
    wrong = vncrs.to_lonlat(1300000.0, 500000.0)
    assert _distance_m((lon, lat), wrong) > 500_000


@pytest.mark.parametrize("text,epsg", [("EPSG:5899", 5899), ("5899", 5899),
                                       ("VN2000:108.5", 9218), ("epsg:4326", 4326)])
def test_parse_crs(text, epsg):
    assert vncrs.parse_crs(text).to_epsg() == epsg


def test_parse_crs_rejects_garbage_with_a_hint():
    with pytest.raises(CRSError) as e:
        vncrs.parse_crs("EPSG:99999999")
    assert "--crs" in e.value.where and "EPSG:5899" in e.value.fix


def _bounds_in(epsg, lonlat_box):
    t = Transformer.from_crs(4326, epsg, always_xy=True)
    (x0, y0), (x1, y1) = t.transform(lonlat_box[0], lonlat_box[1]), t.transform(
        lonlat_box[2], lonlat_box[3])
    return (x0, y0, x1, y1)


DUC_TRONG = (108.30, 11.68, 108.34, 11.71)  # a few km² inside Đức Trọng


def test_infers_province_tm3():
    choice = vncrs.infer_crs(_bounds_in(5899, DUC_TRONG), seeds.district("678").anchor_lonlat)
    assert choice.crs.to_epsg() == 5899
    assert choice.origin == "inferred"
    assert "TM-3" in choice.reason_en and "TM-3" in choice.reason_vi


def test_infers_vn2000_utm_49():
    choice = vncrs.infer_crs(_bounds_in(3406, DUC_TRONG))
    assert choice.crs.to_epsg() == 3406
    assert any("WGS 84 / UTM zone 49N" in a for a in choice.alternatives)


def test_infers_lonlat():
    assert vncrs.infer_crs(DUC_TRONG).crs.to_epsg() == 4326


def test_no_crs_fits_far_away_coordinates():
    with pytest.raises(CRSError) as e:
        vncrs.infer_crs((5_000_000, 5_000_000, 5_001_000, 5_001_000))
    assert "fit no known CRS" in e.value.what
    assert "--crs" in e.value.fix


def test_swapped_axes_are_recognised_in_the_message():
    x0, y0, x1, y1 = _bounds_in(5899, DUC_TRONG)
    with pytest.raises(CRSError) as e:
        vncrs.infer_crs((y0, x0, y1, x1))
    assert "swapped" in e.value.what


def test_a_prj_carrying_the_datum_shift_is_the_store_grid():
    """A .prj with TOWGS84 (as offices and our own export write EPSG:5899) is a bound CRS:
    not "equal" to EPSG:5899, but the same grid, so nothing must be reprojected."""
    store = vncrs.store_crs()
    bound = CRS.from_proj4(
        "+proj=tmerc +lat_0=0 +lon_0=107.75 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
        "+towgs84=-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,"
        "0.00427372,0.252906278 +units=m +no_defs").to_wkt("WKT1_GDAL")
    parsed = CRS.from_wkt(bound)
    assert parsed.is_bound and not parsed.equals(store)
    # The bound CRS's base is a plain TM-3 107°45' on the WGS 84 ellipsoid: same grid.
    assert vncrs.same_grid(CRS.from_wkt(vncrs.tm3_crs(107.75).to_wkt()), store)
    assert not vncrs.same_grid(CRS("EPSG:4326"), store)
    assert not vncrs.same_grid(vncrs.tm3_crs(108.5), store)


def test_a_layer_declared_with_a_bound_crs_keeps_its_coordinates_exactly(tmp_path):
    import geopandas as gpd
    import shapely

    from gisportal.base.models import layer_model
    from gisportal.outputs.export.shapefile import prj_wkt
    from gisportal.pipeline.normalise import normalise
    from gisportal.pipeline.read.sources import read_source
    from tests.conftest import DUC_TRONG_XY

    x, y = DUC_TRONG_XY
    poly = shapely.box(x, y, x + 20.123456, y + 30.654321)
    gdf = gpd.GeoDataFrame({"SoTo": [1], "SoThua": [2], "MDSD": ["ONT"]}, geometry=[poly],
                           crs="EPSG:5899")
    path = tmp_path / "thua.gpkg"
    gdf.to_file(path, engine="pyogrio")
    src = read_source(path, workdir=tmp_path)
    # The planner names the CRS by the WKT with TOWGS84 from their office's .prj.
    norm = normalise(src, layer_model("parcels"), crs=prj_wkt(CRS("EPSG:5899")),
                     district="678")
    assert norm.crs_choice.crs.is_bound
    assert shapely.equals_exact(norm.frame.geometry.iloc[0], poly, tolerance=0)
    assert norm.frame.crs.equals(vncrs.store_crs())
