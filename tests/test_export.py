"""The ministry export package: contents, round trip through gisportal, GDAL's own tools,
RFC 7946, ISO 19139 metadata, personal data, and every refusal of bad input.

One district (Lâm Hà, 676: its plan is approved, so the plan carries a decision) is
published once for the module through the real pipeline: the demo generator for the
boundary and the plan, then a parcels upload as districts send it — national field
names, a note column no canonical field takes (marked public by the planner), an
internal one left unmarked, personal columns, and text typed in decomposed Unicode that
must come out NFC.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
import subprocess
import unicodedata
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from click.testing import CliRunner
from lxml import etree

from gisportal.base.crs import TOWGS84_PV
from gisportal.base.settings import load_settings
from gisportal.cli.main import cli
from gisportal.outputs import privacy
from gisportal.outputs.export import export_package
from gisportal.outputs.export.geojson import write_geojson
from gisportal.outputs.export.metadata import NS
from gisportal.outputs.export.names import shapefile_names
from gisportal.services.demo import build_demo
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store

DISTRICT = "676"
CANONICAL = ["commune", "sheet", "parcel", "area_m2", "land_use", "address", "object_type"]
NATIONAL = {"commune": "MaXa", "sheet": "SoHieuToBanDo", "parcel": "SoThuTuThua",
            "area_m2": "DienTich", "land_use": "KyHieuMucDichSuDung", "address": "DiaChiThua",
            "object_type": "MaDoiTuong"}
#: Shapefile names of the national names longer than 10 characters (and of object_type).
SHORT = {"SoHieuToBanDo": "SHBANDO", "SoThuTuThua": "SHTHUA", "KyHieuMucDichSuDung": "KH_MDSD",
         "object_type": "MaDoiTuong"}
#: The object-type code of the national cadastral data model, as a district's file has it
#: (the same on every parcel): not personal, so public and exported.
OBJECT_TYPE = "TD01"
#: A note typed in decomposed Unicode (NFD), as some Windows keyboards produce it.
NOTE_NFD = unicodedata.normalize("NFD", "Đất ở giáp suối Đạ R'Sal, “đã đo lại” năm 2023")
NOTE = unicodedata.normalize("NFC", NOTE_NFD)
#: Longer than a DBF field holds (254 bytes in UTF-8): whole in GeoPackage, cut in Shapefile.
LONG_NOTE = "Ghi chú dài về nguồn gốc sử dụng đất của thửa này. " * 5
CERTIFICATE = "CS 0{:05d}"
CO_OWNER = "Hoàng Thị Ngọc Ánh"
#: An uploaded column nobody marked public: withheld unless personal data is asked for.
INTERNAL = "Hồ sơ lưu tại VPĐK số {:04d}"


@pytest.fixture(scope="module")
def published(tmp_path_factory, module_backend):
    """A data home where 676 has published boundary, plan (with decision) and parcels, on
    the embedded backends and once more (``production``) on PostgreSQL/PostGIS + S3
    (`tests.conftest.module_backend`).

    Also: the demo's parcels version (now superseded), a draft parcels version of 676,
    and a draft version of district 678.
    """
    home = tmp_path_factory.mktemp("export-home")
    store = open_store(home, crs="EPSG:5899")
    demo = build_demo(store, parcels_per_district=300, districts=[DISTRICT])[0].results
    old = demo["parcels"].version
    frame = store.read(old.id)
    upload = gpd.GeoDataFrame(
        {NATIONAL[c]: frame[c] for c in CANONICAL}, geometry=frame.geometry.values,
        crs=frame.crs)
    upload["MaDoiTuong"] = OBJECT_TYPE
    upload["TenChu"] = frame["owner"]
    upload["SoHieuGCN"] = [CERTIFICATE.format(i) for i in range(len(frame))]
    # A second land user: personal, and no canonical field takes it (owner has TenChu).
    upload["ChuSuDung"] = [CO_OWNER if i % 2 else None for i in range(len(frame))]
    upload["GhiChu"] = [NOTE_NFD if i % 3 == 0 else None for i in range(len(frame))]
    upload.loc[1, "GhiChu"] = LONG_NOTE
    upload["LuuTru"] = [INTERNAL.format(i) for i in range(len(frame))]
    path = home.parent / "thua_dat_676.gpkg"
    upload.to_file(path, layer="thua_dat", driver="GPKG")
    parcels = ingest_file(store, path, "parcels", DISTRICT, publish=True, user="test")
    assert parcels.published, parcels.report.summary()
    marked = privacy.mark_public(store, parcels.version.id, ["GhiChu"], actor="test")
    draft = ingest_file(store, path, "parcels", DISTRICT, user="test").version
    other = store.add_version("678", "parcels", frame[["sheet", "parcel", "geometry"]],
                              source_name="x.gpkg", source_sha256="0" * 64,
                              created_by="test")
    store.close()
    return {"home": home, "parcels": marked, "plan": demo["plan"].version,
            "boundary": demo["boundary"].version,
            "annual_plan": demo["annual_plan"].version, "old_parcels": old, "draft": draft,
            "other_district": other, "owners": sorted(set(frame["owner"].dropna()))}


@pytest.fixture(scope="module")
def package(published, tmp_path_factory):
    """The default package of 676 (every published layer, national field names)."""
    out = tmp_path_factory.mktemp("export-out") / "676.zip"
    with open_store(published["home"], crs="EPSG:5899") as store:
        result = export_package(store, DISTRICT, out)
    return out, result


def _read_member(zip_path: Path, name: str) -> bytes:
    with zipfile.ZipFile(zip_path) as zf:
        return zf.read(name)


def _extract(zip_path: Path, name: str, folder: Path) -> Path:
    target = folder / Path(name).name
    target.write_bytes(_read_member(zip_path, name))
    return target


def _vsizip_member(zip_path: Path, inner_zip: str, member: str) -> str:
    """GDAL's path of `member` of the zip `inner_zip` inside the package."""
    return f"/vsizip/{{/vsizip/{zip_path}/{inner_zip}}}/{member}"


