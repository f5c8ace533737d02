"""Tests for gisportal.pipeline.read.sources: every format in, one GeoDataFrame out.

Every input is a real file written in ``tmp_path`` with pyogrio, zipfile or raw bytes;
legacy-encoded DBFs are written as latin-1 text whose characters are the raw bytes,
so the file holds exactly what a Vietnamese office's software would have written.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import shapely.testing
from shapely.geometry import Polygon, box

from gisportal.base.errors import EncodingError, InputError, UnsafeArchiveError
from gisportal.pipeline.read import encodings
from gisportal.pipeline.read.sources import (
    MAX_UPLOAD_BYTES_DEFAULT,
    Note,
    SourceLayer,
    list_layers,
    read_source,
)

NAMES = ["Lâm Đồng", "Đà Lạt", "Bảo Lộc", "Thửa đất ở Lạc Dương"]
CODES = ["ONT", "CLN", "LUC", "ODT+CLN"]
# VN-2000 / TM-3 107°45' (EPSG:5899) coordinates around Đà Lạt
X0, Y0 = 430_000.0, 1_320_000.0


def _polys(n: int = 4) -> list[Polygon]:
    return [box(X0 + 40 * i, Y0, X0 + 40 * i + 30, Y0 + 30) for i in range(n)]


def _frame(n: int = 4, crs: int | None = 5899) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"SoThua": list(range(1, n + 1)), "TenXa": NAMES[:n],
                             "MDSD": CODES[:n]}, geometry=_polys(n), crs=crs)


def _raw(text: str, encoding: str) -> str:
    """``text`` in ``encoding`` as a latin-1 string: one char per byte, as the DBF holds it."""
    return encodings.encode(text, encoding).decode("latin-1")


def _write_shp(folder: Path, stem: str, frame: gpd.GeoDataFrame, *, encoding: str = "utf-8",
               cpg: str | None = None) -> Path:
    """Write a shapefile whose DBF text (values and names) is raw ``encoding`` bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    geom = frame.geometry.name
    raw = frame.copy()
    for col in frame.columns:
        if col != geom and frame[col].dtype != "int64":
            raw[col] = [None if v is None else _raw(v, encoding) for v in frame[col]]
    raw = raw.rename(columns={c: _raw(c, encoding) for c in frame.columns if c != geom})
    path = folder / f"{stem}.shp"
    pyogrio.write_dataframe(raw, path, encoding="latin1")
    cpg_path = folder / f"{stem}.cpg"
    cpg_path.unlink(missing_ok=True)  # pyogrio writes "LATIN1"; offices write their own
    if cpg is not None:
        cpg_path.write_text(cpg)
    return path


def _zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + f.relative_to(folder).as_posix())
    return zip_path


def _zipped_shp(tmp_path: Path, name: str = "lamha.zip", **kw) -> Path:
    folder = tmp_path / "src"
    _write_shp(folder, "thua", _frame(), **kw)
    return _zip_folder(folder, tmp_path / name, prefix="Data/")


def _assert_error(exc: pytest.ExceptionInfo, cls: type, what: str, where: str) -> None:
    err = exc.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert what.lower() in err.what.lower(), err.what
    assert where in err.where, err.where
    assert err.fix
    assert where in str(err) and err.fix.rstrip(".") in str(err)


def _empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def _codes(src: SourceLayer) -> list[str]:
    return [n.code for n in src.notes]


# ------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("name", "content", "looks"),
    [("ranh.zip", b"MZ\x90\x00\x03" + bytes(200), "Windows program"),
     ("plan.gpkg", b"%PDF-1.5\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
     ("thua.shp", b"%PDF-1.4\n" + bytes(100), "PDF"),
     ("thua.geojson", b"hello, this is not json\n", "")],
)
def test_not_a_gis_file(tmp_path: Path, name: str, content: bytes, looks: str) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    work = tmp_path / "work"
    with pytest.raises(InputError) as exc:
        read_source(src, workdir=work)
    _assert_error(exc, InputError, "not a GIS file we can read", name)
    assert looks in exc.value.what
    for fmt in ("Shapefile", "GeoPackage", "GeoJSON", "KML", "FlatGeobuf", "DXF"):
        assert fmt in exc.value.fix
    assert _empty(work)


def test_corrupt_zip(tmp_path: Path) -> None:
    good = _zipped_shp(tmp_path)
    bad = tmp_path / "cut.zip"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    work = tmp_path / "work"
    with pytest.raises(InputError) as exc:
        read_source(bad, workdir=work)
    _assert_error(exc, InputError, "damaged", "cut.zip")
    assert _empty(work)


