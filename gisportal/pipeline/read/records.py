"""Reading the records of the chosen layer: pyogrio in bulk, fiona record by record.

Bulk reading with pyogrio (one C loop per layer) is the normal path. When pyogrio gives
up on a damaged file, fiona reads one record at a time while GDAL's per-record errors are
collected, so a bad record costs that record (an ``error`` note with its row), not the
whole file. Shapefile and DXF text is opened as latin-1, so that every character is one
raw byte, and left for :mod:`gisportal.pipeline.read.text` to decode.
"""

from __future__ import annotations

import logging
import threading
import warnings

import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from geopandas import GeoDataFrame

from gisportal.pipeline.memory import give_back
from gisportal.pipeline.read.formats import unreadable_error
from gisportal.pipeline.read.geometries import unreadable_geometry_note
from gisportal.pipeline.read.layers import Candidate
from gisportal.pipeline.read.notes import Note, unreadable_note

_FIONA_LOG_LOCK = threading.Lock()

# pyogrio parses GDAL's JSON-typed fields (GeoJSON arrays and objects) and warns on
# stderr when a value of such a column is not JSON; the value is kept as text, which
# is all gisportal wants (tidy.flatten_nested), so the warning is only noise in the
# command line's one-line error contract.
warnings.filterwarnings("ignore", message=r"Could not parse column .* as JSON",
                        category=UserWarning)


class _ErrorCollector(logging.Handler):
    """Collects GDAL errors fiona logs while one record is read."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


#: Formats whose header holds the feature count (cheap to check after an Arrow read).
_COUNTED = frozenset({"shapefile", "gpkg", "fgb"})
#: Formats read row-wise, never through Arrow. GDAL's Arrow stream of a FlatGeobuf file
#: with a null geometry (written without spatial index, as GDAL must) holds corrupt
#: offsets: reading it aborts the whole process (std::length_error, GDAL 3.12), which no
#: ``except`` can catch. FlatGeobuf uploads are rare and small next to shapefiles, so
#: the slower row-wise reader costs little.
_NO_ARROW = frozenset({"fgb"})


def open_options(c: Candidate) -> dict[str, str]:
    """GDAL open options for the layer, the same for reading it and asking about it."""
    kind = c.dataset.kind
    if kind == "shapefile":
        return {"encoding": "latin1"}
    if kind == "dxf":
        # Open options, not global config: thread-safe. ISO-8859-1 hands us raw bytes:
        # GDAL's own code-page decoding drops the last character of every string.
        return {"CLOSED_LINE_AS_POLYGON": "TRUE", "ENCODING": "ISO-8859-1"}
    return {}


#: Formats read in slices of SLICE_FEATURES features: a shapefile seeks to a record in
#: constant time, and its DBF fixes every column's type, so the slices put together are
#: the layer read at once.
_SLICED = frozenset({"shapefile"})
#: Features read at once from a big shapefile. The whole layer read at once holds GDAL's
#: Arrow buffers, the WKB objects and the geometries made from them side by side (about
#: 1 GB for a million parcels); a slice at a time holds only the slice's buffers.
SLICE_FEATURES = 100_000


def _owned_text(frame: GeoDataFrame) -> GeoDataFrame:
    """``frame`` with its Arrow-backed text columns copied into buffers of their own.

    pandas keeps text read through Arrow in GDAL's record batches, zero-copy: one text
    column kept alive holds every batch, WKB of the geometries included (about 200 MB
    for a million parcels). A copy of the text alone lets the batches go.
    """
    for pos, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
            values = frame.iloc[:, pos].array
            frame.isetitem(pos, values.take(np.arange(len(values))))
    return frame


def _read_slices(c: Candidate, expected: int, kwargs: dict) -> GeoDataFrame | None:
    """The layer read SLICE_FEATURES features at a time; None when the slices do not add
    up to the layer (a deleted or damaged record), which is then read as a whole.

    Each slice's feature ids must be exactly the record numbers it asked for: a shapefile
    skips its deleted records when it reads on, so a slice that met one would overlap
    the next one.
    """
    parts = []
    for start in range(0, expected, SLICE_FEATURES):
        want = min(SLICE_FEATURES, expected - start)
        part = pyogrio.read_dataframe(c.dataset.path, use_arrow=True, fid_as_index=True,
                                      skip_features=start, max_features=want, **kwargs)
        if not np.array_equal(part.index.to_numpy(), np.arange(start, start + want)):
            return None
        parts.append(_owned_text(part))
        del part
        # The slice's record batches and WKB are freed now; Arrow's pool would keep
        # their pages for the next slice's, next to the geometries made from them.
        give_back()
    frame = pd.concat(parts, ignore_index=True)
    del parts
    give_back()
    return frame


def read_bulk(c: Candidate, notes: list[Note], info: dict | None = None) -> GeoDataFrame:
    """Read the whole layer with pyogrio.

    A geometry GEOS cannot even build (a ring that is not closed, a ring of two
    points) makes pyogrio's conversion fail for the whole layer; then the geometries
    are rebuilt from their WKB one by one: broken ones are fixed where GEOS can
    (closing the ring) with a warning note naming the row, or noted GEOM-UNREADABLE
    when nothing can be made of them. ``info`` is the layer's ``pyogrio.read_info``
    when the caller has it already. Coordinates that are not numbers are converted
    without numpy's warnings: :mod:`gisportal.pipeline.read.geometries` reports them.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        return _read_bulk(c, notes, info)


