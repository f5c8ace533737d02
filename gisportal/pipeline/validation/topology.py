"""Topology rules: overlaps, duplicates, gaps, coverage edges, features outside the district.

Parcels and plan zones are polygonal coverages: each piece of land belongs to one
feature. A district holds 200 000 parcels and more, so nothing here compares all
pairs. One GEOS coverage validation (``shapely.coverage_invalid_edges``, run on
spatial strips in threads because GEOS releases the GIL) marks every feature whose
boundary does not match its neighbours: a feature whose interior overlaps another one
always has such an edge (or is an exact duplicate, which GEOS also marks). Only those
features go to the STRtree, and exact intersections are computed only for the few
pairs it returns. Gaps come from unions of the marked features' neighbourhoods (parcels)
or of the whole layer (plan zones, a few hundred to a few thousand).

Measured on 200 000 generated parcels with a few hundred injected defects, 2 cores
(overlap candidates only): STRtree query "intersects" on every feature + intersection
of every pair 5.3 s; bounding-box query + box-overlap filter + intersection 6.2 s;
query "overlaps" + "contains" 6.2 s; query "intersects" + ``touches`` filter +
intersection 2.5 s; coverage edges as the filter 1.8 s on one thread, 1.0 s on two
strips in two threads (this module). All rules together: 1.4 s. A layer not built with
topology (shared edges with vertices on one side only) makes every parcel a candidate:
a probe on a sample detects it, skips the validation that would filter nothing and the
sliver search, and the exact pair test takes 6.2 s (``bench/bench_validate.py
--unnoded``).

Rules and the thresholds they read from ``layers/<kind>.json`` (only there):

``TOPO-OVERLAP`` (error)
    Two features whose interiors overlap by more than ``overlap_tolerance_m2``; one
    finding per pair, on the lower source row, naming the other row; located at the
    overlap. Containment is an overlap whose relation says so.
``TOPO-OVERLAP-MINOR`` (info)
    One finding per layer counting the pairs that overlap by at most the tolerance:
    digitising noise along shared edges is normal and must not bury the report, but
    the planner can still see how much of it there is.
``GEOM-DUPLICATE`` (error)
    Two features covering the same land: each covers the other up to
    ``min(overlap_tolerance_m2, duplicate_tolerance_relative × area)``. Reported
    instead of ``TOPO-OVERLAP`` for that pair.
``TOPO-GAP``
    Plan (error): the zones must cover the district; every piece of the district
    outline not covered by a zone (or, with no outline, every hole in the union of the
    zones) larger than ``gap_tolerance_m2``. Parcels (warning): cadastres leave
    unsurveyed land, so only enclosed slivers narrower than ``gap_width_m`` (maximum
    inscribed circle) and larger than ``gap_tolerance_m2`` are reported.
``TOPO-NOT-NODED`` (info, parcels)
    Instead of the sliver search when the shared edges of too many parcels do not match
    exactly (the layer was not built with topology): slivers cannot be told apart from
    mis-noding cheaply, and the planner learns why none were searched.
``TOPO-OUTSIDE-DISTRICT`` (error)
    A feature whose part outside the district outline exceeds both
    ``outside_tolerance_m2`` and ``outside_tolerance_relative`` of its area (boundaries
    are digitised at a coarser scale than parcels). Nothing without an outline.
``TOPO-COVERAGE-EDGE`` (warning, plan only)
    Zone edges that do not match the neighbouring zone (vertices missing on one side,
    slivers narrower than ``gap_width_m``), minus what an overlap, duplicate or gap
    finding already shows.

Invalid geometries (reported by GEOM-INVALID) take part after ``make_valid``; empty and
non-polygonal ones (GEOM-EMPTY, GEOM-TYPE) do not.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException

from gisportal.base import crs as vncrs
from gisportal.base.findings import Finding
from gisportal.pipeline.normalise import NormalisedLayer, feature_keys
from gisportal.pipeline.validation.context import ValidationContext

__all__ = ["TOPOLOGY_CHECKS", "TOPOLOGY_KINDS", "TOPOLOGY_THRESHOLDS", "check_topology",
           "check_overlaps", "check_gaps", "check_outside_district", "check_coverage_edges",
           # the coverage machinery the zoning checks use for planned lots
           "TopologyLayer", "findings_geojson", "inscribed_widths", "interior_holes",
           "overlap_findings"]

#: Layer kinds that are coverages; boundary layers are not checked here.
TOPOLOGY_KINDS = ("parcels", "plan")

#: The thresholds the topology rules read, all from ``layers/<kind>.json``.
TOPOLOGY_THRESHOLDS = ("overlap_tolerance_m2", "duplicate_tolerance_relative",
                       "gap_tolerance_m2", "gap_width_m", "outside_tolerance_m2",
                       "outside_tolerance_relative")

#: Locations are for drawing: longer outlines are simplified down to about this size.
MAX_LOCATION_VERTICES = 500
#: Below this many features (or pairs) threads cost more than they save.
PARALLEL_MIN = 20_000
#: Pairs overlaid per chunk: bounds the temporary geometries held at once.
OVERLAY_CHUNK = 20_000
#: Polygons validated at once at most by the coverage validation (bounds its answers).
STRIP_FEATURES = 25_000
#: Worker threads at most (GEOS calls release the GIL).
MAX_WORKERS = 4
#: Parcels unioned at most in the sliver search (about 2 s on badly noded data).
GAP_SEARCH_MAX = 20_000
#: Parcel layers this big are probed for noding on a sample of about PROBE_SIZE.
PROBE_MIN = 20_000
PROBE_SIZE = 2_000
#: Above this share of unmatched features in the probe a layer counts as not noded.
NOT_NODED_SHARE = 0.3
#: Gap widths are reported to this precision (m).
WIDTH_PRECISION_M = 0.005
#: Distance (m) within which a feature borders a gap.
_BORDER_M = 0.01
#: Residual coverage edges shorter than this (m) are rounding, not findings.
_MIN_EDGE_M = 0.01
#: Number of example rows named in layer-level findings.
_EXAMPLES = 10

_POLYGONAL = (3, 6)
_RELATION = {"overlaps": ("chồng lấn một phần", "partial overlap"),
             "within": ("nằm trong đối tượng kia", "lies inside the other feature"),
             "contains": ("chứa đối tượng kia", "contains the other feature")}


# --------------------------------------------------------------------------- helpers

def _workers() -> int:
    """Threads worth starting: the CPUs this process may use, at most MAX_WORKERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