def test_zip_slip_refused_and_nothing_left(tmp_path: Path) -> None:
    src = tmp_path / "slip.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("thua.shp", b"x")
        zf.writestr(zipfile.ZipInfo("../../thua.dbf"), b"pwned")
    work = tmp_path / "work"
    with pytest.raises(UnsafeArchiveError) as exc:
        read_source(src, workdir=work)
    _assert_error(exc, UnsafeArchiveError, "climbs out", "slip.zip!")
    assert _empty(work)
    assert not (tmp_path / "thua.dbf").exists()


@pytest.mark.parametrize("missing", [".dbf", ".shx"])
def test_zipped_shapefile_missing_part(tmp_path: Path, missing: str) -> None:
    folder = tmp_path / "src"
    _write_shp(folder, "thua", _frame(), cpg="UTF-8")
    (folder / f"thua{missing}").unlink()
    src = _zip_folder(folder, tmp_path / "lamha.zip", prefix="Data/")
    work = tmp_path / "work"
    with pytest.raises(InputError) as exc:
        read_source(src, workdir=work)
    _assert_error(exc, InputError, f"thua{missing} is missing", "lamha.zip!Data/thua.shp")
    assert "zip" in exc.value.fix and "thua.shx" in exc.value.fix
    assert _empty(work)


@pytest.mark.parametrize("missing", [".dbf", ".shx"])
def test_loose_shapefile_missing_part(tmp_path: Path, missing: str) -> None:
    shp = _write_shp(tmp_path / "src", "thua", _frame())
    shp.with_suffix(missing).unlink()
    with pytest.raises(InputError) as exc:
        read_source(shp)
    _assert_error(exc, InputError, f"thua{missing} is missing", "thua.shp")
    assert "zip thua.shp, thua.shx, thua.dbf" in exc.value.fix


def test_dbf_alone(tmp_path: Path) -> None:
    shp = _write_shp(tmp_path / "src", "thua", _frame())
    with pytest.raises(InputError) as exc:
        read_source(shp.with_suffix(".dbf"))
    _assert_error(exc, InputError, "only one part of a shapefile", "thua.dbf")


def test_empty_layer(tmp_path: Path) -> None:
    path = tmp_path / "trong.gpkg"
    empty = gpd.GeoDataFrame({"SoThua": np.array([], dtype="int64")},
                             geometry=gpd.GeoSeries([], crs=5899), crs=5899)
    pyogrio.write_dataframe(empty, path, layer="thua", geometry_type="Polygon")
    with pytest.raises(InputError) as exc:
        read_source(path)
    _assert_error(exc, InputError, "the layer has no features", "trong.gpkg")


def _two_layer_gpkg(tmp_path: Path) -> Path:
    path = tmp_path / "lamha.gpkg"
    pyogrio.write_dataframe(_frame(4), path, layer="thua_dat")
    pyogrio.write_dataframe(_frame(2), path, layer="ranh_gioi", append=False)
    return path


def test_gpkg_two_layers_none_chosen(tmp_path: Path) -> None:
    path = _two_layer_gpkg(tmp_path)
    with pytest.raises(InputError) as exc:
        read_source(path)
    _assert_error(exc, InputError, "2 layers", "lamha.gpkg")
    assert "thua_dat (4 features)" in exc.value.where
    assert "ranh_gioi (2 features)" in exc.value.where
    assert "--layer" in exc.value.fix


def test_gpkg_unknown_layer(tmp_path: Path) -> None:
    path = _two_layer_gpkg(tmp_path)
    with pytest.raises(InputError) as exc:
        read_source(path, layer="quy_hoach")
    _assert_error(exc, InputError, "no layer named 'quy_hoach'", "thua_dat (4 features)")
    assert "ranh_gioi" in exc.value.where


def test_gpkg_layer_chosen(tmp_path: Path) -> None:
    path = _two_layer_gpkg(tmp_path)
    src = read_source(path, layer="RANH_GIOI")  # case does not matter
    assert src.layer == "ranh_gioi" and len(src.frame) == 2
    assert src.layers_available == ["thua_dat", "ranh_gioi"]
    assert "READ-LAYER-CHOSEN" in _codes(src)
    assert list_layers(path) == ["thua_dat", "ranh_gioi"]


