"""Today's communes, wards and special zone (124 since 2025-07-01) as shapes.

No office publishes the new units' boundaries as a layer yet, and the 2021–2030 plans
and cadastres stay documents of the former districts, whose boundary layers hold the
former communes. A current unit is the union of the former communes it was made of
(`gisportal.base.seeds.lineage`), taken from the published boundary layers: so the
province page shows today's geography from the data the portal already holds, and it
follows any boundary correction a planner publishes.

Two former communes were split between two current units (``share = partial``); the
lineage records no line. Each is cut in two along the line through its centre square
to the direction between the two units' other communes, and each unit takes the half
that faces the rest of it: a shape that joins each unit's parts without a gap or an
overlap, drawn as approximate (``approximate = True``).

The shapes depend only on the published boundary versions, which never change: they
are built once per set of versions and per store (a publish makes a new set).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gisportal.base import seeds
from gisportal.store.base import Store, Version
from gisportal.store.derived import derived

__all__ = ["UnitShape", "boundary_versions", "current_unit_shapes", "unit_at", "units_at"]


@dataclass(frozen=True)
class UnitShape:
    """One current unit's shape (store CRS) and how complete it is."""

    code: str
    name: str
    level: str  # commune | ward | special_zone
    geometry: BaseGeometry | None  # None when none of its former communes is published
    parts_found: int
    parts_total: int
    #: the former districts its former communes belonged to, by code
    former_districts: tuple[str, ...]
    #: a split former commune was cut by the rule of the module doc
    approximate: bool = False

    @property
    def complete(self) -> bool:
        return self.parts_found == self.parts_total


_CACHE: weakref.WeakKeyDictionary[
    Store, tuple[tuple[int, ...], list[UnitShape], shapely.STRtree]] = (
    weakref.WeakKeyDictionary())
_LOCK = threading.Lock()


def _former_communes(store: Store, boundary: Version) -> dict[str, BaseGeometry]:
    """The commune features of a boundary version by GSO code (cached per version)."""
    return derived(store, boundary, "former-communes", _build_former_communes)


def _build_former_communes(store: Store, boundary: Version) -> dict[str, BaseGeometry]:
    layer = store.read(boundary.id)
    if "code" not in layer.columns:
        return {}
    level = layer["level"].astype("string") if "level" in layer.columns else None
    codes = layer["code"].astype("string").str.strip()
    is_commune = (codes.str.len() == 5) if level is None else (
        level.eq("commune") | (level.isna() & codes.str.len().eq(5)))
    out: dict[str, list[BaseGeometry]] = {}
    for code, geom, keep in zip(codes, layer.geometry.values,
                                is_commune.fillna(False).to_numpy(dtype=bool), strict=True):
        if keep and isinstance(code, str) and geom is not None and not geom.is_empty:
            out.setdefault(code, []).append(geom)
    return {code: shapely.make_valid(shapely.union_all(geoms)) for code, geoms in out.items()}


def _half_planes(centre: tuple[float, float], toward: tuple[float, float], size: float
                 ) -> tuple[BaseGeometry, BaseGeometry]:
    """The two half planes (as big squares) either side of the line through `centre`
    square to the direction `toward`; the first is the side `toward` points to."""
    cx, cy = centre
    dx, dy = toward
    norm = float(np.hypot(dx, dy)) or 1.0
    dx, dy = dx / norm, dy / norm
    px, py = -dy, dx  # along the cutting line
    s = size

    def side(sign: float) -> BaseGeometry:
        return shapely.Polygon([(cx + px * s, cy + py * s), (cx - px * s, cy - py * s),
                                (cx - px * s + sign * dx * s, cy - py * s + sign * dy * s),
                                (cx + px * s + sign * dx * s, cy + py * s + sign * dy * s)])
    return side(1.0), side(-1.0)


def _split(former: BaseGeometry, units: list[str], rest: Mapping[str, BaseGeometry | None]
           ) -> dict[str, BaseGeometry]:
    """A split former commune's piece for each of its (two) current units."""
    if len(units) != 2:  # the 2025 lineage splits in two only; share equally otherwise
        return {u: former for u in units}
    centre = former.centroid
    a, b = (rest.get(u) for u in units)
    if a is not None and b is not None and not a.is_empty and not b.is_empty:
        ca, cb = a.centroid, b.centroid
        toward = (ca.x - cb.x, ca.y - cb.y)
    else:  # no other part to face: west half to the first code, east to the second
        toward = (-1.0, 0.0)
    minx, miny, maxx, maxy = former.bounds
    size = 2 * max(maxx - minx, maxy - miny, 1.0)
    side_a, side_b = _half_planes((centre.x, centre.y), toward, size)
    return {units[0]: shapely.intersection(former, side_a),
            units[1]: shapely.intersection(former, side_b)}


