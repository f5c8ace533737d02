"""Shapefile specifics: finding the parts, refusing incomplete sets, spotting damaged records.

A shapefile is several files whose names users' tools spell in any case, and GDAL reads a
damaged ``.shp`` record as an empty geometry without complaint. This module finds the
``.shx``/``.dbf``/``.prj``/``.cpg`` beside a ``.shp``, explains a missing part, makes the
parts findable by GDAL on a case-sensitive file system, and reads the ``.shx`` index and
``.shp`` record headers to tell a genuinely null shape from a damaged record, so that a
broken parcel becomes an error note rather than silently nothing.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np

from gisportal.base.errors import InputError
from gisportal.pipeline.read.formats import Dataset

_VALID_SHAPE_TYPES = {0, 1, 3, 5, 8, 11, 13, 15, 18, 21, 23, 25, 28, 31}


def shapefile_parts(shp: Path) -> tuple[dict[str, Path], list[str]]:
    """Find the .shx/.dbf/.prj/.cpg next to ``shp`` whatever the case of their names."""
    siblings = {p.name.casefold(): p for p in shp.parent.iterdir() if p.is_file()}
    parts = {".shp": shp}
    for ext in (".shx", ".dbf", ".prj", ".cpg"):
        found = siblings.get((shp.stem + ext).casefold())
        if found is not None:
            parts[ext] = found
    missing = [ext for ext in (".shx", ".dbf") if ext not in parts]
    return parts, missing


def missing_parts_error(ds: Dataset, zipped: bool) -> InputError:
    stem = ds.path.stem
    names = " and ".join(f"{stem}{ext}" for ext in ds.missing)
    fix = (f"A shapefile is several files: put {stem}.shp, {stem}.shx, {stem}.dbf, "
           f"{stem}.prj and {stem}.cpg together in one zip and upload it again"
           if zipped else
           f"A shapefile is several files: zip {stem}.shp, {stem}.shx, {stem}.dbf, "
           f"{stem}.prj and {stem}.cpg together and upload the zip")
    return InputError(f"the shapefile is incomplete: {names} is missing", where=ds.label,
                      fix=fix, code="SHP-PART-MISSING")


def gdal_ready_shapefile(ds: Dataset, scratch: Path, owned: bool) -> None:
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


def shp_broken_rows(parts: dict[str, Path], rows: np.ndarray) -> dict[int, str]:
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