def _manifest(zip_path: Path) -> dict:
    return json.loads(_read_member(zip_path, "manifest.json"))


def _published_frame(published, kind: str = "parcels") -> gpd.GeoDataFrame:
    with open_store(published["home"], crs="EPSG:5899") as store:
        return store.read(published[kind].id)


# --------------------------------------------------------------------------- contents


def test_package_members_and_manifest(package, published):
    out, result = package
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
    stems = [f"{kind}_{DISTRICT}" for kind in ("parcels", "plan", "boundary", "annual_plan")]
    assert names == {f"{DISTRICT}.gpkg", "fields.csv", "manifest.json",
                     *(f"shapefile/{s}.zip" for s in stems),
                     *(f"shapefile/towgs84/{s}.prj" for s in stems),
                     *(f"geojson/{s}.geojson" for s in stems),
                     *(f"metadata/{s}.xml" for s in stems)}
    manifest = _manifest(out)
    assert manifest["format"] == "gisportal-export" and manifest["format_version"] == "1.0"
    assert manifest["district"] == {"code": "676", "name": "Huyện Lâm Hà"}
    # The ministry's package: national field names unless English ones are asked for.
    assert manifest["options"] == {"national_names": True, "include_personal": False}
    layers = {layer["kind"]: layer for layer in manifest["layers"]}
    assert list(layers) == ["parcels", "plan", "boundary", "annual_plan"]
    for kind in layers:
        v = published[kind]
        assert layers[kind]["version"] == v.id
        assert layers[kind]["feature_count"] == v.feature_count
        assert layers[kind]["crs"] == "EPSG:5899 (VN-2000 / TM-3 107-45)"
        assert layers[kind]["source_sha256"] == v.source_sha256
    assert layers["plan"]["decision"]["number"] == "DEMO-676/QĐ-UBND"
    assert layers["parcels"]["shapefile_truncated_values"] == {"GhiChu": 1}
    assert layers["plan"]["files"]["prj_towgs84"] == f"shapefile/towgs84/plan_{DISTRICT}.prj"
    assert layers["plan"]["files"]["qml"] == f"shapefile/plan_{DISTRICT}.zip#plan_{DISTRICT}.qml"
    assert layers["parcels"]["fields"] == [*(NATIONAL[c] for c in CANONICAL), "GhiChu"]
    assert result.warnings == ["parcels: 1 value(s) of GhiChu longer than 254 bytes are cut "
                               "in the Shapefile (the GeoPackage and GeoJSON keep them whole)"]


def test_manifest_sizes_and_hashes_match_the_files(package):
    out, _ = package
    manifest = _manifest(out)
    listed = {f["path"]: f for f in manifest["files"]}
    with zipfile.ZipFile(out) as zf:
        assert set(listed) == set(zf.namelist()) - {"manifest.json"}
        for name, entry in listed.items():
            data = zf.read(name)
            assert entry["size"] == len(data)
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_fields_csv_documents_every_exported_field(package):
    out, _ = package
    rows = list(csv.DictReader(io.StringIO(_read_member(out, "fields.csv").decode("utf-8-sig"))))
    parcels = [r for r in rows if r["layer"] == "parcels"]
    assert [r["full_name"] for r in parcels] == [*(NATIONAL[c] for c in CANONICAL), "GhiChu"]
    note = parcels[-1]
    assert (note["origin"], note["gisportal_column"], note["personal"]) == (
        "source", "src:GhiChu", "no")
    assert parcels[1]["meaning_vi"] == "Số tờ bản đồ" and parcels[1]["type"] == "integer"
    assert [r["shapefile_name"] for r in parcels] == [
        *(SHORT.get(NATIONAL[c], NATIONAL[c]) for c in CANONICAL), "GhiChu"]
    # The Shapefile's DBF has exactly the documented short names.
    with zipfile.ZipFile(out) as zf:
        inner = zipfile.ZipFile(io.BytesIO(zf.read(f"shapefile/parcels_{DISTRICT}.zip")))
    assert sorted(inner.namelist()) == sorted(
        f"parcels_{DISTRICT}{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qml",
                                           ".sld"))
    assert inner.read(f"parcels_{DISTRICT}.cpg") == b"UTF-8"
    dbf = pyogrio.read_info(_vsizip_member(out, f"shapefile/parcels_{DISTRICT}.zip",
                                           f"parcels_{DISTRICT}.shp"))
    assert list(dbf["fields"]) == [r["shapefile_name"] for r in parcels]


# --------------------------------------------------------------------------- personal data


def _all_bytes(zip_path: Path) -> bytes:
    """Every member, with the zipped Shapefiles unpacked too."""
    out = []
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            if name.endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(data)) as inner:
                    out += [inner.read(n) for n in inner.namelist()]
            else:
                out.append(data)
    return b"\n".join(out)


def test_default_package_holds_no_personal_data(package, published):
    out, _ = package
    blob = _all_bytes(out)
    owners = published["owners"]
    assert len(owners) > 20
    for owner in owners:
        assert owner.encode("utf-8") not in blob, owner
    assert CERTIFICATE.format(7).encode() not in blob
    assert CO_OWNER.encode() not in blob
    for column in (b"TenChu", b"SoHieuGCN", b"ChuSuDung", b"certificat"):
        assert column not in blob
    # ("owner" is a column of QGIS's layer_styles table: look at the layers' own fields.)
    gpkg = _read_member(out, f"{DISTRICT}.gpkg")
    fields = json.dumps([layer["fields"] for layer in _manifest(out)["layers"]])
    assert "owner" not in fields.lower()
    assert "Chủ sử dụng".encode() not in gpkg  # the owner field's label (a style's alias)
    # Not personal by any sign, but nobody marked it public: the allow-list keeps it out.
    assert b"LuuTru" not in blob and INTERNAL.format(7).encode() not in blob