def _build(store: Store, boundaries: list[Version]) -> list[UnitShape]:
    former: dict[str, BaseGeometry] = {}
    for b in boundaries:
        former.update(_former_communes(store, b))
    units = seeds.current_units()
    full: dict[str, list[BaseGeometry]] = {u: [] for u in units}
    found: dict[str, int] = dict.fromkeys(units, 0)
    partial: dict[str, list[str]] = {}
    for part in seeds.lineage():
        if part.unit not in units:
            continue
        geom = former.get(part.code)
        if part.share == "partial":
            partial.setdefault(part.code, []).append(part.unit)
            continue
        if geom is not None:
            full[part.unit].append(geom)
            found[part.unit] += 1
    rest = {u: shapely.union_all(g) if g else None for u, g in full.items()}
    approximate: set[str] = set()
    for code, owners in partial.items():
        geom = former.get(code)
        if geom is None:
            continue
        for unit, piece in _split(geom, sorted(owners), rest).items():
            if not piece.is_empty:
                full[unit].append(piece)
                found[unit] += 1
                approximate.add(unit)
    out = []
    for code, unit in units.items():
        parts = seeds.former_parts_of(code)
        geoms = full[code]
        shape = shapely.make_valid(shapely.union_all(geoms)) if geoms else None
        out.append(UnitShape(code, unit.name, unit.level, shape, found[code], len(parts),
                             tuple(dict.fromkeys(p.district for p in parts)),
                             code in approximate))
    return out


def boundary_versions(published: Mapping[tuple[str, str], Version]) -> tuple[Version, ...]:
    """The published boundary versions the unit shapes are built from, by id: their ids
    are the key of everything cached from them."""
    return tuple(sorted((v for (_, kind), v in published.items() if kind == "boundary"),
                        key=lambda v: v.id))


def current_unit_shapes(store: Store, published: Mapping[tuple[str, str], Version] | None = None
                        ) -> list[UnitShape]:
    """Every current unit with its shape from the published boundary layers (module
    doc), in code order; one catalogue query unless the caller passes `published`."""
    published = store.published_versions() if published is None else published
    return _shapes_and_index(store, published)[0]


def _shapes_and_index(store: Store, published: Mapping[tuple[str, str], Version]
                      ) -> tuple[list[UnitShape], shapely.STRtree]:
    boundaries = boundary_versions(published)
    key = tuple(v.id for v in boundaries)
    with _LOCK:
        entry = _CACHE.get(store)
    if entry is not None and entry[0] == key:
        return entry[1], entry[2]
    shapes = _build(store, list(boundaries))
    tree = shapely.STRtree([u.geometry for u in shapes])  # None entries are skipped
    with _LOCK:
        _CACHE[store] = (key, shapes, tree)
    return shapes, tree


def _unit(code: str, name: str, level: str) -> dict[str, str]:
    return {"code": code, "name": name, "level": level}


def unit_at(store: Store, published: Mapping[tuple[str, str], Version], x: float, y: float
            ) -> UnitShape | None:
    """Today's unit whose shape (from the published boundaries) holds the point."""
    shapes, tree = _shapes_and_index(store, published)
    hits = tree.query(shapely.Point(x, y), predicate="intersects")
    return shapes[int(hits[0])] if len(hits) else None


def units_at(store: Store, published: Mapping[tuple[str, str], Version], x: float, y: float,
             district: str | None) -> dict[str, Any] | None:
    """The look-up's ``units`` for a point with no parcel (store CRS): today's unit whose
    shape holds it, and the former commune (from the district's published boundary)
    and district. None when no published boundary places the point."""
    current = unit_at(store, published, x, y)
    point = shapely.Point(x, y)
    former: list[dict[str, str]] = []
    boundary = published.get((district, "boundary")) if district else None
    if boundary is not None:
        for code, geom in _former_communes(store, boundary).items():
            if geom.intersects(point):
                listed = seeds.communes().get(code)
                parts = seeds.former_commune(code)
                level = parts[0].level if parts else "commune"
                former.append(_unit(code, listed.name if listed else code, level))
                break
        with contextlib.suppress(KeyError):
            former.append(_unit(district, seeds.district(district).name, "district"))
    if current is None and not former:
        return None
    return {"current": None if current is None else _unit(current.code, current.name,
                                                          current.level),
            "former": former}