def _read_bulk(c: Candidate, notes: list[Note], info: dict | None) -> GeoDataFrame:
    kwargs = open_options(c)
    if c.inner is not None:
        kwargs["layer"] = c.inner
    try:
        # Arrow hands columns over in bulk: about twice as fast as row-wise conversion.
        # But an Arrow stream ends quietly at a record GDAL cannot read (a truncated
        # DBF), where the row-wise reader raises: when rows are missing against the
        # layer's own count, read again row-wise so the damage is reported, not lost.
        # Only formats that store their count are checked: counting a GeoJSON or KML
        # file would parse it a second time, and those fail at open, not mid-stream.
        if c.dataset.kind in _NO_ARROW:
            return pyogrio.read_dataframe(c.dataset.path, **kwargs)
        expected = -1
        if c.dataset.kind in _COUNTED:
            expected = (info or pyogrio.read_info(c.dataset.path, **kwargs))["features"]
        if c.dataset.kind in _SLICED and expected > SLICE_FEATURES:
            frame = _read_slices(c, expected, kwargs)
            if frame is not None:
                return frame
        frame = _owned_text(pyogrio.read_dataframe(c.dataset.path, use_arrow=True, **kwargs))
        if expected < 0 or len(frame) == expected:
            return frame
        del frame
        return pyogrio.read_dataframe(c.dataset.path, **kwargs)
    except shapely.errors.GEOSException:
        pass
    frame = pyogrio.read_dataframe(c.dataset.path, read_geometry=False, **kwargs)
    meta, _, wkb, _ = pyogrio.raw.read(c.dataset.path, columns=[], **kwargs)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    broken = np.flatnonzero(np.not_equal(wkb, None) & shapely.is_missing(geoms))
    if len(broken):
        fixed = shapely.from_wkb(wkb[broken], on_invalid="fix")
        for row, geom in zip(broken, fixed, strict=True):
            if geom is None or shapely.is_empty(geom):
                notes.append(unreadable_geometry_note(
                    int(row), "không dựng được hình học (vòng biên hoặc số điểm không hợp lệ)",
                    "the geometry cannot be built (its rings or point counts are "
                    "impossible)"))
                continue
            geoms[row] = geom
            notes.append(Note("READ-GEOMETRY-FIXED", "warning",
                              "Hình học không dựng được (vòng biên không khép kín hoặc quá ít "
                              "điểm); đã tự khép vòng — kiểm tra lại đối tượng.",
                              "The geometry could not be built (ring not closed or too few "
                              "points); its ring was closed automatically — check the feature.",
                              row=int(row)))
    crs = pyproj.CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
    return GeoDataFrame(frame, geometry=geoms, crs=crs)


def _text_or_none(value: object) -> str | None:
    """A text field's value as fiona gives it: text, or None when missing (None or NaN)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:
        return None
    return str(value)


def read_by_record(c: Candidate, first_error: BaseException,
                   notes: list[Note]) -> GeoDataFrame:
    """Read what can be read, one record at a time, after pyogrio gave up.

    fiona reads a record at a time and logs GDAL's per-record errors, so a truncated
    DBF or a damaged FlatGeobuf feature costs that record only. Each unreadable record
    becomes an ``error`` note with its row; the frame's index keeps source row numbers.
    """
    import fiona
    from shapely.geometry import shape

    ds = c.dataset
    env = {}
    open_kw: dict[str, str] = {}
    if ds.kind == "shapefile":
        open_kw["encoding"] = "latin1"
    if ds.kind == "dxf":
        env = {"DXF_CLOSED_LINE_AS_POLYGON": "TRUE", "DXF_ENCODING": "ISO-8859-1"}
    logger = logging.getLogger("fiona._env")
    collector = _ErrorCollector()
    rows: list[int] = []
    props: list[dict] = []
    geoms: list[object] = []
    with _FIONA_LOG_LOCK:
        logger.addHandler(collector)
        try:
            with fiona.Env(**env), fiona.open(ds.path, layer=c.inner, **open_kw) as src:
                schema = dict(src.schema["properties"])
                crs_wkt = src.crs_wkt or None
                n = len(src)
                try:
                    fids = list(src.keys())
                except Exception:  # noqa: BLE001 - fall back to positional ids below
                    fids = []
                if len(fids) < n:
                    fids = list(range(n))
                for row, fid in enumerate(fids):
                    collector.messages.clear()
                    why = None
                    try:
                        rec = src[fid]
                    except Exception as exc:  # noqa: BLE001 - one bad record, not the file
                        rec, why = None, str(exc) or type(exc).__name__
                    if rec is None and why is None:
                        why = "the record cannot be read"
                    if collector.messages and why is None:
                        why = collector.messages[0]
                    if why is not None:
                        notes.append(unreadable_note(row, why))
                        continue
                    rows.append(row)
                    props.append(dict(rec.properties))
                    geoms.append(shape(rec.geometry) if rec.geometry is not None else None)
        except (fiona.errors.FionaError, OSError, ValueError) as exc:
            raise unreadable_error(ds, first_error) from exc
        finally:
            logger.removeHandler(collector)
    frame = pd.DataFrame(props, columns=list(schema), index=pd.Index(rows, dtype="int64"))
    for name, ftype in schema.items():
        base = str(ftype).split(":")[0]
        if base in ("date", "datetime"):
            frame[name] = pd.to_datetime(frame[name], errors="coerce")
        elif base == "str":
            # Text stays text and a missing value stays missing (astype("str") would
            # turn None into the text "None").
            frame[name] = frame[name].map(_text_or_none).astype(object)
    crs = pyproj.CRS.from_wkt(crs_wkt) if crs_wkt else None
    geometry = np.empty(len(geoms), dtype=object)
    geometry[:] = geoms
    return GeoDataFrame(frame, geometry=geometry, crs=crs)
