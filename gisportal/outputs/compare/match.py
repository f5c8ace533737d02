"""Pairing the features of two versions: by key first, then by geometry.

The matchers return positional index pairs into the arrays they are given, one to one.
Nothing here looks at all pairs: keys meet in a hash join, geometries through an
STRtree, and an intersection is computed only for the pairs whose bounding boxes
leave room for the overlap asked for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from shapely.errors import GEOSException

__all__ = ["key_pairs", "same_shape", "overlap", "geometry_pairs", "areas", "make_valid"]

_EMPTY = np.empty(0, dtype=np.intp)


def areas(geoms: np.ndarray) -> np.ndarray:
    """m² of each geometry in a projected CRS, 0 for a missing one."""
    return np.nan_to_num(shapely.area(geoms), nan=0.0)


def key_pairs(before: pd.DataFrame, after: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the features whose key is complete and appears once on each side.

    A key with a missing part, or one that several features share (a draft may have
    duplicate keys), identifies nothing: those features are left to the geometry.
    """
    if before.shape[1] == 0:
        return _EMPTY, _EMPTY

    def usable(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.reset_index(drop=True)
        ok = frame.notna().all(axis=1) & ~frame.duplicated(keep=False)
        return frame[ok].assign(__pos=np.flatnonzero(ok.to_numpy()))

    merged = usable(before).merge(usable(after), on=list(before.columns),
                                  suffixes=("_b", "_a"), sort=False)
    order = np.argsort(merged["__pos_b"].to_numpy(), kind="stable")
    return (merged["__pos_b"].to_numpy(dtype=np.intp)[order],
            merged["__pos_a"].to_numpy(dtype=np.intp)[order])


def same_shape(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    """Whether each pair has the same vertices within `tolerance` (metres).

    Where the ring starts and which way it turns do not count: pairs that differ as
    stored are compared again in normalised form. Two missing geometries are the same.
    """
    same = np.asarray(shapely.equals_exact(a, b, tolerance=tolerance), dtype=bool)
    missing_a, missing_b = shapely.is_missing(a), shapely.is_missing(b)
    retry = ~same & ~missing_a & ~missing_b
    if retry.any():
        same[retry] = shapely.equals_exact(shapely.normalize(a[retry]),
                                           shapely.normalize(b[retry]), tolerance=tolerance)
    return same | (missing_a & missing_b)


def make_valid(geoms: np.ndarray) -> np.ndarray:
    """`geoms` with the invalid ones made valid ("structure" method, as repair does)."""
    bad = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    if not bad.any():
        return geoms
    geoms = geoms.copy()
    geoms[bad] = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
    return geoms


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection m², intersection over union (0 to 1) and symmetric difference m² of
    each pair.

    Invalid shapes (a draft may hold them) are made valid first rather than failing the
    whole comparison; all three figures then come from the valid shapes.
    """
    try:
        inter = areas(shapely.intersection(a, b))
    except GEOSException:
        a, b = make_valid(a), make_valid(b)
        inter = areas(shapely.intersection(a, b))
    area_a, area_b = areas(a), areas(b)
    union = area_a + area_b - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return inter, np.clip(iou, 0.0, 1.0), np.clip(union - inter, 0.0, None)


def _iou_bound(a: np.ndarray, b: np.ndarray, qa: np.ndarray, qb: np.ndarray,
               area_a: np.ndarray, area_b: np.ndarray) -> np.ndarray:
    """An upper bound of each candidate pair's IoU from its bounding boxes and areas.

    The intersection is at most the smaller area and at most the overlap of the two
    boxes; IoU grows with the intersection, so plugging that bound in bounds it. Two
    neighbouring parcels, whose boxes barely overlap, are ruled out without GEOS.
    """
    ba, bb = shapely.bounds(a)[qa], shapely.bounds(b)[qb]
    wide = np.minimum(ba[:, 2], bb[:, 2]) - np.maximum(ba[:, 0], bb[:, 0])
    high = np.minimum(ba[:, 3], bb[:, 3]) - np.maximum(ba[:, 1], bb[:, 1])
    boxes = np.clip(wide, 0, None) * np.clip(high, 0, None)
    most = np.minimum(np.minimum(area_a[qa], area_b[qb]), boxes)
    union = area_a[qa] + area_b[qb] - most
    return np.divide(most, union, out=np.zeros_like(most), where=union > 0)


def _one_to_one(qa: np.ndarray, qb: np.ndarray, symdiff: np.ndarray,
                iou: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep each feature in its best pair only: greedily, highest IoU first.

    Above an IoU of 0.5 a feature of a clean layer has at most one partner, so the
    loop below only runs for overlapping drafts; it is linear in the candidates.
    """
    order = np.lexsort((qb, qa, -iou))
    qa, qb, symdiff, iou = qa[order], qb[order], symdiff[order], iou[order]
    if len(np.unique(qa)) == len(qa) and len(np.unique(qb)) == len(qb):
        return qa, qb, symdiff, iou
    used_a: set[int] = set()
    used_b: set[int] = set()
    keep = np.zeros(len(qa), dtype=bool)
    for i, (x, y) in enumerate(zip(qa.tolist(), qb.tolist(), strict=True)):
        if x not in used_a and y not in used_b:
            used_a.add(x)
            used_b.add(y)
            keep[i] = True
    return qa[keep], qb[keep], symdiff[keep], iou[keep]


def geometry_pairs(a: np.ndarray, b: np.ndarray, threshold: float,
                   tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair features of `a` and `b` whose intersection over union is above `threshold`.

    Candidates come from an STRtree of `b` queried with the boxes of `a` (vectorised);
    the box bound of `_iou_bound` drops most of them, identical shapes are paired
    without an intersection, and only the rest are intersected. The intersects
    predicate is not asked of the tree: it would run GEOS on every touching neighbour
    (2 s for 200 000 parcels) when the IoU needs the intersection area anyway.

    Returns
    -------
    tuple of arrays
        Positions in `a`, positions in `b`, symmetric difference m², IoU — one to one.
    """
    empty = (_EMPTY, _EMPTY, np.empty(0), np.empty(0))
    if len(a) == 0 or len(b) == 0:
        return empty
    area_a, area_b = areas(a), areas(b)
    qa, qb = shapely.STRtree(b).query(a)
    possible = _iou_bound(a, b, qa, qb, area_a, area_b) > threshold
    qa, qb = qa[possible], qb[possible]
    if len(qa) == 0:
        return empty
    iou = np.zeros(len(qa))
    symdiff = np.zeros(len(qa))
    same = same_shape(a[qa], b[qb], tolerance)
    iou[same] = 1.0
    # A feature with an identical partner keeps it (IoU 1 beats any other pair): its
    # other candidates need no intersection.
    paired_a = np.zeros(len(a), dtype=bool)
    paired_b = np.zeros(len(b), dtype=bool)
    paired_a[qa[same]] = True
    paired_b[qb[same]] = True
    todo = ~same & ~paired_a[qa] & ~paired_b[qb]
    if todo.any():
        _, iou[todo], symdiff[todo] = overlap(a[qa[todo]], b[qb[todo]])
    ok = iou > threshold
    return _one_to_one(qa[ok], qb[ok], symdiff[ok], iou[ok])
