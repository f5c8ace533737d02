"""Real GIS clients against a live server: GDAL's OAPIF driver (Debian ``gdal-bin``) and OWSLib.

What another agency does with the portal: list the collections, copy one into a
GeoPackage with ``ogr2ogr`` (page after page, following the ``next`` links), read it
with OWSLib. The copy must have every feature, WGS 84 coordinates that match the
published geometry, and the Vietnamese text intact. And one feature by its id, as
``ogrinfo -fid`` and pyogrio's ``fids=`` fetch it: GDAL appends ``/{featureId}`` to the
collection's ``items`` link, so that link must be a clean path (no ``?f=json``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from tests.browser import live_server
from tests.test_ogc_api import ADDRESS, PUBLIC_PROPERTIES, N, parcels_frame, publish_district


def gdal_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is missing: install Debian's gdal-bin (the README's test "
                           "command does)")
    return path


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def fetched(*args: str) -> tuple[str, list[str]]:
    """What a GDAL command prints, and the URLs it fetched (its HTTP debug lines)."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CPL_DEBUG": "HTTP"})
    urls = [line.split("Fetch(", 1)[1].rstrip(")") for line in done.stderr.splitlines()
            if "HTTP: Fetch(" in line]
    return done.stdout + done.stderr, urls


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clients")
    publish_district(tmp / "home", tmp)
    with live_server(tmp / "home") as url:
        yield url


def test_ogrinfo_lists_the_collections_with_vietnamese_titles(server) -> None:
    out = run(gdal_tool("ogrinfo"), "-ro", f"OAPIF:{server}/ogc")
    assert "1: 678-parcels (title: Thửa đất địa chính – Huyện Đức Trọng / Cadastral parcels" \
        in out
    assert "2: 678-plan (title: Quy hoạch sử dụng đất 2021–2030" in out
    summary = run(gdal_tool("ogrinfo"), "-ro", "-so", f"OAPIF:{server}/ogc", "678-parcels")
    assert f"Feature Count: {N}" in summary
    assert "sheet: Integer" in summary and "src:GhiChu: String" in summary
    assert "TenChu" not in summary and "SoCCCD" not in summary


def test_ogr2ogr_copies_a_collection_page_by_page(server, tmp_path: Path) -> None:
    out = tmp_path / "copy.gpkg"
    # 25 features a page: the 120 parcels take five pages, linked by "next".
    run(gdal_tool("ogr2ogr"), "-f", "GPKG", str(out), f"OAPIF:{server}/ogc", "678-parcels",
        "-oo", "PAGE_SIZE=25")
    info = pyogrio.read_info(out, layer="678-parcels")
    assert info["features"] == N
    assert info["crs"] == "EPSG:4326"
    copy = pyogrio.read_dataframe(out, layer="678-parcels", fid_as_index=True)
    assert list(copy.columns[:-1]) == PUBLIC_PROPERTIES
    assert copy.index.tolist() == list(range(1, N + 1))  # GDAL keeps the integer ids
    assert set(copy["address"]) == {ADDRESS} and copy["src:GhiChu"].iloc[1] == "Ghi chú 1"
    source = parcels_frame()
    assert copy["sheet"].tolist() == source["SoTo"].tolist()
    assert copy["parcel"].tolist() == source["SoThua"].tolist()
    expected = source.to_crs("EPSG:4326").geometry.values
    assert shapely.equals_exact(copy.geometry.values, expected, tolerance=1e-6).all()
    # Nothing personal reached the copy.
    names = set(source["TenChu"])
    assert not any(str(v) in names for v in np.ravel(copy.drop(columns="geometry").values))


