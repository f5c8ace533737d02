"""NUL characters inside text: the whole text kept, and said, instead of silently cut.

GDAL hands text over as C strings, which end at the first NUL (``\\x00``): an owner
"Nguyễn\\x00Văn" in a GeoPackage, a GeoJSON ``"Nguyễn\\u0000Văn"`` or a DBF field with a
stray NUL byte all arrive as "Nguyễn", without a warning. A NUL has no meaning in a
land-use attribute, while the text after it is the planner's: gisportal removes the NUL,
keeps the rest, and says so in one ``READ-TEXT-NUL`` note per column (how many values,
example rows), not one per value.

Each format needs its own way to see past GDAL:

* GeoPackage: SQLite returns the values whole
  (:func:`gisportal.pipeline.read.geopackage.nul_texts`).
* GeoJSON: before GDAL reads it, a copy of the file has each NUL escape replaced by a
  marker character (U+FDD0, a Unicode noncharacter no planner's text holds) that GDAL
  passes through; after reading, the markers show which values had a NUL and are removed.
* Shapefile: the DBF's fixed-width records are scanned with numpy for a NUL followed by
  text in a character field (NUL *padding* at the end of a field is normal and ignored).

FlatGeobuf, KML and DXF are left to GDAL: KML (XML) cannot hold a NUL at all, and the
others have not been seen with one.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from geopandas import GeoDataFrame

from gisportal.pipeline.read.formats import Dataset
from gisportal.pipeline.read.geopackage import nul_texts
from gisportal.pipeline.read.layers import Candidate
from gisportal.pipeline.read.notes import Note

__all__ = ["MARKER", "NulColumn", "mark_json_nuls", "nul_notes", "restore_nuls"]

#: What a NUL of a GeoJSON becomes on its way through GDAL (a noncharacter).
MARKER = "\ufdd0"
_MARKER_ESCAPE = b"\\ufdd0"
#: An escaped backslash (kept as it is) or a NUL, escaped or raw, in JSON text. Matching
#: ``\\\\`` first keeps ``\\\\u0000`` (a backslash, then the text "u0000") intact.
_JSON_NUL = re.compile(rb"\\(?:\\|u0000)|\x00")
_EXAMPLES = 5
_SPACE, _NUL, _DELETED = 0x20, 0x00, 0x2A
#: DBF records scanned at once for NULs (bounds the memory of the scan). A chunk is
#: read whole: 65 536 records of a 381-byte parcel DBF were 25 MB on top of the layer
#: just read; 8 192 are 3 MB, and the scan takes as long.
_DBF_CHUNK = 8_192


@dataclass
class NulColumn:
    """A column whose values held NULs: its position in the frame and the rows."""

    position: int
    rows: list[int] = field(default_factory=list)
    name_only: bool = False  # the column's name held the NUL, not its values


def mark_json_nuls(ds: Dataset, scratch: Path) -> bool:
    """Give GDAL a copy of a GeoJSON whose NULs are markers; True when one was made.

    The file is mapped, not loaded, and copied only when it holds a NUL at all (one
    ``find`` in C otherwise). ``ds.path`` then points at the copy in ``scratch``; the
    uploaded file is never touched.
    """
    if ds.kind != "geojson":
        return False
    with open(ds.path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm.find(b"\\u0000") < 0 and mm.find(b"\x00") < 0:
                return False
            copy = scratch / f"nul-marked-{ds.path.name}"
            with open(copy, "wb") as out:
                done = 0
                for m in _JSON_NUL.finditer(mm):
                    if m.group(0) == b"\\\\":
                        continue
                    out.write(mm[done:m.start()])
                    out.write(_MARKER_ESCAPE)
                    done = m.end()
                out.write(mm[done:])
    ds.path = copy
    return True


def _text_columns(frame: GeoDataFrame) -> list[str]:
    geom = frame.geometry.name
    return [c for c in frame.columns if c != geom and
            (frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype))]


def _replace(frame: GeoDataFrame, name: str, values: dict[int, str]) -> list[int]:
    """Put ``values`` (by source row) into column ``name``, keeping its dtype; return the
    rows found in the frame (a damaged record left out has none)."""
    series = frame[name]
    if not isinstance(series, pd.Series):
        return []  # two columns of one name: leave GDAL's reading alone
    labels = np.fromiter(values, dtype=np.int64, count=len(values))
    positions = frame.index.get_indexer(labels)
    keep = positions >= 0
    if not keep.any():
        return []
    column = series.to_numpy(dtype=object, copy=True)
    for pos, row in zip(positions[keep].tolist(), labels[keep].tolist(), strict=True):
        column[pos] = values[row]
    frame[name] = pd.Series(column, index=frame.index, dtype=series.dtype, name=name)
    return sorted(labels[keep].tolist())


def _unmark(frame: GeoDataFrame) -> tuple[GeoDataFrame, dict[str, dict[int, str]], list[str]]:
    """Values and column names of a marked GeoJSON with the markers removed."""
    found: dict[str, dict[int, str]] = {}
    for name in _text_columns(frame):
        series = frame[name]
        if isinstance(series.dtype, pd.StringDtype):
            hit = series.str.contains(MARKER, regex=False).to_numpy(dtype=bool, na_value=False)
        else:
            hit = np.fromiter((v.__class__ is str and MARKER in v for v in series.array),
                              dtype=bool, count=len(series))
        positions = np.flatnonzero(hit)
        if len(positions):
            values, labels = series.array, frame.index
            found[name] = {int(labels[p]): values[p].replace(MARKER, "")
                           for p in positions.tolist()}
    names = [c for c in frame.columns if isinstance(c, str) and MARKER in c]
    if names:
        frame = frame.rename(columns={c: c.replace(MARKER, "") for c in names})
        found = {k.replace(MARKER, ""): v for k, v in found.items()}
    return frame, found, [c.replace(MARKER, "") for c in names]


def _dbf_fields(header: bytes) -> list[tuple[str, int, int]]:
    """(name as the reader sees it, offset in the record, length) of character fields."""
    fields = []
    offset = 1  # byte 0 of a record is its deletion flag
    for at in range(32, len(header) - 31, 32):
        desc = header[at:at + 32]
        if desc[0] == 0x0D:
            break
        name = desc[:11].split(b"\x00", 1)[0].decode("latin-1")
        length = desc[16]
        if desc[11:12] == b"C":
            # Character fields may use the decimal-count byte as a high length byte.
            length += 256 * desc[17]
            fields.append((name, offset, length))
        offset += length
    return fields


def _dbf_nuls(dbf: Path, columns: set[str]) -> dict[str, dict[int, str]]:
    """Character values of a DBF with a NUL followed by text, by source row.

    The values come back as latin-1 strings of their raw bytes, NULs removed and the
    padding stripped, as the reader gives every DBF value before decoding.
    """
    size = dbf.stat().st_size
    with open(dbf, "rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return {}
        n, header_len, record_len = struct.unpack("<IHH", head[4:12])
        header = head + fh.read(max(0, header_len - 32))
    fields = [f for f in _dbf_fields(header) if f[0] in columns]
    if not fields or record_len == 0 or header_len >= size:
        return {}
    n = min(n, (size - header_len) // record_len)
    if n == 0:
        return {}
    fields = [f for f in fields if f[1] + f[2] <= record_len]  # the record's own fields
    out: dict[int, dict[int, str]] = {}  # by position in ``fields``
    read = 0  # records GDAL gives before this chunk (it skips deleted ones)
    # The records are scanned a chunk at a time: the per-byte masks of a whole
    # 1 000 000-record DBF (and the mapped file itself) would weigh half a gigabyte.
    with open(dbf, "rb") as fh:
        fh.seek(header_len)
        for start in range(0, n, _DBF_CHUNK):
            count = min(_DBF_CHUNK, n - start)
            records = np.fromfile(fh, dtype=np.uint8,
                                  count=count * record_len).reshape(count, record_len)
            kept = records[:, 0] != _DELETED
            position = read + np.cumsum(kept) - 1
            read += int(kept.sum())
            for i, (_, offset, length) in enumerate(fields):
                block = records[:, offset:offset + length]
                nul = block == _NUL
                if not nul.any():
                    continue
                after = np.logical_or.accumulate(nul, axis=1)
                text = (block != _NUL) & (block != _SPACE)
                rows = np.flatnonzero((after & text).any(axis=1) & kept)
                if len(rows):
                    out.setdefault(i, {}).update({
                        int(position[r]): bytes(block[r]).replace(b"\x00", b"").rstrip(
                            b" ").decode("latin-1") for r in rows.tolist()})
    found: dict[str, dict[int, str]] = {}
    for i, (name, _, _) in enumerate(fields):  # in field order, as the reader gives them
        if i in out:
            found[name] = out[i]
    return found


def restore_nuls(c: Candidate, frame: GeoDataFrame,
                 marked: bool) -> tuple[GeoDataFrame, list[NulColumn]]:
    """Put back the text GDAL cut at a NUL; say which columns and rows had one.

    ``marked``: the GeoJSON was read from a copy made by :func:`mark_json_nuls`.
    Run right after reading, before the text is decoded: DBF values are raw bytes
    then, like every other value of the column.
    """
    ds = c.dataset
    found: dict[str, dict[int, str]] = {}
    names: list[str] = []
    if marked:
        frame, found, names = _unmark(frame)
    elif ds.kind == "gpkg" and c.inner is not None:
        found = nul_texts(ds.path, c.inner, _text_columns(frame))
    elif ds.kind == "shapefile" and ".dbf" in ds.parts:
        try:
            found = _dbf_nuls(ds.parts[".dbf"], set(_text_columns(frame)))
        except (OSError, ValueError, struct.error):
            found = {}  # a damaged DBF: its records are reported by the reader
    order = list(frame.columns)
    columns: list[NulColumn] = []
    for name, values in found.items():
        rows = _replace(frame, name, values) if name in order else []
        if rows:
            columns.append(NulColumn(order.index(name), rows))
    columns += [NulColumn(order.index(n), name_only=True) for n in names if n in order]
    return frame, columns


def nul_notes(frame: GeoDataFrame, columns: list[NulColumn], notes: list[Note]) -> None:
    """One ``READ-TEXT-NUL`` warning per column, named as decoded (after decoding)."""
    for col in columns:
        name = str(frame.columns[col.position])
        if col.name_only:
            notes.append(Note(
                "READ-TEXT-NUL", "warning",
                f"Tên cột {name!r} chứa ký tự NUL (\\x00); đã bỏ ký tự này.",
                f"The name of column {name!r} held a NUL character (\\x00); it was removed."))
            continue
        shown = ", ".join(str(r) for r in col.rows[:_EXAMPLES])
        more = "…" if len(col.rows) > _EXAMPLES else ""
        n = len(col.rows)
        notes.append(Note(
            "READ-TEXT-NUL", "warning",
            f"Cột {name!r}: {n} giá trị chứa ký tự NUL (\\x00), vốn làm mất phần chữ phía "
            f"sau; đã bỏ ký tự NUL và giữ phần còn lại (dòng {shown}{more}). Hãy kiểm tra "
            "các giá trị này.",
            f"Column {name!r}: {n} value{'s' if n != 1 else ''} held a NUL character "
            f"(\\x00), which would have cut the text short; the NUL was removed and the rest "
            f"kept (rows {shown}{more}). Check these values."))
