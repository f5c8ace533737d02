"""Every bad input of the Foundation issue through the real CLI ingest: a precise
one-line message (what, where, how to fix), a non-zero exit, and nothing stored."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner

from gisportal.cli.main import cli
from gisportal.store import open_store
from tests.conftest import parcel_grid, write_shapefile_zip


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _shapefile_parts(tmp: Path) -> dict[str, bytes]:
    z = write_shapefile_zip(parcel_grid(2, 2), tmp / "parts.zip")
    with zipfile.ZipFile(z) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def not_a_zip(tmp: Path) -> Path:
    p = tmp / "thua.zip"
    p.write_bytes(b"PK\x05\x06 this is not really a zip")
    return p


def corrupt_zip(tmp: Path) -> Path:
    good = _zip(tmp / "good.zip", _shapefile_parts(tmp)).read_bytes()
    p = tmp / "corrupt.zip"
    p.write_bytes(good[: len(good) // 2])
    return p


def zip_slip(tmp: Path) -> Path:
    parts = _shapefile_parts(tmp)
    parts["../../evil.txt"] = b"owned"
    return _zip(tmp / "slip.zip", parts)


def zip_absolute(tmp: Path) -> Path:
    parts = _shapefile_parts(tmp)
    parts["/tmp/evil.txt"] = b"owned"
    return _zip(tmp / "abs.zip", parts)


def zip_bomb(tmp: Path) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("thua.dbf", b"\0" * (64 * 1024 * 1024))
    p = tmp / "bomb.zip"
    p.write_bytes(buf.getvalue())
    return p


def missing_dbf(tmp: Path) -> Path:
    return _zip(tmp / "nodbf.zip", {n: d for n, d in _shapefile_parts(tmp).items()
                                    if not n.endswith(".dbf")})


def missing_shx(tmp: Path) -> Path:
    return _zip(tmp / "noshx.zip", {n: d for n, d in _shapefile_parts(tmp).items()
                                    if not n.endswith(".shx")})


def empty_layer(tmp: Path) -> Path:
    p = tmp / "empty.gpkg"
    parcel_grid(1, 1).iloc[:0].to_file(p, driver="GPKG")
    return p


def point_layer(tmp: Path) -> Path:
    g = parcel_grid(2, 2)
    p = tmp / "points.gpkg"
    g.set_geometry(g.geometry.centroid).to_file(p, driver="GPKG")
    return p


def line_layer(tmp: Path) -> Path:
    g = parcel_grid(2, 2)
    p = tmp / "lines.gpkg"
    g.set_geometry(g.geometry.boundary).to_file(p, driver="GPKG")
    return p


def nowhere(tmp: Path) -> Path:
    g = parcel_grid(2, 2)
    g = g.set_geometry(g.geometry.translate(3_000_000, 3_000_000)).set_crs(
        None, allow_override=True)
    return write_shapefile_zip(g, tmp / "nowhere.zip", prj=False)


def two_layers(tmp: Path) -> Path:
    p = tmp / "two.gpkg"
    parcel_grid(2, 2).to_file(p, layer="thua_dat", driver="GPKG")
    parcel_grid(1, 2).to_file(p, layer="thua_cu", driver="GPKG")
    return p


def renamed_exe(tmp: Path) -> Path:
    p = tmp / "thua.gpkg"
    p.write_bytes(b"MZ\x90\x00" + b"\x00" * 4096)
    return p


CASES = {
    "not a zip": (not_a_zip, (), "zip"),
    "corrupt zip": (corrupt_zip, (), "zip"),
    "zip-slip ../": (zip_slip, (), "evil.txt"),
    "zip-slip absolute": (zip_absolute, (), "evil.txt"),
    "zip bomb": (zip_bomb, (), "zip bomb"),
    "shapefile without .dbf": (missing_dbf, (), ".dbf"),
    "shapefile without .shx": (missing_shx, (), ".shx"),
    "empty layer": (empty_layer, (), "no features"),
    "point layer as parcels": (point_layer, (), "polygons"),
    "line layer as parcels": (line_layer, (), "polygons"),
    "coordinates fit no CRS": (nowhere, (), "fit no known CRS"),
    "several layers, none chosen": (two_layers, (), "thua_cu"),
    "unknown layer chosen": (two_layers, ("--layer", "nope"), "thua_dat"),
    "renamed .exe": (renamed_exe, (), "gpkg"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_nothing_is_stored(case, tmp_path, home):
    make, extra, needle = CASES[case]
    path = make(tmp_path)
    r = CliRunner().invoke(cli, ["--home", str(home), "ingest", str(path), "--kind", "parcels",
                                 "--district", "678", *extra], catch_exceptions=False)
    assert r.exit_code != 0, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gisportal: error:"), r.stderr
    assert needle.lower() in err[0].lower()
    assert "[" in err[0], "the message names where the problem is"
    assert r.stdout.strip() == ""
    with open_store(home, crs="EPSG:5899") as store:
        assert store.versions() == []
    assert not (tmp_path.parent / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()


def test_file_over_the_size_limit(tmp_path, home, monkeypatch, make_shapefile_zip):
    path = make_shapefile_zip()
    monkeypatch.setenv("GISPORTAL_MAX_UPLOAD_BYTES", "1000")
    r = CliRunner().invoke(cli, ["--home", str(home), "ingest", str(path), "--kind", "parcels",
                                 "--district", "678"])
    assert r.exit_code != 0
    assert "GISPORTAL_MAX_UPLOAD_BYTES" in r.stderr or "limit" in r.stderr
    with open_store(home, crs="EPSG:5899") as store:
        assert store.versions() == []


def test_wrong_encoding_forced(tmp_path, home):
    g = parcel_grid(2, 2)
    g["TenChu"] = [b"L\xa9m \xa7\xe5ng", b"\xa7\xf8c Tr\xe4ng", b"B\xb6o L\xe9c",
                   b"Nguy\xd4n V\xa8n H\xefng"]  # TCVN3 bytes
    path = write_shapefile_zip(g, tmp_path / "tcvn3.zip", prj=False)
    r = CliRunner().invoke(cli, ["--home", str(home), "ingest", str(path), "--kind", "parcels",
                                 "--district", "678", "--encoding", "vni"])
    assert r.exit_code != 0
    assert "tcvn3" in r.stderr.lower()
    with open_store(home, crs="EPSG:5899") as store:
        assert store.versions() == []


def test_previously_published_data_is_untouched_by_a_bad_upload(tmp_path, home,
                                                                 make_shapefile_zip):
    runner = CliRunner()
    ok = runner.invoke(cli, ["--home", str(home), "ingest", str(make_shapefile_zip()),
                             "--kind", "parcels", "--district", "678", "--publish"])
    assert ok.exit_code == 0
    bad = runner.invoke(cli, ["--home", str(home), "ingest", str(zip_slip(tmp_path)),
                              "--kind", "parcels", "--district", "678", "--publish"])
    assert bad.exit_code != 0
    with open_store(home, crs="EPSG:5899") as store:
        assert len(store.versions()) == 1
        v = store.published("678", "parcels")
        assert isinstance(store.read(v.id), gpd.GeoDataFrame) and len(store.read(v.id)) == 20