def test_file_over_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "lon.gpkg"
    pyogrio.write_dataframe(_frame(), path)
    with pytest.raises(InputError) as exc:
        read_source(path, max_bytes=1000)
    _assert_error(exc, InputError, "over the 1000 bytes limit", "lon.gpkg")
    assert exc.value.code == "FILE-TOO-BIG"


def test_loose_shapefile_size_counts_all_parts(tmp_path: Path) -> None:
    shp = _write_shp(tmp_path / "src", "thua", _frame())
    limit = shp.stat().st_size + 10  # the .shp alone fits, with its DBF it does not
    with pytest.raises(InputError) as exc:
        read_source(shp, max_bytes=limit)
    assert exc.value.code == "FILE-TOO-BIG"


def test_forced_wrong_encoding_for_tcvn3_text(tmp_path: Path) -> None:
    src = _zipped_shp(tmp_path, encoding="tcvn3")
    with pytest.raises(EncodingError) as exc:
        read_source(src, encoding="cp1258")
    err = exc.value
    _assert_error(exc, EncodingError, "does not look Vietnamese", "lamha.zip!Data/thua.shp")
    assert "column 'TenXa', row 0" in err.where
    assert "Windows-1258" in err.what and "TCVN3" in err.what
    assert "L©m §ång" in err.what and "Lâm Đồng" in err.what
    assert "--encoding tcvn3" in err.fix
    assert err.code == "ENCODING-WRONG"


def test_forced_encoding_that_cannot_decode(tmp_path: Path) -> None:
    src = _zipped_shp(tmp_path, encoding="cp1258")
    with pytest.raises(EncodingError) as exc:
        read_source(src, encoding="utf-8")
    _assert_error(exc, EncodingError, "cannot be decoded as UTF-8", "column 'TenXa', row 0")
    assert "--encoding cp1258" in exc.value.fix


def test_unknown_encoding_name(tmp_path: Path) -> None:
    src = _zipped_shp(tmp_path)
    with pytest.raises(EncodingError) as exc:
        read_source(src, encoding="klingon")
    _assert_error(exc, EncodingError, "not a supported", "--encoding klingon")


def test_forced_encoding_doubtful_is_a_warning(tmp_path: Path) -> None:
    frame = _frame(2)
    frame["TenXa"] = ["Thon Phuc Tho Lâm Đồng", "Thon Phuc Tho Lâm Đồng"]
    folder = tmp_path / "src"
    _write_shp(folder, "thua", frame, encoding="tcvn3")
    src = read_source(folder / "thua.shp", encoding="cp1258")
    warn = [n for n in src.notes if n.code == "READ-ENCODING-DOUBTFUL"]
    assert len(warn) == 1 and warn[0].severity == "warning"
    assert "TCVN3" in warn[0].message_en and "TCVN3" in warn[0].message_vi
    assert src.encoding == "cp1258" and src.encoding_detection is None


# ------------------------------------------------------------------------- formats


def _check_text(src: SourceLayer, n: int = 4) -> None:
    assert src.frame["TenXa"].tolist() == NAMES[:n]
    assert src.frame["MDSD"].tolist() == CODES[:n]
    assert [int(v) for v in src.frame["SoThua"]] == list(range(1, n + 1))
    assert src.frame.geometry.geom_type.tolist() == ["Polygon"] * n
    assert not src.frame.geometry.has_z.any()


@pytest.mark.parametrize(
    ("driver", "name"),
    [("GPKG", "lamha.gpkg"), ("GeoJSON", "lamha.geojson"), ("FlatGeobuf", "lamha.fgb")],
)
def test_utf8_formats_round_trip(tmp_path: Path, driver: str, name: str) -> None:
    path = tmp_path / name
    # FlatGeobuf's spatial index reorders features; without it the order is kept
    options = {"SPATIAL_INDEX": "NO"} if driver == "FlatGeobuf" else {}
    pyogrio.write_dataframe(_frame(), path, driver=driver, **options)
    src = read_source(path)
    _check_text(src)
    assert src.driver == driver
    assert src.declared_crs is not None and src.declared_crs.to_epsg() == 5899
    assert src.crs_origin == "embedded"
    assert src.encoding == "utf-8" and src.encoding_detection is None
    assert src.source_name == name and src.layers_available == [src.layer]
    assert src.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    shapely.testing.assert_geometries_equal(np.asarray(src.frame.geometry.values),
                                            np.asarray(_polys()), normalize=True)


