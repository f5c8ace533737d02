"""Step one of the data flow: any planner file → one GeoDataFrame as the file has it.

Planners send zipped shapefiles, GeoPackages, GeoJSON, KML/KMZ, FlatGeobuf and DXF
drawings, often with Vietnamese text in a legacy encoding, sometimes with a wrong
extension, a missing part or a damaged record. :func:`read_source` turns any of them
into a :class:`SourceLayer`: the attribute columns exactly as the source names them,
text decoded to NFC, geometry as read (2D), the CRS the file *declares* (inference is
the normaliser's job), and :class:`Note` s about everything it did or noticed. A file
that cannot be used at all raises an :class:`~gisportal.errors.InputError` that says
what is wrong, where, and how to fix it; a file that is only partly damaged is read
as far as it goes, with one ``error`` note per record that could not be read.

Bulk reading uses pyogrio (one C loop per layer); Python only loops over *distinct*
text values, and over records one by one only when pyogrio gives up on a damaged file
(then fiona reads record by record so one bad record costs one record, not the file).

Shapefile DBF text is read as latin-1, so every character is one raw byte and GDAL
never decodes anything: its Windows-1258 decoder drops the last character of every
string (DESIGN.md §5), and its DBF language-driver byte (LDID) and ``.cpg`` handling
would otherwise decode behind our back. The bytes are then decoded by
:mod:`gisportal.read.encodings` with the encoding given, named by the ``.cpg`` or
detected. DXF text goes the same way (its ``$DWGCODEPAGE`` is often wrong: Vietnamese
drawings use TCVN3 fonts under an ANSI_1252 code page).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import sqlite3
import struct
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, zip_longest
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import pyproj
import shapely
from geopandas import GeoDataFrame

from gisportal.errors import EncodingError, InputError
from gisportal.read import encodings
from gisportal.read.archive import safe_extract
from gisportal.read.encodings import Detection

__all__ = ["MAX_UPLOAD_BYTES_DEFAULT", "ACCEPTED_FORMATS", "Note", "SourceLayer",
           "list_layers", "read_source"]

MAX_UPLOAD_BYTES_DEFAULT = 1024**3

#: What users are told we accept, in every "cannot read this" message.
ACCEPTED_FORMATS = (
    "zipped Shapefile (.zip with .shp, .shx, .dbf, .prj)",
    "GeoPackage (.gpkg)",
    "GeoJSON (.geojson, .json)",
    "KML/KMZ (.kml, .kmz)",
    "FlatGeobuf (.fgb)",
    "DXF (.dxf)",
)
_ACCEPTED_TEXT = "; ".join(ACCEPTED_FORMATS)

#: Forced encoding refused when it scores below this share of Vietnamese syllables...
FORCED_ENCODING_REFUSE_BELOW = 0.5
#: ...while another supported encoding scores above this.
FORCED_ENCODING_OTHER_ABOVE = 0.9
#: A forced encoding this far behind the best candidate gets a warning note.
FORCED_ENCODING_WARN_GAP = 0.25

_EXT_KIND = {".shp": "shapefile", ".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson",
             ".kml": "kml", ".kmz": "kmz", ".fgb": "fgb", ".dxf": "dxf", ".zip": "zip"}
_KIND_NAME = {"shapefile": "Shapefile", "gpkg": "GeoPackage", "geojson": "GeoJSON",
              "kml": "KML", "fgb": "FlatGeobuf", "dxf": "DXF"}
_SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".shp.xml")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_SHP_MAGIC = b"\x00\x00\x27\x0a"
_FGB_MAGIC = b"fgb\x03"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_DXF_TEXT = re.compile(rb"^\s*(?:999[ \t]*\r?\n[^\n]*\n\s*)?0[ \t]*\r?\n\s*SECTION\b")
_LOOKS_LIKE = (
    (b"%PDF", "a PDF document"), (b"MZ", "a Windows program"), (b"\x7fELF", "a Linux program"),
    (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip file"), (b"\xd0\xcf\x11\xe0", "a Microsoft Office document"),
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
    (b"AC10", "an AutoCAD DWG drawing"), (b"{\\rtf", "an RTF document"),
    (_SQLITE_MAGIC, "an SQLite database that is not a GeoPackage"),
)
#: Columns the DXF driver adds to every entity; only Layer and Text carry user content.
_DXF_DRIVER_COLUMNS = ("PaperSpace", "SubClasses", "Linetype", "EntityHandle", "ExtendedEntity",
                       "RawCodeValues", "LineType")
#: Columns LIBKML adds to every placemark; dropped when they only hold driver defaults.
_KML_DRIVER_COLUMNS = ("id", "timestamp", "begin", "end", "altitudeMode", "tessellate",
                       "extrude", "visibility", "drawOrder", "icon", "snippet")
_VALID_SHAPE_TYPES = {0, 1, 3, 5, 8, 11, 13, 15, 18, 21, 23, 25, 28, 31}
_CHUNK = 1024**2


@dataclass
class Note:
    """Something the reader did or inferred, for the validation report.

    Attributes
    ----------
    code
        Stable code, e.g. ``READ-DXF-CLOSED-AS-POLYGON``, ``READ-Z-DROPPED``,
        ``READ-LAYER-CHOSEN``, ``READ-RECORD-UNREADABLE``.
    severity
        ``"info"``, ``"warning"`` or ``"error"`` (an error blocks publishing).
    message_vi, message_en
        One sentence each, for the planner.
    row
        0-based row in the source when the note is about one record.
    """

    code: str
    severity: str
    message_vi: str
    message_en: str
    row: int | None = None


@dataclass
class SourceLayer:
    """One layer as the file has it, plus how it was read.

    Attributes
    ----------
    frame
        Attribute columns named as in the source (legacy-encoded DBF names decoded),
        text as NFC ``str``, geometry as read but 2D, ``crs`` set only when the file
        declares one. The index is the 0-based row number in the source: it has gaps
        where records could not be read (each has a ``READ-RECORD-UNREADABLE`` note).
    declared_crs
        The CRS the file declares, or None.
    crs_origin
        ``"prj"`` (a shapefile's .prj), ``"embedded"`` (stored in the file or fixed by
        the format's specification) or ``"none"``.
    source_name
        The uploaded file's name, with ``!member`` for a file inside a zip
        (``"lamha.zip!Data/thua.shp"``).
    sha256
        Hex SHA-256 of what was uploaded: the file itself (the zip for zips); for a
        loose shapefile, of its .shp, .dbf, .shx, .prj and .cpg concatenated in that
        order (missing optional parts skipped).
    driver
        GDAL driver name.
    layer
        The layer read (its name as the user would pass it).
    layers_available
        Every layer the upload offers.
    encoding
        Canonical encoding the text was decoded with; None when there is no text field.
    encoding_detection
        The detection result when the encoding was detected (with or without a .cpg);
        None when it was given or implied by the format.
    notes
        What the reader did or noticed.
    """

    frame: GeoDataFrame
    declared_crs: pyproj.CRS | None
    crs_origin: str
    source_name: str
    sha256: str
    driver: str
    layer: str | None
    layers_available: list[str]
    encoding: str | None
    encoding_detection: Detection | None
    notes: list[Note] = field(default_factory=list)


# ----------------------------------------------------------------------------------------
# Finding the datasets in an upload
# ----------------------------------------------------------------------------------------


@dataclass
class _Dataset:
    """One readable file of the upload (after unzipping)."""

    kind: str
    path: Path  # what GDAL opens
    label: str  # "lamha.zip!Data/thua.shp" or "thua.gpkg"
    rel: str  # member path in the zip, or the file name
    parts: dict[str, Path] = field(default_factory=dict)  # shapefile: ext -> file
    missing: list[str] = field(default_factory=list)  # shapefile parts that are missing


@dataclass
class _Candidate:
    """One layer the user can choose."""

    name: str
    dataset: _Dataset
    inner: str | None  # layer name for GDAL; None for single-layer formats
    aliases: tuple[str, ...] = ()


def _head(path: Path, size: int = 8192) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _sniff(path: Path) -> str | None:
    """Tell the format from the first bytes; the extension only breaks ties.

    Returns ``zip``, ``shapefile``, ``gpkg``, ``geojson``, ``kml``, ``fgb``, ``dxf`` or
    None. A renamed PDF or program is caught here, before GDAL is asked to open it.
    """
    head = _head(path)
    ext = path.suffix.lower()
    if head[:4] in _ZIP_MAGIC:
        return "zip"
    if head.startswith(_SHP_MAGIC):
        return "shapefile" if ext != ".shx" else None
    if head.startswith(_FGB_MAGIC):
        return "fgb"
    if head.startswith(_SQLITE_MAGIC):
        return "gpkg" if _is_geopackage(path, head) else None
    if head.startswith(b"AutoCAD Binary DXF"):
        return "dxf"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith((b"{", b"\x1e{")) and (b'"type"' in head or len(head) < 8192):
        return "geojson"
    if text.startswith(b"<") and b"<kml" in head.lower():
        return "kml"
    if _DXF_TEXT.match(head):
        return "dxf"
    return None


def _is_geopackage(path: Path, head: bytes) -> bool:
    """An SQLite file is a GeoPackage if its application id or its tables say so.

    Plain SQLite or SpatiaLite databases would open with GDAL's SQLite driver and be
    read as something we do not support and have not tested.
    """
    if head[68:72] in (b"GPKG", b"GP10", b"GP11"):
        return True
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_contents'")
            return row.fetchone() is not None
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _not_gis(path: Path, label: str) -> InputError:
    head = _head(path, 64)
    looks = next((what for magic, what in _LOOKS_LIKE if head.startswith(magic)), None)
    ext = path.suffix.lower()
    if looks == "an AutoCAD DWG drawing":
        return InputError("not a GIS file we can read: DWG drawings cannot be read directly",
                          where=label, fix="Save the drawing as DXF (AutoCAD: Save As > DXF) "
                                           "or export it to a Shapefile, and upload that",
                          code="FILE-NOT-GIS")
    if ext in _SHAPEFILE_PARTS:
        return InputError(f"a {ext} file alone is only one part of a shapefile", where=label,
                          fix=f"Zip the .shp, .shx, .dbf, .prj (and .cpg) of the layer together "
                              f"and upload the zip. We read: {_ACCEPTED_TEXT}",
                          code="SHP-PART-ALONE")
    what = "not a GIS file we can read"
    if looks:
        what += f" (it looks like {looks}"
        what += f" despite its {ext} extension)" if ext else ")"
    elif ext in _EXT_KIND:
        what += f" (its content is not {ext[1:].upper()})"
    return InputError(what, where=label, fix=f"Upload one of: {_ACCEPTED_TEXT}",
                      code="FILE-NOT-GIS")


def _shapefile_parts(shp: Path) -> tuple[dict[str, Path], list[str]]:
    """Find the .shx/.dbf/.prj/.cpg next to ``shp`` whatever the case of their names."""
    siblings = {p.name.casefold(): p for p in shp.parent.iterdir() if p.is_file()}
    parts = {".shp": shp}
    for ext in (".shx", ".dbf", ".prj", ".cpg"):
        found = siblings.get((shp.stem + ext).casefold())
        if found is not None:
            parts[ext] = found
    missing = [ext for ext in (".shx", ".dbf") if ext not in parts]
    return parts, missing


def _missing_parts_error(ds: _Dataset, zipped: bool) -> InputError:
    stem = ds.path.stem
    names = " and ".join(f"{stem}{ext}" for ext in ds.missing)
    fix = (f"A shapefile is several files: put {stem}.shp, {stem}.shx, {stem}.dbf, "
           f"{stem}.prj and {stem}.cpg together in one zip and upload it again"
           if zipped else
           f"A shapefile is several files: zip {stem}.shp, {stem}.shx, {stem}.dbf, "
           f"{stem}.prj and {stem}.cpg together and upload the zip")
    return InputError(f"the shapefile is incomplete: {names} is missing", where=ds.label,
                      fix=fix, code="SHP-PART-MISSING")


def _gdal_ready_shapefile(ds: _Dataset, scratch: Path, owned: bool) -> None:
    """Make the parts findable by GDAL, which expects ``stem.ext`` or ``stem.EXT``.

    Windows users produce ``Thua.SHP`` next to ``thua.dbf``; on Linux GDAL would then
    miss the DBF or the .prj. Files we unzipped ourselves are renamed; a user's files
    are linked from the scratch folder instead, never touched.
    """
    shp = ds.parts[".shp"]
    stem = shp.stem
    ok = all(p.name in (stem + ext, stem + ext.upper()) for ext, p in ds.parts.items()
             if ext != ".shp")
    if ok:
        return
    if owned:
        for ext, p in ds.parts.items():
            if ext != ".shp" and p.name not in (stem + ext, stem + ext.upper()):
                target = p.with_name(stem + ext)
                p.rename(target)
                ds.parts[ext] = target
        return
    folder = Path(tempfile.mkdtemp(prefix="shp-", dir=scratch))
    for ext, p in ds.parts.items():
        link = folder / (stem + ext)
        link.symlink_to(p.resolve())
        ds.parts[ext] = link
    ds.path = ds.parts[".shp"]


def _find_datasets(folder: Path, files: list[Path], zip_label: str) -> list[_Dataset]:
    """Every GIS dataset among the unzipped files (a KMZ's doc.kml included)."""
    found: list[_Dataset] = []
    stray_dbf: list[str] = []
    shp_stems = set()
    for f in files:
        rel = f.relative_to(folder).as_posix()
        ext = f.suffix.lower()
        label = f"{zip_label}!{rel}"
        if ext == ".shp":
            kind = _sniff(f)
            if kind != "shapefile":
                raise _not_gis(f, label)
            parts, missing = _shapefile_parts(f)
            shp_stems.add((f.parent, f.stem.casefold()))
            found.append(_Dataset("shapefile", f, label, rel, parts, missing))
        elif ext in (".gpkg", ".geojson", ".kml", ".fgb", ".dxf"):
            kind = _sniff(f)
            if kind is None or kind == "zip":
                raise _not_gis(f, label)
            found.append(_Dataset(kind, f, label, rel))
        elif ext == ".json" and _sniff(f) == "geojson":
            found.append(_Dataset("geojson", f, label, rel))
        elif ext == ".dbf":
            stray_dbf.append(rel)
    stray = [r for r in stray_dbf
             if ((folder / r).parent, Path(r).stem.casefold()) not in shp_stems]
    if not found:
        if stray:
            stem = Path(stray[0]).stem
            raise InputError(f"the zip holds {stray[0]} but no {stem}.shp", where=zip_label,
                             fix=f"Add {stem}.shp and {stem}.shx to the zip (a shapefile is "
                                 "several files) and upload it again", code="SHP-PART-MISSING")
        listing = ", ".join(f.relative_to(folder).as_posix() for f in files[:8])
        if len(files) > 8:
            listing += f" and {len(files) - 8} more"
        what = "the zip holds no GIS file we can read"
        if any(f.suffix.lower() in (".zip", ".kmz", ".rar", ".7z") for f in files):
            what += " (it holds another archive: unzip that one first)"
        raise InputError(what, where=f"{zip_label}: {listing or 'empty'}",
                         fix=f"Zip the layer's files themselves. We read: {_ACCEPTED_TEXT}",
                         code="ZIP-NO-GIS-FILE")
    return found


def _stat_size(path: Path) -> int:
    return path.stat().st_size


def _too_big(size: int, max_bytes: int, label: str) -> InputError:
    return InputError(
        f"the upload is {_human(size)}, over the {_human(max_bytes)} limit", where=label,
        fix="Split the data into smaller files (one district or commune each), or ask the "
            "administrator to raise max_upload_bytes (GISPORTAL_MAX_UPLOAD_BYTES)",
        code="FILE-TOO-BIG")


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} bytes"  # pragma: no cover


def _sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _resolve(path: Path, scratch: Path, max_bytes: int,
             progress: Callable[[str], None] | None) -> tuple[str, str, list[_Dataset]]:
    """Size-check, hash and (if zipped) unpack the upload; return its datasets.

    Returns
    -------
    tuple
        (uploaded name, sha256, datasets)
    """
    label = path.name
    if not path.exists():
        raise InputError("the file does not exist", where=str(path),
                         fix="Check the path and upload the file again", code="FILE-MISSING")
    if path.is_dir():
        raise InputError("a folder was given, not a file", where=str(path),
                         fix="Zip the folder's shapefile parts and give the zip",
                         code="FILE-IS-FOLDER")
    size = _stat_size(path)
    if size > max_bytes:
        raise _too_big(size, max_bytes, label)
    if size == 0:
        raise InputError("the file is empty (0 bytes)", where=label,
                         fix="Upload the file again; the upload or export was cut off",
                         code="FILE-EMPTY")
    kind = _sniff(path)
    if kind is None:
        raise _not_gis(path, label)
    if kind == "zip":
        if progress:
            progress(f"unzipping {label}")
        digest = _sha256([path])
        dest = scratch / "unzipped"
        files = safe_extract(path, dest, max_total_bytes=max(2 * 1024**3, 4 * max_bytes))
        datasets = _find_datasets(dest, files, label)
        for ds in datasets:
            if ds.kind == "shapefile" and not ds.missing:
                _gdal_ready_shapefile(ds, scratch, owned=True)
        return label, digest, datasets
    ds = _Dataset(kind, path, label, path.name)
    if kind == "shapefile":
        if path.suffix.lower() != ".shp":
            raise _not_gis(path, label)
        ds.parts, ds.missing = _shapefile_parts(path)
        if ds.missing:
            raise _missing_parts_error(ds, zipped=False)
        total = sum(_stat_size(p) for p in ds.parts.values())
        if total > max_bytes:
            raise _too_big(total, max_bytes, label)
        # .shp, .dbf, .shx, .prj, .cpg: the order the SourceLayer docstring promises
        digest = _sha256([ds.parts[e] for e in (".shp", ".dbf", ".shx", ".prj", ".cpg")
                          if e in ds.parts])
        _gdal_ready_shapefile(ds, scratch, owned=False)
        return label, digest, [ds]
    return label, _sha256([path]), [ds]


def _gdal_layers(ds: _Dataset) -> list[str]:
    """Layers with geometry in a multi-layer dataset (GeoPackage, KML)."""
    try:
        rows = pyogrio.list_layers(ds.path)
    except (pyogrio.errors.DataSourceError, RuntimeError, OSError) as exc:
        raise _unreadable(ds, exc) from exc
    names = [str(name) for name, gtype in rows if gtype is not None]
    if not names and len(rows):
        raise InputError(f"the {_KIND_NAME[ds.kind]} holds only tables without geometry",
                         where=f"{ds.label}: {', '.join(str(r[0]) for r in rows)}",
                         fix="Export the layer with its geometry", code="LAYER-NO-GEOMETRY")
    return names


def _unreadable(ds: _Dataset, exc: BaseException) -> InputError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(f"the {_KIND_NAME.get(ds.kind, ds.kind)} file cannot be read: {reason}",
                      where=ds.label,
                      fix="The file is damaged or incomplete: export it again from the GIS "
                          "software and upload the new file", code="FILE-DAMAGED")


def _candidates(datasets: list[_Dataset]) -> list[_Candidate]:
    """The layers the upload offers, named the way the user will type them."""
    single = len(datasets) == 1
    stems = [Path(ds.rel).stem for ds in datasets]
    out: list[_Candidate] = []
    for ds, stem in zip(datasets, stems, strict=True):
        base = stem if stems.count(stem) == 1 else str(Path(ds.rel).with_suffix(""))
        aliases = (ds.rel, str(Path(ds.rel).with_suffix("")), Path(ds.rel).name, stem)
        if ds.kind in ("gpkg", "kml") and not ds.missing:
            inner = _gdal_layers(ds)
            if len(inner) == 1 and not single:
                out.append(_Candidate(base, ds, inner[0], aliases + (inner[0],)))
                continue
            for name in inner:
                label = name if single else f"{base}/{name}"
                out.append(_Candidate(label, ds, name, (name,) if not single else ()))
        else:
            out.append(_Candidate(base, ds, None, aliases))
    if len(out) > 1:
        # A KMZ's doc.kml is often only a NetworkLink to layers/*.kml, and KML folders
        # without placemarks show up as layers: neither is a choice worth offering.
        kept = [c for c in out if c.dataset.kind != "kml" or _feature_count(c) != "0"]
        out = kept or out
    return out


def _feature_count(c: _Candidate) -> str:
    try:
        if c.dataset.kind == "shapefile" and ".shx" in c.dataset.parts:
            return str(max(0, (_stat_size(c.dataset.parts[".shx"]) - 100) // 8))
        info = pyogrio.read_info(c.dataset.path, layer=c.inner, force_feature_count=True)
        return str(info["features"])
    except Exception:  # noqa: BLE001 - a count is only decoration in an error message
        return "?"


def _listing(cands: list[_Candidate]) -> str:
    return ", ".join(f"{c.name} ({_feature_count(c)} features)" for c in cands)


def _choose(cands: list[_Candidate], layer: str | None, label: str) -> _Candidate:
    if not cands:
        raise InputError("the file holds no layer", where=label,
                         fix="Export the layer again with its features", code="LAYER-EMPTY")
    if layer is None:
        if len(cands) == 1:
            return cands[0]
        raise InputError(f"the file holds {len(cands)} layers and none was chosen",
                         where=f"{label}: {_listing(cands)}",
                         fix="Choose one with --layer NAME (e.g. --layer "
                             f"{cands[0].name})", code="LAYER-REQUIRED")
    for test in (lambda c: c.name == layer,
                 lambda c: c.name.casefold() == layer.casefold(),
                 lambda c: layer.casefold() in (a.casefold() for a in c.aliases)):
        hits = [c for c in cands if test(c)]
        if len(hits) == 1:
            return hits[0]
    raise InputError(f"there is no layer named {layer!r}",
                     where=f"{label}: {_listing(cands)}",
                     fix="Choose one of the layers listed with --layer", code="LAYER-UNKNOWN")


@contextmanager
def _scratch(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="gisportal-read-",
                                   dir=None if workdir is None else Path(workdir)))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def list_layers(path: Path) -> list[str]:
    """Names of the layers an upload offers, as :func:`read_source` accepts them.

    A shapefile (loose or zipped alone), GeoJSON, FlatGeobuf or DXF offers one layer
    named after the file; a GeoPackage or KML offers its layers with geometry; a zip
    with several datasets offers each (``"thua"``, or ``"plan/zones"`` for a layer of
    a GeoPackage in a zip that holds other files too).

    Raises
    ------
    InputError
        The same refusals as :func:`read_source` (not a GIS file, unsafe zip...).
    """
    with _scratch(None) as scratch:
        _, _, datasets = _resolve(Path(path), scratch, MAX_UPLOAD_BYTES_DEFAULT, None)
        return [c.name for c in _candidates(datasets)]


# ----------------------------------------------------------------------------------------
# Reading records
# ----------------------------------------------------------------------------------------

_FIONA_LOG_LOCK = threading.Lock()


class _ErrorCollector(logging.Handler):
    """Collects GDAL errors fiona logs while one record is read."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _open_options(c: _Candidate) -> dict[str, str]:
    kind = c.dataset.kind
    if kind == "shapefile":
        return {"encoding": "latin1"}
    if kind == "dxf":
        # Open options, not global config: thread-safe. ISO-8859-1 hands us raw bytes:
        # GDAL's own code-page decoding drops the last character of every string.
        return {"CLOSED_LINE_AS_POLYGON": "TRUE", "ENCODING": "ISO-8859-1"}
    return {}


def _read_bulk(c: _Candidate) -> GeoDataFrame:
    kwargs = _open_options(c)
    if c.inner is not None:
        kwargs["layer"] = c.inner
    return pyogrio.read_dataframe(c.dataset.path, **kwargs)


def _read_by_record(c: _Candidate, first_error: BaseException,
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
                        notes.append(_unreadable_note(row, why))
                        continue
                    rows.append(row)
                    props.append(dict(rec.properties))
                    geoms.append(shape(rec.geometry) if rec.geometry is not None else None)
        except (fiona.errors.FionaError, OSError, ValueError) as exc:
            raise _unreadable(ds, first_error) from exc
        finally:
            logger.removeHandler(collector)
    frame = pd.DataFrame(props, columns=list(schema), index=pd.Index(rows, dtype="int64"))
    for name, ftype in schema.items():
        base = str(ftype).split(":")[0]
        if base in ("date", "datetime"):
            frame[name] = pd.to_datetime(frame[name], errors="coerce")
        elif base == "str":
            frame[name] = frame[name].astype("str")
    crs = pyproj.CRS.from_wkt(crs_wkt) if crs_wkt else None
    geometry = np.empty(len(geoms), dtype=object)
    geometry[:] = geoms
    return GeoDataFrame(frame, geometry=geometry, crs=crs)


def _unreadable_note(row: int, why: str) -> Note:
    return Note("READ-RECORD-UNREADABLE", "error",
                f"bản ghi bị hỏng và đã bị bỏ qua ({why})",
                f"the record is damaged and was left out ({why})", row=row)


def _shp_broken_rows(parts: dict[str, Path], rows: np.ndarray) -> dict[int, str]:
    """Which null-geometry rows of a shapefile are damaged rather than truly empty.

    GDAL returns a damaged .shp record as a null geometry without raising, which
    would silently turn a parcel into nothing. A genuine null shape has shape type 0
    in its record header; anything else that came back null is damaged, and the
    header says how (unknown shape type, record past the end of the file...).
    """
    broken: dict[int, str] = {}
    shx = parts[".shx"].read_bytes()
    with open(parts[".shp"], "rb") as fh:
        fh.seek(0, 2)
        shp_size = fh.tell()
        for row in rows.tolist():
            at = 100 + 8 * row
            if at + 8 > len(shx):
                broken[row] = "the .shx index has no entry for it"
                continue
            offset, length = struct.unpack(">ii", shx[at:at + 8])
            start, content = offset * 2, length * 2
            if offset <= 0 or start + 12 > shp_size:
                broken[row] = "it lies beyond the end of the .shp file (truncated file)"
                continue
            fh.seek(start)
            header = fh.read(12)
            shape_type = struct.unpack("<i", header[8:12])[0]
            if shape_type == 0:
                continue  # a genuine null shape: the validator reports empty geometries
            if shape_type not in _VALID_SHAPE_TYPES:
                broken[row] = f"shape type {shape_type} in the .shp is not a valid shape type"
            elif start + 8 + content > shp_size:
                broken[row] = "the .shp file ends in the middle of it (truncated file)"
            else:
                broken[row] = "its geometry in the .shp is malformed (part or point counts " \
                              "do not fit the record)"
    return broken


# ----------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------


def _text_columns(frame: GeoDataFrame) -> list[str]:
    geom = frame.geometry.name
    return [c for c in frame.columns if c != geom and
            (frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype))]


def _strings(series: pd.Series) -> list[str]:
    """The column's text values (missing ones as ""), fast for pandas' string dtype."""
    if isinstance(series.dtype, pd.StringDtype):
        return series.to_numpy(dtype=object, na_value="").tolist()
    return [v for v in series.tolist() if v.__class__ is str]  # binary/list fields: skip


@dataclass
class _Column:
    """A text column's distinct values, so each is decoded once."""

    name: str
    codes: np.ndarray
    uniques: list
    legacy: list[int]  # indexes of non-ASCII str uniques

    @classmethod
    def of(cls, name: str, series: pd.Series) -> _Column | None:
        if "\x00".join(_strings(series)).isascii():
            return None  # ASCII reads the same in every encoding: nothing to do
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        values = np.asarray(uniques, dtype=object).tolist()
        legacy = [i for i, v in enumerate(values) if v.__class__ is str and not v.isascii()]
        if not legacy:
            return None
        return cls(name, codes, values, legacy)

    def first_row(self, unique_index: int, index: pd.Index) -> int:
        return int(index[int(np.flatnonzero(self.codes == unique_index)[0])])

    def rebuilt(self, positions: list[int], texts: list[str], series: pd.Series) -> pd.Series:
        """The column with ``uniques[positions]`` replaced by ``texts``, row order kept."""
        values = np.empty(len(self.uniques) + 1, dtype=object)
        values[:-1] = self.uniques
        if positions:
            replacement = np.empty(len(texts), dtype=object)
            replacement[:] = texts
            values[np.asarray(positions)] = replacement
        values[-1] = None  # code -1: missing
        return pd.Series(values[self.codes], index=series.index, dtype=series.dtype,
                         name=series.name)


def _decode_batch(values: list[str], enc: str) -> list[str] | None:
    """Decode many latin-1 strings in one call; None if any of them fails.

    Joining on NUL (which no DBF or DXF string contains: GDAL ends strings there) lets
    the decoder and NFC run once in C over the whole column, three times faster than
    value by value on 200 000 distinct owner names.
    """
    try:
        raw = "\x00".join(values).encode("latin-1")
    except UnicodeEncodeError:
        raw = None
    if raw is not None:
        try:
            out = encodings.decode(raw, enc).split("\x00")
        except EncodingError:
            return None
        if len(out) == len(values):
            return out
    try:
        return encodings.decode_column(values, enc)  # type: ignore[return-value]
    except EncodingError:
        return None


def _first_failure(values: list[str], enc: str) -> tuple[int, EncodingError] | None:
    for i, v in enumerate(values):
        try:
            encodings.decode(v.encode("latin-1"), enc)
        except EncodingError as exc:
            return i, exc
    return None


def _all_raw(values: list[str]) -> bool:
    try:
        "".join(values).encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _is_raw(value: str) -> bool:
    """True for a latin-1 string of raw bytes; DXF ``\\U+XXXX`` escapes are real text."""
    return max(value) <= "\xff"


def _samples(names: list[str], columns: list[_Column]) -> list[bytes]:
    """Distinct non-ASCII raw values, interleaved so every column has a say."""
    limit = getattr(encodings, "MAX_SAMPLES", 2000)
    per_column = [[col.uniques[i] for i in col.legacy[:limit]] for col in columns]
    mixed = (v for v in chain(names, chain.from_iterable(zip_longest(*per_column)))
             if v is not None and not v.isascii() and _is_raw(v))
    picked: dict[str, None] = {}
    for v in mixed:
        picked.setdefault(v, None)
        if len(picked) >= limit:
            break
    return encodings.raw_samples(picked)


_DISPLAY = {"utf-8": "UTF-8", "cp1258": "Windows-1258", "tcvn3": "TCVN3", "vni": "VNI"}


def _decode_legacy_text(frame: GeoDataFrame, *, label: str, forced: str | None,
                        implied: str | None, cpg: str | None,
                        notes: list[Note]) -> tuple[GeoDataFrame, str | None, Detection | None]:
    """Decode raw-byte text (DBF, DXF) and column names; return the encoding used.

    Order of authority: the user's ``encoding``, then what the format implies (a DXF
    code page), then detection (which honours a .cpg naming a supported encoding).
    """
    geom = frame.geometry.name
    text_cols = _text_columns(frame)
    names = [c for c in frame.columns if c != geom]
    legacy_names = [c for c in names if not c.isascii() and _is_raw(c)]
    columns = [col for c in text_cols if (col := _Column.of(c, frame[c])) is not None]
    if not text_cols and not legacy_names:
        return frame, None, None

    detection: Detection | None = None
    if forced is not None:
        enc = forced
    elif implied is not None:
        enc = implied
    else:
        detection = encodings.detect(_samples(legacy_names, columns), cpg=cpg)
        enc = detection.encoding

    renamed: dict[str, str] = {}
    if legacy_names:
        decoded_names = _decode_batch(legacy_names, enc)
        if decoded_names is None:
            i, exc = _first_failure(legacy_names, enc)  # type: ignore[misc]
            raise _decode_error(label, f"the name of column {legacy_names[i]!r}", None, enc,
                                legacy_names, columns, exc, forced is not None)
        renamed = dict(zip(legacy_names, decoded_names, strict=True))

    new_columns: dict[str, pd.Series] = {}
    for col in columns:
        values = [col.uniques[i] for i in col.legacy]
        if _all_raw(values):
            raw_idx = list(range(len(values)))
            raw_values = values
        else:  # DXF \U+XXXX escapes arrive as real text: keep those values as they are
            raw_idx = [k for k, v in enumerate(values) if _is_raw(v)]
            raw_values = [values[k] for k in raw_idx]
        decoded = _decode_batch(raw_values, enc) if raw_values else []
        col_enc = enc
        if decoded is None:
            failure = _first_failure(raw_values, enc)
            assert failure is not None
            k, exc = failure
            shown = renamed.get(col.name, col.name)
            if forced is not None:
                row = col.first_row(col.legacy[raw_idx[k]], frame.index)
                raise _decode_error(label, f"column {shown!r}", row, enc, legacy_names,
                                    columns, exc, True)
            # A detected (or format-implied) encoding that does not fit one column:
            # columns edited in another tool can differ. Detect that column alone.
            own = encodings.detect(encodings.raw_samples(raw_values[:5000]))
            decoded = _decode_batch(raw_values, own.encoding) if own.encoding != enc else None
            if decoded is None:
                row = col.first_row(col.legacy[raw_idx[k]], frame.index)
                raise _decode_error(label, f"column {shown!r}", row, enc, legacy_names,
                                    columns, exc, False)
            col_enc = own.encoding
            notes.append(Note(
                "READ-ENCODING-COLUMN", "warning",
                f"Cột {shown!r} dùng bảng mã {_DISPLAY[col_enc]}, khác với phần còn lại của "
                f"tệp ({_DISPLAY[enc]}); đã đọc theo {_DISPLAY[col_enc]}.",
                f"Column {shown!r} is in {_DISPLAY[col_enc]}, unlike the rest of the file "
                f"({_DISPLAY[enc]}); it was decoded as {_DISPLAY[col_enc]}."))
        positions = [col.legacy[k] for k in raw_idx]
        texts = list(decoded)
        if len(raw_idx) != len(values):
            escaped = sorted(set(range(len(values))) - set(raw_idx))
            positions += [col.legacy[k] for k in escaped]
            texts += [unicodedata.normalize("NFC", values[k]) for k in escaped]
        new_columns[col.name] = col.rebuilt(positions, texts, frame[col.name])

    if forced is not None:
        _check_forced(label, forced, legacy_names, columns, frame.index, renamed, notes)

    for name, series in new_columns.items():
        frame[name] = series
    if renamed:
        frame = frame.rename(columns=renamed)
    return frame, enc, detection


def _decode_error(label: str, what_part: str, row: int | None, enc: str,
                  legacy_names: list[str], columns: list[_Column], exc: EncodingError,
                  forced: bool) -> EncodingError:
    guess = encodings.detect(_samples(legacy_names, columns))
    detail = exc.what.rstrip(".")
    where = f"{label}, {what_part}" + (f", row {row}" if row is not None else "")
    if forced:
        what = f"the text cannot be decoded as {_DISPLAY[enc]} (the encoding given): {detail}"
    else:
        what = f"the text cannot be decoded as {_DISPLAY[enc]}: {detail}"
    if guess.encoding != enc:
        fix = (f"The text looks like {_DISPLAY[guess.encoding]}: try --encoding "
               f"{guess.encoding}" + (", or leave --encoding out" if forced else ""))
    else:
        fix = ("Give the right encoding with --encoding (utf-8, cp1258, tcvn3 or vni), or "
               "re-export the layer as UTF-8")
    return EncodingError(what, where=where, fix=fix, code="ENCODING-UNDECODABLE")


def _check_forced(label: str, forced: str, legacy_names: list[str], columns: list[_Column],
                  index: pd.Index, renamed: dict[str, str], notes: list[Note]) -> None:
    """Refuse or question an encoding the user forced when the text then looks wrong.

    Decoding legacy bytes rarely *fails* (TCVN3 defines every byte), so a wrong
    ``--encoding`` mostly yields garbage like "L©m §ång". Every candidate is scored by
    its share of real Vietnamese syllables: a forced encoding below 50% while another
    reaches 90% is an error (the issue asks for a precise message and a non-zero exit);
    a smaller gap is a warning for the report.
    """
    samples = _samples(legacy_names, columns)
    if not samples:
        return
    det = encodings.detect(samples)
    scores = det.scores
    own = scores.get(forced, 0.0)
    best_enc, best = max(((e, s) for e, s in scores.items() if e != forced),
                         key=lambda item: item[1])
    if own >= best - FORCED_ENCODING_WARN_GAP and not (
            own < FORCED_ENCODING_REFUSE_BELOW and best > FORCED_ENCODING_OTHER_ABOVE):
        return
    col = max(columns, key=lambda c: len(c.legacy), default=None)
    if col is not None:
        first = col.legacy[0]
        raw = col.uniques[first]
        row = col.first_row(first, index)
        where = f"{label}, column {renamed.get(col.name, col.name)!r}, row {row}"
    else:
        raw = legacy_names[0]
        where = f"{label}, column names"
    as_forced = encodings.decode(raw.encode("latin-1"), forced) if _is_raw(raw) else raw
    as_best = encodings.decode(raw.encode("latin-1"), best_enc) if _is_raw(raw) else raw
    if own < FORCED_ENCODING_REFUSE_BELOW and best > FORCED_ENCODING_OTHER_ABOVE:
        raise EncodingError(
            f"the text does not look Vietnamese when read as {_DISPLAY[forced]} (the "
            f"encoding given): {own:.0%} of words are Vietnamese syllables, against "
            f"{best:.0%} as {_DISPLAY[best_enc]} (e.g. {as_forced!r} instead of {as_best!r})",
            where=where,
            fix=f"Use --encoding {best_enc}, or leave --encoding out to detect it",
            code="ENCODING-WRONG")
    notes.append(Note(
        "READ-ENCODING-DOUBTFUL", "warning",
        f"Văn bản đọc theo bảng mã {_DISPLAY[forced]} (đã chỉ định) không giống tiếng Việt: "
        f"{own:.0%} từ là âm tiết tiếng Việt, so với {best:.0%} theo {_DISPLAY[best_enc]} "
        f"(ví dụ {as_forced!r} thay vì {as_best!r}). Hãy kiểm tra --encoding.",
        f"The text read as {_DISPLAY[forced]} (the encoding given) does not look Vietnamese: "
        f"{own:.0%} of words are Vietnamese syllables, against {best:.0%} as "
        f"{_DISPLAY[best_enc]} (e.g. {as_forced!r} instead of {as_best!r}). Check "
        "--encoding."))


def _normalise_utf8_text(frame: GeoDataFrame) -> GeoDataFrame:
    """NFC-normalise text of UTF-8 formats (macOS and some tools write decomposed)."""
    changed: dict[str, pd.Series] = {}
    for name in _text_columns(frame):
        series = frame[name]
        if unicodedata.is_normalized("NFC", "\x00".join(_strings(series))):
            continue
        col = _Column.of(name, series)
        if col is None:
            continue
        joined = "\x00".join(col.uniques[i] for i in col.legacy)
        texts = unicodedata.normalize("NFC", joined).split("\x00")
        changed[name] = col.rebuilt(col.legacy, texts, series)
    for name, series in changed.items():
        frame[name] = series
    renamed = {c: unicodedata.normalize("NFC", c) for c in frame.columns
               if isinstance(c, str) and not unicodedata.is_normalized("NFC", c)}
    return frame.rename(columns=renamed) if renamed else frame


# ----------------------------------------------------------------------------------------
# Format specifics
# ----------------------------------------------------------------------------------------


def _dxf_header(path: Path) -> tuple[str | None, str | None]:
    """($ACADVER, $DWGCODEPAGE) from an ASCII DXF header, None when absent."""
    head = _head(path, 2 * 1024**2)
    ver = re.search(rb"\$ACADVER\s*\r?\n\s*1\s*\r?\n([^\r\n]*)", head)
    page = re.search(rb"\$DWGCODEPAGE\s*\r?\n\s*3\s*\r?\n([^\r\n]*)", head)
    return (ver.group(1).decode("ascii", "replace").strip() if ver else None,
            page.group(1).decode("ascii", "replace").strip() if page else None)


def _dxf_implied_encoding(path: Path) -> str | None:
    """The encoding a DXF's header fixes: UTF-8 from AutoCAD 2007 on, or ANSI_1258."""
    version, codepage = _dxf_header(path)
    if version and re.fullmatch(r"AC\d{4}", version) and version >= "AC1021":
        return "utf-8"
    if codepage and codepage.upper().replace("-", "_") in ("ANSI_1258", "1258"):
        return "cp1258"
    return None  # ANSI_1252 & co.: Vietnamese drawings lie here (TCVN3 fonts); detect


def _dxf_tidy(frame: GeoDataFrame, notes: list[Note]) -> GeoDataFrame:
    if "SubClasses" in frame.columns:
        sub = frame["SubClasses"].astype("str").fillna("")
        polyline = sub.str.contains("AcDbPolyline|AcDb2dPolyline|AcDb3dPolyline", regex=True)
        polygon = np.isin(shapely.get_type_id(frame.geometry.values), (3, 6))
        closed = int((polyline.to_numpy() & polygon).sum())
        if closed:
            notes.append(Note(
                "READ-DXF-CLOSED-AS-POLYGON", "info",
                f"{closed} đường polyline khép kín trong bản vẽ DXF đã được đọc thành vùng.",
                f"{closed} closed polylines of the DXF drawing were read as polygons."))
    drop = [c for c in _DXF_DRIVER_COLUMNS if c in frame.columns]
    return frame.drop(columns=drop)


def _kml_tidy(frame: GeoDataFrame) -> GeoDataFrame:
    drop = []
    for c in _KML_DRIVER_COLUMNS:
        if c not in frame.columns:
            continue
        values = frame[c].dropna()
        if values.empty or (c in ("tessellate", "extrude", "visibility")
                            and set(values.unique().tolist()) <= {-1, 0}):
            drop.append(c)
        elif c == "id" and values.astype(str).str.fullmatch(r".+\.\d+").all():
            drop.append(c)  # ids LIBKML made up ("layer.1"), not the author's
    return frame.drop(columns=drop)


def _drop_z(frame: GeoDataFrame, notes: list[Note]) -> GeoDataFrame:
    geoms = np.asarray(frame.geometry.values)
    has_z = shapely.has_z(geoms)
    has_m = shapely.has_m(geoms) if hasattr(shapely, "has_m") else np.zeros(len(geoms), bool)
    n_z, n_m = int(has_z.sum()), int(has_m.sum())
    if not n_z and not n_m:
        return frame
    if n_z:
        z = shapely.get_coordinates(geoms[has_z], include_z=True)[:, 2]
        z = z[np.isfinite(z)]
        flat = not len(z) or (z.min() == 0 and z.max() == 0)
        span_en = "all zero" if flat else f"from {z.min():g} to {z.max():g}"
        span_vi = "đều bằng 0" if flat else f"từ {z.min():g} đến {z.max():g}"
    frame = frame.set_geometry(shapely.force_2d(geoms), crs=frame.crs)
    what_en = " and ".join(w for w, n in (("Z (height)", n_z), ("M (measure)", n_m)) if n)
    what_vi = " và ".join(w for w, n in (("Z (độ cao)", n_z), ("M", n_m)) if n)
    count = max(n_z, n_m)
    notes.append(Note(
        "READ-Z-DROPPED", "info",
        f"Đã bỏ giá trị {what_vi} của {count} đối tượng"
        + (f" (độ cao {span_vi})" if n_z else "") + "; bản đồ quy hoạch là 2 chiều.",
        f"{what_en} values of {count} features were dropped"
        + (f" (heights {span_en})" if n_z else "") + "; planning maps are 2D."))
    return frame


def _geojson_has_crs_member(path: Path) -> bool:
    return b'"crs"' in _head(path, 256 * 1024)


def _declared_crs(frame: GeoDataFrame, c: _Candidate,
                  notes: list[Note]) -> tuple[pyproj.CRS | None, str]:
    """What the file declares, and where the declaration comes from."""
    ds = c.dataset
    crs = frame.crs
    if ds.kind == "shapefile":
        if crs is None and ".prj" in ds.parts:
            notes.append(Note(
                "READ-PRJ-UNREADABLE", "warning",
                "Không hiểu được tệp .prj; hệ tọa độ sẽ được suy ra từ tọa độ.",
                "The .prj file could not be understood; the CRS will be inferred from the "
                "coordinates."))
        return crs, "prj" if crs is not None else "none"
    if ds.kind == "dxf":
        return None, "none"
    if ds.kind in ("geojson", "kml") and crs is not None and crs.is_geographic and not (
            ds.kind == "geojson" and _geojson_has_crs_member(ds.path)):
        # No explicit CRS: the specification fixes WGS 84 longitude/latitude. Files
        # exported in VN-2000 metres without saying so break that promise; then the
        # format's default is no declaration at all and the CRS must be inferred.
        geoms = frame.geometry.values
        bounds = shapely.total_bounds(np.asarray(geoms))
        fmt = _KIND_NAME[ds.kind]
        if np.all(np.isfinite(bounds)) and (abs(bounds[[0, 2]]).max() > 180
                                            or abs(bounds[[1, 3]]).max() > 90):
            notes.append(Note(
                "READ-CRS-SPEC-CONTRADICTED", "warning",
                f"Theo đặc tả, {fmt} dùng kinh độ/vĩ độ WGS 84, nhưng tọa độ trong tệp không "
                "phải độ (có thể là mét VN-2000); hệ tọa độ sẽ được suy ra.",
                f"{fmt} is WGS 84 longitude/latitude by specification, but the coordinates "
                "are not degrees (VN-2000 metres?); the CRS will be inferred."))
            return None, "none"
        notes.append(Note(
            "READ-CRS-BY-SPEC", "info",
            f"Tệp {fmt} không ghi hệ tọa độ; theo đặc tả là WGS 84 (kinh độ/vĩ độ).",
            f"The {fmt} file names no CRS; by specification it is WGS 84 longitude/latitude."))
        return crs, "embedded"
    return crs, "embedded" if crs is not None else "none"


def _canonical_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    try:
        return encodings.canonical_name(encoding)
    except EncodingError as exc:
        raise EncodingError(exc.what, where=f"--encoding {encoding}", fix=exc.fix,
                            code="ENCODING-UNKNOWN") from None


def read_source(path: Path, *, layer: str | None = None, encoding: str | None = None,
                workdir: Path | None = None, max_bytes: int = MAX_UPLOAD_BYTES_DEFAULT,
                progress: Callable[[str], None] | None = None) -> SourceLayer:
    """Read one layer of an uploaded file, whatever its format, into a GeoDataFrame.

    Parameters
    ----------
    path
        The upload: a zip (shapefile(s) anywhere inside, or one GeoPackage, GeoJSON,
        KML, FlatGeobuf or DXF), a KMZ, a loose ``.shp`` with its parts beside it, or
        a GeoPackage, GeoJSON, KML, FlatGeobuf or DXF file. The format is told from
        the content, not the extension.
    layer
        Which layer, when the upload offers several (see :func:`list_layers`).
    encoding
        Force the text encoding of a shapefile DBF or DXF (``utf-8``, ``cp1258``,
        ``tcvn3``, ``vni`` or an alias). Ignored, with a note, for formats that are
        UTF-8 by specification.
    workdir
        Folder for the temporary unzipped files (default: the system temp folder);
        everything written there is removed before returning.
    max_bytes
        Largest upload accepted, checked before anything is read.
    progress
        Called with a short English phrase at each step (for a progress bar).

    Returns
    -------
    SourceLayer

    Raises
    ------
    InputError
        Not a GIS file, too big, empty layer, incomplete shapefile, unknown or missing
        layer choice, damaged file beyond record-level repair.
    UnsafeArchiveError
        A hostile zip (see :func:`gisportal.read.archive.safe_extract`).
    EncodingError
        Unknown encoding name; text that cannot be decoded in the encoding given
        (names the column and row, suggests the detected one); or a forced encoding
        that gives non-Vietnamese text when another gives Vietnamese.
    """
    path = Path(path)
    forced = _canonical_encoding(encoding)
    notes: list[Note] = []
    with _scratch(workdir) as scratch:
        upload, digest, datasets = _resolve(path, scratch, max_bytes, progress)
        cands = _candidates(datasets)
        chosen = _choose(cands, layer, upload)
        ds = chosen.dataset
        if ds.missing:
            raise _missing_parts_error(ds, zipped=True)
        where = ds.label + (f", layer {chosen.inner}" if chosen.inner and len(cands) > 1
                            else "")
        if len(cands) > 1:
            notes.append(Note("READ-LAYER-CHOSEN", "info",
                              f"Đã đọc lớp {chosen.name!r} trong số {len(cands)} lớp.",
                              f"Read layer {chosen.name!r} of {len(cands)} layers."))
        if progress:
            progress(f"reading {ds.label}")
        try:
            frame = _read_bulk(chosen)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
                pyogrio.errors.FeatureError, pyogrio.errors.GeometryError,
                pyogrio.errors.FieldError, RuntimeError, OSError) as exc:
            if progress:
                progress("reading record by record")
            frame = _read_by_record(chosen, exc, notes)
        unreadable = sum(n.code == "READ-RECORD-UNREADABLE" for n in notes)

        if ds.kind == "shapefile" and len(frame):
            missing = np.flatnonzero(shapely.is_missing(np.asarray(frame.geometry.values)))
            if len(missing):
                rows = frame.index.to_numpy()[missing]
                broken = _shp_broken_rows(ds.parts, rows)
                if broken:
                    for row, why in broken.items():
                        notes.append(_unreadable_note(row, why))
                    frame = frame.drop(index=list(broken))
                    unreadable += len(broken)

        if len(frame) == 0:
            if unreadable:
                raise InputError(f"none of the {unreadable} records can be read",
                                 where=where, fix="The file is damaged: export it again "
                                                  "from the GIS software", code="FILE-DAMAGED")
            raise InputError("the layer has no features", where=where,
                             fix="Export the layer again with its features, or choose "
                                 "another layer with --layer", code="LAYER-EMPTY")

        if progress:
            progress("decoding text")
        detection: Detection | None = None
        enc: str | None
        if ds.kind == "shapefile":
            cpg = None
            if ".cpg" in ds.parts:
                cpg = ds.parts[".cpg"].read_bytes().decode("latin-1").strip()
            frame, enc, detection = _decode_legacy_text(frame, label=where, forced=forced,
                                                        implied=None, cpg=cpg, notes=notes)
            if forced and cpg is not None and enc != _cpg_name(cpg):
                notes.append(Note("READ-ENCODING-GIVEN", "info",
                                  f"Bảng mã {_DISPLAY[forced]} được chỉ định thay cho tệp "
                                  f".cpg ({cpg!r}).",
                                  f"The encoding given ({_DISPLAY[forced]}) overrides the "
                                  f".cpg file ({cpg!r})."))
        elif ds.kind == "dxf":
            frame, enc, detection = _decode_legacy_text(
                frame, label=where, forced=forced, implied=_dxf_implied_encoding(ds.path),
                cpg=None, notes=notes)
            frame = _dxf_tidy(frame, notes)
        else:
            frame = _normalise_utf8_text(frame)
            enc = "utf-8" if _text_columns(frame) else None
            if forced is not None and forced != "utf-8":
                notes.append(Note(
                    "READ-ENCODING-IGNORED", "warning",
                    f"Định dạng {_KIND_NAME[ds.kind]} luôn dùng UTF-8; bảng mã "
                    f"{_DISPLAY[forced]} được chỉ định đã không được dùng.",
                    f"{_KIND_NAME[ds.kind]} text is UTF-8 by specification; the encoding "
                    f"given ({_DISPLAY[forced]}) was not used."))
            if ds.kind == "kml":
                frame = _kml_tidy(frame)

        frame = _drop_z(frame, notes)
        declared, origin = _declared_crs(frame, chosen, notes)
        if declared is None and frame.crs is not None:
            frame = frame.set_crs(None, allow_override=True)
        driver = _driver_name(ds.kind)
        return SourceLayer(
            frame=frame, declared_crs=declared, crs_origin=origin, source_name=ds.label,
            sha256=digest, driver=driver, layer=chosen.name,
            layers_available=[c.name for c in cands], encoding=enc,
            encoding_detection=detection if forced is None else None, notes=notes)


def _cpg_name(cpg: str) -> str | None:
    try:
        return encodings.canonical_name(cpg)
    except EncodingError:
        return None


def _driver_name(kind: str) -> str:
    if kind == "kml":
        return "LIBKML" if "LIBKML" in pyogrio.list_drivers() else "KML"
    return {"shapefile": "ESRI Shapefile", "gpkg": "GPKG", "geojson": "GeoJSON",
            "fgb": "FlatGeobuf", "dxf": "DXF"}[kind]
