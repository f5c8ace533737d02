"""Geometry repair: fix what a machine can fix safely, and list every change made.

Repair is never the default and never silent. :func:`repair` takes a
:class:`~gisportal.pipeline.normalise.NormalisedLayer` and returns a :class:`RepairResult`: the
repaired frame (same columns, CRS and row order; features not changed are the very
same geometry objects, so their WKB is bit-identical) and one :class:`Change` per
action on a feature, with the source row, the area before and after, and a sentence
in English and Vietnamese saying what was done and where. A planner reviews the list;
nothing is repaired behind their back.

Action codes (stable, like rule codes)
--------------------------------------
``REPAIR-REPEATED-POINTS``
    Consecutive vertices closer than 1 mm (:data:`VERTEX_TOLERANCE_M`) merged with
    ``shapely.remove_repeated_points``. Valid per GEOS, but they trouble
    vertex-based tools (snapping, simplification, CAD export) and show up as
    GEOM-REPEATED-POINTS; a ring that would collapse is left to make_valid.
``REPAIR-MAKE-VALID``
    An invalid polygon rebuilt with ``shapely.make_valid(method="structure",
    keep_collapsed=False)``, keeping only polygonal parts. The ``structure`` method
    reads rings as shells and holes (the linework method would turn a doubly drawn
    area into a hole): a bow-tie becomes a MultiPolygon of its two triangles; a ring
    that touches itself becomes a polygon with a hole; a hole lying wholly outside its
    shell becomes a separate polygon (GEOS 3.14 keeps it; ``detail`` says what
    happened to each one); a part nested inside another part is merged into it; a
    zero-area spike ("antenna": the ring runs out and back along the same line) is
    cut off, since GEOS sees it as a self-intersection. Spikes with a tiny but
    non-zero area are valid and are *not* touched — telling them from a real narrow
    strip needs a judgement a planner makes better.
``REPAIR-EMPTY-DROPPED``
    The geometry collapsed to nothing when made valid (a ring with too few distinct
    points, a polygon flattened onto a line): the feature is removed from the frame.
    Features that arrived empty are left alone (GEOM-EMPTY still reports them: the
    record may matter even without a shape).
``REPAIR-OVERLAP-TRIMMED`` / ``REPAIR-GAP-FILLED`` / ``REPAIR-SNAPPED``
    Small overlaps and narrow gaps between neighbours cleaned with
    ``shapely.coverage_clean`` (see below). A feature that lost area is
    ``OVERLAP-TRIMMED``, one that gained area ``GAP-FILLED`` (when both happen, the
    larger decides and ``detail`` gives both); ``SNAPPED`` is a feature whose
    vertices moved (by at most 1 mm) onto a neighbour's boundary without moving any
    area above 1 mm².

Overlaps and gaps
-----------------
Only *small* defects between neighbours of a coverage layer (parcels, plan zones:
:data:`~gisportal.pipeline.validation.topology.TOPOLOGY_KINDS`) are repaired: an overlap of
at most ``overlap_tolerance_m2`` and a gap at most ``snap_tolerance_m`` wide.
Overlaps above the tolerance are **not** repaired: they are real errors (a parcel
drawn over its neighbour, a zone digitised twice) that a planner must resolve — the
same line the TOPO-OVERLAP rule draws, with the same threshold of the layer model,
so what validation calls an error repair leaves alone, and what it counts as minor
(TOPO-OVERLAP-MINOR) repair trims. Features in a big overlap are left exactly as
they are, even where they also have small defects. Boundary layers are not
coverages (a district row covers its communes) and get no overlap/gap repair.
Cleaning a whole 200 000-feature layer would be slow and would touch
features with nothing wrong, so the work is local:

1. ``shapely.coverage_invalid_edges`` (one GEOS pass over the layer) flags features
   whose edges overlap a neighbour, lie within the gap width of one, or are not
   noded with one (a T-junction — harmless, filtered out next).
2. An ``STRtree`` query pairs each flagged feature with the neighbours it meets;
   a DE-9IM test keeps the pairs whose interiors meet, and only those get an exact
   intersection. An intersection above 1 mm² (:data:`NOISE_AREA_M2`, below which
   it is floating-point noise of unnoded shared edges) and at most the tolerance is
   a small overlap; above it, a big one. A gap edge is an edge GEOS flags with the
   gap width but not without it (overlapping and unmatched edges are flagged
   either way); a second ``STRtree`` query pairs it with the features within the
   gap width across it.
3. Connected groups of small-overlap and gap pairs (without the features in big
   overlaps) are cleaned one group at a time with ``coverage_clean(gap_width=tol,
   snapping_distance=1 mm, merge_strategy="longest_border")``: an overlap goes to
   the neighbour sharing the longest border with it, a gap to its neighbour with the
   longest border. Snapping stays at 1 mm on purpose: at the gap width (5 cm) GEOS
   snaps a shared corner towards the gap as readily as the gap's edge towards its
   neighbour, tilting the edges of zones that had nothing wrong. A group is left as
   it was when cleaning would leave any member empty or invalid (a feature never
   disappears because of its neighbour).
4. A member whose cleaned geometry is topologically equal to its input (only
   vertices added where a neighbour's vertex lies on its edge) keeps its input
   geometry unchanged; every other member is listed as a change.

A gap is filled when features enclose it: a gap wider than the tolerance, or one
open to the layer's outer edge (a notch in the district outline, not a hole between
neighbours), is left as it is.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gisportal.pipeline.normalise import NormalisedLayer
from gisportal.pipeline.validation.topology import TOPOLOGY_KINDS

__all__ = ["ACTIONS", "Change", "RepairResult", "repair", "SNAP_THRESHOLD",
           "OVERLAP_THRESHOLD",
           "VERTEX_TOLERANCE_M", "NOISE_AREA_M2"]

#: Layer-model threshold (``layers/<kind>.json`` → ``thresholds``): widest gap
#: between neighbours that repair fills, in metres.
SNAP_THRESHOLD = "repair_snap_tolerance_m"
#: Layer-model threshold, shared with TOPO-OVERLAP: overlaps of at most this area
#: (m²) are trimmed; larger ones are left for the planner.
OVERLAP_THRESHOLD = "overlap_tolerance_m2"
#: Consecutive vertices closer than this are one vertex (1 mm: far below survey
#: precision, far above floating-point noise at VN-2000 coordinates of ~10⁶ m).
VERTEX_TOLERANCE_M = 0.001
#: Areas below this (1 mm²) are floating-point noise, not digitising errors.
NOISE_AREA_M2 = 1e-6

#: Action code → (English, Vietnamese) one-line description, for reports and docs.
ACTIONS: dict[str, tuple[str, str]] = {
    "REPAIR-REPEATED-POINTS": (
        "Repeated consecutive vertices (closer than 1 mm) removed",
        "Bỏ các đỉnh liên tiếp trùng nhau (cách nhau dưới 1 mm)"),
    "REPAIR-MAKE-VALID": (
        "Invalid geometry rebuilt with GEOS make_valid (structure method)",
        "Dựng lại hình học không hợp lệ bằng make_valid của GEOS (phương pháp structure)"),
    "REPAIR-EMPTY-DROPPED": (
        "Geometry collapsed to nothing when repaired: feature dropped",
        "Hình học suy biến thành rỗng khi sửa: đã bỏ đối tượng"),
    "REPAIR-OVERLAP-TRIMMED": (
        "Small overlap with a neighbour trimmed",
        "Cắt phần chồng lấn nhỏ với đối tượng liền kề"),
    "REPAIR-GAP-FILLED": (
        "Narrow gap to a neighbour filled",
        "Lấp khe hở hẹp với đối tượng liền kề"),
    "REPAIR-SNAPPED": (
        "Vertices snapped onto a neighbour's boundary, no area moved",
        "Bắt dính đỉnh vào ranh đối tượng liền kề, diện tích không đổi"),
}
_ORDER = {code: i for i, code in enumerate(ACTIONS)}
#: GEOS validity reasons in Vietnamese (the words the GEOM-INVALID message uses).
_KIND_VI = {
    "Self-intersection": "đường biên tự cắt",
    "Ring Self-intersection": "vòng biên tự chạm",
    "Hole lies outside shell": "lỗ nằm ngoài vùng bao",
    "Nested shells": "vùng bao lồng nhau",
    "Holes are nested": "lỗ lồng nhau",
    "Interior is disconnected": "phần trong bị chia cắt",
    "Too few points in geometry component": "quá ít điểm",
    "Invalid Coordinate": "tọa độ không hợp lệ",
    "Ring is not closed": "vòng biên không khép kín",
    "Duplicate Rings": "vòng trùng nhau",
}
_REASON = re.compile(r"^(?P<kind>[^\[]*)\[\s*(?P<x>\S+)\s+(?P<y>\S+)\s*\]")


@dataclass(frozen=True)
class Change:
    """One action on one feature.

    ``row`` is the feature's ``src_row`` (0-based row in the source file) so the
    planner finds it in their own software; areas are in m² in the store CRS. For an
    invalid input ``area_before_m2`` is what GEOS computes for it (a bow-tie's two
    lobes cancel out, so it may be 0).
    """

    row: int
    action: str
    area_before_m2: float
    area_after_m2: float
    detail: str
    detail_vi: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "action": self.action,
                "area_before_m2": round(self.area_before_m2, 4),
                "area_after_m2": round(self.area_after_m2, 4),
                "area_change_m2": round(self.area_after_m2 - self.area_before_m2, 4),
                "detail": self.detail, "detail_vi": self.detail_vi}


@dataclass
class RepairResult:
    """The repaired frame and the list of what was changed in it.

    ``frame`` has the input's columns, CRS and row order, minus dropped rows (each
    one a ``REPAIR-EMPTY-DROPPED`` change), with a fresh 0..n-1 index like every
    normalised frame; ``src_row`` still names the source row.
    """

    frame: gpd.GeoDataFrame
    changes: list[Change]
    snap_tolerance_m: float
    overlap_tolerance_m2: float
    dropped_rows: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts per action, features touched and area moved, for a report header."""
        by_action = Counter(c.action for c in self.changes)
        area = {a: 0.0 for a in by_action}
        for c in self.changes:
            area[c.action] += c.area_after_m2 - c.area_before_m2
        return {
            "changes": len(self.changes),
            "features_changed": len({c.row for c in self.changes}),
            "features_dropped": len(self.dropped_rows),
            "by_action": {a: {"count": by_action[a], "area_change_m2": round(area[a], 4)}
                          for a in sorted(by_action, key=_ORDER.__getitem__)},
            "area_change_m2": round(sum(area.values()), 4),
            "snap_tolerance_m": self.snap_tolerance_m,
            "overlap_tolerance_m2": self.overlap_tolerance_m2,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: the summary and every change, in row order."""
        return {"summary": self.summary(), "changes": [c.to_dict() for c in self.changes]}

    def apply_to(self, layer: NormalisedLayer) -> NormalisedLayer:
        """``layer`` with the repaired frame, ready to validate again or store."""
        return dataclasses.replace(layer, frame=self.frame, findings=list(layer.findings))


# --------------------------------------------------------------------------- helpers

def _num(value: float, lang: str, digits: int = 2) -> str:
    text = f"{value:,.{digits}f}"
    if lang == "vi":  # Vietnamese: 1.234,56
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def _rows(rows: list[int]) -> str:
    return ", ".join(str(r) for r in sorted(set(rows)))


def _where(reason: str) -> tuple[str, str]:
    """(kind of defect, "(x y)" rounded to cm) from a GEOS validity reason."""
    m = _REASON.match(reason)
    if not m:
        return reason, ""
    try:
        x, y = float(m.group("x")), float(m.group("y"))
        at = f"({x:.2f} {y:.2f})"
    except ValueError:
        at = f"({m.group('x')} {m.group('y')})"
    return m.group("kind").strip(), at


def _n_parts(g: BaseGeometry) -> int:
    return 0 if g.is_empty else int(shapely.get_num_geometries(g))


def _n_holes(g: BaseGeometry) -> int:
    return int(sum(shapely.get_num_interior_rings(p) for p in shapely.get_parts(g)))


def _as_polygonal(g: BaseGeometry | None, multi: bool) -> BaseGeometry:
    """Only the polygonal parts of ``g``: a Polygon, a MultiPolygon or an empty Polygon.

    A MultiPolygon input stays a MultiPolygon (a layer read from a GeoPackage is
    often all-multi); a Polygon becomes a MultiPolygon only when it splits.
    """
    parts: list[BaseGeometry] = []
    stack = [g] if g is not None else []
    while stack:
        cur = stack.pop()
        if cur.is_empty:
            continue
        tid = shapely.get_type_id(cur)
        if tid == 3:
            parts.append(cur)
        elif tid in (6, 7):
            stack.extend(shapely.get_parts(cur)[::-1])
    if not parts:
        return shapely.Polygon()
    if len(parts) == 1 and not multi:
        return parts[0]
    return shapely.MultiPolygon(parts)


def _make_valid(geoms: np.ndarray) -> np.ndarray:
    """make_valid (structure) on an array; one geometry at a time if GEOS refuses one."""
    try:
        return shapely.make_valid(geoms, method="structure", keep_collapsed=False)
    except shapely.errors.GEOSException:
        out = np.empty(len(geoms), dtype=object)
        for i, g in enumerate(geoms):
            try:
                out[i] = shapely.make_valid(g, method="structure", keep_collapsed=False)
            except shapely.errors.GEOSException:
                out[i] = None  # left as it was; validation keeps reporting it
        return out


def _remove_repeated(geoms: np.ndarray) -> np.ndarray:
    """remove_repeated_points; None where it would collapse a ring (GEOS raises)."""
    try:
        return shapely.remove_repeated_points(geoms, VERTEX_TOLERANCE_M)
    except shapely.errors.GEOSException:
        out = np.empty(len(geoms), dtype=object)
        for i, g in enumerate(geoms):
            try:
                out[i] = shapely.remove_repeated_points(g, VERTEX_TOLERANCE_M)
            except shapely.errors.GEOSException:
                out[i] = None
        return out


def _make_valid_detail(reason: str, before: BaseGeometry,
                       after: BaseGeometry) -> tuple[str, str]:
    """Say in both languages what make_valid did, from the GEOS reason and the result."""
    kind, at = _where(reason)
    low = kind.lower()
    pb, pa = _n_parts(before), _n_parts(after)
    same_area = abs(shapely.area(after) - shapely.area(before)) <= NOISE_AREA_M2
    fewer_vertices = shapely.get_num_coordinates(after) < shapely.get_num_coordinates(before)
    spike = same_area and pa == pb and fewer_vertices and _n_holes(after) == _n_holes(before)
    if low.startswith("self-intersection") and pa > pb:
        return (f"self-intersection at {at} split into {pa} polygons",
                f"đường biên tự cắt tại {at}: tách thành {pa} đa giác")
    if low.startswith(("self-intersection", "ring self-intersection")) and spike:
        return (f"spike (zero-area antenna) at {at} cut off",
                f"gai (đoạn nhô ra không có diện tích) tại {at}: đã cắt bỏ")
    if low.startswith("ring self-intersection") and _n_holes(after) > _n_holes(before):
        return (f"ring touching itself at {at} rebuilt as a polygon with a hole",
                f"vòng biên tự chạm tại {at}: dựng lại thành đa giác có lỗ")
    if low.startswith("hole lies outside shell"):
        if pa > pb:
            return (f"hole lying outside its shell at {at} became a separate polygon "
                    "(GEOS structure method)",
                    f"lỗ nằm ngoài vùng bao tại {at}: tách thành đa giác riêng "
                    "(phương pháp structure của GEOS)")
        return (f"hole lying outside its shell at {at} dropped (GEOS structure method)",
                f"lỗ nằm ngoài vùng bao tại {at}: đã bỏ (phương pháp structure của GEOS)")
    if low.startswith("nested shells"):
        return (f"polygon part nested inside another part at {at} merged into it",
                f"vùng bao lồng trong vùng bao khác tại {at}: gộp vào vùng bao ngoài")
    if low.startswith("holes are nested"):
        return (f"hole nested inside another hole at {at} merged into the outer hole",
                f"lỗ nằm trong lỗ khác tại {at}: gộp vào lỗ bao ngoài")
    if low.startswith("interior is disconnected"):
        return (f"holes cutting the polygon apart at {at}: split into {pa} polygons",
                f"các lỗ chia cắt đa giác tại {at}: tách thành {pa} đa giác")
    if low.startswith("too few"):
        return (f"ring with too few distinct points at {at} removed",
                f"vòng biên có quá ít điểm phân biệt tại {at}: đã bỏ")
    if low.startswith("invalid coordinate"):
        return (f"invalid coordinate {at} removed",
                f"tọa độ không hợp lệ {at}: đã bỏ")
    return (f"invalid geometry ({kind} at {at}) rebuilt with GEOS make_valid (structure)",
            f"hình học không hợp lệ ({_KIND_VI.get(kind, kind)} tại {at}) đã dựng lại bằng "
            "make_valid (structure)")


# ----------------------------------------------------------------------- the steps

@dataclass
class _Work:
    """Geometries being repaired, by frame position, and the changes so far."""

    geoms: np.ndarray
    src_rows: np.ndarray
    multi: np.ndarray
    changes: list[tuple[int, int, Change]] = field(default_factory=list)
    dropped: set[int] = field(default_factory=set)

    def record(self, pos: int, action: str, before: float, after: float, en: str,
               vi: str) -> None:
        self.changes.append((pos, _ORDER[action], Change(
            int(self.src_rows[pos]), action, float(before), float(after), en, vi)))


def _step_repeated_points(w: _Work, pos: np.ndarray) -> None:
    """Merge vertices closer than 1 mm, only where some are (found in one vector pass)."""
    if len(pos) == 0:
        return
    coords, idx = shapely.get_coordinates(w.geoms[pos], return_index=True)
    step = np.hypot(*np.diff(coords, axis=0).T)
    close = (idx[1:] == idx[:-1]) & (step <= VERTEX_TOLERANCE_M)
    cand = pos[np.unique(idx[1:][close])]
    if len(cand) == 0:
        return
    before = w.geoms[cand]
    after = _remove_repeated(before)
    for p, b, a in zip(cand, before, after, strict=True):
        if a is None:
            continue  # a ring would collapse: make_valid decides below
        removed = int(shapely.get_num_coordinates(b) - shapely.get_num_coordinates(a))
        if removed <= 0:
            continue  # the close pair spanned two rings, not one
        w.geoms[p] = a
        w.record(p, "REPAIR-REPEATED-POINTS", shapely.area(b), shapely.area(a),
                 f"{removed} repeated {'vertex' if removed == 1 else 'vertices'} (closer "
                 "than 1 mm to the previous one) removed",
                 f"bỏ {removed} đỉnh trùng lặp (cách đỉnh trước dưới 1 mm)")


def _step_make_valid(w: _Work, pos: np.ndarray) -> None:
    """Rebuild invalid polygons; drop the ones that collapse to nothing."""
    if len(pos) == 0:
        return
    bad = pos[~shapely.is_valid(w.geoms[pos])]
    if len(bad) == 0:
        return
    before = w.geoms[bad]
    reasons = shapely.is_valid_reason(before)
    fixed = _make_valid(before)
    for p, b, r, f in zip(bad, before, reasons, fixed, strict=True):
        if f is None:
            continue
        a = _as_polygonal(f, bool(w.multi[p]))
        area_b = float(shapely.area(b))
        if a.is_empty:
            kind, at = _where(r)
            w.dropped.add(int(p))
            w.record(p, "REPAIR-EMPTY-DROPPED", area_b, 0.0,
                     f"geometry collapsed to nothing when made valid ({kind} at {at}): "
                     "feature dropped",
                     f"hình học suy biến thành rỗng khi sửa ({_KIND_VI.get(kind, kind)} tại {at}): "
                     "đã bỏ đối tượng")
            continue
        if not shapely.is_valid(a):
            continue  # cannot happen with GEOS ≥ 3.10; never hand back a worse shape
        en, vi = _make_valid_detail(r, b, a)
        w.geoms[p] = a
        w.record(p, "REPAIR-MAKE-VALID", area_b, shapely.area(a), en, vi)


def _components(n: int, edges: np.ndarray) -> list[np.ndarray]:
    """Connected components (size ≥ 2) of an undirected graph on 0..n-1 (union-find)."""
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[ra] = rb
    nodes = np.unique(edges) if len(edges) else np.empty(0, dtype=int)
    roots = np.array([find(int(i)) for i in nodes])
    return [nodes[roots == r] for r in np.unique(roots)]


def _pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unordered pairs (i < j), each once, from two index arrays; self-pairs dropped."""
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    if len(lo) == 0:
        return np.empty((0, 2), dtype=np.intp)
    return np.unique(np.stack([lo, hi], axis=1), axis=0)


def _step_coverage(w: _Work, pos: np.ndarray, gap_width: float, overlap_tol: float) -> None:
    """Trim small overlaps and fill narrow gaps, group by group (see module docstring)."""
    if len(pos) < 2:
        return
    g = w.geoms[pos]
    inv = shapely.coverage_invalid_edges(g, gap_width=gap_width)
    flagged = np.flatnonzero(~(shapely.is_missing(inv) | shapely.is_empty(inv)))
    if len(flagged) == 0:
        return
    tree = shapely.STRtree(g)

    # Overlaps: flagged features and the neighbours they meet; the exact (costly)
    # intersection only for the pairs whose interiors meet (DE-9IM T********).
    qi, qj = tree.query(g[flagged], predicate="intersects")
    pairs = _pairs(flagged[qi], qj)
    inner = shapely.relate_pattern(g[pairs[:, 0]], g[pairs[:, 1]], "T********")
    pairs = pairs[inner]
    overlap = shapely.area(shapely.intersection(g[pairs[:, 0]], g[pairs[:, 1]]))
    big = overlap > overlap_tol
    small = (overlap > NOISE_AREA_M2) & ~big

    # Gaps: edges GEOS flags with the gap width but not without it face a neighbour
    # across a narrow gap (overlapping and unmatched edges are flagged either way;
    # both runs give the polygon's own segments, so the difference is exact).
    local = np.union1d(flagged, qj)
    inv0 = shapely.coverage_invalid_edges(g[local], gap_width=0.0)
    gap_edges = shapely.difference(inv[flagged], inv0[np.searchsorted(local, flagged)])
    real = shapely.length(gap_edges) > VERTEX_TOLERANCE_M
    gi, gj = tree.query(gap_edges[real], predicate="dwithin", distance=gap_width)
    gaps = _pairs(flagged[real][gi], gj)

    blocked = np.unique(pairs[big])
    links = np.concatenate([pairs[small], gaps])
    links = links[~np.isin(links, blocked).any(axis=1)]
    if len(links) == 0:
        return
    partners: dict[int, list[int]] = {}
    for i, j in links.tolist():
        partners.setdefault(i, []).append(j)
        partners.setdefault(j, []).append(i)
    for group in _components(len(g), links):
        _clean_group(w, pos, g, group, gap_width, partners)


def _along(before: BaseGeometry, after: BaseGeometry, g: np.ndarray, partners: list[int],
           gap_width: float) -> list[int]:
    """The partners along the area that moved, not those merely closing a gap's end.

    A partner counts when the moved area's outline runs along or inside it for more
    than twice the gap width and at least a quarter of the longest such run; when
    none does (a pure snap), every partner is named.
    """
    if not partners:
        return []
    moved = shapely.boundary(shapely.symmetric_difference(before, after))
    idx = np.asarray(partners)
    reach = shapely.length(shapely.intersection(
        moved, shapely.buffer(g[idx], VERTEX_TOLERANCE_M, quad_segs=2)))
    hit = idx[(reach > 2 * gap_width) & (reach >= 0.25 * reach.max())]
    return hit.tolist() if len(hit) else idx.tolist()


def _clean_group(w: _Work, pos: np.ndarray, g: np.ndarray, group: np.ndarray,
                 gap_width: float, partners: dict[int, list[int]]) -> None:
    before = g[group]
    try:
        after = shapely.coverage_clean(before, gap_width=gap_width,
                                       snapping_distance=VERTEX_TOLERANCE_M,
                                       merge_strategy="longest_border")
    except shapely.errors.GEOSException:
        return
    after = np.array([_as_polygonal(x, bool(w.multi[pos[k]]))
                      for x, k in zip(after, group, strict=True)], dtype=object)
    if (shapely.is_empty(after) | ~shapely.is_valid(after)).any():
        return  # never let a feature vanish or break because of its neighbour
    same = shapely.equals(before, after)
    if same.all():
        return
    changed = np.flatnonzero(~same)
    removed = shapely.area(shapely.difference(before[changed], after[changed]))
    added = shapely.area(shapely.difference(after[changed], before[changed]))
    for c, rem, add in zip(changed, removed, added, strict=True):
        k = int(group[c])
        p = int(pos[k])
        near = [int(w.src_rows[pos[j]]) for j in
                _along(before[c], after[c], g, partners.get(k, []), gap_width)]
        row_en = f"{'rows' if len(near) > 1 else 'row'} {_rows(near)}"
        row_vi = f"dòng {_rows(near)}"
        a_b, a_a = float(shapely.area(before[c])), float(shapely.area(after[c]))
        width = gap_width - VERTEX_TOLERANCE_M
        w_en, w_vi = f"{width:g}", f"{width:g}".replace(".", ",")
        parts_en, parts_vi = [], []
        if rem > NOISE_AREA_M2:
            parts_en.append(f"overlap of {_num(rem, 'en')} m² with {row_en} trimmed")
            parts_vi.append(f"cắt {_num(rem, 'vi')} m² chồng lấn với {row_vi}")
        if add > NOISE_AREA_M2:
            parts_en.append(f"gap of {_num(add, 'en')} m² (at most {w_en} m wide) next "
                            f"to {row_en} filled")
            parts_vi.append(f"lấp khe hở {_num(add, 'vi')} m² (rộng tối đa {w_vi} m) "
                            f"giáp {row_vi}")
        if not parts_en:
            action = "REPAIR-SNAPPED"
            parts_en.append(f"vertices snapped onto {row_en} (within 1 mm), no area moved")
            parts_vi.append(f"bắt dính đỉnh vào ranh {row_vi} (trong phạm vi 1 mm), "
                            "diện tích không đổi")
        else:
            action = "REPAIR-OVERLAP-TRIMMED" if rem >= add else "REPAIR-GAP-FILLED"
        w.geoms[p] = after[c]
        w.record(p, action, a_b, a_a, "; ".join(parts_en), "; ".join(parts_vi))


# ------------------------------------------------------------------------- the entry

def repair(layer: NormalisedLayer, *, snap_tolerance_m: float | None = None,
           overlap_tolerance_m2: float | None = None) -> RepairResult:
    """Repair the geometry of ``layer`` and list every change; the layer is not modified.

    Parameters
    ----------
    layer
        A normalised layer (frame in the store CRS, metres, with ``src_row``).
    snap_tolerance_m
        Widest gap between neighbours that is filled, in metres (GEOS ``gap_width``;
        1 mm is added so a gap drawn exactly this wide counts). Default: the layer
        model's ``repair_snap_tolerance_m`` threshold (coverage kinds; 0 for a
        boundary layer, which gets no coverage step). Vertices are snapped at 1 mm
        only, whatever this is (see the module docstring).
    overlap_tolerance_m2
        Overlaps between two features of at most this area (m²) are trimmed;
        larger ones are **not** repaired (a planner must decide who owns the land)
        and their features are left untouched. Default: the model's
        ``overlap_tolerance_m2`` threshold, the one TOPO-OVERLAP reads (0 for a
        boundary layer).

    Returns
    -------
    RepairResult
        The repaired frame (same columns and order; unchanged features keep the same
        geometry objects, so the same WKB) and the changes, sorted by row.

    Notes
    -----
    Only polygonal features are repaired; empty features and points or lines in a
    polygon layer are left for the validation report. The overlap/gap step runs for
    coverage kinds only (parcels, plan). Steps run in order — repeated points, make_valid, overlaps
    and gaps — so one feature may carry several changes, each with its own areas.
    Cost is a few vector passes over the layer plus work proportional to the
    defects: 1.5 s for 200 000 parcels with 300 defects (2 cores). A layer whose
    shared edges are not noded at all (every edge a T-junction) makes every feature
    a candidate: 7 s for 200 000, still without changing any of them.
    """
    model = layer.model
    kind = model.kind
    coverage = kind in TOPOLOGY_KINDS and model.geometry == "polygon"
    snap = float(snap_tolerance_m if snap_tolerance_m is not None
                 else model.threshold(SNAP_THRESHOLD) if coverage else 0.0)
    overlap_tol = float(overlap_tolerance_m2 if overlap_tolerance_m2 is not None
                        else model.threshold(OVERLAP_THRESHOLD) if coverage else 0.0)
    if snap < 0 or overlap_tol < 0:
        raise ValueError("repair tolerances must not be negative")

    frame = layer.frame
    original = np.asarray(frame.geometry.values, dtype=object)
    types = shapely.get_type_id(original)
    polygonal = np.isin(types, (3, 6)) & ~shapely.is_empty(original)
    w = _Work(geoms=original.copy(), src_rows=frame["src_row"].to_numpy(),
              multi=types == 6)
    pos = np.flatnonzero(polygonal)
    _step_repeated_points(w, pos)
    _step_make_valid(w, pos)
    if coverage:
        live = pos[~np.isin(pos, list(w.dropped))] if w.dropped else pos
        live = live[shapely.is_valid(w.geoms[live])]
        _step_coverage(w, live, snap + VERTEX_TOLERANCE_M, overlap_tol)

    out = frame.copy()
    col = frame.geometry.name
    out[col] = gpd.GeoSeries(w.geoms, index=frame.index, crs=frame.crs)
    dropped = sorted(w.dropped)
    if dropped:
        keep = np.ones(len(frame), dtype=bool)
        keep[dropped] = False
        out = out.iloc[keep].reset_index(drop=True)
    w.changes.sort(key=lambda t: (t[0], t[1]))
    return RepairResult(out, [c for _, _, c in w.changes], snap, overlap_tol,
                        [int(w.src_rows[p]) for p in dropped])


def write_repaired(layer: NormalisedLayer, path: str | Path) -> Path:
    """Write a repaired layer back as the planner sent it: the source columns under
    their own names, geometry in the store CRS (VN-2000 TM-3), as a GeoPackage.

    The planner can open it in QGIS, check the changes the report lists, and upload it.
    """
    from gisportal.pipeline.normalise import SOURCE_PREFIX

    frame = layer.frame
    cols = {c: c[len(SOURCE_PREFIX):] for c in frame.columns if c.startswith(SOURCE_PREFIX)}
    out = gpd.GeoDataFrame(frame[list(cols)].rename(columns=cols),
                           geometry=frame.geometry.values, crs=frame.crs)
    path = Path(path)
    path.unlink(missing_ok=True)
    out.to_file(path, layer=path.stem, driver="GPKG")
    return path
