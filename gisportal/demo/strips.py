"""Cutting quadrilateral sections into strips and lots, with matching vertices.

A section is mapped bilinearly from the unit square ``(s, t)``. It is cut into strips
(``t`` ranges) and each strip into lots by separators running from ``(b, t0)`` to
``(u, t1)``. Lines of constant ``t`` are straight in a bilinear map, so every lot is a
polygon with straight edges.

Neighbouring strips cut their common line at different places. To make the lots a
valid polygon coverage (no T-junctions, shared edges with the very same vertices),
every point on a line is computed once, and each lot takes all the points lying along
its bottom and top edges, including its neighbours' corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

__all__ = ["Cuts", "Subdivision", "concat_cuts", "subdivide"]


@dataclass
class Cuts:
    """How a batch of sections is cut, in unit-square coordinates.

    Strips of a section are contiguous and ordered by ``t``; lots of a strip are
    contiguous and ordered by ``s``; the first lot of a strip starts at ``s = 0`` and
    the last ends at ``s = 1`` on both lines.

    Attributes
    ----------
    section
        Section (row of the corner array) of each strip.
    t0, t1
        Each strip's ``t`` range.
    strip
        Strip of each lot.
    b0, b1
        The lot's ``s`` range on the strip's bottom line.
    u0, u1
        The lot's ``s`` range on the strip's top line.
    kind
        A small integer tag per lot, meaning left to the caller (plot, street...).
    """

    section: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    strip: np.ndarray
    b0: np.ndarray
    b1: np.ndarray
    u0: np.ndarray
    u1: np.ndarray
    kind: np.ndarray


def concat_cuts(parts: list[Cuts], offsets: list[int]) -> Cuts:
    """Join cuts of several batches; ``offsets`` shift each batch's section indices."""
    strip_base = np.cumsum([0] + [len(p.section) for p in parts[:-1]])
    return Cuts(
        section=np.concatenate([p.section + o for p, o in zip(parts, offsets, strict=True)]),
        t0=np.concatenate([p.t0 for p in parts]),
        t1=np.concatenate([p.t1 for p in parts]),
        strip=np.concatenate([p.strip + b for p, b in zip(parts, strip_base, strict=True)]),
        b0=np.concatenate([p.b0 for p in parts]),
        b1=np.concatenate([p.b1 for p in parts]),
        u0=np.concatenate([p.u0 for p in parts]),
        u1=np.concatenate([p.u1 for p in parts]),
        kind=np.concatenate([p.kind for p in parts]),
    )


@dataclass
class Subdivision:
    """Lot polygons of a batch, and the points along each section's sides.

    The side points let a neighbouring corridor (road, river) use exactly the
    vertices the lots use, so corridor and lots share edges vertex for vertex.
    """

    polygons: np.ndarray
    keys: np.ndarray
    points: np.ndarray
    line_base: np.ndarray
    n_strips: np.ndarray

    def side(self, section: int, which: str) -> np.ndarray:
        """Points along one side of a section, in increasing ``s`` or ``t``.

        ``which`` is ``"bottom"``, ``"top"`` (increasing ``s``), ``"left"`` or
        ``"right"`` (increasing ``t``).
        """
        first = int(self.line_base[section])
        last = first + int(self.n_strips[section])
        if which in ("bottom", "top"):
            line = first if which == "bottom" else last
            lo = np.searchsorted(self.keys, 4.0 * line)
            hi = np.searchsorted(self.keys, 4.0 * line + 1.0, side="right")
            return self.points[lo:hi]
        s = 0.0 if which == "left" else 1.0
        at = np.searchsorted(self.keys, 4.0 * np.arange(first, last + 1) + s)
        return self.points[at]


def _bilinear(corners: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    c0, c1, c2, c3 = (corners[:, k] for k in range(4))
    s = s[:, None]
    t = t[:, None]
    return (1 - s) * (1 - t) * c0 + s * (1 - t) * c1 + s * t * c2 + (1 - s) * t * c3


def subdivide(corners: np.ndarray, cuts: Cuts) -> Subdivision:
    """Build the lot polygons of ``cuts`` over sections with ``corners`` ``(K, 4, 2)``.

    Every section in ``corners`` must have at least one strip in ``cuts``.
    """
    n_sections = len(corners)
    n_strips = np.bincount(cuts.section, minlength=n_sections)
    # lines of section k: line_base[k] .. line_base[k] + n_strips[k] (bottom to top)
    line_base = np.concatenate([[0], np.cumsum(n_strips + 1)[:-1]])
    first_strip = np.concatenate([[0], np.cumsum(n_strips)[:-1]])
    strip_rank = np.arange(len(cuts.section)) - first_strip[cuts.section]
    bottom_line = line_base[cuts.section] + strip_rank
    n_lines = int(line_base[-1] + n_strips[-1] + 1) if n_sections else 0
    line_t = np.empty(n_lines)
    line_section = np.repeat(np.arange(n_sections), n_strips + 1)
    line_t[bottom_line] = cuts.t0
    line_t[bottom_line + 1] = cuts.t1

    lb = bottom_line[cuts.strip].astype(float)
    lt = lb + 1.0
    # key = 4 * line + s orders points by line, then along the line
    raw_keys = np.concatenate([4 * lb + cuts.b0, 4 * lb + cuts.b1, 4 * lt + cuts.u0,
                               4 * lt + cuts.u1])
    raw_s = np.concatenate([cuts.b0, cuts.b1, cuts.u0, cuts.u1])
    keys, first = np.unique(raw_keys, return_index=True)
    s = raw_s[first]
    line = np.floor(keys / 4.0 + 1e-9).astype(np.int64)
    points = _bilinear(corners[line_section[line]], s, line_t[line])

    i0 = np.searchsorted(keys, 4 * lb + cuts.b0)
    i1 = np.searchsorted(keys, 4 * lb + cuts.b1)
    j0 = np.searchsorted(keys, 4 * lt + cuts.u0)
    j1 = np.searchsorted(keys, 4 * lt + cuts.u1)
    nb = i1 - i0 + 1
    nt = j1 - j0 + 1
    count = nb + nt
    owner = np.repeat(np.arange(len(count)), count)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    pos = np.arange(int(count.sum())) - start[owner]
    on_bottom = pos < nb[owner]
    index = np.where(on_bottom, i0[owner] + pos, j1[owner] - (pos - nb[owner]))
    rings = shapely.linearrings(points[index], indices=owner)
    return Subdivision(
        polygons=shapely.polygons(rings),
        keys=keys,
        points=points,
        line_base=line_base,
        n_strips=n_strips,
    )
