"""The whole pipeline on real files: read → normalise → validate → store → publish."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from gisportal.base.errors import CRSError, EncodingError, GisportalError, UsageError
from gisportal.pipeline.normalise import source_attributes
from gisportal.services.ingest import check_file, ingest_file
from gisportal.services.workflow import publish
from tests.conftest import parcel_grid

# Literal TCVN3 (ABC) bytes, as .VnTime fonts store them (checked against the
# published tables; see tests/test_encodings.py).
TCVN3_NAMES = {
    "Lâm Đồng": b"L\xa9m \xa7\xe5ng",
    "Đà Lạt": b"\xa7\xb5 L\xb9t",
    "Đức Trọng": b"\xa7\xf8c Tr\xe4ng",
    "Bảo Lộc": b"B\xb6o L\xe9c",
    "Nguyễn Văn Hùng": b"Nguy\xd4n V\xa8n H\xefng",
}


def _tcvn3_parcels():
    gdf = parcel_grid(4, 5)
    texts = list(TCVN3_NAMES)
    gdf["TenChu"] = [TCVN3_NAMES[texts[i % len(texts)]] for i in range(len(gdf))]
    expected = [texts[i % len(texts)] for i in range(len(gdf))]
    return gdf, expected


def test_done_when_tcvn3_shapefile_without_prj(store, make_shapefile_zip):
    """The issue's acceptance case: zipped VN-2000 TM-3 shapefile, no .prj, TCVN3 text."""
    gdf, expected_names = _tcvn3_parcels()
    path = make_shapefile_zip(gdf, prj=False, encoding="tcvn3")
    res = ingest_file(store, path, "parcels", "678", publish=True)
    assert res.published
    rules = {f.rule: f for f in res.report.findings}
    assert rules["CRS-INFERRED"].params["crs"].startswith("EPSG:5899")
    assert "TM-3" in rules["CRS-INFERRED"].message("en")
    enc = rules["READ-ENCODING-DETECTED"]
    assert enc.params["encoding"] == "tcvn3"
    stored = store.read(res.version.id).sort_values("src_row")
    # Placement: stored TM-3 coordinates are the source's to < 1 cm, and their WGS 84
    # position is PROJ's EPSG:5899 → EPSG:4326 answer.
    # (Shapefile rings are written clockwise: compare normalised geometries.)
    src_geoms = shapely.normalize(gdf.geometry.values)
    got_geoms = shapely.normalize(stored.geometry.values)
    assert shapely.equals_exact(src_geoms, got_geoms, tolerance=0.01).all()
    src = shapely.get_coordinates(src_geoms)
    got = shapely.get_coordinates(got_geoms)
    t = Transformer.from_crs(5899, 4326, always_xy=True)
    from gisportal.base.crs import to_lonlat
    lon, lat = to_lonlat(got[:, 0], got[:, 1])
    ref_lon, ref_lat = t.transform(src[:, 0], src[:, 1])
    assert np.abs(lon - ref_lon).max() < 1e-9 and np.abs(lat - ref_lat).max() < 1e-9
    # Names: correct Vietnamese, NFC, in the owner field and the source attributes.
    assert list(stored["owner"]) == expected_names
    assert list(stored["src:TenChu"]) == expected_names
    assert source_attributes(stored.iloc[0])["TenChu"] == expected_names[0]
    assert list(stored["sheet"]) == list(gdf["SoTo"])
    assert store.published("678", "parcels").id == res.version.id


def test_wrong_encoding_forced_is_refused_and_stores_nothing(store, make_shapefile_zip):
    gdf, _ = _tcvn3_parcels()
    path = make_shapefile_zip(gdf, prj=False, encoding="tcvn3")
    with pytest.raises(EncodingError) as e:
        ingest_file(store, path, "parcels", "678", encoding="utf-8")
    assert "tcvn3" in (e.value.fix + e.value.what).lower()
    assert store.versions() == []


