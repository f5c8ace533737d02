"""The sheet's map: an SVG drawn on the server from the geometries, no tiles, no script.

Why SVG and not the Leaflet map the portal's other pages use: the sheet is a document.
It must print (and render in the PDF WeasyPrint makes) the same on every printer and
every phone, with a scale bar that tells the truth and a north arrow; a tiled map
prints whatever tiles had loaded, at a scale the browser chose, and WeasyPrint runs no
script. The SVG is a few kilobytes, goes inline in the page (the Content-Security-Policy
allows inline SVG markup: it is not a script nor a style element; presentation is
attributes only) and into the PDF unchanged.

What it shows, in a window around the parcel on the store grid (VN-2000 / TM-3,
metres; north is up, the grid's north, as on cadastral maps): the plan zones in the
official colours of the land-use catalogue with their codes, the neighbouring parcels
of the same published layer with their numbers, the parcel outlined in red with its
listed corners numbered as in the coordinate table, a scale bar of a round length and
a north arrow. Everything is clipped to the window and simplified to half a drawing
unit (a twentieth of a millimetre on the printed map) before it is written, so a
parcel or a plan zone of a million vertices adds a few kilobytes, not megabytes.
Every text is XML-escaped: land-use codes come from uploaded files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import shapely

from gisportal.base import formats
from gisportal.outputs.display import display_geometries

__all__ = ["WIDTH", "HEIGHT", "Frame", "Zone", "Neighbour", "frame_around", "map_svg",
           "scale_length"]

#: Drawing units of the map (its aspect is the printed map's: 106 × 92 mm).
WIDTH, HEIGHT = 1000.0, 868.0
#: The window is the parcel's box this many times over (at least `MIN_SPAN_M` wide).
ZOOM_OUT = 1.7
MIN_SPAN_M = 40.0
#: Neighbours drawn at most (the largest pieces in the window), and labelled at most.
MAX_NEIGHBOURS = 400
MAX_NEIGHBOUR_LABELS = 150
PARCEL_COLOR = "#d7191c"
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"


@dataclass(frozen=True)
class Frame:
    """The window of the store grid the map shows, and its drawing units."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def scale(self) -> float:
        """Drawing units per metre."""
        return WIDTH / (self.x1 - self.x0)

    def px(self, xy: np.ndarray) -> np.ndarray:
        """Store-grid points (n × 2) → drawing units (y down)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return np.column_stack([(xy[:, 0] - self.x0) * self.scale,
                                (self.y1 - xy[:, 1]) * self.scale])

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return self.x0, self.y0, self.x1, self.y1


@dataclass(frozen=True)
class Zone:
    """A plan zone in the window: its shape, land-use code and official colour."""

    geometry: object
    code: str
    color: str


@dataclass(frozen=True)
class Neighbour:
    """A parcel of the same layer in the window, and the number written on it."""

    geometry: object
    label: str


def frame_around(bounds: Sequence[float]) -> Frame:
    """A window of the map's aspect centred on the parcel's box, `ZOOM_OUT` times it."""
    bx0, by0, bx1, by1 = (float(v) for v in bounds)
    w, h = bx1 - bx0, by1 - by0
    span = max(w * ZOOM_OUT, h * ZOOM_OUT * WIDTH / HEIGHT, MIN_SPAN_M)
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
    half_x, half_y = span / 2, span * HEIGHT / WIDTH / 2
    return Frame(cx - half_x, cy - half_y, cx + half_x, cy + half_y)


def scale_length(span_m: float) -> float:
    """The round length (1, 2 or 5 × 10ⁿ m) of a scale bar at most a quarter of the map."""
    target = span_m / 4
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def _shapes(geoms: Sequence[object], frame: Frame) -> np.ndarray:
    """`geoms` clipped to (a little beyond) the window, thinned for drawing."""
    pad = 4 / frame.scale
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    clipped = shapely.clip_by_rect(arr, frame.x0 - pad, frame.y0 - pad, frame.x1 + pad,
                                   frame.y1 + pad)
    light = display_geometries(clipped)
    return shapely.simplify(light, 0.5 / frame.scale, preserve_topology=True)


def _d(geom, frame: Frame) -> str:
    """SVG path data of the polygons of `geom` (rings closed with Z)."""
    out: list[str] = []
    for poly in shapely.get_parts(geom):
        if shapely.get_type_id(poly) != 3 or poly.is_empty:
            continue
        for ring in (poly.exterior, *poly.interiors):
            pts = frame.px(np.asarray(ring.coords)[:-1, :2])
            if len(pts) < 3:
                continue
            body = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts[1:])
            out.append(f"M{pts[0, 0]:.1f},{pts[0, 1]:.1f}L{body}Z")
    return "".join(out)


def _text(x: float, y: float, text: str, *, size: float, weight: str = "normal",
          fill: str = "#222", anchor: str = "middle", halo: bool = True) -> str:
    """A label; a white halo (the same text stroked first) keeps it legible on colour."""
    common = (f'x="{x:.1f}" y="{y:.1f}" font-family="{FONT}" font-size="{size:g}" '
              f'font-weight="{weight}" text-anchor="{anchor}"')
    label = escape(text)
    under = (f'<text {common} fill="#fff" stroke="#fff" stroke-width="{size / 4:.1f}" '
             f'stroke-linejoin="round">{label}</text>') if halo else ""
    return f'{under}<text {common} fill="{fill}">{label}</text>'


def _label_point(geom, frame: Frame) -> tuple[float, float, float] | None:
    """Where a piece's label goes (drawing units) and the piece's area there."""
    if geom is None or geom.is_empty:
        return None
    area = float(shapely.area(geom)) * frame.scale ** 2
    x, y = frame.px(shapely.get_coordinates(shapely.point_on_surface(geom)))[0]
    return x, y, area


def _free(x: float, y: float, taken: list[tuple[float, float]], gap: float) -> bool:
    return all(math.hypot(x - a, y - b) >= gap for a, b in taken)


def _scale_bar(frame: Frame, lang: str) -> str:
    length = scale_length(frame.x1 - frame.x0)
    bar = length * frame.scale
    x, y = 24.0, HEIGHT - 30
    half = bar / 2
    label = (f"{formats.number(length / 1000, 0, lang)} km" if length >= 1000
             else f"{formats.number(length, 0, lang)} m")
    return (f'<g class="gp-scale"><rect x="{x - 12:.1f}" y="{y - 46:.1f}" '
            f'width="{bar + 24:.1f}" height="64" fill="#fff" fill-opacity="0.85"/>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{half:.1f}" height="9" fill="#222" '
            f'stroke="#222" stroke-width="1.5"/>'
            f'<rect x="{x + half:.1f}" y="{y:.1f}" width="{half:.1f}" height="9" '
            f'fill="#fff" stroke="#222" stroke-width="1.5"/>'
            + _text(x, y - 8, "0", size=22, halo=False)
            + _text(x + bar, y - 8, label, size=22, halo=False) + "</g>")


def _north_arrow(letter: str) -> str:
    """Grid north (up): a half-filled arrow in a circle, the letter above its tip."""
    x, cy, r = WIDTH - 56, 74.0, 46.0
    tip, base, notch = cy - 20, cy + 34, cy + 22
    return (f'<g class="gp-north"><circle cx="{x:.1f}" cy="{cy:.1f}" r="{r:g}" fill="#fff" '
            f'fill-opacity="0.85" stroke="#222" stroke-width="1.5"/>'
            f'<path d="M{x:.1f},{tip:.1f}L{x + 14:.1f},{base:.1f}L{x:.1f},{notch:.1f}Z" '
            f'fill="#222"/>'
            f'<path d="M{x:.1f},{tip:.1f}L{x - 14:.1f},{base:.1f}L{x:.1f},{notch:.1f}Z" '
            f'fill="#fff" stroke="#222" stroke-width="1.5"/>'
            + _text(x, tip - 4, letter, size=20, weight="bold", halo=False) + "</g>")


def map_svg(frame: Frame, parcel, *, zones: Sequence[Zone] = (),
            neighbours: Sequence[Neighbour] = (), parcel_label: str = "",
            corners: Sequence[tuple[int, float, float]] = (), lang: str = "vi",
            title: str = "", north: str = "B") -> str:
    """The map as one ``<svg>`` element (see the module docstring).

    `corners` are ``(number, x, y)`` on the store grid, drawn as numbered points;
    `north` is the arrow's letter (B for Bắc, N for north); `title` the accessible name.
    """
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="gp-map-svg" '
             f'viewBox="0 0 {WIDTH:g} {HEIGHT:g}" preserveAspectRatio="xMidYMid meet" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
             f'<rect width="{WIDTH:g}" height="{HEIGHT:g}" fill="#fff"/>']
    # Plan zones, in the catalogue's colours.
    zone_shapes = _shapes([z.geometry for z in zones], frame) if zones else []
    for z, shape in zip(zones, zone_shapes, strict=True):
        d = _d(shape, frame)
        if d:
            parts.append(f'<path d="{d}" fill="{escape(z.color)}" fill-opacity="0.55" '
                         f'stroke="#555" stroke-width="1" fill-rule="evenodd"/>')
    # Neighbours: thin outlines; the largest pieces when the window holds very many.
    shapes = _shapes([n.geometry for n in neighbours], frame) if neighbours else []
    order = np.argsort(-shapely.area(shapes))[:MAX_NEIGHBOURS] if len(shapes) else []
    drawn = [(neighbours[i], shapes[i]) for i in sorted(order)]
    paths = "".join(_d(s, frame) for _, s in drawn)
    if paths:
        parts.append(f'<path d="{paths}" fill="none" stroke="#444" stroke-width="1.2" '
                     f'stroke-opacity="0.8"/>')
    # The parcel.
    [outline] = _shapes([parcel], frame)
    parts.append(f'<path class="gp-map-parcel" d="{_d(outline, frame)}" fill="{PARCEL_COLOR}" '
                 f'fill-opacity="0.08" stroke="{PARCEL_COLOR}" stroke-width="4" '
                 f'stroke-linejoin="round" fill-rule="evenodd"/>')
    taken: list[tuple[float, float]] = []
    labels: list[str] = []
    here = _label_point(outline, frame)
    if here and parcel_label:
        labels.append(_text(here[0], here[1] + 10, parcel_label, size=30, weight="bold",
                            fill=PARCEL_COLOR))
        taken.append(here[:2])
    for n, shape in drawn if len(drawn) <= MAX_NEIGHBOUR_LABELS else ():
        at = _label_point(shape, frame)
        if at and at[2] > 2500 and _free(at[0], at[1], taken, 40):
            labels.append(_text(at[0], at[1] + 7, n.label, size=20, fill="#444"))
            taken.append(at[:2])
    # Zone codes beside the parcel rather than under its number and corners.
    around = shapely.box(*shapely.bounds(outline)).buffer(12 / frame.scale)
    for z, shape in zip(zones, zone_shapes, strict=True):
        outside = shapely.difference(shape, around) if shape is not None else None
        at = _label_point(outside if outside is not None and shapely.area(outside) > 0
                          else shape, frame)
        if at and at[2] > 6000 and _free(at[0], at[1], taken, 70):
            labels.append(_text(at[0], at[1] + 9, z.code, size=26, weight="bold"))
            taken.append(at[:2])
    # Corner points, numbered as in the table (a label is left out where it would
    # cover another: the table lists them all).
    if corners:
        pts = frame.px(np.array([[x, y] for _, x, y in corners]))
        cx, cy = pts.mean(axis=0)
        placed: list[tuple[float, float]] = []
        dots = []
        for (number, _, _), (x, y) in zip(corners, pts, strict=True):
            dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{PARCEL_COLOR}"/>')
            dx, dy = x - cx, y - cy
            norm = math.hypot(dx, dy) or 1.0
            lx, ly = x + 20 * dx / norm, y + 20 * dy / norm + 7
            if 0 < lx < WIDTH and 0 < ly < HEIGHT and _free(lx, ly, placed, 26):
                labels.append(_text(lx, ly, str(number), size=20, weight="bold"))
                placed.append((lx, ly))
        parts.append("".join(dots))
    parts.extend(labels)
    parts.append(_north_arrow(north))
    parts.append(_scale_bar(frame, lang))
    parts.append('</svg>')
    return "".join(parts)
