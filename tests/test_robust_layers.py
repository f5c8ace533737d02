"""No layer shape crashes validate, ingest or the upload job (issue 10, item 2).

Planners send what their software exports: a column empty in every row (the portal's
own export of a plan leaves ``name`` empty), two columns that differ only by case
(``SoTo`` and ``SOTO``), dates or text where a sheet number belongs, notes of 10 000
characters, numeric-looking codes ("0012", 1.0, "1e3"), features without geometry,
points in a polygon layer, bow-ties, one feature or none. Hypothesis writes such layers
in the formats planners upload (GeoPackage, zipped and loose Shapefile, GeoJSON,
FlatGeobuf), with and without a declared CRS, and every one must meet the command-line
contract: exit 0 or 1 with a JSON report, or 2 with a one-line error — never a Python
traceback. Through the upload job, a layer ends ``done`` or ``failed`` with what, where
and fix, never with a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from gisportal.cli.main import cli

#: Where generated features go: Đức Trọng, in VN-2000 TM-3 (EPSG:5899) metres.
X0, Y0 = 550_000.0, 1_300_000.0
TO_LONLAT = Transformer.from_crs(5899, 4326, always_xy=True)

#: Column names as offices spell them: aliases of canonical fields in several cases
#: (two of them differing only by case), canonical names themselves, and free notes.
NAMES = ("SoTo", "SOTO", "soto", "So_To", "SoThua", "shthua", "SHTHUA", "mdsd", "MDSD",
         "LoaiDat", "MaXa", "DienTich", "TenChu", "sheet", "parcel", "land_use", "commune",
         "area_m2", "name", "TenVung", "MaVung", "Ma", "Ten", "Cap", "GhiChu", "Ngày lập",
         "ghi chú")
VALUE_TYPES = ("str", "int", "float", "date", "datetime", "bool", "code", "long", "mixed")
GEOMETRIES = ("box", "box", "hole", "multi", "repeated", "bowtie", "point", "line", "none",
              "empty")
#: (CRS the file declares, CRS of the coordinates): None declares nothing.
CRSES = (("EPSG:5899", 5899), ("EPSG:4326", 4326), (None, 5899), (None, 4326))
FORMATS = ("gpkg", "shp-zip", "shp", "geojson", "fgb")
KINDS = ("parcels", "plan", "boundary")

_TEXT = st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyÀẢÃÁẠĐỨỪ 0123456789'-+.,",
                max_size=12)
_CODES = st.sampled_from(["0012", "1.0", "1e3", "12", " 7 ", "ONT", "ont+cln", "BHK", "LUC",
                          "XYZ", "", "nan", "inf", "-1", "3,5", "１２", "ODT+"])
_LONG = st.sampled_from(["Đ" * 10_000, "a" * 10_000, ("Nguyễn Văn Hùng " * 700)[:10_000]])
_VALUES = {
    "str": _TEXT,
    "int": st.integers(-10, 10**9),
    "float": st.floats(-1e7, 1e7, allow_nan=False),
    "date": st.dates(dt.date(1990, 1, 1), dt.date(2035, 12, 31)),
    "datetime": st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2035, 12, 31)),
    "bool": st.booleans(),
    "code": _CODES,
    "long": _LONG,
    # GeoJSON keeps the JSON types (arrays and objects too); other formats the text.
    "mixed": st.one_of(st.integers(-5, 10**6), st.floats(-1e6, 1e6, allow_nan=False),
                       _TEXT, st.booleans(), _CODES, st.lists(st.integers(0, 99), max_size=3),
                       st.dictionaries(st.sampled_from("ab"), st.integers(0, 9), max_size=2)),
}


@dataclass(frozen=True)
class Column:
    name: str
    vtype: str
    values: tuple  # None: missing


@dataclass(frozen=True)
class Layer:
    columns: tuple[Column, ...]
    geoms: tuple[str, ...]
    declared: str | None
    coords: int
    fmt: str
    kind: str

    def __repr__(self) -> str:  # hypothesis prints it on failure: keep it readable
        cols = ", ".join(f"{c.name}:{c.vtype}:{sum(v is None for v in c.values)}null"
                         for c in self.columns)
        return (f"Layer({self.fmt}, {self.kind}, declared={self.declared}, "
                f"coords={self.coords}, geoms={list(self.geoms)}, [{cols}])")


@st.composite
def columns(draw, n: int) -> Column:
    vtype = draw(st.sampled_from(VALUE_TYPES))
    nulls = draw(st.sampled_from(("none", "all", "some")))
    if nulls == "all":
        values = (None,) * n
    else:
        values = tuple(draw(st.lists(_VALUES[vtype], min_size=n, max_size=n)))
        if nulls == "some":
            gaps = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            values = tuple(None if g else v for v, g in zip(values, gaps, strict=True))
    return Column(draw(st.sampled_from(NAMES)), vtype, values)


def _key_columns(kind: str, n: int) -> list[Column]:
    """Well-formed key and land-use columns, so that some layers are clean (exit 0)."""
    if kind == "parcels":
        return [Column("SoTo", "int", (12,) * n), Column("SoThua", "int", tuple(range(1, n + 1))),
                Column("LoaiDat", "code", ("ONT",) * n)]
    if kind == "plan":
        return [Column("MDSD", "code", ("CLN",) * n)]
    return [Column("MaXa", "code", ("24778",) * n), Column("Cap", "str", ("commune",) * n)]


@st.composite
def layers(draw, formats=FORMATS, max_features: int = 6) -> Layer:
    n = draw(st.integers(0, max_features))
    kind = draw(st.sampled_from(KINDS))
    cols = _key_columns(kind, n) if draw(st.booleans()) else []
    taken = {c.name.casefold() for c in cols}
    cols += [c for c in draw(st.lists(columns(n), max_size=5, unique_by=lambda c: c.name))
             if c.name.casefold() not in taken]
    geoms = tuple(draw(st.lists(st.sampled_from(GEOMETRIES), min_size=n, max_size=n)))
    declared, coords = draw(st.sampled_from(CRSES))
    return Layer(tuple(cols), geoms, declared, coords, draw(st.sampled_from(formats)), kind)


# --------------------------------------------------------------------------- geometry


def _geometry(kind: str, i: int) -> shapely.Geometry | None:
    """Feature ``i``'s geometry, 30 m apart so neighbours do not overlap."""
    x, y = X0 + 30.0 * i, Y0
    if kind == "box":
        return shapely.box(x, y, x + 20, y + 20)
    if kind == "hole":
        return shapely.Polygon([(x, y), (x + 20, y), (x + 20, y + 20), (x, y + 20)],
                               [[(x + 5, y + 5), (x + 15, y + 5), (x + 15, y + 15),
                                 (x + 5, y + 15)]])
    if kind == "multi":
        return shapely.MultiPolygon([shapely.box(x, y, x + 8, y + 20),
                                     shapely.box(x + 12, y, x + 20, y + 20)])
    if kind == "repeated":
        return shapely.Polygon([(x, y), (x + 20, y), (x + 20, y), (x + 20, y + 20),
                                (x, y + 20)])
    if kind == "bowtie":
        return shapely.Polygon([(x, y), (x + 20, y + 20), (x + 20, y), (x, y + 20)])
    if kind == "point":
        return shapely.Point(x + 10, y + 10)
    if kind == "line":
        return shapely.LineString([(x, y), (x + 20, y + 20)])
    if kind == "empty":
        return shapely.Polygon()
    return None