def test_declared_crs_is_used_and_reported(store, make_shapefile_zip):
    path = make_shapefile_zip(prj=True)
    checked = check_file(path, "parcels", district="678")
    assert checked.layer.crs_choice.origin == "declared"
    assert "CRS-INFERRED" not in {f.rule for f in checked.report.findings}
    assert not checked.report.has_errors


def test_reprojects_wgs84_input_to_tm3(store, tmp_path):
    gdf = parcel_grid(2, 2)
    path = tmp_path / "p.geojson"
    gdf.to_crs(4326).to_file(path, driver="GeoJSON")
    res = ingest_file(store, path, "parcels", "678")
    stored = store.read(res.version.id).sort_values("src_row")
    assert stored.crs.to_epsg() == 5899
    areas = shapely.area(stored.geometry.values)
    assert np.allclose(areas, 500.0, rtol=1e-4)  # 20 m × 25 m, measured in TM-3


def test_crs_override(store, make_shapefile_zip):
    path = make_shapefile_zip(prj=False)
    res = ingest_file(store, path, "parcels", "678", crs="EPSG:5899")
    assert res.report.read["crs"]["origin"] == "override"


def test_wrong_declared_crs_lands_outside_and_is_refused(store, tmp_path):
    gdf = parcel_grid(2, 2).set_crs(32648, allow_override=True)  # TM-3 numbers, UTM 48 label
    path = tmp_path / "wrong.gpkg"
    gdf.to_file(path, driver="GPKG")
    with pytest.raises(CRSError) as e:
        ingest_file(store, path, "parcels", "678")
    assert "--crs" in e.value.fix
    assert store.versions() == []


def test_unknown_district(store, make_shapefile_zip):
    with pytest.raises(UsageError) as e:
        ingest_file(store, make_shapefile_zip(), "parcels", "999")
    assert "678" in e.value.fix


def test_version_with_errors_is_kept_as_draft_and_cannot_be_published(store, tmp_path):
    gdf = parcel_grid(2, 3)
    gdf.loc[0, "LoaiDat"] = "XYZ"
    gdf.loc[1, "SoThua"] = gdf.loc[2, "SoThua"]
    path = tmp_path / "bad.gpkg"
    gdf.to_file(path, driver="GPKG")
    res = ingest_file(store, path, "parcels", "678", publish=True)
    assert not res.published and res.version.status == "draft"
    rules = [(f.rule, f.row) for f in res.report.findings if f.level == "error"]
    assert ("CODE-UNKNOWN", 0) in rules
    assert ("KEY-DUPLICATE", 1) in rules and ("KEY-DUPLICATE", 2) in rules
    with pytest.raises(GisportalError):
        publish(store, res.version.id, "cli", district="678", kind="parcels")
    assert store.published("678", "parcels") is None


def test_publish_checks_district_and_kind(store, make_shapefile_zip):
    res = ingest_file(store, make_shapefile_zip(), "parcels", "678")
    with pytest.raises(GisportalError) as e:
        publish(store, res.version.id, "cli", district="672", kind="parcels")
    assert "--district 678" in e.value.fix
    v = publish(store, res.version.id, "cli", district="678", kind="parcels").version
    assert v.status == "published"


def test_new_version_supersedes_and_old_stays_readable(store, make_shapefile_zip):
    a = ingest_file(store, make_shapefile_zip(name="a.zip"), "parcels", "678", publish=True)
    b = ingest_file(store, make_shapefile_zip(parcel_grid(3, 3), name="b.zip"), "parcels",
                    "678", publish=True, confirm_removals=True)
    assert store.published("678", "parcels").id == b.version.id
    assert store.version(a.version.id).status == "superseded"
    assert len(store.read(a.version.id)) == 20
    assert len(store.read(b.version.id)) == 9
    assert store.version(a.version.id).source_sha256 != store.version(b.version.id).source_sha256