def test_include_personal_exports_and_documents_it(published, tmp_path):
    out = tmp_path / "personal.zip"
    with open_store(published["home"], crs="EPSG:5899") as store:
        export_package(store, DISTRICT, out, kinds=["parcels"], include_personal=True,
                       national_names=False)
    gpkg = _extract(out, f"{DISTRICT}.gpkg", tmp_path)
    frame = pyogrio.read_dataframe(gpkg, layer="parcels")
    stored = _published_frame(published)
    assert frame["owner"].tolist() == stored["owner"].tolist()
    assert frame["certificate"].tolist() == [CERTIFICATE.format(i) for i in range(len(frame))]
    assert [v if isinstance(v, str) else None for v in frame["ChuSuDung"]] == [
        CO_OWNER if i % 2 else None for i in range(len(frame))]
    rows = list(csv.DictReader(io.StringIO(_read_member(out, "fields.csv").decode("utf-8-sig"))))
    personal = {r["full_name"]: r["shapefile_name"] for r in rows if r["personal"] == "yes"}
    # The canonical personal fields, and the uploaded co-owner column no field took.
    assert personal == {"owner": "owner", "owner_id": "owner_id",
                        "owner_address": "owner_addr", "owner_birth": "owner_birt",
                        "owner_contact": "owner_cont", "certificate": "certificat",
                        "ChuSuDung": "ChuSuDung"}
    # Everything the district sent travels: the unmarked column too.
    assert frame["LuuTru"].tolist() == [INTERNAL.format(i) for i in range(len(frame))]
    assert _manifest(out)["options"]["include_personal"] is True


# --------------------------------------------------------------------------- round trip


def _assert_same_parcels(reimported: gpd.GeoDataFrame, published: gpd.GeoDataFrame,
                         note: pd.Series) -> None:
    assert len(reimported) == len(published)
    distance = shapely.hausdorff_distance(reimported.geometry.values, published.geometry.values)
    assert float(np.max(distance)) < 0.001  # metres
    for column in CANONICAL:
        pd.testing.assert_series_equal(reimported[column].reset_index(drop=True),
                                       published[column].reset_index(drop=True),
                                       check_names=False, check_dtype=False)
    assert reimported["owner"].isna().all()
    assert note.tolist() == published["src:GhiChu"].tolist()


@pytest.mark.parametrize("national_names", [False, True])
def test_geopackage_round_trip(published, store, tmp_path, national_names):
    out = tmp_path / "p.zip"
    with open_store(published["home"], crs="EPSG:5899") as source:
        export_package(source, DISTRICT, out, national_names=national_names)
    gpkg = _extract(out, f"{DISTRICT}.gpkg", tmp_path)
    # The four layers, and QGIS's table of their styles (test_geopackage_holds_the_styles).
    assert sorted(pyogrio.list_layers(gpkg)[:, 0]) == ["annual_plan", "boundary",
                                                        "layer_styles", "parcels", "plan"]
    res = ingest_file(store, gpkg, "parcels", DISTRICT, layer="parcels", user="test")
    assert not res.report.has_errors, res.report.summary()
    expected = {c: NATIONAL[c] if national_names else c for c in CANONICAL}
    assert res.report.read["fields"]["mapped"] == expected
    back = store.read(res.version.id)
    assert back["src:GhiChu"].iloc[0] == NOTE  # NFC, although it was uploaded as NFD
    assert back["src:GhiChu"].iloc[1] == LONG_NOTE  # whole
    _assert_same_parcels(back, _published_frame(published), back["src:GhiChu"])


@pytest.mark.parametrize("national_names", [False, True])
def test_shapefile_round_trip(published, store, tmp_path, national_names):
    out = tmp_path / "p.zip"
    with open_store(published["home"], crs="EPSG:5899") as source:
        export_package(source, DISTRICT, out, national_names=national_names)
    shp_zip = _extract(out, f"shapefile/parcels_{DISTRICT}.zip", tmp_path)
    res = ingest_file(store, shp_zip, "parcels", DISTRICT, user="test")
    assert not res.report.has_errors, res.report.summary()
    crs = res.report.read["crs"]
    assert crs["origin"] == "declared" and "VN-2000 / TM-3 107-45" in crs["crs"]
    assert res.report.read["encoding"] == "utf-8"
    # National names come back through the short names cadastral Shapefiles use.
    short = {"sheet": "SHBANDO", "parcel": "SHTHUA", "land_use": "KH_MDSD"}
    expected = {c: short.get(c, NATIONAL[c]) if national_names else c for c in CANONICAL}
    expected["object_type"] = "MaDoiTuong"  # its Shapefile name either way (SHORT)
    assert res.report.read["fields"]["mapped"] == expected
    back = store.read(res.version.id)
    published_frame = _published_frame(published)
    note = back["src:GhiChu"].copy()
    # The one value longer than a DBF field is cut at 254 bytes, on a character boundary.
    cut = note.iloc[1]
    assert LONG_NOTE.startswith(cut) and 250 <= len(cut.encode()) <= 254
    note.iloc[1] = LONG_NOTE
    assert note.iloc[0] == NOTE
    _assert_same_parcels(back, published_frame, note)


# --------------------------------------------------------------------------- CRS of the files


def _prj(zip_path: Path, kind: str = "parcels") -> str:
    with zipfile.ZipFile(zip_path) as zf:
        inner = zipfile.ZipFile(io.BytesIO(zf.read(f"shapefile/{kind}_{DISTRICT}.zip")))
    return inner.read(f"{kind}_{DISTRICT}.prj").decode("ascii")


def _towgs84_prj(zip_path: Path, kind: str = "parcels") -> str:
    return _read_member(zip_path, f"shapefile/towgs84/{kind}_{DISTRICT}.prj").decode("ascii")


_XS = np.array([520_000.0, 560_000.0, 600_000.0])
_YS = np.array([1_280_000.0, 1_310_000.0, 1_340_000.0])


def _offset_m(wkt: str) -> float:
    """Largest distance (m) between PROJ reading `wkt` and PROJ's EPSG:5899 pipeline."""
    geod = pyproj.Geod(ellps="WGS84")
    reference = pyproj.Transformer.from_crs("EPSG:5899", "EPSG:4326", always_xy=True)
    lon0, lat0 = reference.transform(_XS, _YS)
    lon, lat = pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(wkt), "EPSG:4326",
                                           always_xy=True).transform(_XS, _YS)
    return float(np.max(geod.inv(lon, lat, lon0, lat0)[2]))