def _project(geoms: list, coords: int) -> list:
    if coords == 5899:
        return geoms
    return [g if g is None or g.is_empty else
            shapely.transform(g, lambda xy: np.column_stack(TO_LONLAT.transform(
                xy[:, 0], xy[:, 1]))) for g in geoms]


# --------------------------------------------------------------------------- writers


def _frame(layer: Layer, geoms: list, *, text_only: bool = False) -> gpd.GeoDataFrame:
    """The layer as a frame for pyogrio, each column in the dtype its type writes as."""
    data: dict[str, pd.Series] = {}
    for c in layer.columns:
        vals = list(c.values)
        if c.vtype == "int" and not text_only:
            data[c.name] = pd.Series(vals, dtype="Int64")
        elif c.vtype == "float" and not text_only:
            data[c.name] = pd.Series([np.nan if v is None else v for v in vals],
                                     dtype="float64")
        elif c.vtype == "bool" and not text_only:
            data[c.name] = pd.Series(vals, dtype="boolean")
        elif c.vtype == "datetime" and not text_only:
            data[c.name] = pd.Series(pd.to_datetime(vals), dtype="datetime64[ms]")
        elif c.vtype == "date" and not text_only:
            data[c.name] = pd.Series(vals, dtype=object)  # datetime.date: a Date field
        else:  # text, codes, long notes; mixed values as the text a GIS would keep
            data[c.name] = pd.Series([None if v is None else str(v) for v in vals],
                                     dtype=object)
    crs = f"EPSG:{layer.coords}" if layer.declared else None
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=crs),
                            index=pd.RangeIndex(len(geoms)))


def _json_value(v):
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return v


