"""From an uploaded path to the datasets in it: size check, hash, safe unzip, discovery.

This is the first step of reading, the only one that handles the upload itself: it
refuses missing, empty, oversized and non-GIS files before anything is read, hashes what
was uploaded (the :class:`~gisportal.pipeline.read.sources.SourceLayer` ``sha256``), unpacks zips
with :func:`gisportal.pipeline.read.archive.safe_extract` into a scratch folder that is always
removed, and lists the readable datasets found (a shapefile with its parts, a GeoPackage,
a KMZ's KML...). Which layer of those datasets to read is :mod:`gisportal.pipeline.read.layers`'
job.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gisportal.base.errors import InputError
from gisportal.base.text import human_size
from gisportal.pipeline.read.archive import safe_extract
from gisportal.pipeline.read.formats import ACCEPTED_TEXT, Dataset, not_gis_error, sniff
from gisportal.pipeline.read.shapefile import (
    gdal_ready_shapefile,
    missing_parts_error,
    shapefile_parts,
)

_CHUNK = 1024**2


def _find_datasets(folder: Path, files: list[Path], zip_label: str) -> list[Dataset]:
    """Every GIS dataset among the unzipped files (a KMZ's doc.kml included)."""
    found: list[Dataset] = []
    stray_dbf: list[str] = []
    shp_stems = set()
    for f in files:
        rel = f.relative_to(folder).as_posix()
        ext = f.suffix.lower()
        label = f"{zip_label}!{rel}"
        if ext == ".shp":
            kind = sniff(f)
            if kind != "shapefile":
                raise not_gis_error(f, label)
            parts, missing = shapefile_parts(f)
            shp_stems.add((f.parent, f.stem.casefold()))
            found.append(Dataset("shapefile", f, label, rel, parts, missing))
        elif ext in (".gpkg", ".geojson", ".kml", ".fgb", ".dxf"):
            kind = sniff(f)
            if kind is None or kind == "zip":
                raise not_gis_error(f, label)
            found.append(Dataset(kind, f, label, rel))
        elif ext == ".json" and sniff(f) == "geojson":
            found.append(Dataset("geojson", f, label, rel))
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
                         fix=f"Zip the layer's files themselves. We read: {ACCEPTED_TEXT}",
                         code="ZIP-NO-GIS-FILE")
    return found


def stat_size(path: Path) -> int:
    return path.stat().st_size


def _too_big(size: int, max_bytes: int, label: str) -> InputError:
    return InputError(
        f"the upload is {human_size(size)}, over the {human_size(max_bytes)} limit", where=label,
        fix="Split the data into smaller files (one district or commune each), or ask the "
            "administrator to raise max_upload_bytes (GISPORTAL_MAX_UPLOAD_BYTES)",
        code="FILE-TOO-BIG")


def _sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def resolve_upload(path: Path, scratch: Path, max_bytes: int,
                   progress: Callable[[str], None] | None) -> tuple[str, str, list[Dataset]]:
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
    size = stat_size(path)
    if size > max_bytes:
        raise _too_big(size, max_bytes, label)
    kind = gis_kind(path, label)
    if kind == "zip":
        if progress:
            progress(f"unzipping {label}")
        digest = _sha256([path])
        dest = scratch / "unzipped"
        files = safe_extract(path, dest, max_total_bytes=max(2 * 1024**3, 4 * max_bytes))
        datasets = _find_datasets(dest, files, label)
        for ds in datasets:
            if ds.kind == "shapefile" and not ds.missing:
                gdal_ready_shapefile(ds, scratch, owned=True)
        return label, digest, datasets
    ds = Dataset(kind, path, label, path.name)
    if kind == "shapefile":
        if path.suffix.lower() != ".shp":
            raise not_gis_error(path, label)
        ds.parts, ds.missing = shapefile_parts(path)
        if ds.missing:
            raise missing_parts_error(ds, zipped=False)
        total = sum(stat_size(p) for p in ds.parts.values())
        if total > max_bytes:
            raise _too_big(total, max_bytes, label)
        # .shp, .dbf, .shx, .prj, .cpg: the order the SourceLayer docstring promises
        digest = _sha256([ds.parts[e] for e in (".shp", ".dbf", ".shx", ".prj", ".cpg")
                          if e in ds.parts])
        gdal_ready_shapefile(ds, scratch, owned=False)
        return label, digest, [ds]
    return label, _sha256([path]), [ds]


def gis_kind(path: Path, label: str) -> str:
    """The sniffed format of a file (``zip``, ``shapefile``, ``gpkg``...), or the error a
    planner should read: empty file, or not a GIS file (with what it seems to be)."""
    if stat_size(path) == 0:
        raise InputError("the file is empty (0 bytes)", where=label,
                         fix="Upload the file again; the upload or export was cut off",
                         code="FILE-EMPTY")
    kind = sniff(path)
    if kind is None:
        raise not_gis_error(path, label)
    return kind


@contextmanager
def scratch_folder(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="gisportal-read-",
                                   dir=None if workdir is None else Path(workdir)))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
