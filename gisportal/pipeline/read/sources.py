"""Step one of the data flow: any planner file → one GeoDataFrame as the file has it.

Planners send zipped shapefiles, GeoPackages, GeoJSON, KML/KMZ, FlatGeobuf and DXF
drawings, often with Vietnamese text in a legacy encoding, sometimes with a wrong
extension, a missing part or a damaged record. :func:`read_source` turns any of them
into a :class:`SourceLayer`: the attribute columns exactly as the source names them,
text decoded to NFC, geometry as read (2D), the CRS the file *declares* (inference is
the normaliser's job), and :class:`Note` s about everything it did or noticed. A file
that cannot be used at all raises an :class:`~gisportal.base.errors.InputError` that says
what is wrong, where, and how to fix it; a file that is only partly damaged is read
as far as it goes, with one ``error`` note per record that could not be read.

Bulk reading uses pyogrio (one C loop per layer); Python only loops over *distinct*
text values, and over records one by one only when pyogrio gives up on a damaged file
(then fiona reads record by record so one bad record costs one record, not the file).

Shapefile DBF text is read as latin-1, so every character is one raw byte and GDAL
never decodes anything: its Windows-1258 decoder drops the last character of every
string (docs/design.md §5), and its DBF language-driver byte (LDID) and ``.cpg`` handling
would otherwise decode behind our back. The bytes are then decoded by
:mod:`gisportal.pipeline.read.encodings` with the encoding given, named by the ``.cpg`` or
detected. DXF text goes the same way (its ``$DWGCODEPAGE`` is often wrong: Vietnamese
drawings use TCVN3 fonts under an ANSI_1252 code page).

The steps live in modules named for them, in data-flow order:
:mod:`~.upload` (size check, hash, unzip, find the datasets; with
:mod:`~.formats` for sniffing and :mod:`~.shapefile` for
shapefile parts and damaged records), :mod:`~.layers` (which layer),
:mod:`~.records` (read the records), :mod:`~.text` (decode the
text), :mod:`~.tidy` (driver columns, Z values, declared CRS). What a hostile
or broken file could do to the reader is stopped on the way: :mod:`~.geopackage`
(a GeoPackage layer must be a plain table, looked at with SQLite before GDAL opens it),
:mod:`~.limits` (features, columns and value length),
:mod:`~.nul` (text GDAL would cut at a NUL) and
:mod:`~.geometries` (geometries that are there but unreadable). This module
ties them together and defines what comes out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.errors
import pyproj
import shapely
from geopandas import GeoDataFrame

from gisportal.base.errors import InputError
from gisportal.pipeline.read.encodings import Detection
from gisportal.pipeline.read.formats import ACCEPTED_FORMATS, KIND_NAME
from gisportal.pipeline.read.geometries import GEOM_UNREADABLE, drop_unreadable
from gisportal.pipeline.read.layers import choose_layer, layer_candidates
from gisportal.pipeline.read.limits import (
    MAX_VALUE_CHARS,
    check_counts,
    cut_long_values,
    layer_limits,
    value_too_long_error,
)
from gisportal.pipeline.read.notes import Note, unreadable_note
from gisportal.pipeline.read.nul import mark_json_nuls, nul_notes, restore_nuls
from gisportal.pipeline.read.records import open_options, read_bulk, read_by_record
from gisportal.pipeline.read.shapefile import missing_parts_error, shp_broken_rows
from gisportal.pipeline.read.text import (
    DISPLAY,
    canonical_encoding,
    cpg_name,
    decode_legacy_text,
    dxf_implied_encoding,
    normalise_utf8_text,
    text_columns,
)
from gisportal.pipeline.read.tidy import declared_crs, drop_z, dxf_tidy, flatten_nested, kml_tidy
from gisportal.pipeline.read.upload import resolve_upload, scratch_folder, stat_size

__all__ = ["MAX_UPLOAD_BYTES_DEFAULT", "ACCEPTED_FORMATS", "EncodingOrigin", "Note",
           "SourceLayer", "list_layers", "read_source"]

MAX_UPLOAD_BYTES_DEFAULT = 1024**3


@dataclass(frozen=True)
class EncodingOrigin:
    """Where the text encoding came from, for the validation report.

    ``origin`` is ``"given"`` (``--encoding``), ``"cpg"`` (the shapefile's ``.cpg``
    named it), ``"format"`` (UTF-8 by the format's specification: GeoPackage, GeoJSON,
    FlatGeobuf, KML), ``"header"`` (a DXF header fixes it) or ``"detected"`` (the file
    did not say); ``vi``/``en`` name that source in a sentence ("the .cpg file ('1258')").
    """

    origin: str
    vi: str
    en: str


_DETECTED = EncodingOrigin("detected", "phát hiện tự động", "detection")
_GIVEN = EncodingOrigin("given", "tùy chọn --encoding", "--encoding")


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
    encoding_origin
        Where ``encoding`` came from (None when there is no text field).
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
    encoding_origin: EncodingOrigin | None = None


def read_source(path: Path, *, layer: str | None = None, encoding: str | None = None,
                workdir: Path | None = None, max_bytes: int = MAX_UPLOAD_BYTES_DEFAULT,
                progress: Callable[[str], None] | None = None,
                max_features: int | None = None, max_columns: int | None = None
                ) -> SourceLayer:
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
    max_features, max_columns
        Largest layer accepted, checked from the layer's own counts before its records
        are read (default: the ``max_features`` / ``max_columns`` settings).

    Returns
    -------
    SourceLayer

    Raises
    ------
    InputError
        Not a GIS file, too big, empty layer, incomplete shapefile, unknown or missing
        layer choice, damaged file beyond record-level repair; a GeoPackage layer that
        is not a plain table (``READ-GPKG-VIEW``, ``READ-GPKG-NOT-TABLE``); too many
        features or columns (``READ-TOO-MANY-FEATURES``, ``READ-TOO-MANY-COLUMNS``); a
        GeoJSON value longer than GDAL reads (``READ-VALUE-TOO-LONG``).
    UnsafeArchiveError
        A hostile zip (see :func:`gisportal.pipeline.read.archive.safe_extract`).
    EncodingError
        Unknown encoding name; text that cannot be decoded in the encoding given
        (names the column and row, suggests the detected one); or a forced encoding
        that gives non-Vietnamese text when another gives Vietnamese.
    """
    path = Path(path)
    forced = canonical_encoding(encoding)
    notes: list[Note] = []
    with scratch_folder(workdir) as scratch:
        upload, digest, datasets = resolve_upload(path, scratch, max_bytes, progress)
        cands = layer_candidates(datasets)
        chosen = choose_layer(cands, layer, upload)
        ds = chosen.dataset
        if ds.missing:
            raise missing_parts_error(ds, zipped=True)
        where = ds.label + (f", layer {chosen.inner}" if chosen.inner and len(cands) > 1
                            else "")
        if len(cands) > 1:
            notes.append(Note("READ-LAYER-CHOSEN", "info",
                              f"Đã đọc lớp {chosen.name!r} trong số {len(cands)} lớp.",
                              f"Read layer {chosen.name!r} of {len(cands)} layers."))
        most_features, most_columns = layer_limits(max_features, max_columns)
        info = check_counts(chosen, open_options(chosen), where,
                            max_features=most_features, max_columns=most_columns)
        marked = mark_json_nuls(ds, scratch)
        if progress:
            progress(f"reading {ds.label}")
        try:
            frame = read_bulk(chosen, notes, info)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
                pyogrio.errors.FeatureError, pyogrio.errors.GeometryError,
                pyogrio.errors.FieldError, RuntimeError, OSError) as exc:
            too_long = value_too_long_error(chosen, exc, where)
            if too_long is not None:
                raise too_long from exc
            if progress:
                progress("reading record by record")
            frame = read_by_record(chosen, exc, notes)
        frame, nul_columns = restore_nuls(chosen, frame, marked)
        if ds.kind != "shapefile" and stat_size(ds.path) > MAX_VALUE_CHARS:
            frame = cut_long_values(frame, notes)
        frame = drop_unreadable(chosen, frame, notes)
        unreadable = sum(n.code in ("READ-RECORD-UNREADABLE", GEOM_UNREADABLE) for n in notes)

        if ds.kind == "shapefile" and len(frame):
            missing = np.flatnonzero(shapely.is_missing(np.asarray(frame.geometry.values)))
            if len(missing):
                rows = frame.index.to_numpy()[missing]
                broken = shp_broken_rows(ds.parts, rows)
                if broken:
                    for row, why in broken.items():
                        notes.append(unreadable_note(row, why))
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
        enc_origin: EncodingOrigin | None = None
        if ds.kind == "shapefile":
            cpg = None
            if ".cpg" in ds.parts:
                cpg = ds.parts[".cpg"].read_bytes().decode("latin-1").strip()
            frame, enc, detection = decode_legacy_text(frame, label=where, forced=forced,
                                                       implied=None, cpg=cpg, notes=notes)
            if forced:
                enc_origin = _GIVEN
                if cpg is not None and enc != cpg_name(cpg):
                    enc_origin = EncodingOrigin(
                        "given", f"tùy chọn --encoding (thay cho tệp .cpg {cpg!r})",
                        f"--encoding (overriding the .cpg file {cpg!r})")
            elif detection is not None and detection.from_cpg:
                enc_origin = EncodingOrigin("cpg", f"tệp .cpg ({cpg!r})",
                                            f"the .cpg file ({cpg!r})")
        elif ds.kind == "dxf":
            implied = dxf_implied_encoding(ds.path)
            frame, enc, detection = decode_legacy_text(
                frame, label=where, forced=forced, implied=implied, cpg=None, notes=notes)
            frame = dxf_tidy(frame, notes)
            if forced:
                enc_origin = _GIVEN
            elif implied is not None:
                enc_origin = EncodingOrigin("header", "phần đầu (header) của bản vẽ DXF",
                                            "the DXF drawing's header")
        else:
            frame = normalise_utf8_text(flatten_nested(frame))
            enc = "utf-8" if text_columns(frame) else None
            name = KIND_NAME[ds.kind]
            enc_origin = EncodingOrigin("format", f"định dạng {name} (luôn là UTF-8)",
                                        f"the {name} format (always UTF-8)")
            if forced is not None and forced != "utf-8":
                notes.append(Note(
                    "READ-ENCODING-IGNORED", "warning",
                    f"Định dạng {KIND_NAME[ds.kind]} luôn dùng UTF-8; bảng mã "
                    f"{DISPLAY[forced]} được chỉ định đã không được dùng.",
                    f"{KIND_NAME[ds.kind]} text is UTF-8 by specification; the encoding "
                    f"given ({DISPLAY[forced]}) was not used."))
            if ds.kind == "kml":
                frame = kml_tidy(frame)
        nul_notes(frame, nul_columns, notes)  # after decoding: columns named as decoded
        if enc is None:
            enc_origin = None  # no text: no encoding to speak of
        elif enc_origin is None:
            enc_origin = _DETECTED

        frame = drop_z(frame, notes)
        declared, origin = declared_crs(frame, chosen, notes)
        if declared is None and frame.crs is not None:
            frame = frame.set_crs(None, allow_override=True)
        driver = _driver_name(ds.kind)
        return SourceLayer(
            frame=frame, declared_crs=declared, crs_origin=origin, source_name=ds.label,
            sha256=digest, driver=driver, layer=chosen.name,
            layers_available=[c.name for c in cands], encoding=enc,
            encoding_detection=detection if forced is None else None, notes=notes,
            encoding_origin=enc_origin)


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
    with scratch_folder(None) as scratch:
        _, _, datasets = resolve_upload(Path(path), scratch, MAX_UPLOAD_BYTES_DEFAULT, None)
        return [c.name for c in layer_candidates(datasets)]


def _driver_name(kind: str) -> str:
    if kind == "kml":
        return "LIBKML" if "LIBKML" in pyogrio.list_drivers() else "KML"
    return {"shapefile": "ESRI Shapefile", "gpkg": "GPKG", "geojson": "GeoJSON",
            "fgb": "FlatGeobuf", "dxf": "DXF"}[kind]
