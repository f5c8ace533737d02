"""Geometries that are in the file but cannot be read: said as such, not as "empty".

GDAL turns a geometry it cannot parse into no geometry at all: random bytes or a
truncated WKB in a GeoPackage come back as None, and the validator would then report
"Feature has no geometry" (GEOM-EMPTY), the wrong cause and the wrong fix. Coordinates
that are not numbers (NaN, infinity) do get through, and then mislead every measure
downstream: a layer's extent, the placement check, areas, numpy's warnings on stderr.

:func:`drop_unreadable` finds both kinds, reports each feature as ``GEOM-UNREADABLE``
(an error, with the row and the reason) and leaves the row out, as the reader does with
any other damaged record: the rest of the layer is validated as usual, and a genuinely
missing geometry is still GEOM-EMPTY.
"""

from __future__ import annotations

import numpy as np
import shapely
from geopandas import GeoDataFrame

from gisportal.pipeline.read.geopackage import unreadable_blobs
from gisportal.pipeline.read.layers import Candidate
from gisportal.pipeline.read.notes import Note

__all__ = ["GEOM_UNREADABLE", "drop_unreadable", "unreadable_geometry_note"]

GEOM_UNREADABLE = "GEOM-UNREADABLE"
#: Geometries whose coordinates are checked at once (bounds the memory of the check).
_CHUNK = 50_000
_NOT_NUMBERS = ("tọa độ không phải là số (NaN hoặc vô cực)",
                "its coordinates are not numbers (NaN or infinite)")


def unreadable_geometry_note(row: int, why_vi: str, why_en: str) -> Note:
    """The ``GEOM-UNREADABLE`` note for one source row."""
    return Note(GEOM_UNREADABLE, "error",
                f"Không đọc được hình học của đối tượng: {why_vi}. Đối tượng đã bị bỏ qua; "
                "hãy vẽ lại hoặc xuất lại nó từ phần mềm GIS.",
                f"The feature's geometry cannot be read: {why_en}. The feature was left "
                "out; draw it again or export it again from the GIS software.", row=row)


def _non_finite(geoms: np.ndarray) -> np.ndarray:
    """Positions of geometries with a NaN or infinite x or y."""
    bad: list[np.ndarray] = []
    for start in range(0, len(geoms), _CHUNK):
        coords, index = shapely.get_coordinates(geoms[start:start + _CHUNK],
                                                return_index=True)
        with np.errstate(invalid="ignore"):
            wrong = ~np.isfinite(coords).all(axis=1)
        if wrong.any():
            bad.append(np.unique(index[wrong]) + start)
    return np.concatenate(bad) if bad else np.empty(0, dtype=np.int64)


def drop_unreadable(c: Candidate, frame: GeoDataFrame, notes: list[Note]) -> GeoDataFrame:
    """Leave out features whose geometry is there but unreadable, with a note each.

    Rows already noted ``GEOM-UNREADABLE`` by the record reader (a WKB GEOS cannot
    build) are left out too.
    """
    geoms = np.asarray(frame.geometry.values)
    labels = frame.index.to_numpy()
    reasons: dict[int, tuple[str, str]] = {}
    for pos in _non_finite(geoms).tolist():
        reasons[int(labels[pos])] = _NOT_NUMBERS
    if c.dataset.kind == "gpkg" and c.inner is not None:
        missing = np.flatnonzero(shapely.is_missing(geoms))
        if len(missing):
            reasons.update(unreadable_blobs(c.dataset.path, c.inner,
                                            labels[missing].astype(np.int64)))
    noted = {n.row for n in notes if n.code == GEOM_UNREADABLE}
    for row in sorted(reasons):
        if row not in noted:
            notes.append(unreadable_geometry_note(row, *reasons[row]))
    drop = [r for r in sorted(noted | set(reasons)) if r in frame.index]
    return frame.drop(index=drop) if drop else frame