def _chunked(func: Callable[..., np.ndarray], *arrays: np.ndarray,
             size: int | None = None) -> np.ndarray:
    """``func(*arrays)`` over chunks in threads: vectorised GEOS calls release the GIL.

    ``size`` caps a chunk, so that temporary geometries (an overlay per pair) never
    pile up for more than a chunk at a time.
    """
    n = len(arrays[0])
    workers = _workers()
    if (workers < 2 or n < PARALLEL_MIN) and (size is None or n <= size):
        return func(*arrays)
    pieces = max(workers, -(-n // size) if size else 1)
    bounds = np.linspace(0, n, pieces + 1).astype(int)
    with ThreadPoolExecutor(workers) as ex:
        parts = list(ex.map(lambda s: func(*(a[s[0]:s[1]] for a in arrays)),
                            zip(bounds[:-1], bounds[1:], strict=True)))
    return np.concatenate(parts)


def _coverage_edges(geoms: np.ndarray, gap_width: float) -> np.ndarray:
    """``shapely.coverage_invalid_edges`` on vertical strips, in threads.

    GEOS validates each polygon against the polygons whose envelopes come within
    ``gap_width`` of its own. A strip owns the polygons whose envelope centre falls in
    it and also holds every polygon within reach of them, so each owned polygon gets
    exactly the answer the whole layer would give. There is a strip per thread, and
    more for a big layer (at most STRIP_FEATURES each, then tiles rather than strips):
    GEOS answers every polygon of a call with a new geometry, an empty one for nearly
    all, and a million of those weigh 200 MB. A strip keeps only its unmatched edges;
    every polygon whose edges all match shares one empty LineString.

    Parameters
    ----------
    geoms
        Non-empty polygons (the strips are cut on their envelopes).
    gap_width
        As ``shapely.coverage_invalid_edges``: unmatched edges closer than this to
        another polygon's are reported too (slivers).

    Returns
    -------
    numpy.ndarray
        Per polygon, its invalid edges (an empty LineString when all match).
    """
    n = len(geoms)
    workers = _workers()
    strips = max(1 if workers < 2 or n < PARALLEL_MIN else workers, -(-n // STRIP_FEATURES))
    if strips < 2:
        return shapely.coverage_invalid_edges(geoms, gap_width=gap_width)
    b = shapely.bounds(geoms)
    # Columns cut on the envelope centres, then (for many strips) each column cut into
    # rows: a tile's neighbours along its edges are validated twice, and square tiles
    # have the shortest edges for their size.
    columns = max(1, min(strips, round(np.sqrt(strips)))) if strips > workers else strips
    rows = -(-strips // columns)
    xc = b[:, 0] + b[:, 2]  # in place: the same values, one array fewer at a time
    xc /= 2
    yc = b[:, 1] + b[:, 3]
    yc /= 2
    column = np.searchsorted(np.quantile(xc, np.linspace(0, 1, columns + 1)[1:-1]), xc,
                             side="right")
    tile = column * rows
    for c in range(columns):
        mine = column == c
        if rows > 1 and mine.any():
            cuts = np.quantile(yc[mine], np.linspace(0, 1, rows + 1)[1:-1])
            tile[mine] += np.searchsorted(cuts, yc[mine], side="right")
    del xc, yc, column
    jobs = []
    for t in range(columns * rows):
        own = tile == t
        if not own.any():
            continue
        lox, hix = b[own, 0].min() - gap_width, b[own, 2].max() + gap_width
        loy, hiy = b[own, 1].min() - gap_width, b[own, 3].max() + gap_width
        members = np.flatnonzero((b[:, 0] <= hix) & (b[:, 2] >= lox)
                                 & (b[:, 1] <= hiy) & (b[:, 3] >= loy))
        jobs.append((members, own[members]))
    del b, tile

    def unmatched(job: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        members, owned = job
        res = shapely.coverage_invalid_edges(geoms[members], gap_width=gap_width)
        keep = owned & ~(shapely.is_missing(res) | shapely.is_empty(res))
        return members[keep], res[keep]

    out = np.full(n, shapely.LineString(), dtype=object)
    with ThreadPoolExecutor(min(workers, len(jobs))) as ex:
        for rows, edges in ex.map(unmatched, jobs):
            out[rows] = edges
    return out


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection; a pair GEOS cannot overlay is retried on a 1 mm grid."""
    try:
        return shapely.intersection(a, b)
    except GEOSException:
        out = np.empty(len(a), dtype=object)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            try:
                out[i] = shapely.intersection(x, y)
            except GEOSException:
                out[i] = shapely.intersection(x, y, grid_size=0.001)
        return out


def _overlap_area(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area of each pairwise intersection, without keeping the intersections."""
    return _chunked(lambda x, y: shapely.area(_intersection(x, y)), a, b, size=OVERLAY_CHUNK)


def _polygonal(geom: Any) -> Any:
    """The polygonal part of an overlay result (collections also hold lines, points)."""
    if geom is None:
        return shapely.Polygon()
    t = shapely.get_type_id(geom)
    if t in _POLYGONAL:
        return geom
    if t != 7:
        return shapely.Polygon()
    parts = shapely.get_parts(shapely.get_parts(geom))
    polys = parts[np.isin(shapely.get_type_id(parts), _POLYGONAL)]
    if len(polys) == 0:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.multipolygons(polys)


def _polygon_parts(geom: Any) -> np.ndarray:
    """Single polygons of ``geom`` (lines and points of a collection dropped)."""
    parts = shapely.get_parts(shapely.get_parts(np.asarray([geom], dtype=object)))
    return parts[shapely.get_type_id(parts) == 3]


def interior_holes(geom: Any) -> np.ndarray:
    """The interior rings of ``geom``'s polygons, as polygons."""
    polys = _polygon_parts(geom)
    if len(polys) == 0:
        return polys
    rings, owner = shapely.get_rings(polys, return_index=True)
    exterior = np.r_[True, owner[1:] != owner[:-1]]
    return shapely.polygons(rings[~exterior])


def _simplified(geom: Any) -> Any:
    """``geom`` with at most about MAX_LOCATION_VERTICES vertices, for drawing."""
    if geom is None or shapely.get_num_coordinates(geom) <= MAX_LOCATION_VERTICES:
        return geom
    minx, miny, maxx, maxy = shapely.bounds(geom)
    tol = max(maxx - minx, maxy - miny) / MAX_LOCATION_VERTICES / 4
    out = geom
    for _ in range(12):
        out = shapely.simplify(geom, tol, preserve_topology=True)
        if shapely.get_num_coordinates(out) <= MAX_LOCATION_VERTICES:
            break
        tol *= 2
    return out


def findings_geojson(geoms: Sequence[Any]) -> list[dict | None]:
    """Store-CRS geometries → GeoJSON dicts in WGS 84 (lon, lat), 7 decimals (~1 cm)."""
    if len(geoms) == 0:
        return []
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = [_simplified(g) for g in geoms]

    def lonlat(xy: np.ndarray) -> np.ndarray:
        lon, lat = vncrs.to_lonlat(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), 7)

    empty = shapely.is_missing(arr) | shapely.is_empty(arr)
    ll = shapely.transform(arr, lonlat)
    return [None if e else json.loads(s)
            for e, s in zip(empty, shapely.to_geojson(ll), strict=True)]


def _key_label(key: dict) -> str:
    """A feature key as the planner reads it in a message: ``sheet=12, parcel=45``."""
    return ", ".join(f"{k}={v}" for k, v in key.items() if v is not None)


# --------------------------------------------------------------------------- analysis

class TopologyLayer:
    """The polygonal features of one layer, prepared once for every topology rule.

    Indices here are positions in ``geoms`` (the usable features); ``pos`` maps them to
    frame positions and ``src_row`` to source rows.
    """

    def __init__(self, norm: NormalisedLayer, ctx: ValidationContext) -> None:
        self.norm, self.ctx = norm, ctx
        self.kind = norm.model.kind
        geoms = np.asarray(norm.frame.geometry.values, dtype=object)
        usable = np.isin(shapely.get_type_id(geoms), _POLYGONAL) & ~shapely.is_empty(geoms)
        self.pos = np.flatnonzero(usable)
        g = geoms[self.pos].copy()
        invalid = ~norm.valid[self.pos]  # computed once for the whole engine
        if invalid.any():
            g[invalid] = shapely.make_valid(g[invalid], method="structure",
                                            keep_collapsed=False)
            kept = ~shapely.is_empty(g)  # a ring with no area repairs to nothing
            self.pos, g = self.pos[kept], g[kept]
        self.geoms = g
        self.src_row = norm.frame["src_row"].to_numpy()[self.pos]

    def threshold(self, name: str) -> float:
        return self.norm.model.threshold(name)

    @cached_property
    def tree(self) -> shapely.STRtree:
        """An index of every feature: built only when a rule needs one (gaps, a layer
        not noded); for a million parcels it weighs about 100 MB."""
        return shapely.STRtree(self.geoms)

    @cached_property
    def edges(self) -> np.ndarray:
        """Each feature's edges that do not match a neighbour (empty when all match)."""
        return _coverage_edges(self.geoms, self.threshold("gap_width_m"))

    @cached_property
    def flagged(self) -> np.ndarray:
        """Features with at least one unmatched edge: the only overlap candidates."""
        return np.flatnonzero(~(shapely.is_missing(self.edges) | shapely.is_empty(self.edges)))

    @cached_property
    def probe(self) -> tuple[float, np.ndarray]:
        """Share of unmatched features in a compact sample, and those features.

        The coverage validation only pays as a filter when most shared edges match.
        A layer not built with topology flags nearly every parcel, costs three times as
        much to validate, and then filters nothing; a sample of a few thousand
        neighbouring parcels near the middle tells which kind of layer this is in tens
        of milliseconds. Plan layers are small and always validated in full.
        """
        g = self.geoms
        none = (0.0, np.empty(0, dtype=int))
        if self.kind != "parcels" or len(g) < PROBE_MIN:
            return none
        b = shapely.bounds(g)
        # In place, one array per step (the same values as the plain expressions): this
        # runs beside the per-feature checks, at the validation's peak of memory.
        cx = b[:, 0] + b[:, 2]
        cx /= 2
        mid = int(np.argsort(cx)[len(cx) // 2])
        cx = float(cx[mid])
        cy = (float(b[mid, 1]) + float(b[mid, 3])) / 2
        sizes = b[:, 2] - b[:, 0]
        sizes *= b[:, 3] - b[:, 1]
        half = np.sqrt(PROBE_SIZE * np.median(sizes)) / 2
        del sizes
        # The features whose boxes meet the sample's box (what the tree would return,
        # in index order; only which ones matter), without building a tree for it.
        sample = np.flatnonzero((b[:, 0] <= cx + half) & (b[:, 2] >= cx - half)
                                & (b[:, 1] <= cy + half) & (b[:, 3] >= cy - half))
        del b
        if len(sample) < PROBE_SIZE // 4:
            return none
        edges = shapely.coverage_invalid_edges(g[sample])
        bad = sample[~(shapely.is_missing(edges) | shapely.is_empty(edges))]
        return len(bad) / len(sample), np.sort(bad)

    @property
    def noded(self) -> bool:
        """Whether shared edges match well enough for the coverage validation to filter."""
        return self.probe[0] <= NOT_NODED_SHARE

    @cached_property
    def pairs(self) -> dict[str, np.ndarray]:
        """Pairs of features whose interiors meet, lower source row first, with overlaps.

        Boxes first (the STRtree's cheapest query), then one DE-9IM test per pair in
        threads: measured on a badly noded 200 000-parcel layer, 2.5 s against 2.9 s for
        the tree's own "intersects" predicate (single-threaded) plus ``touches``. When
        only the flagged features are candidates (a few in a layer worth publishing),
        every feature is looked up in an index of the candidates instead of the other
        way round: the same pairs, without an index of the whole layer.
        """
        g = self.geoms
        everyone = not self.noded
        if everyone:  # each pair comes back both ways
            i, j = self.tree.query(g)
            keep = i < j
            i, j = i[keep], j[keep]
        else:
            cand = self.flagged
            j, i = shapely.STRtree(g[cand]).query(g)
            i = cand[i]
            keep = i != j
            i, j = i[keep], j[keep]
            uniq = np.unique(np.minimum(i, j).astype(np.int64) * len(g) + np.maximum(i, j))
            i, j = uniq // len(g), uniq % len(g)
        swap = self.src_row[i] > self.src_row[j]
        a, b = np.where(swap, j, i), np.where(swap, i, j)
        meet = _chunked(lambda x, y: shapely.relate_pattern(x, y, "T********"), g[a], g[b])
        a, b = a[meet], b[meet]
        return {"a": a, "b": b, "area": _overlap_area(g[a], g[b]),
                "area_a": shapely.area(g[a]), "area_b": shapely.area(g[b])}

    def bordering(self, regions: np.ndarray) -> list[list[int]]:
        """Source rows of the features along each region (a gap)."""
        r, f = self.tree.query(regions, predicate="dwithin", distance=_BORDER_M)
        out: list[list[int]] = [[] for _ in range(len(regions))]
        for k, idx in zip(r, f, strict=True):
            out[k].append(int(self.src_row[idx]))
        return [sorted(set(x)) for x in out]

    def findings(self, rule: str, rows: np.ndarray, params: list[dict],
                 locations: list[Any], severity: str | None = None) -> list[Finding]:
        """Findings on features ``rows`` (indices into ``geoms``), located at ``locations``."""
        if len(rows) == 0:
            return []
        keys = feature_keys(self.norm.frame, self.norm.model, self.pos[rows])
        locs = findings_geojson(locations)
        return [Finding(rule, row=int(self.src_row[r]), key=k, location=loc, params=p,
                        severity=severity)
                for r, k, loc, p in zip(rows, keys, locs, params, strict=True)]


# --------------------------------------------------------------------------- rules

def overlap_findings(layer: TopologyLayer) -> tuple[list[Finding], list[Any]]:
    """TOPO-OVERLAP, GEOM-DUPLICATE and TOPO-OVERLAP-MINOR; also the regions shown."""
    p = layer.pairs
    if len(p["a"]) == 0:
        return [], []
    tol = layer.threshold("overlap_tolerance_m2")
    rel = layer.threshold("duplicate_tolerance_relative")
    a, b, area, area_a, area_b = p["a"], p["b"], p["area"], p["area_a"], p["area_b"]
    big = np.maximum(area_a, area_b)
    dup = (area > 0) & (big - area <= np.minimum(tol, rel * big))
    over = ~dup & (area > tol)
    minor = ~dup & (area > 0) & (area <= tol)
    order = np.lexsort((layer.src_row[b], layer.src_row[a]))
    dup_i = order[dup[order]]
    over_i = order[over[order]]
    other_keys = feature_keys(layer.norm.frame, layer.norm.model,
                              layer.pos[np.r_[b[dup_i], b[over_i]]])
    out: list[Finding] = []
    dparams = [{"other_row": int(layer.src_row[b[k]]), "other_key": _key_label(ok),
                "area_m2": round(float(area[k]), 2)}
               for k, ok in zip(dup_i, other_keys[:len(dup_i)], strict=True)]
    dlocs = [layer.geoms[a[k]] for k in dup_i]
    out += layer.findings("GEOM-DUPLICATE", a[dup_i], dparams, dlocs)
    oparams = []
    for k, ok in zip(over_i, other_keys[len(dup_i):], strict=True):
        relation = ("within" if area[k] >= area_a[k] - tol else
                    "contains" if area[k] >= area_b[k] - tol else "overlaps")
        vi, en = _RELATION[relation]
        oparams.append({"other_row": int(layer.src_row[b[k]]), "other_key": _key_label(ok),
                        "area_m2": round(float(area[k]), 2), "relation": relation,
                        "relation_vi": vi, "relation_en": en})
    olocs = [_polygonal(x) for x in _intersection(layer.geoms[a[over_i]],
                                                  layer.geoms[b[over_i]])]
    out += layer.findings("TOPO-OVERLAP", a[over_i], oparams, olocs)
    if minor.any():
        m = order[minor[order]]
        out.append(Finding("TOPO-OVERLAP-MINOR", params={
            "count": int(minor.sum()), "tolerance_m2": tol,
            "total_m2": round(float(area[minor].sum()), 3),
            "max_m2": round(float(area[minor].max()), 3),
            "examples": ", ".join(f"{layer.src_row[a[k]]}/{layer.src_row[b[k]]}"
                                  for k in m[:_EXAMPLES])}))
    return out, dlocs + olocs


class _NotNoded(Exception):
    """Too many parcels have unmatched edges for the sliver search to be affordable."""

    def __init__(self, share: float, flagged: np.ndarray) -> None:
        super().__init__(share)
        self.share, self.flagged = share, flagged


def _narrow_gaps(layer: TopologyLayer) -> np.ndarray:
    """Enclosed empty slivers between parcels, narrower than ``gap_width_m``.

    Every parcel along such a sliver has an edge flagged by the coverage validation
    (its gap width is the same threshold), so only their neighbourhood is unioned; a
    hole of that local union may be land of parcels outside the neighbourhood, which is
    taken away before measuring. A layer whose shared edges are not noded (vertices on
    one side only, coordinates a hair apart) flags nearly every parcel; unioning them
    all would take minutes, so the search stops with :class:`_NotNoded` instead.
    """
    width = layer.threshold("gap_width_m")
    tol = layer.threshold("gap_tolerance_m2")
    g = layer.geoms  # the index (layer.tree) only once there is something to look up
    if width <= 0:
        return np.empty(0, dtype=object)
    if not layer.noded:  # before ``flagged``: validating such a layer costs seconds
        raise _NotNoded(layer.probe[0], layer.probe[1])
    if len(layer.flagged) == 0:
        return np.empty(0, dtype=object)
    if len(layer.flagged) > GAP_SEARCH_MAX:
        raise _NotNoded(len(layer.flagged) / len(g), layer.flagged)
    tree = layer.tree
    near = np.unique(tree.query(g[layer.flagged], predicate="dwithin", distance=width)[1])
    if len(near) > GAP_SEARCH_MAX:
        raise _NotNoded(len(layer.flagged) / len(g), layer.flagged)
    holes = interior_holes(shapely.union_all(g[near]))
    if len(holes) == 0:
        return holes
    h, f = tree.query(holes, predicate="intersects")
    inside = ~shapely.touches(holes[h], g[f])
    h, f = h[inside], f[inside]
    gaps = holes.copy()
    for k in np.unique(h):
        gaps[k] = shapely.difference(holes[k], shapely.union_all(g[f[h == k]]))
    parts = shapely.get_parts(shapely.get_parts(gaps))
    parts = parts[shapely.get_type_id(parts) == 3]
    area = shapely.area(parts)
    # Every point of a region narrower than w lies within w/2 of its boundary, so its
    # area is below perimeter × w/2: a cheap test that spares the offset of the big
    # holes (unparcelled land); then narrow means the inward offset by w/2 is empty.
    parts = parts[(area > tol) & (area < shapely.length(parts) * width / 2)]
    return parts[shapely.is_empty(shapely.buffer(parts, -width / 2, quad_segs=4))]


def inscribed_widths(polys: np.ndarray, precision: float) -> np.ndarray:
    """Width of each polygon: the diameter of its largest inscribed circle, ± precision.

    Bisection on the inward offset (a polygon is narrower than 2d exactly when its
    buffer by -d is empty): a few vectorised buffers, where GEOS's inscribed-circle
    search costs ~10 ms per sliver ring at centimetre tolerance.
    """
    if len(polys) == 0:
        return np.empty(0)
    lo = np.zeros(len(polys))
    hi = np.sqrt(shapely.area(polys) / np.pi) * 1.001 + 1e-9  # the disc of equal area
    while np.max(hi - lo) * 2 > precision:
        mid = (lo + hi) / 2
        fits = ~shapely.is_empty(shapely.buffer(polys, -mid, quad_segs=4))
        lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid)
    return lo + hi


def _plan_gaps(layer: TopologyLayer) -> np.ndarray:
    """Pieces of the district (or holes of the zones' union) that no zone covers."""
    g = layer.geoms
    union = None
    if len(layer.flagged) == 0:  # a clean coverage: the fast union is exact
        try:
            union = shapely.coverage_union_all(g)
        except GEOSException:
            union = None
    if union is None:
        union = shapely.union_all(g)
    boundary = layer.ctx.district_boundary
    if boundary is not None and not shapely.is_empty(boundary):
        gaps = _polygon_parts(shapely.difference(boundary, union))
    else:
        gaps = interior_holes(union)
    return gaps[shapely.area(gaps) > layer.threshold("gap_tolerance_m2")]


def _gaps(layer: TopologyLayer) -> tuple[list[Finding], list[Any]]:
    """TOPO-GAP (error for plan zones, warning for parcel slivers)."""
    if layer.kind == "plan":
        gaps, severity = _plan_gaps(layer), None
    else:
        try:
            gaps, severity = _narrow_gaps(layer), "warning"
        except _NotNoded as e:
            return [Finding("TOPO-NOT-NODED", params={
                "pct": round(100 * e.share), "total": len(layer.geoms),
                "examples": ", ".join(str(int(r)) for r in
                                      layer.src_row[e.flagged[:_EXAMPLES]])})], []
    if len(gaps) == 0:
        return [], []
    gaps = gaps[np.lexsort((shapely.bounds(gaps)[:, 0], -shapely.area(gaps)))]
    width = inscribed_widths(gaps, WIDTH_PRECISION_M)
    rows = layer.bordering(gaps)
    locs = findings_geojson(list(gaps))
    out = [Finding("TOPO-GAP", severity=severity, location=loc, params={
        "area_m2": round(float(shapely.area(gap)), 2), "width_m": round(float(w), 2),
        "rows": ", ".join(map(str, r[:20])) + (" …" if len(r) > 20 else ""),
        "bordering_rows": r})
        for gap, w, r, loc in zip(gaps, width, rows, locs, strict=True)]
    return out, list(gaps)


def _outside(layer: TopologyLayer) -> list[Finding]:
    """TOPO-OUTSIDE-DISTRICT: the part of each feature beyond the district outline."""
    boundary = layer.ctx.district_boundary
    if boundary is None or shapely.is_empty(boundary):
        return []
    boundary = shapely.from_wkb(shapely.to_wkb(boundary))  # prepared copy; ctx is shared
    shapely.prepare(boundary)
    g = layer.geoms
    # Prepared predicates build their index lazily: not shared between threads.
    rest = np.flatnonzero(~shapely.contains_properly(boundary, g))
    if len(rest) == 0:
        return []
    outside = _chunked(lambda x: shapely.difference(x, boundary), g[rest])
    area_out, area = shapely.area(outside), shapely.area(g[rest])
    bad = ((area_out > layer.threshold("outside_tolerance_m2"))
           & (area_out > layer.threshold("outside_tolerance_relative") * area))
    rows = rest[bad]
    params = [{"area_m2": round(float(o), 2), "pct": round(100 * float(o) / float(t), 1)}
              for o, t in zip(area_out[bad], area[bad], strict=True)]
    return layer.findings("TOPO-OUTSIDE-DISTRICT", rows, params,
                          [_polygonal(x) for x in outside[bad]])


def _coverage_edges_findings(layer: TopologyLayer, shown: list[Any]) -> list[Finding]:
    """TOPO-COVERAGE-EDGE for plan zones: unmatched edges no other finding explains.

    An overlap or a gap usually leaves the edges running into it unmatched as well (a
    zone drawn across its neighbour lacks the neighbour's vertices): those edges, and
    every unmatched line connected to them, are left to the overlap or gap finding, so
    one mistake is reported once. They come back on the next check if they outlive it.
    """
    if layer.kind != "plan" or len(layer.flagged) == 0:
        return []
    rows = layer.flagged
    edges = shapely.line_merge(layer.edges[rows])
    if shown:
        region = shapely.union_all(np.asarray(shown, dtype=object))
        edges = shapely.line_merge(shapely.difference(edges, shapely.buffer(region,
                                                                            _MIN_EDGE_M)))
        parts, owner = shapely.get_parts(edges, return_index=True)
        shapely.prepare(region)
        free = ~shapely.dwithin(region, parts, 2 * _MIN_EDGE_M)
        edges = np.array([shapely.line_merge(shapely.multilinestrings(parts[free & (owner == k)]))
                          for k in range(len(rows))] + [None], dtype=object)[:-1]
    length = shapely.length(edges)
    keep = length > _MIN_EDGE_M
    return layer.findings("TOPO-COVERAGE-EDGE", rows[keep],
                          [{"length_m": round(float(x), 2)} for x in length[keep]],
                          list(edges[keep]))


# --------------------------------------------------------------------------- checks

def _layer(norm: NormalisedLayer, ctx: ValidationContext) -> TopologyLayer | None:
    """The prepared layer, or None when there is nothing to check (kind, no polygons)."""
    if norm.model.kind not in TOPOLOGY_KINDS:
        return None
    layer = TopologyLayer(norm, ctx)
    return layer if len(layer.geoms) else None


def check_topology(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """Every topology rule, sharing one coverage validation and one spatial index.

    The rules run as one check because they need the same expensive pieces (the
    coverage validation, the STRtree, the repaired geometries), and because the
    coverage-edge rule leaves out what the overlap and gap findings already show.

    Parameters
    ----------
    norm
        The layer in the store CRS; only ``parcels`` and ``plan`` layers are coverages
        (other kinds give no finding).
    ctx
        The district outline for TOPO-GAP (plan) and TOPO-OUTSIDE-DISTRICT; without
        one, plan gaps are the holes of the zones' union and nothing is "outside".

    Returns
    -------
    list of Finding
        Overlaps and duplicates (by lower source row), gaps (largest first), features
        outside the district, then unmatched plan edges.
    """
    layer = _layer(norm, ctx)
    if layer is None:
        return []
    overlaps, overlap_regions = overlap_findings(layer)
    gap_findings, gap_regions = _gaps(layer)
    return (overlaps + gap_findings + _outside(layer)
            + _coverage_edges_findings(layer, overlap_regions + gap_regions))


def check_overlaps(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """TOPO-OVERLAP, GEOM-DUPLICATE, TOPO-OVERLAP-MINOR alone (tests, tools).

    Parameters and result as :func:`check_topology`; running several single-rule
    checks repeats the shared work, the engine uses :func:`check_topology`.
    """
    layer = _layer(norm, ctx)
    return overlap_findings(layer)[0] if layer else []


def check_gaps(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """TOPO-GAP alone."""
    layer = _layer(norm, ctx)
    return _gaps(layer)[0] if layer else []


def check_outside_district(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """TOPO-OUTSIDE-DISTRICT alone."""
    layer = _layer(norm, ctx)
    return _outside(layer) if layer else []


def check_coverage_edges(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """TOPO-COVERAGE-EDGE alone (still leaves out what overlaps and gaps explain)."""
    layer = _layer(norm, ctx)
    if layer is None:
        return []
    shown = overlap_findings(layer)[1] + _gaps(layer)[1]
    return _coverage_edges_findings(layer, shown)


#: What the engine appends to its CHECKS: one entry, so the rules share their work.
TOPOLOGY_CHECKS: tuple[Callable[[NormalisedLayer, ValidationContext], list[Finding]], ...] = (
    check_topology,)