def _write_geojson(layer: Layer, geoms: list, path: Path) -> None:
    """GeoJSON as text, so a column can really mix numbers, text and booleans."""
    feats = []
    for i, g in enumerate(geoms):
        props = {c.name: _json_value(c.values[i]) for c in layer.columns}
        geom = None if g is None else shapely.geometry.mapping(g)
        feats.append({"type": "Feature", "properties": props, "geometry": geom})
    doc: dict = {"type": "FeatureCollection", "features": feats}
    if layer.declared == "EPSG:5899":  # the pre-RFC 7946 crs member GDAL still writes
        doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::5899"}}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def write_layer(layer: Layer, folder: Path) -> Path:
    """Write ``layer`` in its format under ``folder``; return what a planner uploads."""
    folder.mkdir(parents=True, exist_ok=True)
    geoms = _project([_geometry(k, i) for i, k in enumerate(layer.geoms)], layer.coords)
    if layer.fmt == "geojson":
        path = folder / "lop.geojson"
        _write_geojson(layer, geoms, path)
        return path
    if layer.fmt in ("shp", "shp-zip"):
        # A shapefile holds one geometry type: CAD points and lines do not go in a
        # polygon shapefile, they are left without geometry.
        geoms = [g if g is None or g.geom_type in ("Polygon", "MultiPolygon") else None
                 for g in geoms]
        frame = _frame(layer, geoms)
        shp = folder / "thua.shp"
        pyogrio.write_dataframe(frame, shp, driver="ESRI Shapefile", geometry_type="Polygon",
                                encoding="UTF-8")
        if layer.fmt == "shp":
            return shp
        zpath = folder / "thua.zip"
        with zipfile.ZipFile(zpath, "w") as zf:
            for part in sorted(folder.glob("thua.*")):
                if part.suffix != ".zip":
                    zf.write(part, f"Data/{part.name}")
        return zpath
    frame = _frame(layer, geoms)
    if layer.fmt == "gpkg":
        # SQLite column names are case-insensitive: a GeoPackage cannot hold SoTo and
        # SOTO, so its exporter keeps the first.
        seen: set[str] = set()
        keep = [c for c in frame.columns if c == "geometry" or
                (c.casefold() not in seen and not seen.add(c.casefold()))]
        path = folder / "lop.gpkg"
        pyogrio.write_dataframe(frame[keep], path, driver="GPKG", geometry_type="Unknown")
        return path
    path = folder / "lop.fgb"
    # GDAL writes null (and empty) geometries to FlatGeobuf only without a spatial index.
    index = "NO" if any(g is None or g.is_empty for g in geoms) else "YES"
    pyogrio.write_dataframe(frame, path, driver="FlatGeobuf", geometry_type="Unknown",
                            layer_options={"SPATIAL_INDEX": index})
    return path


# --------------------------------------------------------------------------- the contract


def assert_cli_contract(code: int, stdout: str, stderr: str, what: object) -> dict | None:
    """Exit 0/1 with a JSON report whose error count agrees, or 2 with one line."""
    assert "Traceback" not in stdout + stderr, (what, stderr[-3000:])
    assert code in (0, 1, 2), (what, code, stderr[-3000:])
    if code == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (what, stderr)
        assert lines[0].startswith("gisportal: error: "), (what, stderr)
        return None
    report = json.loads(stdout)
    assert {"summary", "findings"} <= set(report), what
    assert (report["summary"]["errors"] > 0) == (code == 1), (what, report["summary"])
    for f in report["findings"]:
        assert f["message"] and f["message_en"] and f["severity"] in ("error", "warning",
                                                                      "info"), f
    return report


_RUNNER = CliRunner()


def run_validate(path: Path, layer: Layer, home: Path, extra: list[str]) -> dict | None:
    args = ["--home", str(home), "validate", str(path), "--kind", layer.kind, *extra]
    result = _RUNNER.invoke(cli, args, prog_name="gisportal")
    # Anything but SystemExit escaping the command is a crash: CliRunner caught it.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"{layer!r} {extra}: {type(result.exception).__name__}\n{tb}")
    return assert_cli_contract(result.exit_code, result.stdout, result.stderr, (layer, extra))


def _validate_generated(layer: Layer, home: Path, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="robust-") as tmp:
        report = run_validate(write_layer(layer, Path(tmp)), layer, home, extra)
    # --hypothesis-show-statistics shows how the generated layers ended, so a generator
    # that only produces refusals would be noticed.
    event("unreadable (exit 2)" if report is None else
          f"report, exit {int(report['summary']['errors'] > 0)}")


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large],
                 database=None)
