"""How sections of each kind are cut: town blocks, village lots, fields, forest plots.

Each function returns :class:`~gisportal.demo.strips.Cuts` for a batch of sections
given their sizes in metres. Sizes follow what a Vietnamese cadastre shows: town lots
5–16 m wide and 20–30 m deep (100–500 m²) in blocks between streets, village lots a
few hundred square metres, fields of 0.1–2 ha, forest plots of tens of hectares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .strips import Cuts

__all__ = ["BIG", "CROSS", "PLOT", "STREET", "TRACK", "cut_farm", "cut_forest", "cut_town",
           "cut_village", "section_sizes"]

#: lot tags: an ordinary plot, a larger special plot, a street strip, a cross street,
#: a farm track
PLOT, BIG, STREET, CROSS, TRACK = range(5)


@dataclass(frozen=True)
class BlockPattern:
    """Street grid and lot sizes of a built-up section (metres)."""

    depth: tuple[float, float]
    street: tuple[float, float]
    block: tuple[float, float]
    cross: tuple[float, float]
    width: tuple[float, float]
    big_share: float
    big_width: tuple[float, float]


TOWN_PATTERN = BlockPattern(depth=(20.0, 30.0), street=(8.0, 14.0), block=(90.0, 180.0),
                            cross=(6.0, 10.0), width=(5.0, 16.0), big_share=0.02,
                            big_width=(30.0, 70.0))
VILLAGE_PATTERN = BlockPattern(depth=(25.0, 45.0), street=(5.0, 8.0), block=(120.0, 260.0),
                               cross=(5.0, 7.0), width=(9.0, 25.0), big_share=0.07,
                               big_width=(35.0, 70.0))


def section_sizes(corners: np.ndarray) -> np.ndarray:
    """Mean width (along ``s``) and height (along ``t``) of sections, ``(K, 2)``."""
    c0, c1, c2, c3 = (corners[:, k] for k in range(4))
    width = (np.hypot(*(c1 - c0).T) + np.hypot(*(c2 - c3).T)) / 2
    height = (np.hypot(*(c3 - c0).T) + np.hypot(*(c2 - c1).T)) / 2
    return np.c_[width, height]


def _mean(r: tuple[float, float]) -> float:
    return (r[0] + r[1]) / 2


def _contiguous(length: np.ndarray, owner: np.ndarray, n_owner: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Fractions ``[start, end)`` of consecutive pieces per owner, ending at exactly 1.

    Shared boundaries are the same float on both sides (``start[p+1] is end[p]``), so
    neighbouring lots get the very same vertex.
    """
    total = np.bincount(owner, weights=length, minlength=n_owner)
    count = np.bincount(owner, minlength=n_owner)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    cs = np.cumsum(length)
    before = np.where(first > 0, cs[np.maximum(first - 1, 0)], 0.0)
    end = (cs - before[owner]) / total[owner]
    last = first + count - 1
    end[last[count > 0]] = 1.0
    start = np.empty_like(end)
    start[1:] = end[:-1]
    start[first[count > 0]] = 0.0
    return start, end


