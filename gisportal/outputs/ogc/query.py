"""The query string of an items request, checked, and the page of features it selects.

Every parameter is checked before anything is read, and every bad value is a 400 that
names the parameter and says what would work: the standard's parameters (``limit``,
``offset``, ``bbox``, ``bbox-crs``, ``crs``, ``datetime``, ``f``), equality filters on
the collection's queryable fields (``sheet=12&parcel=345``), and nothing else — an
unknown parameter is refused rather than silently ignored (Part 1,
/req/core/query-param-unknown), so a typo never returns the whole layer.

Paging: the ids of all the features a query matches are found once through the store's
indexes (R*Tree for ``bbox``, the key index for key fields; an unfiltered layer's ids
are a range the store knows without counting) and kept in a bounded cache (`IdCache`),
so ``numberMatched`` is exact and every later page of the same query costs only its
own features, however deep ``offset`` goes.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from gisportal.base.errors import UsageError
from gisportal.outputs.ogc import crs as ogc_crs
from gisportal.outputs.ogc.collections import Collection, PublicFields
from gisportal.store.base import Store

__all__ = [
    "DEFAULT_LIMIT",
    "ITEM_PARAMS",
    "ITEMS_PARAMS",
    "MAX_LIMIT",
    "IdCache",
    "ItemsQuery",
    "Selection",
    "check_params",
    "parse_format",
    "parse_items_query",
    "select",
]

#: Features per page when ``limit`` is not given, and the most one page may hold.
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: Parameters of ``/items`` besides the collection's queryables (``lang`` is the UI's).
ITEMS_PARAMS = ("f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime")
#: Parameters of ``/items/{featureId}``, and of every other page.
ITEM_PARAMS = ("f", "lang", "crs")
PAGE_PARAMS = ("f", "lang")
FORMATS = ("json", "html")
LANGS = ("vi", "en")
#: Longest filter value accepted (a commune code or name is far shorter).
MAX_VALUE = 200
_INT = re.compile(r"[+-]?[0-9]{1,18}")
#: A limit of any length: one above the maximum is served as the maximum, not refused.
_WHOLE = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class ItemsQuery:
    """A checked items request."""

    limit: int
    offset: int
    #: The bbox numbers as given (4, heights of a 6-number box dropped), in `bbox_crs`.
    bbox: tuple[float, float, float, float] | None
    bbox_crs: ogc_crs.OgcCrs
    crs: ogc_crs.OgcCrs
    #: ``datetime`` as (start, end), either open (``None``); ``None`` when not given.
    interval: tuple[datetime | None, datetime | None] | None
    #: Queryable field → value to equal, in the order given.
    filters: tuple[tuple[str, object], ...]
    #: The parameters as received (one value each), to rebuild links with.
    params: tuple[tuple[str, str], ...]

    def link_params(self, **changes: object) -> dict[str, object]:
        """The request's parameters with `changes` (``None`` removes one), for links."""
        out: dict[str, object] = dict(self.params)
        for name, value in changes.items():
            out.pop(name, None)
            if value is not None:
                out[name] = value
        return out