def test_prj_is_recognised_as_epsg_5899_and_lands_where_proj_puts_it(package):
    out, _ = package
    prj = _prj(out)
    # The ESRI WKT 1 GIS software identifies by its EPSG code (QGIS: test_qgis_export).
    assert prj.startswith('PROJCS["VN_2000_TM-3_107-45",GEOGCS["GCS_VN_2000"')
    assert "TOWGS84" not in prj and "PARAMETER[\"Central_Meridian\",107.75]" in prj
    assert pyproj.CRS.from_wkt(prj).to_epsg() == 5899
    assert _offset_m(prj) < 0.01  # metres: PROJ takes the EPSG:6960 shift from its database


def test_towgs84_prj_carries_the_datum_shift_and_agrees_with_epsg_5899(package):
    out, _ = package
    prj = _towgs84_prj(out)
    towgs84 = "TOWGS84[" + ",".join(str(v) for v in TOWGS84_PV) + "]"
    assert towgs84 in prj  # position-vector signs (docs/design.md §4)
    assert 'PARAMETER["central_meridian",107.75]' in prj
    assert _offset_m(prj) < 0.01  # metres
    # The comparison is sharp enough to see a wrong shift: translations alone are ~28 cm off.
    # (It cannot show the classic sign mistake: PROJ 9 recognises a TOWGS84 holding the
    # EPSG:6960 rotations with coordinate-frame signs and flips them back itself. Other
    # readers do not, hence the literal position-vector values checked above.)
    three = towgs84.replace("0.00928836,-0.01975479,0.00427372,0.252906278", "0,0,0,0")
    assert _offset_m(prj.replace(towgs84, three)) > 0.2
    # One file per layer, the same CRS: a plan's is the parcels'.
    assert _towgs84_prj(out, "plan") == prj