def _ragged(
    rng: np.random.Generator,
    lengths: np.ndarray,
    size: tuple[float, float],
    special_share: float = 0.0,
    special: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut intervals of ``lengths`` metres into pieces of ``size`` metres.

    Returns the owner interval, start and end fraction of each piece, and whether it
    is a special piece (drawn from ``special`` instead). The piece count is the one
    whose total is nearest the interval, so pieces are only stretched a little.
    """
    n = len(lengths)
    if n == 0:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty, empty.astype(bool)
    most = int(np.ceil(lengths.max() / min(size[0], special[0] or size[0]))) + 2
    width = rng.uniform(size[0], size[1], (n, most))
    is_special = rng.random((n, most)) < special_share
    width[is_special] = rng.uniform(special[0], special[1], int(is_special.sum()))
    cs = np.cumsum(width, axis=1)
    count = np.argmin(np.abs(cs - lengths[:, None]), axis=1) + 1
    keep = np.arange(most) < count[:, None]
    owner = np.repeat(np.arange(n), count)
    start, end = _contiguous(width[keep], owner, n)
    return owner, start, end, is_special[keep]


def _slant(
    rng: np.random.Generator, owner: np.ndarray, start: np.ndarray, end: np.ndarray,
    amount: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-line fractions of pieces whose inner separators lean by up to ``amount``
    of the narrower neighbour (ends of each interval stay put)."""
    width = end - start
    shift = np.zeros(len(end))
    inner = np.flatnonzero(owner[:-1] == owner[1:])  # separator after piece p
    narrow = np.minimum(width[inner], width[inner + 1])
    shift[inner] = amount * rng.uniform(-1.0, 1.0, len(inner)) * narrow
    top_end = end + shift
    top_start = np.empty_like(start)
    top_start[1:] = top_end[:-1]
    firsts = np.ones(len(start), dtype=bool)
    firsts[1:] = owner[1:] != owner[:-1]
    top_start[firsts] = start[firsts]
    return top_start, top_end


def _strip_rows(
    rng: np.random.Generator, height: np.ndarray, pattern: BlockPattern
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a built-up section: (lot, lot, street) repeated, ending on lots."""
    unit = 2 * _mean(pattern.depth) + _mean(pattern.street)
    units = np.maximum(1, np.round((height + _mean(pattern.street)) / unit)).astype(np.int64)
    n_rows = 3 * units - 1
    section = np.repeat(np.arange(len(height)), n_rows)
    first = np.concatenate([[0], np.cumsum(n_rows)[:-1]])
    rank = np.arange(len(section)) - first[section]
    street = rank % 3 == 2
    depth = np.where(street, rng.uniform(*pattern.street, len(section)),
                     rng.uniform(*pattern.depth, len(section)))
    t0, t1 = _contiguous(depth, section, len(height))
    return section, t0, t1, street


def _blocks(
    rng: np.random.Generator, width: np.ndarray, pattern: BlockPattern
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Column intervals of a built-up section: block, cross street, block, ..."""
    per = _mean(pattern.block) + _mean(pattern.cross)
    blocks = np.maximum(1, np.round((width + _mean(pattern.cross)) / per)).astype(np.int64)
    n_int = 2 * blocks - 1
    section = np.repeat(np.arange(len(width)), n_int)
    first = np.concatenate([[0], np.cumsum(n_int)[:-1]])
    cross = (np.arange(len(section)) - first[section]) % 2 == 1
    length = np.where(cross, rng.uniform(*pattern.cross, len(section)),
                      rng.uniform(*pattern.block, len(section)))
    s0, s1 = _contiguous(length, section, len(width))
    return section, s0, s1, cross


def _built_up(rng: np.random.Generator, sizes: np.ndarray, pattern: BlockPattern) -> Cuts:
    """Rows of back-to-back plots between streets, blocks between cross streets."""
    width, height = sizes.T
    row_section, t0, t1, is_street = _strip_rows(rng, height, pattern)
    int_section, s0, s1, is_cross = _blocks(rng, width, pattern)
    n_int = np.bincount(int_section, minlength=len(sizes))
    int_first = np.concatenate([[0], np.cumsum(n_int)[:-1]])

    lot_rows = np.flatnonzero(~is_street)
    reps = n_int[row_section[lot_rows]]
    pair_row = np.repeat(lot_rows, reps)
    pair_first = np.concatenate([[0], np.cumsum(reps)[:-1]])
    pair_int = (int_first[row_section[pair_row]]
                + np.arange(len(pair_row)) - np.repeat(pair_first, reps))
    cross = is_cross[pair_int]

    # plots along the blocks
    blocks = np.flatnonzero(~cross)
    length = (s1 - s0)[pair_int[blocks]] * width[row_section[pair_row[blocks]]]
    owner, a, b, big = _ragged(rng, length, pattern.width, pattern.big_share,
                               pattern.big_width)
    ua, ub = _slant(rng, owner, a, b, 0.35)
    lo = s0[pair_int[blocks[owner]]]
    span = (s1 - s0)[pair_int[blocks[owner]]]
    plot_strip = pair_row[blocks[owner]]
    plot = (plot_strip, lo + span * a, lo + span * b, lo + span * ua, lo + span * ub,
            np.where(big, BIG, PLOT))
    plot = _fix_ends(plot, s0[pair_int[blocks[owner]]], s1[pair_int[blocks[owner]]], owner)
    # cross-street pieces, straight across so that they line up from row to row
    crs = np.flatnonzero(cross)
    cs0, cs1 = s0[pair_int[crs]], s1[pair_int[crs]]
    cross_part = (pair_row[crs], cs0, cs1, cs0, cs1, np.full(len(crs), CROSS))
    # streets: one lot per block along the row, cut where the cross streets join it
    streets = np.flatnonzero(is_street)
    blocks_of = np.flatnonzero(~is_cross)  # block intervals, in section order
    n_blocks = np.bincount(int_section[blocks_of], minlength=len(sizes))
    reps = n_blocks[row_section[streets]]
    seg_row = np.repeat(streets, reps)
    seg_first = np.concatenate([[0], np.cumsum(reps)[:-1]])
    block_first = np.concatenate([[0], np.cumsum(n_blocks)[:-1]])
    seg_rank = np.arange(len(seg_row)) - np.repeat(seg_first, reps)
    seg_block = blocks_of[block_first[row_section[seg_row]] + seg_rank]
    last = seg_rank == np.repeat(reps, reps) - 1
    seg_start = np.where(seg_rank == 0, 0.0, s0[seg_block])
    seg_end = np.where(last, 1.0, s0[np.minimum(seg_block + 2, len(s0) - 1)])
    street_part = (seg_row, seg_start, seg_end, seg_start, seg_end,
                   np.full(len(seg_row), STREET))
    return _assemble(row_section, t0, t1, [plot, cross_part, street_part])


_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _fix_ends(plot: _Part, lo: np.ndarray, hi: np.ndarray, owner: np.ndarray) -> _Part:
    """Make the first and last plot of each interval end on the very floats ``lo`` and
    ``hi`` of the interval bounds (``lo + span * 1.0`` may miss ``hi`` by an ulp)."""
    strip, b0, b1, u0, u1, kind = plot
    at_start = np.ones(len(strip), dtype=bool)
    at_start[1:] = owner[1:] != owner[:-1]
    at_end = np.ones(len(strip), dtype=bool)
    at_end[:-1] = owner[:-1] != owner[1:]
    b0 = np.where(at_start, lo, b0)
    u0 = np.where(at_start, lo, u0)
    b1 = np.where(at_end, hi, b1)
    u1 = np.where(at_end, hi, u1)
    # keep neighbours inside an interval glued after the replacement
    b0[~at_start] = b1[np.flatnonzero(~at_start) - 1]
    u0[~at_start] = u1[np.flatnonzero(~at_start) - 1]
    return strip, b0, b1, u0, u1, kind


def _assemble(section: np.ndarray, t0: np.ndarray, t1: np.ndarray, parts: list[_Part]
              ) -> Cuts:
    """Cuts from strips and lot parts ``(strip, b0, b1, u0, u1, kind)``, lots sorted
    by strip and position."""
    strip = np.concatenate([p[0] for p in parts]).astype(np.int64)
    b0 = np.concatenate([p[1] for p in parts])
    order = np.lexsort((b0, strip))
    cols = [np.concatenate([p[k] for p in parts])[order] for k in range(1, 6)]
    return Cuts(section=section, t0=t0, t1=t1, strip=strip[order], b0=cols[0], b1=cols[1],
                u0=cols[2], u1=cols[3], kind=cols[4].astype(np.int8))


def cut_town(rng: np.random.Generator, sizes: np.ndarray) -> Cuts:
    """Town sections: blocks of small lots between streets and cross streets."""
    return _built_up(rng, sizes, TOWN_PATTERN)


def cut_village(rng: np.random.Generator, sizes: np.ndarray) -> Cuts:
    """Village sections: larger house-and-garden lots along lanes."""
    return _built_up(rng, sizes, VILLAGE_PATTERN)


def cut_farm(rng: np.random.Generator, sizes: np.ndarray, density: float = 1.0) -> Cuts:
    """Farmland sections: strips of fields 25–150 m wide and 40–150 m deep.

    ``density`` > 1 shrinks the larger fields (never below 1 000 m²), for districts
    asked to hold more parcels than their farmland has at the usual sizes.
    """
    width, height = sizes.T
    shrink = np.sqrt(max(density, 1.0))
    depth = (40.0, max(40.0, 150.0 / shrink))
    wide = (25.0, max(25.0, 150.0 / shrink))
    section, t0, t1, track = _ragged(rng, height, depth, 0.06, (4.0, 6.0))
    fields = np.flatnonzero(~track)
    owner, a, b, home = _ragged(rng, width[section[fields]], wide, 0.02, (20.0, 35.0))
    ua, ub = _slant(rng, owner, a, b, 0.3)
    tracks = np.flatnonzero(track)
    ones = np.ones(len(tracks))
    parts = [
        (fields[owner], a, b, ua, ub, np.where(home, BIG, PLOT)),
        (tracks, 0 * ones, ones, 0 * ones, ones, np.full(len(tracks), TRACK)),
    ]
    return _assemble(section, t0, t1, parts)


def cut_forest(rng: np.random.Generator, sizes: np.ndarray) -> Cuts:
    """Forest sections: one plot, or two split by a slanting line (10–40 ha each)."""
    n = len(sizes)
    split = rng.random(n) < 0.5
    at = rng.uniform(0.35, 0.65, n)
    lean = at + rng.uniform(-0.12, 0.12, n)
    strip = np.concatenate([np.arange(n), np.flatnonzero(split)])
    b0 = np.concatenate([np.zeros(n), at[split]])
    b1 = np.concatenate([np.where(split, at, 1.0), np.ones(split.sum())])
    u0 = np.concatenate([np.zeros(n), lean[split]])
    u1 = np.concatenate([np.where(split, lean, 1.0), np.ones(split.sum())])
    kind = np.full(len(strip), PLOT)
    return _assemble(np.arange(n), np.zeros(n), np.ones(n),
                     [(strip, b0, b1, u0, u1, kind)])
