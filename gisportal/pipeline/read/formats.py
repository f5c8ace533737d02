"""Telling formats apart: which kind of GIS file a path holds, judged by its bytes.

Planners' files often carry the wrong extension (a renamed PDF, a GeoPackage called
``.zip``), so the format is sniffed from magic bytes and the extension only breaks ties;
a file in no format we read is refused here, with a message saying what it looks like,
before GDAL is asked to open it. The module also holds what the later steps share about
formats: the accepted-format list quoted in every refusal, each kind's display name, the
:class:`Dataset` record for one readable file of an upload, and the "file is damaged"
error.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from gisportal.base.errors import InputError

#: What users are told we accept, in every "cannot read this" message.
ACCEPTED_FORMATS = (
    "zipped Shapefile (.zip with .shp, .shx, .dbf, .prj)",
    "GeoPackage (.gpkg)",
    "GeoJSON (.geojson, .json)",
    "KML/KMZ (.kml, .kmz)",
    "FlatGeobuf (.fgb)",
    "DXF (.dxf)",
)
ACCEPTED_TEXT = "; ".join(ACCEPTED_FORMATS)
_EXT_KIND = {".shp": "shapefile", ".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson",
             ".kml": "kml", ".kmz": "kmz", ".fgb": "fgb", ".dxf": "dxf", ".zip": "zip"}
KIND_NAME = {"shapefile": "Shapefile", "gpkg": "GeoPackage", "geojson": "GeoJSON",
             "kml": "KML", "fgb": "FlatGeobuf", "dxf": "DXF"}
_SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".shp.xml")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_SHP_MAGIC = b"\x00\x00\x27\x0a"
_FGB_MAGIC = b"fgb\x03"
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Longest GDAL reason quoted in a "file is damaged" message.
_REASON_CHARS = 300
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


@dataclass
class Dataset:
    """One readable file of the upload (after unzipping)."""

    kind: str
    path: Path  # what GDAL opens
    label: str  # "lamha.zip!Data/thua.shp" or "thua.gpkg"
    rel: str  # member path in the zip, or the file name
    parts: dict[str, Path] = field(default_factory=dict)  # shapefile: ext -> file
    missing: list[str] = field(default_factory=list)  # shapefile parts that are missing


def read_head(path: Path, size: int = 8192) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def sniff(path: Path) -> str | None:
    """Tell the format from the first bytes; the extension only breaks ties.

    Returns ``zip``, ``shapefile``, ``gpkg``, ``geojson``, ``kml``, ``fgb``, ``dxf`` or
    None. A renamed PDF or program is caught here, before GDAL is asked to open it.
    """
    head = read_head(path)
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


def not_gis_error(path: Path, label: str) -> InputError:
    head = read_head(path, 64)
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
                              f"and upload the zip. We read: {ACCEPTED_TEXT}",
                          code="SHP-PART-ALONE")
    what = "not a GIS file we can read"
    if looks:
        what += f" (it looks like {looks}"
        what += f" despite its {ext} extension)" if ext else ")"
    elif ext in _EXT_KIND:
        what += f" (its content is not {ext[1:].upper()})"
    return InputError(what, where=label, fix=f"Upload one of: {ACCEPTED_TEXT}",
                      code="FILE-NOT-GIS")


def unreadable_error(ds: Dataset, exc: BaseException) -> InputError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if len(reason) > _REASON_CHARS:  # GDAL quotes the offending value, however long
        reason = reason[:_REASON_CHARS] + "…"
    return InputError(f"the {KIND_NAME.get(ds.kind, ds.kind)} file cannot be read: {reason}",
                      where=ds.label,
                      fix="The file is damaged or incomplete: export it again from the GIS "
                          "software and upload the new file", code="FILE-DAMAGED")