_OPTIONS = st.sampled_from([[], ["--district", "678"], ["--repair"],
                            ["--district", "678", "--repair"]])


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@settings(max_examples=80, **_SETTINGS)
@given(layer=layers(), extra=_OPTIONS)
def test_validate_never_crashes_on_generated_layers(cli_home, layer, extra):
    _validate_generated(layer, cli_home, extra)


@pytest.mark.slow
@settings(max_examples=200, **_SETTINGS)
@given(layer=layers(max_features=12), extra=_OPTIONS)
def test_validate_never_crashes_on_many_generated_layers(cli_home, layer, extra):
    _validate_generated(layer, cli_home, extra)


# --------------------------------------------------------------------------- fixed shapes


def _empty_name_plan() -> Layer:
    """The portal's own plan export: ``name`` empty in every row."""
    return Layer((Column("MaVung", "str", ("V1", "V2", "V3")),
                  Column("MDSD", "code", ("ONT", "CLN", "LUC")),
                  Column("name", "str", (None, None, None))),
                 ("box", "box", "box"), "EPSG:5899", 5899, "gpkg", "plan")


def _all_empty_parcels(fmt: str) -> Layer:
    """Every type of column empty in every row, mapped to canonical fields or not."""
    n = 3
    return Layer((Column("SoTo", "int", (1, 1, 1)), Column("SoThua", "int", (1, 2, 3)),
                  Column("LoaiDat", "code", (None,) * n),
                  Column("DienTich", "float", (None,) * n),
                  Column("TenChu", "str", (None,) * n), Column("MaXa", "int", (None,) * n),
                  Column("Ngày lập", "date", (None,) * n),
                  Column("GhiChu", "bool", (None,) * n)),
                 ("box", "none", "box"), "EPSG:5899", 5899, fmt, "parcels")


@pytest.mark.parametrize("fmt", FORMATS)
def test_all_empty_columns_validate_with_a_report(tmp_path, cli_home, fmt):
    layer = _all_empty_parcels(fmt)
    report = run_validate(write_layer(layer, tmp_path), layer, cli_home, [])
    assert report is not None
    rules = [(f["rule"], f["feature"]["row"]) for f in report["findings"]]
    # The empty land-use column is a null per row (required), the null geometry an error.
    assert ("ATTR-NULL", 0) in rules and ("ATTR-NULL", 2) in rules
    assert ("GEOM-EMPTY", 1) in rules
    assert not any(r == "ATTR-TYPE" for r, _ in rules)


def test_the_portals_own_plan_export_validates(tmp_path, cli_home):
    layer = _empty_name_plan()
    report = run_validate(write_layer(layer, tmp_path), layer, cli_home, [])
    assert report is not None and report["summary"]["features"] == 3
    assert report["read"]["fields"]["mapped"]["name"] == "name"


def test_wrong_types_under_canonical_names(tmp_path, cli_home):
    """A ``sheet`` of dates, a ``parcel`` of text, a ``land_use`` of floats, codes that
    look like numbers: each bad value is an ATTR-TYPE finding, the file a report."""
    layer = Layer((Column("sheet", "date", (dt.date(2020, 1, 1), None, dt.date(2021, 5, 3))),
                   Column("parcel", "str", ("12", "abc", "1e3")),
                   Column("land_use", "float", (1.0, 2.5, None)),
                   Column("MaXa", "code", ("0012", "1.0", "1e3"))),
                  ("box", "box", "box"), "EPSG:5899", 5899, "gpkg", "parcels")
    report = run_validate(write_layer(layer, tmp_path), layer, cli_home, [])
    assert report is not None
    bad = sorted((f["detail"]["field"], f["feature"]["row"]) for f in report["findings"]
                 if f["rule"] == "ATTR-TYPE")
    assert bad == [("parcel", 1), ("sheet", 0), ("sheet", 2)]
    # Codes are text: "0012" keeps its zeros; a float land use becomes a code "1".
    unknown = {f["detail"]["code"] for f in report["findings"] if f["rule"] == "CODE-UNKNOWN"}
    assert unknown == {"1", "2.5"}


def test_case_twins_and_long_text_in_a_shapefile(tmp_path, cli_home):
    """``SoTo`` and ``SOTO`` in one DBF (GDAL reads the second as ``SOTO_1``) and a note
    at the DBF's 254-byte limit after a 10 000-character value."""
    layer = Layer((Column("SoTo", "int", (1, 2)), Column("SOTO", "str", ("x", None)),
                   Column("shthua", "int", (5, 6)), Column("mdsd", "code", ("ONT", "CLN")),
                   Column("GhiChu", "long", ("Đ" * 10_000, None))),
                  ("box", "box"), "EPSG:5899", 5899, "shp-zip", "parcels")
    report = run_validate(write_layer(layer, tmp_path), layer, cli_home, [])
    assert report is not None and report["summary"]["errors"] == 0
    assert report["read"]["fields"]["mapped"]["sheet"] == "SoTo"


