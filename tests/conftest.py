"""Shared fixtures: a temporary data home, a store in it, and real planner files.

Files are built here with pyogrio and zipfile, byte for byte as Vietnamese offices
send them (legacy encodings written as raw DBF bytes, no .prj, odd field names).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from gisportal.base import seeds
from gisportal.pipeline.read import encodings

# Real PostgreSQL/PostGIS, replica and S3 servers, started when a test asks for them.
pytest_plugins = ["tests.servers"]

#: A point inside Đức Trọng (678), in EPSG:5899 (easting, northing).
DUC_TRONG_XY = Transformer.from_crs(4326, 5899, always_xy=True).transform(
    *seeds.district("678").anchor_lonlat)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("GISPORTAL_HOME", str(h))
    return h


@pytest.fixture
def run(home):
    """``gisportal --home <home> ARGS…`` in this process (click's runner), for CLI tests."""
    from click.testing import CliRunner

    from gisportal.cli.main import cli

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--home", str(home), *args], catch_exceptions=False)

    return invoke


# ---------------------------------------------------------------- production backends

#: A suite's home on the embedded backends (the default), and once more on the production
#: ones (marked ``production``): PostgreSQL/PostGIS store and catalogue, S3 file areas.
HOME_BACKENDS = (pytest.param("embedded", id="embedded"),
                 pytest.param("production", id="production", marks=pytest.mark.production))
#: The settings that choose the backends; an embedded run clears them.
_BACKEND_VARIABLES = ("GISPORTAL_DATABASE", "GISPORTAL_DATABASE_REPLICAS", "GISPORTAL_FILES")


def _use_backend(request: pytest.FixtureRequest, mp: pytest.MonkeyPatch,
                 dsn: Callable[[], str], bucket: Callable[[], str]) -> None:
    """Point the environment (read by `DataHome`, `open_store`, `create_app`, the CLI)
    at the embedded backends, or at a migrated database and a bucket."""
    for name in _BACKEND_VARIABLES:
        mp.delenv(name, raising=False)
    if request.param != "production":
        return
    from tests.servers import migrate_all

    s3 = request.getfixturevalue("s3_server")
    database = dsn()
    migrate_all(database)
    mp.setenv("GISPORTAL_DATABASE", database)
    mp.setenv("GISPORTAL_FILES", f"s3://{bucket()}/gp")
    for name, value in s3.env().items():
        mp.setenv(name, value)


@pytest.fixture(params=HOME_BACKENDS)
def backend(request, monkeypatch) -> Iterator[str]:
    """``embedded`` or ``production`` for this test: a suite runs once more against real
    servers without a copy of its tests by making its ``home`` fixture take this one
    (``def home(backend, home)``). Production: ``GISPORTAL_DATABASE`` is a fresh, migrated
    database, ``GISPORTAL_FILES`` a fresh bucket of the test S3 server."""
    from gisportal.store import postgres

    _use_backend(request, monkeypatch, lambda: request.getfixturevalue("pg_dsn"),
                 lambda: request.getfixturevalue("s3_bucket"))
    try:
        yield request.param
    finally:
        if request.param == "production":
            postgres.close_pools()  # before pg_dsn drops the database


@pytest.fixture(scope="module", params=HOME_BACKENDS)
def module_backend(request) -> Iterator[str]:
    """`backend` for a module-scoped home (built once, read by many tests): the database
    and the bucket are the module's, and the environment names them while the module's
    tests of that backend run (a test taking `backend` overrides it for itself)."""
    from tests.servers import _unique

    made: dict[str, str] = {}

    def database() -> str:
        made["database"] = _unique("test_")
        return request.getfixturevalue("pg_server").create_database(made["database"])

    def bucket() -> str:
        made["bucket"] = _unique("test-")
        request.getfixturevalue("s3_server").client().create_bucket(Bucket=made["bucket"])
        return made["bucket"]

    with pytest.MonkeyPatch.context() as mp:
        try:
            _use_backend(request, mp, database, bucket)
            yield request.param
        finally:
            if made:
                from gisportal.store import postgres

                postgres.close_pools()
            if "database" in made:
                request.getfixturevalue("pg_server").drop_database(made["database"])
            if "bucket" in made:
                request.getfixturevalue("s3_server").empty_and_delete_bucket(made["bucket"])


@pytest.fixture
def store(home):
    from gisportal.store import open_store

    s = open_store(home, crs="EPSG:5899")
    yield s
    s.close()


def parcel_grid(rows: int = 4, cols: int = 5, *, origin=DUC_TRONG_XY, size=(20.0, 25.0),
                names: list[str] | None = None) -> gpd.GeoDataFrame:
    """A block of rectangular parcels in EPSG:5899 with real-world field names."""
    x0, y0 = origin
    xs, ys = np.meshgrid(np.arange(cols) * size[0] + x0, np.arange(rows) * size[1] + y0)
    xs, ys = xs.ravel(), ys.ravel()
    geoms = shapely.box(xs, ys, xs + size[0], ys + size[1])
    n = len(geoms)
    names = names or ["Nguyễn Văn Hùng", "Trần Thị Lan", "Lê Đức Trọng", "K'Brêu"]
    codes = ["ONT", "CLN", "ONT+CLN", "HNK", "DGT"]
    return gpd.GeoDataFrame({
        "MaXa": ["24778"] * n,
        "SoTo": [1 + i // 10 for i in range(n)],
        "SoThua": [1 + i % 10 for i in range(n)],
        "DienTich": np.round(shapely.area(geoms), 1),
        "LoaiDat": [codes[i % len(codes)] for i in range(n)],
        "TenChu": [names[i % len(names)] for i in range(n)],
    }, geometry=geoms, crs="EPSG:5899")


def publish_parcels_and_plan(store, tmp_path: Path, parcels_zip: Path, *,
                             authority: str = "UBND tỉnh Lâm Đồng") -> None:
    """Publish `parcel_grid`'s parcels (from `parcels_zip`) in 678 and an approved
    2021–2030 plan of two zones over them: ODT west of x0 + 50 m, CLN east of it."""
    from gisportal.services.ingest import ingest_file

    x0, y0 = DUC_TRONG_XY
    assert ingest_file(store, parcels_zip, "parcels", "678", publish=True).published
    plan = gpd.GeoDataFrame({"MaLoaiDat": ["ODT", "CLN"]},
                            geometry=[shapely.box(x0 - 500, y0 - 500, x0 + 50, y0 + 600),
                                      shapely.box(x0 + 50, y0 - 500, x0 + 600, y0 + 600)],
                            crs="EPSG:5899")
    path = tmp_path / "plan.gpkg"
    plan.to_file(path, driver="GPKG")
    assert ingest_file(store, path, "plan", "678", publish=True, meta={"decision": {
        "number": "123/QĐ-UBND", "date": "2023-06-30", "authority": authority}}).published


def bow_tie_file(tmp_path: Path, row: int, n: int = 3) -> Path:
    """A GeoPackage of ``n`` parcels in a row whose ``row``-th is a bow-tie (invalid)."""
    gdf = parcel_grid(1, n)
    x0, y0, x1, y1 = gdf.geometry.iloc[row].bounds
    gdf.loc[row, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    path = tmp_path / "bowtie.gpkg"
    gdf.to_file(path, driver="GPKG")
    return path


def write_shapefile_zip(gdf: gpd.GeoDataFrame, zip_path: Path, *, encoding: str = "utf-8",
                        prj: bool = True, cpg: str | None = None,
                        folder: str = "") -> Path:
    """Write ``gdf`` as a zipped Shapefile with DBF text in ``encoding``.

    Legacy encodings are written as the raw bytes Vietnamese software writes: ``bytes``
    values go in as they are (tests give literal legacy bytes), ``str`` values are
    encoded with our tables; then no .cpg unless
    ``cpg`` gives its content, and no .prj when ``prj`` is False.
    """
    work = zip_path.parent / (zip_path.stem + "_parts")
    work.mkdir(parents=True, exist_ok=True)
    out = gdf.copy()
    for col in out.columns:
        if col != out.geometry.name and not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = [v.decode("latin-1") if isinstance(v, bytes)
                        else encodings.encode(v, encoding).decode("latin-1") for v in out[col]]
    shp = work / "thua.shp"
    # GDAL's "LATIN1" writer is ISO-8859-1 without the C1 range (0x80–0x9F), which UTF-8
    # and VNI bytes use; write those bytes into the DBF ourselves.
    pyogrio.write_dataframe(out, shp, encoding="latin1")
    _patch_dbf_text(work / "thua.dbf", out)
    (work / "thua.cpg").unlink(missing_ok=True)
    if cpg is not None:
        (work / "thua.cpg").write_text(cpg)
    if not prj:
        (work / "thua.prj").unlink(missing_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in sorted(work.iterdir()):
            zf.write(part, f"{folder}{part.name}")
    return zip_path


def _patch_dbf_text(dbf: Path, frame: gpd.GeoDataFrame) -> None:
    """Rewrite each text cell of ``dbf`` with the exact bytes of ``frame``'s latin-1 text."""
    data = bytearray(dbf.read_bytes())
    n_rec = int.from_bytes(data[4:8], "little")
    header_len = int.from_bytes(data[8:10], "little")
    rec_len = int.from_bytes(data[10:12], "little")
    fields, pos, off = [], 32, 1
    while data[pos] != 0x0D:
        name = data[pos:pos + 11].split(b"\0")[0].decode("ascii")
        ftype, flen = chr(data[pos + 11]), data[pos + 16]
        fields.append((name, ftype, off, flen))
        off += flen
        pos += 32
    for name, ftype, foff, flen in fields:
        if ftype != "C" or name not in frame.columns:
            continue
        for i, v in enumerate(frame[name]):
            if i >= n_rec:
                break
            raw = b"" if v is None else v.encode("latin-1")[:flen]
            start = header_len + i * rec_len + foff
            data[start:start + flen] = raw.ljust(flen, b" ")
    dbf.write_bytes(bytes(data))


@pytest.fixture
def make_shapefile_zip(tmp_path) -> Callable[..., Path]:
    def make(gdf=None, name="thua.zip", **kw) -> Path:
        return write_shapefile_zip(parcel_grid() if gdf is None else gdf, tmp_path / name, **kw)

    return make


def rename(gdf: gpd.GeoDataFrame, mapping: Mapping[str, str]) -> gpd.GeoDataFrame:
    return gdf.rename(columns=dict(mapping))


# --------------------------------------------------------------------------- accounts


@pytest.fixture
def fast_passwords(monkeypatch):
    """Real Argon2id with small parameters, so tests that sign in many times stay quick
    (the default costs ~0.2 s a hash on two cores). Tests of rehashing pass their own."""
    from argon2 import PasswordHasher

    from gisportal.accounts import users

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", lambda: cheap)
    return cheap


def csrf_token_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client, name: str, password: str, **extra):
    """Sign ``client`` in through the real form (GET for the CSRF token, then POST)."""
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": token, **extra})


def use_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Production mode for this test: a fresh PostGIS database, migrated as
    ``gisportal migrate`` does (every component), named by ``GISPORTAL_DATABASE`` (so
    `open_store` and child processes select it)."""
    from gisportal.store import postgres
    from tests.servers import migrate_all

    dsn = request.getfixturevalue("pg_dsn")
    monkeypatch.setenv("GISPORTAL_DATABASE", dsn)
    migrate_all(dsn)
    # Before the database is dropped: close this process's connections to it.
    request.addfinalizer(postgres.close_pools)
    return dsn


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.production)])
def store_on_each_backend(request, home, monkeypatch):
    """The data home's store on each backend (PostGIS: a fresh migrated database), for
    modules that test one part of the store contract with their own data."""
    from gisportal.store import open_store

    if request.param == "postgis":
        use_database(request, monkeypatch)
    s = open_store(home, crs="EPSG:5899")
    yield s
    s.close()