def test_ogr2ogr_with_a_spatial_filter_copies_the_parcels_in_it(server, tmp_path) -> None:
    source = parcels_frame().to_crs("EPSG:4326")
    w, s, e, n = shapely.bounds(shapely.union_all(source.geometry.values[:2]))
    out = tmp_path / "bbox.gpkg"
    # A box strictly inside parcels 1 and 2 (the first two of the first row).
    pad_x, pad_y = (e - w) / 8, (n - s) / 8
    run(gdal_tool("ogr2ogr"), "-f", "GPKG", str(out), f"OAPIF:{server}/ogc", "678-parcels",
        "-spat", str(w + pad_x), str(s + pad_y), str(e - pad_x), str(n - pad_y))
    copy = pyogrio.read_dataframe(out, fid_as_index=True)
    inside = shapely.intersects(source.geometry.values, shapely.box(
        w + pad_x, s + pad_y, e - pad_x, n - pad_y))
    assert copy.index.tolist() == (np.flatnonzero(inside) + 1).tolist()
    assert 1 in copy.index and 2 in copy.index


def test_owslib_reads_landing_page_collections_and_items(server) -> None:
    from owslib.ogcapi.features import Features

    api = Features(f"{server}/ogc")
    assert any(link["rel"] == "service-desc" for link in api.links)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in \
        api.conformance()["conformsTo"]
    assert api.feature_collections() == ["678-parcels", "678-plan"]
    assert api.collection("678-plan")["extent"]["temporal"]["interval"] == \
        [["2021-01-01T00:00:00Z", "2030-12-31T23:59:59Z"]]
    page = api.collection_items("678-parcels", limit=10, offset=20, sheet=3)
    assert page["numberMatched"] == 10 and page["numberReturned"] == 0
    page = api.collection_items("678-parcels", limit=4, offset=2, sheet=3)
    assert [f["id"] for f in page["features"]] == [23, 24, 25, 26]
    assert page["features"][0]["properties"]["address"] == ADDRESS
    assert "/collections/678-parcels/items" in api.api()["paths"]  # via service-desc
    with pytest.raises(RuntimeError, match="InvalidParameterValue"):
        api.collection_items("678-parcels", limit=0)


def test_ogrinfo_fetches_one_feature_by_its_id(server) -> None:
    out, urls = fetched(gdal_tool("ogrinfo"), "-ro", "-al", "-fid", "24",
                        f"OAPIF:{server}/ogc/collections/678-parcels")
    assert "OGRFeature(678-parcels):24" in out
    assert "sheet (Integer) = 3" in out and "parcel (Integer) = 4" in out
    assert f"{server}/ogc/collections/678-parcels/items/24" in urls, urls
    assert not any("f=json/" in u for u in urls), urls
    # From the landing page, naming the layer: the plan's second zone.
    out, urls = fetched(gdal_tool("ogrinfo"), "-ro", "-fid", "2", f"OAPIF:{server}/ogc",
                        "678-plan")
    assert "OGRFeature(678-plan):2" in out and "zone_id (String) = Z2" in out
    assert f"{server}/ogc/collections/678-plan/items/2" in urls, urls
    # An id that is not there: GDAL says the server's OGC exception, nothing more.
    out, urls = fetched(gdal_tool("ogrinfo"), "-ro", "-al", "-fid", "999",
                        f"OAPIF:{server}/ogc/collections/678-parcels")
    assert "OGRFeature" not in out and "there is no feature '999' in 678-parcels" in out
    assert "Traceback" not in out


def test_pyogrio_reads_features_by_id(server) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{server}/ogc/collections/678-parcels",
                                   fids=[24, 1, 120], fid_as_index=True)
    assert sorted(frame.index.tolist()) == [1, 24, 120]
    source = parcels_frame()
    for fid, row in frame.iterrows():
        assert (row["sheet"], row["parcel"]) == (source["SoTo"].iloc[fid - 1],
                                                  source["SoThua"].iloc[fid - 1])
    expected = source.to_crs("EPSG:4326").geometry.values[frame.index.to_numpy() - 1]
    assert shapely.equals_exact(shapely.normalize(frame.geometry.values),
                                shapely.normalize(expected), tolerance=1e-6).all()