def _single(args: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = args.get(name) or []
    if len(values) > 1:
        raise UsageError(f"{name} is given {len(values)} times", where=name,
                         fix=f"give {name} once")
    return values[0] if values else None


def check_params(args: Mapping[str, Sequence[str]], allowed: Sequence[str]) -> None:
    """Refuse parameters that are not in `allowed`, or given more than once (400)."""
    unknown = [name for name in args if name not in allowed]
    if unknown:
        raise UsageError(f"unknown parameter {unknown[0][:50]!r}", where="query string",
                         fix="use only: " + ", ".join(allowed))
    for name in args:
        _single(args, name)


def parse_format(args: Mapping[str, Sequence[str]], accept_html: bool) -> str:
    """``json`` or ``html``: ``f`` when given, else what the Accept header prefers."""
    f = _single(args, "f")
    lang = _single(args, "lang")
    if lang is not None and lang not in LANGS:
        raise UsageError(f"lang={lang[:20]!r} is not a language of the portal", where="lang",
                         fix="use lang=vi or lang=en")
    if f is None:
        return "html" if accept_html else "json"
    if f not in FORMATS:
        raise UsageError(f"f={f[:20]!r} is not an output format of this API", where="f",
                         fix="use f=json (GeoJSON / JSON) or f=html")
    return f


def _limit(value: str | None) -> int:
    """The page size: below 1 is a 400; above `MAX_LIMIT` is served as `MAX_LIMIT`.

    OGC API – Features 1.0.1 (17-069r4, Requirement 22 C and Permission 6): a limit
    larger than the published maximum "SHALL NOT result in an error" — the server pages
    at its maximum and the ``next`` link gives the rest. However many digits: the number
    is compared by its length first, never converted whole (Python refuses to convert
    more than 4 300 digits, which would be a 500).
    """
    if value is None:
        return DEFAULT_LIMIT
    text = value.strip()
    digits = text.lstrip("+-").lstrip("0")
    if not _WHOLE.fullmatch(text) or not digits or text.startswith("-"):
        raise UsageError(f"limit={value[:20]!r} is not a whole number from 1", where="limit",
                         fix=f"give limit between 1 and {MAX_LIMIT} (default {DEFAULT_LIMIT}; "
                             "more is served as the maximum); follow the next links for more")
    if len(digits) > len(str(MAX_LIMIT)):
        return MAX_LIMIT
    return min(int(digits), MAX_LIMIT)


def _offset(value: str | None) -> int:
    if value is None:
        return 0
    text = value.strip()
    if not _INT.fullmatch(text) or int(text) < 0:
        raise UsageError(f"offset={value[:20]!r} is not a whole number from 0", where="offset",
                         fix="give offset as the number of matching features to skip, e.g. "
                             "offset=100")
    return int(text)


def _bbox(value: str | None, crs: ogc_crs.OgcCrs) -> tuple[float, float, float, float] | None:
    """Four numbers (or six, with heights, which are dropped: the layers are 2D)."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    order = ("lat,lon" if crs.north_first and crs.geographic else
             "northing,easting" if crs.north_first else
             "lon,lat" if crs.geographic else "easting,northing")
    a1, a2 = order.split(",")
    fix = (f"give bbox=min {a1},min {a2},max {a1},max {a2} in the bbox-crs ({crs.uri}), "
           f"e.g. " + ("bbox=108.30,11.68,108.33,11.71" if crs.uri == ogc_crs.CRS84 else
                       "bbox=11.68,108.30,11.71,108.33" if crs.north_first and crs.geographic
                       else "bbox=560000,1290000,561000,1291000"))
    if len(parts) not in (4, 6) or not all(_NUMBER.fullmatch(p) for p in parts):
        raise UsageError(f"bbox={value[:80]!r} is not 4 numbers separated by commas",
                         where="bbox", fix=fix)
    numbers = [float(p) for p in parts]
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    lo1, lo2, hi1, hi2 = numbers
    if not all(math.isfinite(n) for n in numbers):
        raise UsageError(f"bbox={value[:80]!r} has a number too large", where="bbox", fix=fix)
    if lo1 > hi1 or lo2 > hi2:
        raise UsageError(f"bbox={value[:80]!r} has a minimum above its maximum (boxes across "
                         "the antimeridian are not supported)", where="bbox", fix=fix)
    if crs.geographic:
        lat = (lo1, hi1) if crs.north_first else (lo2, hi2)
        lon = (lo2, hi2) if crs.north_first else (lo1, hi1)
        if not (max(abs(lat[0]), abs(lat[1])) <= 90 and max(abs(lon[0]), abs(lon[1])) <= 180):
            raise UsageError(f"bbox={value[:80]!r} has a latitude beyond ±90° or a longitude "
                             "beyond ±180°", where="bbox", fix=fix)
    return lo1, lo2, hi1, hi2


def _instant(text: str, end: bool) -> datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if "T" in text or "t" in text:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        else:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, 23, 59, 59) if end else \
                datetime(day.year, day.month, day.day)
    except ValueError:
        raise UsageError(f"datetime {text[:40]!r} is not an RFC 3339 date or date-time",
                         where="datetime",
                         fix="e.g. datetime=2025-01-01T00:00:00Z, datetime=2025-01-01 or an "
                             "interval datetime=2021-01-01T00:00:00Z/.. ('..' leaves an end "
                             "open)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _interval(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    if value is None:
        return None
    parts = value.split("/")
    if len(parts) > 2 or not value.strip() or (len(parts) == 1 and parts[0].strip() == ".."):
        raise UsageError(f"datetime={value[:60]!r} is not a date-time or an interval",
                         where="datetime", fix="give one date-time or start/end, e.g. "
                                               "2021-01-01T00:00:00Z/2030-12-31T23:59:59Z")
    if len(parts) == 1:
        start = end = _instant(parts[0], end=False)
        if "T" not in parts[0].upper():  # a whole day
            end = _instant(parts[0], end=True)
        return start, end
    start, end = _instant(parts[0], end=False), _instant(parts[1], end=True)
    if start is not None and end is not None and start > end:
        raise UsageError(f"datetime={value[:60]!r} ends before it starts", where="datetime",
                         fix="give the earlier date-time first")
    return start, end


def _filter_value(name: str, ftype: str, value: str) -> object:
    text = unicodedata.normalize("NFC", value).strip()
    if not text or len(text) > MAX_VALUE:
        raise UsageError(f"{name}= needs a value of 1 to {MAX_VALUE} characters", where=name,
                         fix=f"give the value to match, e.g. {name}=" +
                             ("12" if ftype == "int" else "ONT" if ftype == "code" else "67801"))
    if ftype == "int":
        if not _INT.fullmatch(text):
            raise UsageError(f"{name}={value[:40]!r} is not a whole number", where=name,
                             fix=f"give {name} as a number, e.g. {name}=12")
        return int(text)
    if ftype == "code":  # codes are stored upper case without spaces (normalise does it)
        return text.upper().replace(" ", "")
    return text


def parse_items_query(args: Mapping[str, Sequence[str]], fields: PublicFields,
                      store_crs: str, survey: str | None = None) -> ItemsQuery:
    """Check the query string of ``/collections/{id}/items`` (all values as received);
    ``survey``: the collection district's survey CRS (`ogc_crs.survey_crs`).

    Raises
    ------
    UsageError
        The first bad parameter found (400), naming it and what would work.
    """
    queryables = fields.queryables
    check_params(args, [*ITEMS_PARAMS, *queryables])
    bbox_crs = ogc_crs.parse_crs(_single(args, "bbox-crs"), store_crs, "bbox-crs", survey)
    crs = ogc_crs.parse_crs(_single(args, "crs"), store_crs, "crs", survey)
    filters = tuple((name, _filter_value(name, queryables[name], _single(args, name) or ""))
                    for name in args if name in queryables)
    limit = _limit(_single(args, "limit"))
    # Links carry the limit served (a limit above the maximum was lowered to it).
    params = tuple((name, str(limit) if name == "limit" else _single(args, name) or "")
                   for name in args)
    return ItemsQuery(
        limit=limit,
        offset=_offset(_single(args, "offset")),
        bbox=_bbox(_single(args, "bbox"), bbox_crs),
        bbox_crs=bbox_crs,
        crs=crs,
        interval=_interval(_single(args, "datetime")),
        filters=filters,
        params=params,
    )


class IdCache:
    """Matching feature ids per (version, filters), least recently used dropped first.

    Bounded by the number of ids held (8 bytes each), so a flood of distinct queries
    cannot grow memory. Versions never change, so an entry is never stale; a new
    publication simply asks with another version id.
    """

    def __init__(self, max_ids: int = 4_000_000, max_entries: int = 256) -> None:
        self.max_ids = max_ids
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            ids = self._entries.get(key)
            if ids is not None:
                self._entries.move_to_end(key)
                return ids
        ids = compute()  # outside the lock: a slow query holds no one else up
        ids.setflags(write=False)
        with self._lock:
            if key not in self._entries and len(ids) <= self.max_ids:
                self._entries[key] = ids
                self._held += len(ids)
                while self._held > self.max_ids or len(self._entries) > self.max_entries:
                    _, dropped = self._entries.popitem(last=False)
                    self._held -= len(dropped)
        return ids


@dataclass(frozen=True)
class Selection:
    """The page of feature ids an items request selects."""

    ids: np.ndarray
    number_matched: int
    has_next: bool


def _in_time(coll: Collection, interval: tuple[datetime | None, datetime | None]) -> bool:
    """Whether the collection's time (its temporal extent) meets the interval.

    Features carry no time of their own: a plan's zones hold for the plan period, the
    other layers are timeless and always match.
    """
    if coll.temporal is None:
        return True
    first = datetime.fromisoformat(coll.temporal[0])
    last = datetime.fromisoformat(coll.temporal[1])
    start, end = interval
    return (start is None or start <= last) and (end is None or end >= first)


def select(store: Store, coll: Collection, query: ItemsQuery, cache: IdCache) -> Selection:
    """The ids of the features on the requested page, how many match, and whether more do."""
    empty = Selection(np.empty(0, dtype=np.int64), 0, False)
    if query.interval is not None and not _in_time(coll, query.interval):
        return empty
    area = None
    if query.bbox is not None:
        area = ogc_crs.bbox_area(query.bbox, query.bbox_crs, store.crs)
        if area is None:
            return empty
    where = dict(query.filters) or None
    version_id = coll.version.id
    if area is None and where is None:
        ids = store.feature_ids(version_id)  # a range, from the store's catalogue
    else:
        key = (version_id, query.filters, query.bbox, query.bbox_crs.uri)
        ids = cache.get(key, lambda: store.feature_ids(version_id, where=where,
                                                       intersects=area))
    page = ids[query.offset:query.offset + query.limit]
    return Selection(page, len(ids), query.offset + query.limit < len(ids))