@pytest.mark.parametrize("name", ["lamha.kml", "lamha.kmz"])
def test_kml_and_kmz(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    pyogrio.write_dataframe(_frame().to_crs(4326), path, driver="LIBKML")
    if name.endswith(".kmz"):
        assert zipfile.is_zipfile(path)
    src = read_source(path)
    _check_text(src)
    assert src.declared_crs is not None and src.declared_crs.is_geographic
    assert src.crs_origin == "embedded"
    # LIBKML's own placemark columns are not the planner's attributes
    assert {"tessellate", "extrude", "visibility", "altitudeMode"}.isdisjoint(src.frame)
    assert "READ-CRS-BY-SPEC" in _codes(src)


def test_geojson_in_metres_without_crs_declares_nothing(tmp_path: Path) -> None:
    path = tmp_path / "thua.geojson"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "'crs' was not provided": intended
        _frame(crs=None).to_file(path, driver="GeoJSON", engine="pyogrio")
    assert '"crs"' not in path.read_text(encoding="utf-8")
    src = read_source(path)
    assert src.declared_crs is None and src.crs_origin == "none" and src.frame.crs is None
    note = next(n for n in src.notes if n.code == "READ-CRS-SPEC-CONTRADICTED")
    assert note.severity == "warning"


def test_zipped_shapefile_in_subfolder(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    _write_shp(folder, "thua", _frame(), cpg="UTF-8")
    src_zip = _zip_folder(folder, tmp_path / "lamha.zip", prefix="Lâm Hà/Dữ liệu/")
    with zipfile.ZipFile(src_zip, "a") as zf:
        zf.writestr("__MACOSX/Lâm Hà/Dữ liệu/._thua.shp", b"\x00\x05\x16\x07 resource fork")
        zf.writestr("Lâm Hà/.DS_Store", b"finder")
    work = tmp_path / "work"
    src = read_source(src_zip, workdir=work)
    _check_text(src)
    assert src.source_name == "lamha.zip!Lâm Hà/Dữ liệu/thua.shp"
    assert src.driver == "ESRI Shapefile" and src.layer == "thua"
    assert src.crs_origin == "prj" and src.declared_crs.to_epsg() == 5899
    assert src.sha256 == hashlib.sha256(src_zip.read_bytes()).hexdigest()
    assert src.encoding == "utf-8"
    assert "the .cpg file names UTF-8" in src.encoding_detection.reason
    assert _empty(work), "the unzipped files must be removed"


def test_zip_with_several_shapefiles(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    _write_shp(folder / "A", "thua", _frame(4), cpg="UTF-8")
    _write_shp(folder / "B", "ranh", _frame(2), cpg="UTF-8")
    src_zip = _zip_folder(folder, tmp_path / "huyen.zip")
    assert list_layers(src_zip) == ["thua", "ranh"]
    with pytest.raises(InputError) as exc:
        read_source(src_zip)
    _assert_error(exc, InputError, "2 layers", "thua (4 features), ranh (2 features)")
    src = read_source(src_zip, layer="B/ranh.shp")
    assert src.layer == "ranh" and len(src.frame) == 2
    assert src.source_name == "huyen.zip!B/ranh.shp"


@pytest.mark.parametrize(("driver", "ext"), [("GPKG", "gpkg"), ("GeoJSON", "geojson"),
                                             ("FlatGeobuf", "fgb")])
def test_zip_holding_one_other_format(tmp_path: Path, driver: str, ext: str) -> None:
    inner = tmp_path / f"quyhoach.{ext}"
    options = {"SPATIAL_INDEX": "NO"} if driver == "FlatGeobuf" else {}
    pyogrio.write_dataframe(_frame(), inner, driver=driver, **options)
    src_zip = tmp_path / "quyhoach.zip"
    with zipfile.ZipFile(src_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(inner, f"Ban do/quyhoach.{ext}")
    src = read_source(src_zip)
    _check_text(src)
    assert src.driver == driver and src.source_name == f"quyhoach.zip!Ban do/quyhoach.{ext}"


def test_zip_without_gis_file(tmp_path: Path) -> None:
    src_zip = tmp_path / "tailieu.zip"
    with zipfile.ZipFile(src_zip, "w") as zf:
        zf.writestr("quyet_dinh.pdf", b"%PDF-1.4")
        zf.writestr("thua.dbf", b"dbf")
    with pytest.raises(InputError) as exc:
        read_source(src_zip)
    _assert_error(exc, InputError, "thua.dbf but no thua.shp", "tailieu.zip")


def test_mixed_case_part_names(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    _write_shp(folder, "thua", _frame(), cpg="UTF-8")
    (folder / "thua.shp").rename(folder / "THUA.SHP")
    (folder / "thua.prj").rename(folder / "Thua.PRJ")
    src = read_source(_zip_folder(folder, tmp_path / "hoa.zip"))
    _check_text(src)
    assert src.declared_crs.to_epsg() == 5899


def test_loose_shapefile_sha256_covers_all_parts(tmp_path: Path) -> None:
    shp = _write_shp(tmp_path / "src", "thua", _frame(), cpg="UTF-8")
    src = read_source(shp)
    _check_text(src)
    parts = [shp.with_suffix(e).read_bytes() for e in (".shp", ".dbf", ".shx", ".prj", ".cpg")]
    assert src.sha256 == hashlib.sha256(b"".join(parts)).hexdigest()
    assert src.source_name == "thua.shp"


# ------------------------------------------------------------------------- encodings


def _cp1258_dbf(tmp_path: Path, cpg: str | None) -> Path:
    frame = _frame()
    frame["GhiChu"] = ["Đất ở tại đô thị", "Đất trồng cây lâu năm", "Đất lúa", "Sông"]
    return _write_shp(tmp_path / "src", "thua", frame, encoding="cp1258", cpg=cpg)


@pytest.mark.parametrize("cpg", [None, "1258", "ANSI 1258"])
def test_cp1258_keeps_last_character(tmp_path: Path, cpg: str | None) -> None:
    shp = _cp1258_dbf(tmp_path, cpg)
    raw = shp.with_suffix(".dbf").read_bytes()
    assert b"L\xe2m \xd0\xf4\xccng" in raw  # decomposed: ô + combining grave
    if cpg == "1258":  # the bug this works around: GDAL eats the last character...
        plain = pyogrio.read_dataframe(shp)
        assert plain.iloc[0, 1] == "Lâm Đồn"
        assert list(plain.columns)[:3] == ["SoThu", "TenX", "MDS"]  # ...of names too
    src = read_source(shp)
    _check_text(src)
    assert src.frame["GhiChu"].tolist() == ["Đất ở tại đô thị", "Đất trồng cây lâu năm",
                                            "Đất lúa", "Sông"]
    assert src.encoding == "cp1258"
    assert src.encoding_detection is not None
    if cpg:
        assert src.encoding_detection.confidence == 1.0
        assert ".cpg" in src.encoding_detection.reason


@pytest.mark.parametrize("ldid", [0x00, 0x03, 0x57, 0x4D, 0x7B, 0xA3])
def test_dbf_language_driver_byte_cannot_redecode(tmp_path: Path, ldid: int) -> None:
    shp = _cp1258_dbf(tmp_path, cpg=None)
    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[29] = ldid  # the LDID: 0x57 = ANSI, 0x4D = GBK, 0x7B = Shift-JIS...
    dbf.write_bytes(bytes(data))
    pyogrio.set_gdal_config_options({"SHAPE_ENCODING": "CP936"})  # a hostile global
    try:
        src = read_source(shp)
    finally:
        pyogrio.set_gdal_config_options({"SHAPE_ENCODING": None})
    _check_text(src)
    assert src.encoding == "cp1258"


def test_cpg_honoured(tmp_path: Path) -> None:
    # UTF-8 bytes with a .cpg saying so; a stale .cpg naming ANSI 1252 is ignored
    folder = tmp_path / "src"
    _write_shp(folder, "thua", _frame(), encoding="utf-8", cpg="UTF-8")
    src = read_source(folder / "thua.shp")
    _check_text(src)
    assert src.encoding == "utf-8"
    assert src.encoding_detection.confidence == 1.0
    assert "UTF-8" in src.encoding_detection.reason
    (folder / "thua.cpg").write_text("1252")
    _write_shp(folder, "thua", _frame(), encoding="tcvn3", cpg="1252")
    src = read_source(folder / "thua.shp")
    _check_text(src)
    assert src.encoding == "tcvn3"
    assert "1252" in src.encoding_detection.reason


@pytest.mark.parametrize("enc", ["tcvn3", "vni", "cp1258", "utf-8"])
def test_encoding_detected_without_cpg(tmp_path: Path, enc: str) -> None:
    frame = _frame()
    frame["ChuSuDung"] = ["Nguyễn Văn Hùng", "Trần Thị Lụa", "Phạm Đức Mạnh", "Lê Thị Hồng"]
    folder = tmp_path / "src"
    _write_shp(folder, "thua", frame, encoding=enc)
    src = read_source(_zip_folder(folder, tmp_path / "x.zip"))
    _check_text(src)
    assert src.frame["ChuSuDung"].tolist() == frame["ChuSuDung"].tolist()
    assert src.encoding == enc and src.encoding_detection.encoding == enc


def test_forced_encoding_used(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    _write_shp(folder, "thua", _frame(), encoding="vni", cpg="UTF-8")  # stale .cpg
    src = read_source(folder / "thua.shp", encoding="VNI-Windows")
    _check_text(src)
    assert src.encoding == "vni" and src.encoding_detection is None
    # The report says where the encoding came from, and that it overrode the .cpg.
    assert src.encoding_origin.origin == "given"
    assert src.encoding_origin.en == "--encoding (overriding the .cpg file 'UTF-8')"


def test_legacy_column_names_decoded(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"Tên": ["Đà Lạt"], "ChủSD": ["Nguyễn Văn Đồng"]},
                             geometry=_polys(1), crs=5899)
    folder = tmp_path / "src"
    _write_shp(folder, "thua", frame, encoding="cp1258")
    raw = (folder / "thua.dbf").read_bytes()
    assert b"T\xean" in raw[:200]
    src = read_source(folder / "thua.shp")
    assert list(src.frame.columns) == ["Tên", "ChủSD", "geometry"]
    assert src.frame["ChủSD"].tolist() == ["Nguyễn Văn Đồng"]


def test_utf8_formats_text_is_nfc(tmp_path: Path) -> None:
    import unicodedata

    frame = _frame()
    frame["TenXa"] = [unicodedata.normalize("NFD", v) for v in NAMES]
    path = tmp_path / "nfd.gpkg"
    pyogrio.write_dataframe(frame, path)
    src = read_source(path, encoding="tcvn3")
    _check_text(src)
    assert "READ-ENCODING-IGNORED" in _codes(src)


# ------------------------------------------------------------------------- DXF


def _dxf(codepage: str, text: bytes, *, version: str = "AC1015", z: float | None = None) -> bytes:
    out: list[bytes] = []

    def g(code: int, value: str | bytes) -> None:
        out.append(f"{code}\r\n".encode())
        out.append((value if isinstance(value, bytes) else value.encode()) + b"\r\n")

    g(0, "SECTION"), g(2, "HEADER"), g(9, "$ACADVER"), g(1, version)
    g(9, "$DWGCODEPAGE"), g(3, codepage), g(0, "ENDSEC")
    g(0, "SECTION"), g(2, "ENTITIES")
    for i in range(2):  # two closed parcels
        g(0, "LWPOLYLINE"), g(5, f"1{i}"), g(8, text), g(100, "AcDbEntity")
        g(100, "AcDbPolyline"), g(90, "4"), g(70, "1")
        if z is not None:
            g(38, f"{z}")
        x = X0 + 40 * i
        for px, py in ((x, Y0), (x + 30, Y0), (x + 30, Y0 + 30), (x, Y0 + 30)):
            g(10, f"{px}"), g(20, f"{py}")
    g(0, "LWPOLYLINE"), g(5, "20"), g(8, b"Duong"), g(100, "AcDbEntity")
    g(100, "AcDbPolyline"), g(90, "2"), g(70, "0")
    g(10, f"{X0}"), g(20, f"{Y0 - 10}"), g(10, f"{X0 + 70}"), g(20, f"{Y0 - 10}")
    g(0, "TEXT"), g(5, "21"), g(8, b"Ghi chu"), g(100, "AcDbEntity"), g(100, "AcDbText")
    g(10, f"{X0 + 5}"), g(20, f"{Y0 + 5}"), g(30, "0"), g(40, "2"), g(1, text)
    g(0, "ENDSEC"), g(0, "EOF")
    return b"".join(out)


@pytest.mark.parametrize(
    ("codepage", "enc", "version", "detected"),
    [("ANSI_1258", "cp1258", "AC1015", False),
     ("ANSI_1252", "tcvn3", "AC1015", True),   # .VnTime fonts under a Western code page
     ("ANSI_1252", "utf-8", "AC1027", False)],  # AutoCAD 2013: UTF-8 whatever the page
)
def test_dxf_closed_polylines_and_text(tmp_path: Path, codepage: str, enc: str,
                                       version: str, detected: bool) -> None:
    path = tmp_path / "banve.dxf"
    path.write_bytes(_dxf(codepage, encodings.encode("Đất ở Lâm Đồng", enc), version=version))
    src = read_source(path)
    frame = src.frame
    assert src.driver == "DXF" and src.declared_crs is None and src.crs_origin == "none"
    assert frame.geometry.geom_type.tolist() == ["Polygon", "Polygon", "LineString", "Point"]
    assert list(frame.columns) == ["Layer", "Text", "geometry"]
    assert frame["Layer"].tolist() == ["Đất ở Lâm Đồng", "Đất ở Lâm Đồng", "Duong", "Ghi chu"]
    assert frame["Text"].iloc[3] == "Đất ở Lâm Đồng"
    note = next(n for n in src.notes if n.code == "READ-DXF-CLOSED-AS-POLYGON")
    assert note.message_en.startswith("2 closed polylines")
    assert src.encoding == enc
    assert (src.encoding_detection is not None) == detected
    assert "READ-Z-DROPPED" in _codes(src)  # the TEXT insertion point has Z = 0


# ------------------------------------------------------------------------- geometry


def test_z_dropped_with_note(tmp_path: Path) -> None:
    frame = _frame()
    frame.geometry = shapely.force_3d(np.asarray(frame.geometry.values), z=1520.5)
    path = tmp_path / "cao.gpkg"
    pyogrio.write_dataframe(frame, path)
    assert pyogrio.read_dataframe(path).geometry.has_z.all()
    src = read_source(path)
    _check_text(src)
    note = next(n for n in src.notes if n.code == "READ-Z-DROPPED")
    assert note.severity == "info" and "1520.5" in note.message_en and note.row is None


def _corrupt_record(shp: Path, row: int, shape_type: int = 77) -> None:
    shx = shp.with_suffix(".shx").read_bytes()
    offset = struct.unpack(">i", shx[100 + 8 * row:104 + 8 * row])[0] * 2
    data = bytearray(shp.read_bytes())
    struct.pack_into("<i", data, offset + 8, shape_type)
    shp.write_bytes(bytes(data))


def test_corrupt_shp_record_reported_others_read(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    shp = _write_shp(folder, "thua", _frame(), cpg="UTF-8")
    _corrupt_record(shp, 2)
    src = read_source(_zip_folder(folder, tmp_path / "hong.zip"))
    assert src.frame.index.tolist() == [0, 1, 3]  # source row numbers are kept
    assert src.frame["TenXa"].tolist() == [NAMES[0], NAMES[1], NAMES[3]]
    bad = [n for n in src.notes if n.code == "READ-RECORD-UNREADABLE"]
    assert len(bad) == 1 and bad[0].row == 2 and bad[0].severity == "error"
    assert "shape type 77" in bad[0].message_en


def test_genuine_null_shape_is_kept(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[1, "geometry"] = None
    shp = _write_shp(tmp_path / "src", "thua", frame, cpg="UTF-8")
    src = read_source(shp)
    assert len(src.frame) == 4 and src.frame.geometry.isna().tolist() == [False, True, False,
                                                                           False]
    assert "READ-RECORD-UNREADABLE" not in _codes(src)


def test_truncated_dbf_read_record_by_record(tmp_path: Path) -> None:
    shp = _cp1258_dbf(tmp_path, cpg="1258")
    dbf = shp.with_suffix(".dbf")
    data = dbf.read_bytes()
    header_len = struct.unpack("<H", data[8:10])[0]
    record_len = struct.unpack("<H", data[10:12])[0]
    dbf.write_bytes(data[: header_len + 2 * record_len + record_len // 2])  # half of row 2
    with pytest.raises(pyogrio.errors.FeatureError):
        pyogrio.read_dataframe(shp, encoding="latin1")
    src = read_source(shp)
    assert src.frame.index.tolist() == [0, 1]
    assert src.frame["TenXa"].tolist() == NAMES[:2]  # decoded, last character kept
    rows = [n.row for n in src.notes if n.code == "READ-RECORD-UNREADABLE"]
    assert rows == [2, 3]
    assert src.declared_crs.to_epsg() == 5899


def test_truncated_flatgeobuf_read_record_by_record(tmp_path: Path) -> None:
    path = tmp_path / "cut.fgb"
    pyogrio.write_dataframe(_frame(), path, driver="FlatGeobuf", SPATIAL_INDEX="NO")
    data = path.read_bytes()
    path.write_bytes(data[:-60])
    src = read_source(path)
    good = src.frame.index.tolist()
    bad = [n.row for n in src.notes if n.code == "READ-RECORD-UNREADABLE"]
    assert sorted(good + bad) == [0, 1, 2, 3] and bad and good
    assert src.frame["TenXa"].tolist() == [NAMES[i] for i in good]


def test_damaged_geojson_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.geojson"
    pyogrio.write_dataframe(_frame(), path, driver="GeoJSON")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(InputError) as exc:
        read_source(path)
    _assert_error(exc, InputError, "cannot be read", "cut.geojson")


def test_progress_and_notes_types(tmp_path: Path) -> None:
    seen: list[str] = []
    src = read_source(_zipped_shp(tmp_path, cpg="UTF-8"), progress=seen.append)
    assert seen[0].startswith("unzipping") and any(s.startswith("reading") for s in seen)
    assert all(isinstance(n, Note) for n in src.notes)
    assert MAX_UPLOAD_BYTES_DEFAULT == 1024**3


def test_truncated_shp_reports_lost_records(tmp_path: Path) -> None:
    shp = _write_shp(tmp_path / "src", "thua", _frame(), cpg="UTF-8")
    shx = shp.with_suffix(".shx").read_bytes()
    cut = struct.unpack(">i", shx[100 + 8 * 3:104 + 8 * 3])[0] * 2 + 20  # inside record 3
    shp.write_bytes(shp.read_bytes()[:cut])
    src = read_source(shp)
    assert src.frame.index.tolist() == [0, 1, 2]
    bad = [n for n in src.notes if n.code == "READ-RECORD-UNREADABLE"]
    assert [n.row for n in bad] == [3] and "truncated" in bad[0].message_en


def test_truncated_geopackage_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.gpkg"
    pyogrio.write_dataframe(_frame(), path)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    with pytest.raises(InputError) as exc:
        read_source(path)
    _assert_error(exc, InputError, "cannot be read", "cut.gpkg")
    assert "export it again" in exc.value.fix


def test_unreadable_prj_is_a_warning(tmp_path: Path) -> None:
    shp = _write_shp(tmp_path / "src", "thua", _frame(), cpg="UTF-8")
    shp.with_suffix(".prj").write_text("this is not a projection")
    src = read_source(shp)
    _check_text(src)
    assert src.declared_crs is None and src.crs_origin == "none"
    assert "READ-PRJ-UNREADABLE" in _codes(src)


def test_shapefile_without_prj_declares_nothing(tmp_path: Path) -> None:
    shp = _write_shp(tmp_path / "src", "thua", _frame(), cpg="UTF-8")
    shp.with_suffix(".prj").unlink()
    src = read_source(shp)
    assert src.declared_crs is None and src.crs_origin == "none" and src.frame.crs is None
    assert "READ-PRJ-UNREADABLE" not in _codes(src)


def test_kml_folders_are_layers(tmp_path: Path) -> None:
    path = tmp_path / "quyhoach.kml"
    pyogrio.write_dataframe(_frame(4).to_crs(4326), path, driver="LIBKML", layer="Dat o")
    pyogrio.write_dataframe(_frame(2).to_crs(4326), path, driver="LIBKML", layer="Dat lua",
                            append=True)
    assert list_layers(path) == ["Dat o", "Dat lua"]
    src = read_source(path, layer="Dat lua")
    _check_text(src, 2)


def test_plain_sqlite_is_not_a_geopackage(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "danhba.gpkg"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE chu (ten TEXT)")
    con.execute("INSERT INTO chu VALUES ('Nguyễn Văn An')")
    con.commit()
    con.close()
    with pytest.raises(InputError) as exc:
        read_source(path)
    _assert_error(exc, InputError, "not a GIS file we can read", "danhba.gpkg")
    assert "SQLite database that is not a GeoPackage" in exc.value.what


def test_column_in_another_encoding_is_decoded_with_a_warning(tmp_path: Path) -> None:
    # edited in two tools: names in Windows-1258 (with a .cpg), notes pasted as UTF-8
    frame = _frame()
    raw = frame.copy()
    raw["TenXa"] = [_raw(v, "cp1258") for v in NAMES]
    raw["GhiChu"] = [_raw(v, "utf-8") for v in ["Đất ở", "Đường", "Đồi thông", "Đập"]]
    folder = tmp_path / "src"
    folder.mkdir()
    pyogrio.write_dataframe(raw, folder / "thua.shp", encoding="latin1")
    (folder / "thua.cpg").write_text("1258")
    src = read_source(folder / "thua.shp")
    _check_text(src)
    assert src.frame["GhiChu"].tolist() == ["Đất ở", "Đường", "Đồi thông", "Đập"]
    assert src.encoding == "cp1258"
    note = next(n for n in src.notes if n.code == "READ-ENCODING-COLUMN")
    assert note.severity == "warning" and "'GhiChu' is in UTF-8" in note.message_en