@pytest.mark.parametrize("geoms, code", [((), 2), (("box",), 0), (("none", "none"), 2),
                                         (("point",), 2)])
def test_zero_one_or_no_geometry(tmp_path, cli_home, geoms, code):
    n = len(geoms)
    layer = Layer((Column("SoTo", "int", (1,) * n), Column("SoThua", "int", tuple(range(n))),
                   Column("LoaiDat", "code", ("ONT",) * n)),
                  geoms, "EPSG:5899", 5899, "gpkg", "parcels")
    args = ["--home", str(cli_home), "validate", str(write_layer(layer, tmp_path)), "--kind",
            "parcels"]
    result = _RUNNER.invoke(cli, args, prog_name="gisportal")
    assert result.exit_code == code, result.output
    assert_cli_contract(result.exit_code, result.stdout, result.stderr, layer)


def test_real_processes_keep_the_contract(tmp_path):
    """The installed command, run for real, on three of the shapes above."""
    cases = [_empty_name_plan(), _all_empty_parcels("shp-zip"),
             Layer((Column("SoTo", "mixed", (1, "a", True)),
                    Column("SoThua", "int", (1, 2, 3))),
                   ("bowtie", "none", "point"), None, 4326, "geojson", "parcels")]
    env = {**os.environ, "GISPORTAL_HOME": str(tmp_path / "home")}
    for i, layer in enumerate(cases):
        path = write_layer(layer, tmp_path / str(i))
        proc = subprocess.run([sys.executable, "-m", "gisportal", "validate", str(path),
                               "--kind", layer.kind], capture_output=True, text=True, env=env,
                              timeout=120)
        report = assert_cli_contract(proc.returncode, proc.stdout, proc.stderr, layer)
        assert report is not None, proc.stderr


# --------------------------------------------------------------------------- upload jobs


def _assert_job_contract(home: Path, job, layer: Layer) -> None:
    from gisportal import jobs

    assert job.state in ("done", "failed"), (layer, job.to_dict())
    if job.state == "failed":
        err = job.error
        # JOB-BUG: an exception nobody expected; JOB-INTERRUPTED: the worker died.
        assert err["code"] not in ("JOB-BUG", "JOB-INTERRUPTED"), (layer, err)
        assert all(err.get(k) for k in ("what", "where", "fix")), (layer, err)
        assert not any("Traceback" in str(v) for v in err.values()), (layer, err)
    else:
        report = json.loads(jobs.report_file(home, job, "json").read_text("utf-8"))
        assert report["summary"] == job.result["summary"], layer


def _run_jobs(home: Path, generated: list[Layer], workdir: Path) -> None:
    """Submit every layer as an upload, then wait for all: workers run side by side."""
    from gisportal import jobs

    submitted = []
    for i, layer in enumerate(generated):
        path = write_layer(layer, workdir / str(i))
        with open(path, "rb") as fh:
            job = jobs.submit_upload(home, fh, path.name, district="678", layer=layer.kind,
                                     actor="planner1", settings={"job_workers": 4})
        submitted.append((job.id, layer))
    for job_id, layer in submitted:
        job = jobs.wait(home, job_id, timeout=180, poll=0.05)
        _assert_job_contract(home, job, layer)


_JOB_FORMATS = ("gpkg", "shp-zip", "geojson", "fgb")


@settings(max_examples=1, **_SETTINGS)
@given(batch=st.lists(layers(formats=_JOB_FORMATS), min_size=6, max_size=6))
def test_upload_jobs_end_done_or_failed_with_a_reason(tmp_path_factory, batch):
    home = tmp_path_factory.mktemp("jobs")
    _run_jobs(home, batch + [_empty_name_plan(), _all_empty_parcels("gpkg")],
              tmp_path_factory.mktemp("uploads"))


@pytest.mark.slow
@settings(max_examples=2, **_SETTINGS)
@given(batch=st.lists(layers(formats=_JOB_FORMATS, max_features=10), min_size=8,
                      max_size=8))
def test_many_upload_jobs_end_done_or_failed_with_a_reason(tmp_path_factory, batch):
    _run_jobs(tmp_path_factory.mktemp("jobs"), batch, tmp_path_factory.mktemp("uploads"))