def _ogrinfo(*args: str) -> str:
    exe = shutil.which("ogrinfo")
    if exe is None:
        pytest.fail("ogrinfo not found: install Debian's gdal-bin (README, test set-up)")
    run = subprocess.run([exe, *args], capture_output=True, check=True,
                         env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    return (run.stdout + run.stderr).decode("utf-8")  # GDAL warns on stderr


def test_gdal_ogrinfo_reads_the_geopackage(package, published, tmp_path):
    out, _ = package
    gpkg = _extract(out, f"{DISTRICT}.gpkg", tmp_path)
    summary = _ogrinfo("-so", str(gpkg), "parcels")
    assert f"Feature Count: {published['parcels'].feature_count}" in summary
    assert 'ID["EPSG",5899]' in summary or 'AUTHORITY["EPSG","5899"]' in summary
    assert "107.75" in summary
    assert "partially supported" not in summary  # GeoPackage 1.2, which GDAL 3.6 knows
    plan = _ogrinfo("-so", str(gpkg), "plan")
    assert f"Feature Count: {published['plan'].feature_count}" in plan
    # GDAL resolves EPSG:5899 by its code; the registered definition carries the shift too.
    with sqlite3.connect(gpkg) as db:
        org, code, definition = db.execute(
            "SELECT organization, organization_coordsys_id, definition "
            "FROM gpkg_spatial_ref_sys WHERE srs_id = 5899").fetchone()
    assert (org, code) == ("EPSG", 5899)
    assert "TOWGS84[" + ",".join(str(v) for v in TOWGS84_PV) + "]" in definition
    features = _ogrinfo("-q", str(gpkg), "parcels", "-where", "fid = 1")
    assert f"GhiChu (String) = {NOTE}" in features
    addresses = _published_frame(published)["address"]
    row = int(addresses.notna().to_numpy().argmax())  # a parcel with an address (fid row+1)
    features = _ogrinfo("-q", str(gpkg), "parcels", "-where", f"fid = {row + 1}")
    assert f"DiaChiThua (String) = {addresses.iloc[row]}" in features
    assert f"MaDoiTuong (String) = {OBJECT_TYPE}" in features


def _gdalsrsinfo(path: Path) -> str:
    exe = shutil.which("gdalsrsinfo")
    if exe is None:
        pytest.fail("gdalsrsinfo not found: install Debian's gdal-bin (README, test set-up)")
    run = subprocess.run([exe, "-o", "epsg", str(path)], capture_output=True, check=True,
                         env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    return run.stdout.decode("utf-8").strip()


def test_gdal_reads_the_shapefile_as_epsg_5899_and_the_towgs84_prj_with_its_shift(
        package, published, tmp_path):
    out, _ = package
    folder = tmp_path / "shp"
    folder.mkdir()
    with zipfile.ZipFile(out) as zf:
        zipfile.ZipFile(io.BytesIO(zf.read(f"shapefile/parcels_{DISTRICT}.zip"))).extractall(
            folder)
    shp = folder / f"parcels_{DISTRICT}.shp"
    summary = _ogrinfo("-so", str(shp), f"parcels_{DISTRICT}")
    assert f"Feature Count: {published['parcels'].feature_count}" in summary
    assert "107.75" in summary
    # GDAL identifies the .prj as EPSG:5899 itself (and takes the shift from its database).
    assert 'ID["EPSG",5899]' in summary and "BOUNDCRS" not in summary
    assert _gdalsrsinfo(folder / f"parcels_{DISTRICT}.prj") == "EPSG:5899"
    features = _ogrinfo("-q", str(shp), f"parcels_{DISTRICT}", "-where", "FID = 0")
    assert f"GhiChu (String) = {NOTE}" in features

    # The form with TOWGS84, copied over the .prj as docs/export.md says: GDAL recognises
    # the TOWGS84 as the EPSG:6960 shift (shown with coordinate-frame signs).
    (folder / f"parcels_{DISTRICT}.prj").write_text(_towgs84_prj(out), encoding="ascii")
    summary = _ogrinfo("-so", str(shp), f"parcels_{DISTRICT}")
    assert "BOUNDCRS" in summary and 'ID["EPSG",6960]' in summary
    for name, value in (("X-axis translation", "-191.90441429"),
                        ("Y-axis translation", "-39.30318279"),
                        ("Z-axis translation", "-111.45032835"),
                        ("X-axis rotation", "-0.00928836"), ("Y-axis rotation", "0.01975479"),
                        ("Z-axis rotation", "-0.00427372"),
                        ("Scale difference", "1.00000025290628")):
        assert f'PARAMETER["{name}",{value},' in summary


# --------------------------------------------------------------------------- GeoJSON


def _rings(geom) -> list:
    polys = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
    return [(p.exterior, list(p.interiors)) for p in polys]


@pytest.mark.parametrize("kind", ["parcels", "plan", "boundary"])
def test_geojson_is_rfc7946(package, published, tmp_path, kind):
    out, _ = package
    text = _read_member(out, f"geojson/{kind}_{DISTRICT}.geojson").decode("utf-8")
    doc = json.loads(text)
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert len(doc["features"]) == published[kind].feature_count
    # Numbers as written (strings): at most 7 decimals, and 7 are used.
    written = json.loads(text, parse_float=lambda v: v)["features"]
    decimals = {len(v.partition(".")[2]) for f in written
                for v in np.asarray(f["geometry"]["coordinates"][0], dtype=object).ravel()
                if isinstance(v, str)}
    assert max(decimals) == 7
    lon, lat = shapely.get_coordinates(
        shapely.from_geojson([json.dumps(f["geometry"]) for f in doc["features"]])).T
    assert lon.min() > 107.2 and lon.max() < 108.8  # longitude first
    assert lat.min() > 11.2 and lat.max() < 12.4

    frame = pyogrio.read_dataframe(_extract(out, f"geojson/{kind}_{DISTRICT}.geojson",
                                            tmp_path))
    assert frame.crs.to_epsg() == 4326 and len(frame) == published[kind].feature_count
    for geom in frame.geometry.values:
        for exterior, interiors in _rings(geom):
            assert exterior.is_ccw
            assert all(not ring.is_ccw for ring in interiors)
    # Coordinates are the store's, reprojected with the datum shift, to 7 decimals.
    stored = _published_frame(published, kind).geometry.values
    lon0, lat0 = pyproj.Transformer.from_crs("EPSG:5899", "EPSG:4326", always_xy=True) \
        .transform(*shapely.get_coordinates(stored[:20]).T)
    got = shapely.get_coordinates(frame.geometry.values[:20])
    assert sorted(map(tuple, np.round(got, 7))) == sorted(
        zip(np.round(lon0, 7), np.round(lat0, 7), strict=True))


def test_geojson_winds_rings_by_the_right_hand_rule(tmp_path):
    # Clockwise exterior and counter-clockwise hole, as Shapefiles and CAD often have them.
    x, y = 560_000.0, 1_310_000.0
    shell = [(x, y), (x, y + 50), (x + 50, y + 50), (x + 50, y), (x, y)]
    hole = [(x + 10, y + 10), (x + 20, y + 10), (x + 20, y + 20), (x + 10, y + 20),
            (x + 10, y + 10)]
    polygon = shapely.Polygon(shell, [hole])
    assert not polygon.exterior.is_ccw and polygon.interiors[0].is_ccw
    frame = gpd.GeoDataFrame({"name": ["Thửa có ao"]}, geometry=[polygon], crs="EPSG:5899")
    path = tmp_path / "ring.geojson"
    bounds = write_geojson(frame, path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    exterior, interior = (shapely.LinearRing(r) for r in
                          doc["features"][0]["geometry"]["coordinates"])
    assert exterior.is_ccw and not interior.is_ccw
    assert doc["features"][0]["properties"] == {"name": "Thửa có ao"}
    west, south, east, north = bounds
    assert west < east and south < north and 107 < west < 109 and 11 < south < 12.5


# --------------------------------------------------------------------------- metadata


def test_metadata_xml_has_the_key_elements(package, published):
    out, _ = package
    manifest = _manifest(out)
    layers = {layer["kind"]: layer for layer in manifest["layers"]}
    plan = published["plan"]
    root = etree.fromstring(_read_member(out, f"metadata/plan_{DISTRICT}.xml"))
    assert root.tag == "{http://www.isotc211.org/2005/gmd}MD_Metadata"

    def text(path: str) -> list[str]:
        return [str(v) for v in root.xpath(path, namespaces=NS)]

    assert text("gmd:fileIdentifier/gco:CharacterString/text()") == [
        f"gisportal-{DISTRICT}-plan-v{plan.id}"]
    assert text("gmd:language/gmd:LanguageCode/@codeListValue") == ["vie"]
    assert text("gmd:characterSet/gmd:MD_CharacterSetCode/@codeListValue") == ["utf8"]
    ident = "gmd:identificationInfo/gmd:MD_DataIdentification/"
    title = text(ident + "gmd:citation/gmd:CI_Citation/gmd:title/gco:CharacterString/text()")
    assert title[0].startswith("Quy hoạch sử dụng đất 2021–2030 — Huyện Lâm Hà")
    assert "Lâm Hà" in text(ident + "gmd:abstract/gco:CharacterString/text()")[0]
    dates = dict(zip(text(ident + "gmd:citation/gmd:CI_Citation/gmd:date/gmd:CI_Date/"
                                  "gmd:dateType/gmd:CI_DateTypeCode/@codeListValue"),
                     text(ident + "gmd:citation/gmd:CI_Citation/gmd:date/gmd:CI_Date/"
                                  "gmd:date/gco:DateTime/text()"), strict=True))
    assert dates == {"creation": plan.created_at.removesuffix("Z"),
                     "publication": plan.published_at.removesuffix("Z")}
    box = ident + "gmd:extent/gmd:EX_Extent/gmd:geographicElement/gmd:EX_GeographicBoundingBox/"
    west, south, east, north = layers["plan"]["bbox_lonlat"]
    for tag, value in (("westBoundLongitude", west), ("eastBoundLongitude", east),
                       ("southBoundLatitude", south), ("northBoundLatitude", north)):
        assert float(text(box + f"gmd:{tag}/gco:Decimal/text()")[0]) == pytest.approx(
            value, abs=1e-7)
    rs = "gmd:referenceSystemInfo/gmd:MD_ReferenceSystem/gmd:referenceSystemIdentifier/" \
         "gmd:RS_Identifier/"
    assert text(rs + "gmd:code/gco:CharacterString/text()") == ["5899"]
    assert text(rs + "gmd:codeSpace/gco:CharacterString/text()") == ["EPSG"]
    assert text("gmd:contact/gmd:CI_ResponsibleParty/gmd:organisationName/"
                "gco:CharacterString/text()") == [load_settings()["export_contact_org"]]
    lineage = "gmd:dataQualityInfo/gmd:DQ_DataQuality/gmd:lineage/gmd:LI_Lineage/"
    statement = text(lineage + "gmd:statement/gco:CharacterString/text()")[0]
    assert plan.source_name in statement and plan.source_sha256 in statement
    assert "Quyết định số DEMO-676/QĐ-UBND ngày 2023-06-30" in statement
    steps = text(lineage + "gmd:processStep/gmd:LI_ProcessStep/gmd:description/"
                           "gco:CharacterString/text()")
    assert any(s.startswith("Phê duyệt: Quyết định số DEMO-676/QĐ-UBND") for s in steps)
    assert text(lineage + "gmd:source/gmd:LI_Source/gmd:sourceCitation/gmd:CI_Citation/"
                          "gmd:identifier/gmd:MD_Identifier/gmd:code/gco:CharacterString/"
                          "text()") == [f"sha256:{plan.source_sha256}"]


def test_metadata_contact_comes_from_settings(published, tmp_path):
    out = tmp_path / "p.zip"
    settings = load_settings({"export_contact_org": "Sở Nông nghiệp và Môi trường",
                              "export_contact_email": "vpdk@example.gov.vn"})
    with open_store(published["home"], crs="EPSG:5899") as store:
        export_package(store, DISTRICT, out, kinds=["boundary"], settings=settings)
    root = etree.fromstring(_read_member(out, f"metadata/boundary_{DISTRICT}.xml"))
    party = "gmd:contact/gmd:CI_ResponsibleParty/"
    assert root.xpath(party + "gmd:organisationName/gco:CharacterString/text()",
                      namespaces=NS) == ["Sở Nông nghiệp và Môi trường"]
    assert root.xpath(party + "gmd:contactInfo//gmd:electronicMailAddress/"
                              "gco:CharacterString/text()", namespaces=NS) == [
        "vpdk@example.gov.vn"]


# --------------------------------------------------------------------------- names


def test_national_names_in_every_format(published, tmp_path):
    out = tmp_path / "n.zip"
    with open_store(published["home"], crs="EPSG:5899") as store:
        export_package(store, DISTRICT, out, kinds=["parcels"], national_names=True)
    rows = list(csv.DictReader(io.StringIO(_read_member(out, "fields.csv").decode("utf-8-sig"))))
    names = {r["full_name"]: r["shapefile_name"] for r in rows}
    assert names == {"MaXa": "MaXa", "SoHieuToBanDo": "SHBANDO", "SoThuTuThua": "SHTHUA",
                     "DienTich": "DienTich", "KyHieuMucDichSuDung": "KH_MDSD",
                     "DiaChiThua": "DiaChiThua", "MaDoiTuong": "MaDoiTuong",
                     "GhiChu": "GhiChu"}
    gpkg = _extract(out, f"{DISTRICT}.gpkg", tmp_path)
    assert list(pyogrio.read_info(gpkg, layer="parcels")["fields"]) == list(names)
    shp = _extract(out, f"shapefile/parcels_{DISTRICT}.zip", tmp_path)
    assert list(pyogrio.read_info(f"/vsizip/{shp}/parcels_{DISTRICT}.shp")["fields"]) == \
        list(names.values())
    feature = json.loads(_read_member(out, f"geojson/parcels_{DISTRICT}.geojson"))["features"][0]
    assert list(feature["properties"]) == list(names)


def test_shapefile_names_are_short_unique_and_ascii():
    names = shapefile_names(["owner_address", "owner_addr", "Số tờ bản đồ", "SoHieuToBanDo",
                             "KyHieuMucDichSuDung", "KH_MDSD", "2023_dien_tich", "geom",
                             "GHICHU", "GhiChu"])
    assert names == ["owner_addr", "owner_ad_2", "So_to_ban_", "SHBANDO", "KH_MDSD",
                     "KH_MDSD_2", "f_2023_die", "geom_2", "GHICHU", "GhiChu_2"]
    assert all(len(n) <= 10 for n in names)


# --------------------------------------------------------------------------- choosing layers


def test_kind_and_older_version(published, tmp_path):
    out = tmp_path / "old.zip"
    old = published["old_parcels"]
    with open_store(published["home"], crs="EPSG:5899") as store:
        export_package(store, DISTRICT, out, version_id=old.id)
        layers = _manifest(out)["layers"]
        assert [(x["kind"], x["version"], x["status"]) for x in layers] == [
            ("parcels", old.id, "superseded")]
        export_package(store, DISTRICT, out, kinds=["plan", "boundary"])
    assert [x["kind"] for x in _manifest(out)["layers"]] == ["plan", "boundary"]
    with zipfile.ZipFile(out) as zf:
        assert not [n for n in zf.namelist() if "parcels" in n]


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def run(published):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--home", str(published["home"]), "export", *args],
                             catch_exceptions=False)

    return invoke


def test_cli_export_prints_the_path_last(run, published, tmp_path):
    out = tmp_path / "cli.zip"
    r = run("--district", DISTRICT, "--out", str(out), "--kind", "parcels",
            "--national-names")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == str(out)
    assert lines[0] == (f"parcels: version {published['parcels'].id} (published), "
                        f"{published['parcels'].feature_count} features, 8 fields")
    assert "GhiChu longer than 254 bytes" in r.stderr
    assert _manifest(out)["options"]["national_names"] is True


@pytest.mark.parametrize("option, national", [((), True), (("--national-names",), True),
                                              (("--english-names",), False)])
def test_cli_names_national_by_default_english_on_request(run, tmp_path, option, national):
    out = tmp_path / "names.zip"
    r = run("--district", DISTRICT, "--out", str(out), "--kind", "parcels", *option)
    assert r.exit_code == 0, r.output
    manifest = _manifest(out)
    assert manifest["options"]["national_names"] is national
    assert manifest["layers"][0]["fields"][:2] == (["MaXa", "SoHieuToBanDo"] if national
                                                   else ["commune", "sheet"])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("args, code, message", [
    (["--district", "999"], 1, "unknown district code '999' [--district]. Use a GSO district "
                               "code: 672 Đà Lạt"),
    (["--district", "672"], 1, "district 672 has no published layer to export"),
    (["--district", DISTRICT, "--version", "987654"], 1, "There is no version 987654"),
    (["--district", DISTRICT, "--kind", "plan", "--version", "{old_parcels}"], 2,
     "version {old_parcels} is a parcels layer, not plan"),
    (["--district", DISTRICT, "--version", "{other_district}"], 2,
     "version {other_district} belongs to district 678, not 676"),
    (["--district", DISTRICT, "--version", "{draft}"], 1,
     "version {draft} is a draft that was never published"),
    (["--district", "678"], 1, "district 678 has no published layer to export"),
])
def test_cli_bad_input_one_line_no_file(run, published, tmp_path, args, code, message):
    ids = {k: published[k].id for k in ("old_parcels", "other_district", "draft")}
    out = tmp_path / "bad.zip"
    r = run(*[a.format(**ids) for a in args], "--out", str(out))
    assert r.exit_code == code, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gisportal: error: ")
    assert message.format(**ids) in lines[0]
    assert _leftovers(tmp_path) == []


def test_cli_output_folder_missing_or_unwritable(run, tmp_path):
    r = run("--district", DISTRICT, "--out", str(tmp_path / "nope" / "p.zip"))
    assert r.exit_code == 2
    assert f"the folder {tmp_path / 'nope'} does not exist [--out]" in r.stderr
    r = run("--district", DISTRICT, "--out", str(tmp_path))
    assert r.exit_code == 2 and "is a folder" in r.stderr
    # /proc takes no files, whoever runs the test (root passes permission checks).
    r = run("--district", DISTRICT, "--out", "/proc/gisportal-export.zip")
    assert r.exit_code == 2, r.output
    assert "/proc" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not Path("/proc/gisportal-export.zip").exists()
    assert _leftovers(tmp_path) == []


def test_interrupted_export_keeps_the_previous_package(published, tmp_path):
    out = tmp_path / "p.zip"
    out.write_bytes(b"the previous package")

    def interrupt(step: str, total: int) -> None:
        if step == "plan: geojson":
            raise KeyboardInterrupt

    with open_store(published["home"], crs="EPSG:5899") as store, \
            pytest.raises(KeyboardInterrupt):
        export_package(store, DISTRICT, out, progress=interrupt)
    assert out.read_bytes() == b"the previous package"
    assert _leftovers(tmp_path) == ["p.zip"]


# --------------------------------------------------------------------------- ISO 19139 schemas

#: The ISO 19139 schemas (2007-04-17, with GML 3.2.1 and XLink) as pycsw ships them,
#: kept in pycsw's layout so that their relative imports resolve (tests/vendor/README.md).
GMD_XSD = (Path(__file__).parent / "vendor" / "iso19139" / "pycsw" / "plugins" / "profiles"
           / "apiso" / "schemas" / "ogc" / "iso" / "19139" / "20070417" / "gmd" / "gmd.xsd")


@pytest.fixture(scope="module")
def iso19139() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(GMD_XSD)))