def test_findings_name_source_rows_when_a_damaged_record_was_dropped(store, tmp_path):
    import struct
    import zipfile

    from tests.conftest import write_shapefile_zip

    gdf = parcel_grid(2, 3)
    gdf.loc[4, "LoaiDat"] = "XYZ"  # source row 4
    z = write_shapefile_zip(gdf, tmp_path / "hong.zip")
    parts = tmp_path / "hong_parts"
    shp = parts / "thua.shp"
    shx = (parts / "thua.shx").read_bytes()
    offset = struct.unpack(">i", shx[100 + 8 * 1:104 + 8 * 1])[0] * 2  # damage row 1
    data = bytearray(shp.read_bytes())
    struct.pack_into("<i", data, offset + 8, 77)
    shp.write_bytes(bytes(data))
    z.unlink()
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(parts.iterdir()):
            zf.write(p, p.name)
    res = ingest_file(store, z, "parcels", "678")
    rows = {(f.rule, f.row) for f in res.report.findings if f.level == "error"}
    assert ("READ-RECORD-UNREADABLE", 1) in rows
    assert ("CODE-UNKNOWN", 4) in rows
    stored = store.read(res.version.id)
    assert sorted(stored["src_row"]) == [0, 2, 3, 4, 5]
    assert res.version.has_errors  # a damaged record blocks publishing


def test_ingest_with_repair_stores_the_repaired_layer_and_its_changes(store, tmp_path):
    from tests.conftest import bow_tie_file

    res = ingest_file(store, bow_tie_file(tmp_path, row=2), "parcels", "678", repair=True,
                      publish=True)
    assert res.published
    assert res.version.meta["repair"]["by_action"]["REPAIR-MAKE-VALID"]["count"] == 1
    stored = store.read(res.version.id)
    assert shapely.is_valid(stored.geometry.values).all()


def test_national_names_cut_to_ten_characters_by_a_shapefile_are_recognised(tmp_path):
    """QGIS/GDAL cut `SoHieuToBanDo` to `SoHieuToBa` in a Shapefile: still the sheet."""
    gdf = parcel_grid(2, 3).rename(columns={"SoTo": "SoHieuToBanDo", "SoThua": "SoThuTuThua",
                                            "LoaiDat": "KyHieuMucDichSuDung"})
    path = tmp_path / "thua.shp"
    with pytest.warns(UserWarning, match="truncated"):
        gdf.to_file(path, engine="pyogrio", encoding="UTF-8")
    checked = check_file(path, "parcels", district="678")
    assert checked.report.summary()["errors"] == 0, checked.report.summary()
    assert checked.layer.frame["sheet"].tolist() == gdf["SoHieuToBanDo"].tolist()
    assert checked.layer.frame["land_use"].tolist() == gdf["KyHieuMucDichSuDung"].tolist()


def test_a_key_shared_by_thousands_of_rows_is_reported_in_linear_time(tmp_path):
    """Every row of a 3 000-parcel file with one sheet/parcel pair is a duplicate; each
    finding names 20 other rows (a quadratic listing once took minutes here)."""
    gdf = parcel_grid(50, 60, size=(5.0, 5.0))
    gdf["SoTo"], gdf["SoThua"] = 7, 9
    path = tmp_path / "same_key.gpkg"
    gdf.to_file(path, driver="GPKG")
    dups = [f for f in check_file(path, "parcels", district="678").report.findings
            if f.rule == "KEY-DUPLICATE"]
    assert sorted(f.row for f in dups) == list(range(3000))
    first = next(f for f in dups if f.row == 0)
    assert first.params["rows"] == ", ".join(str(r) for r in range(1, 21))


def test_no_duplicate_keys_without_the_sheet_or_parcel_number(tmp_path):
    gdf = parcel_grid(2, 3).drop(columns=["SoTo"])
    path = tmp_path / "no_sheet.gpkg"
    gdf.to_file(path, driver="GPKG")
    rules = {f.rule for f in check_file(path, "parcels", district="678").report.findings}
    assert "KEY-DUPLICATE" not in rules and "ATTR-REQUIRED-MISSING" in rules