@pytest.mark.parametrize("kind", ["parcels", "plan", "boundary", "annual_plan"])
def test_metadata_is_valid_iso19139(package, iso19139, kind):
    out, _ = package
    record = etree.fromstring(_read_member(out, f"metadata/{kind}_{DISTRICT}.xml"))
    assert iso19139.validate(record), iso19139.error_log


def test_the_schema_check_sees_a_misplaced_element(package, iso19139):
    """The validation is real: keywords after the language break ISO 19139's order."""
    out, _ = package
    record = etree.fromstring(_read_member(out, f"metadata/plan_{DISTRICT}.xml"))
    ident = record.find("gmd:identificationInfo/gmd:MD_DataIdentification", NS)
    keywords = ident.find("gmd:descriptiveKeywords", NS)
    ident.remove(keywords)
    ident.append(keywords)
    assert not iso19139.validate(record)
    assert "descriptiveKeywords" in str(iso19139.error_log)


def _keywords(root, kind: str) -> list[tuple[list[str], str | None]]:
    """(keywords, thesaurus title) of each MD_Keywords block of type `kind`."""
    out = []
    for block in root.iterfind(".//gmd:descriptiveKeywords/gmd:MD_Keywords", NS):
        if block.xpath("gmd:type/gmd:MD_KeywordTypeCode/@codeListValue", namespaces=NS) != [kind]:
            continue
        words = block.xpath("gmd:keyword/gco:CharacterString/text()", namespaces=NS)
        title = block.xpath("gmd:thesaurusName/gmd:CI_Citation/gmd:title/"
                            "gco:CharacterString/text()", namespaces=NS)
        out.append(([str(w) for w in words], str(title[0]) if title else None))
    return out


def test_metadata_keywords_name_the_land_uses_with_their_thesaurus(package, published):
    out, _ = package
    root = etree.fromstring(_read_member(out, f"metadata/plan_{DISTRICT}.xml"))
    assert root.xpath("//gmd:topicCategory/gmd:MD_TopicCategoryCode/text()",
                      namespaces=NS) == ["planningCadastre"]
    themes = _keywords(root, "theme")
    assert (["Quy hoạch sử dụng đất 2021–2030", "Land-use plan 2021–2030"], None) in themes
    (land_uses, thesaurus), = [t for t in themes if t[1] is not None]
    assert "Thông tư số 08/2024/TT-BTNMT" in thesaurus
    # Exactly the catalogue codes the published plan holds, by their official names.
    from gisportal.base.seeds import land_use_catalogue

    cat = land_use_catalogue()
    plan = _published_frame(published, "plan")
    held = {cat.primary(v).code for v in plan["land_use"].dropna() if cat.primary(v)}
    assert len(held) > 3
    assert sorted(land_uses) == sorted(f"{cat.name(c)} ({c})" for c in held)
    assert _keywords(root, "place") == [(["Huyện Lâm Hà", "Tỉnh Lâm Đồng", "Việt Nam"], None)]
    # Boundaries hold no land use: no thesaurus block.
    boundary = etree.fromstring(_read_member(out, f"metadata/boundary_{DISTRICT}.xml"))
    assert [t for t in _keywords(boundary, "theme") if t[1] is not None] == []


def _legal(root) -> dict[str, list[str]]:
    legal = "//gmd:resourceConstraints/gmd:MD_LegalConstraints/"
    return {
        "use": [str(v) for v in root.xpath(legal + "gmd:useConstraints/"
                                           "gmd:MD_RestrictionCode/@codeListValue",
                                           namespaces=NS)],
        "access": [str(v) for v in root.xpath(legal + "gmd:accessConstraints/"
                                              "gmd:MD_RestrictionCode/@codeListValue",
                                              namespaces=NS)],
        "other": [str(v) for v in root.xpath(legal + "gmd:otherConstraints/"
                                             "gco:CharacterString/text()", namespaces=NS)],
    }


def test_metadata_licence_default_settings_and_personal(package, published, tmp_path, iso19139):
    out, _ = package
    default = _legal(etree.fromstring(_read_member(out, f"metadata/parcels_{DISTRICT}.xml")))
    assert default["use"] == ["license"] and default["access"] == []
    assert default["other"] == ["Creative Commons Ghi công 4.0 Quốc tế (CC BY 4.0) — "
                                "https://creativecommons.org/licenses/by/4.0/"]

    own = tmp_path / "own.zip"
    settings = load_settings({"export_licence": "Giấy phép dữ liệu mở tỉnh Lâm Đồng",
                              "export_licence_url": "https://example.gov.vn/giay-phep"})
    with open_store(published["home"], crs="EPSG:5899") as store:
        export_package(store, DISTRICT, own, kinds=["boundary"], settings=settings)
        record = etree.fromstring(_read_member(own, f"metadata/boundary_{DISTRICT}.xml"))
        assert _legal(record)["other"] == [
            "Giấy phép dữ liệu mở tỉnh Lâm Đồng — https://example.gov.vn/giay-phep"]
        assert iso19139.validate(record), iso19139.error_log

        personal = tmp_path / "personal.zip"
        export_package(store, DISTRICT, personal, kinds=["parcels"], include_personal=True)
    record = etree.fromstring(_read_member(personal, f"metadata/parcels_{DISTRICT}.xml"))
    legal = _legal(record)
    assert legal["access"] == ["otherRestrictions"] and legal["use"] == ["otherRestrictions"]
    assert "Nghị định số 13/2023/NĐ-CP" in legal["other"][0]
    assert "CC BY" not in etree.tostring(record, encoding="unicode")
    assert iso19139.validate(record), iso19139.error_log


# --------------------------------------------------------------------------- styles


def test_geopackage_holds_the_styles_as_qgis_stores_them(package, tmp_path):
    from gisportal.outputs.export.geopackage import LAYER_STYLES_DDL

    out, _ = package
    gpkg = _extract(out, f"{DISTRICT}.gpkg", tmp_path)
    with sqlite3.connect(gpkg) as db:
        (ddl,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'layer_styles'"
                            ).fetchone()
        contents = db.execute("SELECT data_type FROM gpkg_contents "
                              "WHERE table_name = 'layer_styles'").fetchall()
        rows = db.execute("SELECT f_table_catalog, f_table_schema, f_table_name, "
                          "f_geometry_column, styleName, useAsDefault, owner, update_time, "
                          "styleQML, styleSLD FROM layer_styles ORDER BY id").fetchall()
    assert ddl == LAYER_STYLES_DDL.replace("IF NOT EXISTS ", "")
    assert contents == [("attributes",)]
    kinds = ["parcels", "plan", "boundary", "annual_plan"]
    assert [(r[2], r[4], r[5]) for r in rows] == [
        (k, f"gisportal_{k}_{lang}", int(lang == "vi")) for k in kinds for lang in ("vi", "en")]
    assert {(r[0], r[1], r[3], r[6]) for r in rows} == {("", "", "geom", "gisportal")}
    assert all(r[7].endswith("Z") and "T" in r[7] for r in rows)
    plan_qml, plan_sld = rows[2][8], rows[2][9]
    # The style names the GeoPackage's own field (national name) and the codes it holds.
    assert '"KyHieuMucDichSuDung"' in plan_qml and "KyHieuMucDichSuDung" in plan_sld
    assert 'label="ODT — Đất ở tại đô thị"' in plan_qml or 'label="ONT — ' in plan_qml


def test_prj_texts_choose_the_form_by_what_proj_can_identify():
    from gisportal.base.crs import tm3_crs
    from gisportal.outputs.export.shapefile import prj_texts

    for code in (5899, 9218):
        texts = prj_texts(pyproj.CRS.from_epsg(code))
        assert pyproj.CRS.from_wkt(texts.prj).to_epsg() == code and "TOWGS84" not in texts.prj
        assert texts.towgs84 is not None and "TOWGS84[" in texts.towgs84
    # A TM-3 zone with no EPSG code (a meridian EPSG does not list, built with +towgs84):
    # the one form that keeps the shift is the .prj, and there is no second one.
    custom = prj_texts(tm3_crs(104.1))
    assert "TOWGS84[" in custom.prj and custom.towgs84 is None
    # A CRS on another datum is written as it is, without a shift to add.
    wgs84 = prj_texts(pyproj.CRS.from_epsg(32648))
    assert pyproj.CRS.from_wkt(wgs84.prj).to_epsg() == 32648 and wgs84.towgs84 is None
