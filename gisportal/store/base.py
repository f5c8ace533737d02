"""The storage contract: immutable layer versions, one published pointer per layer.

Every backend (the embedded GeoPackage store, PostGIS) implements `Store`; callers
(ingest, publish, lookup, tiles, exports) only ever see this interface, and the contract
tests in ``tests/test_store.py`` run against each backend.

The contract's arguments are checked here, once, for every backend: a public method
(`Store.add_version`, `Store.read`, `Store.records`, ...) checks what it can without
storage, then calls its backend's hook (`Store._write_version`, `Store._read`,
`Store._records`, ...), and the check functions below (`check_columns`,
`attribute_schema`, `check_version_id`, ...) are what the backends call for the rest.
How the two backends keep a layer as a table (shared by them, not part of the contract)
is in `gisportal.store.common`.
"""

from __future__ import annotations

import json
import math
import operator
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from gisportal.base.errors import NotFoundError, StoreError, UsageError

if TYPE_CHECKING:
    from gisportal.store.home import DataHome

__all__ = [
    "KINDS",
    "PROJECT_KINDS",
    "STATUSES",
    "Bounds",
    "Found",
    "NewLayer",
    "Published",
    "StalePublished",
    "Store",
    "Version",
    "check_bbox",
    "check_district_code",
    "check_kind",
    "check_project",
    "dump_meta",
    "utc_now",
]

#: Layer kinds a district can hold: the cadastre, the 2021–2030 plan, the boundaries and
#: the annual land-use plans (one layer per district, holding every year's projects).
KINDS: tuple[str, ...] = ("parcels", "plan", "boundary", "annual_plan")

#: Layer kinds of a construction or urban planning project (đồ án quy hoạch xây dựng, đô
#: thị): its planned lots and its red and building lines. They are versioned as a
#: district's layers are, with one published pointer per (project, kind): a district holds
#: many projects (a town's general plan, a zoning plan inside it, detailed plans inside
#: that), so the district alone cannot name the layer. A project version's ``district`` is
#: the district its area lies in: where the layer is kept and whose planners may change it.
PROJECT_KINDS: tuple[str, ...] = ("zoning_lots", "red_lines")

#: Statuses callers can see. Backends may use hidden statuses while writing.
STATUSES: tuple[str, ...] = ("draft", "published", "superseded")

Bounds = tuple[float, float, float, float]
#: A layer `Store.records_and_overlays` asks about: (version id, columns), optionally with
#: the version's bounds, which let a store skip a layer that cannot meet the answer.
Overlay = tuple[int, Sequence[str]] | tuple[int, Sequence[str], Bounds | None]

# A GSO administrative-unit code: digits only. Districts are 3 digits ("672"), but the
# 2025 reform makes provinces (2) and communes (5) plausible units too. Digits only also
# makes the code safe to use in file names.
_DISTRICT_RE = re.compile(r"[0-9]{2,5}")
#: A project's id: lower-case ASCII letters, digits and hyphens (it is in URLs and file
#: names), e.g. ``672-dankia-suoi-vang-2000``.
_PROJECT_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


@dataclass(frozen=True)
class Version:
    """One immutable layer version of a district, as the catalogue describes it.

    Attributes
    ----------
    id
        Globally unique and increasing across all districts and kinds, so "newest" is
        simply the highest id.
    district, kind
        Which layer this is a version of.
    status
        ``"draft"``, ``"published"`` or ``"superseded"``.
    source_name, source_sha256
        The uploaded file's name and the hex sha256 of its bytes, so a version can
        always be traced back to the exact file it came from.
    feature_count
        Number of features in the layer.
    has_errors
        Validation found errors; such a version can be stored and inspected but never
        published.
    created_at, created_by
        ISO 8601 UTC timestamp (seconds, ``Z`` suffix) and user of the upload.
    published_at, published_by
        Last time and user that made this version the published one (``None`` if never).
    meta
        Free JSON: read report, field mapping, validation summary, plan decision...
    bounds
        ``(minx, miny, maxx, maxy)`` in the store CRS, ``None`` for a layer with no
        geometry.
    project
        The planning project whose layer this is (`PROJECT_KINDS`), ``None`` for a
        district's own layers (`KINDS`).
    """

    id: int
    district: str
    kind: str
    status: str
    source_name: str
    source_sha256: str
    feature_count: int
    has_errors: bool
    created_at: str
    created_by: str
    published_at: str | None
    published_by: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    bounds: Bounds | None = None
    project: str | None = None

    @property
    def is_published(self) -> bool:
        """Whether this is the version residents currently see."""
        return self.status == "published"


@dataclass(frozen=True)
class NewLayer:
    """What `Store.add_version` hands its backend once every argument is checked."""

    district: str
    kind: str
    gdf: gpd.GeoDataFrame
    #: (name, dtype) of the attribute columns, in the frame's order
    columns: list[tuple[str, str]]
    #: the key columns, checked against `columns`
    keys: list[str]
    #: the meta as strict JSON text (`dump_meta`)
    meta_json: str
    bounds: Bounds | None
    source_name: str
    source_sha256: str
    created_by: str
    has_errors: bool
    project: str | None = None

    @property
    def names(self) -> list[str]:
        """The attribute column names, in the frame's order."""
        return [name for name, _ in self.columns]


class Published(Mapping[tuple[str, str], Version]):
    """The published versions one request answers from: ``(district, kind)`` → version,
    as `Store.published_snapshot` gives them.

    A backend that keeps the catalogue between requests (the PostGIS store: a round
    trip saved per look-up) hands out its kept copy, not yet known to be current
    (`confirmed` false, its `token` saying which state of the catalogue it is); one
    statement of the request then compares the token with the database's in the same
    round trip (`Store.records_and_overlays`), or `Store.confirm` asks. An answer is
    given only from a confirmed snapshot, so it is never older than the request.
    A snapshot read afresh for the request is confirmed from the start (``token`` None).

    Read-only, and cheap to make: it wraps the backend's mapping without copying it.
    """

    __slots__ = ("_versions", "confirmed", "projects", "server", "token")

    def __init__(self, versions: Mapping[tuple[str, str], Version], *,
                 token: object = None, server: str | None = None,
                 projects: Mapping[tuple[str, str], Version] | None = None) -> None:
        self._versions = versions
        #: The published layers of planning projects, ``(project, kind)`` → version, of
        #: the same moment of the catalogue (a look-up adds their lots and red lines).
        self.projects: Mapping[tuple[str, str], Version] = projects or {}
        #: The backend's name for the state of the catalogue this was read at; None
        #: when it was read for this request.
        self.token = token
        #: Where the backend reads what must agree with this snapshot (its own business).
        self.server = server
        #: Whether the snapshot is known to be the store's catalogue since the request began.
        self.confirmed = token is None

    def __getitem__(self, key: tuple[str, str]) -> Version:
        return self._versions[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def __contains__(self, key: object) -> bool:
        return key in self._versions

    def get(self, key: tuple[str, str], default: Any = None) -> Any:  # type: ignore[override]
        """As `dict.get` (the mapping's own, not `Mapping`'s: asked many times a request)."""
        return self._versions.get(key, default)

    def __repr__(self) -> str:
        return f"Published({dict(self._versions)!r}, confirmed={self.confirmed})"


class StalePublished(Exception):
    """A `Published` snapshot turned out not to be the store's catalogue any more (a
    publish or a meta change since it was kept), or it could not be confirmed where it
    was read (a replica that failed). Not an error: the caller takes a new snapshot and
    asks again (`gisportal.services.lookup` does); what it got from the old one is
    dropped. The backend has already forgotten the stale copy when this is raised."""


class Found(NamedTuple):
    """What `Store.records_and_overlays` answers."""

    #: The features found, as `Store.records` gives them.
    records: list[dict[str, Any]]
    #: Per overlay asked, in order: its features over the first record's bounding box
    #: (or at the point, when no record was found), as `Store.records` gives them.
    overlays: list[list[dict[str, Any]]]


class Store(ABC):
    """Versioned storage of district layers.

    A layer version is written once and never changed (only its ``meta`` can grow).
    Publishing moves a single pointer per (district, kind) in one transaction, so a
    crash at any moment leaves the previously published version published and readable.

    Methods taking a version id raise `NotFoundError` when no such version exists;
    methods taking a district or kind raise `NotFoundError` when the code is not a
    district code or not a known kind. The store does not know the province's list of
    districts: a well-formed code without versions simply has none.

    Stores are context managers; `close` releases files and connections.
    """

    #: The CRS every stored geometry is in (e.g. ``"EPSG:5899"``), as given to the store.
    crs: str
    #: The data home the store belongs to: the file areas of what is made from its
    #: versions (tiles, decision PDFs) are the home's (`gisportal.store.home`).
    home: DataHome

    # -- writing -------------------------------------------------------------------------

    def add_version(
        self,
        district: str,
        kind: str,
        gdf: gpd.GeoDataFrame,
        *,
        source_name: str,
        source_sha256: str,
        created_by: str,
        meta: Mapping[str, Any] | None = None,
        has_errors: bool = False,
        key_columns: Sequence[str] = (),
        project: str | None = None,
    ) -> Version:
        """Store `gdf` as a new draft version of the district's `kind` layer.

        The layer is written completely before the version becomes visible; if anything
        fails, nothing of it remains visible. Mixed Polygon/MultiPolygon layers are
        stored as MultiPolygon; any other single geometry type is kept.

        Parameters
        ----------
        district, kind
            Which layer this is a version of.
        gdf
            The features, already in the store CRS (the store never reprojects: areas
            must be computed in the projected CRS the caller chose). Column dtypes
            (int, float, str, bool, nullable) and text are kept as given.
        source_name, source_sha256
            The uploaded file's name and sha256 (hex).
        created_by
            User name of the uploader.
        meta
            Free JSON-serialisable mapping kept with the version.
        has_errors
            Validation found errors: the version can never be published.
        key_columns
            Columns looked up by `find`. Backends index them so that a look-up by
            any of them is fast, and fastest by all of them, or by a leading part in the
            given order (put the columns every look-up uses first).
        project
            The planning project this is a layer of: required for `PROJECT_KINDS`,
            refused for a district's own `KINDS`.

        Returns
        -------
        Version
            The new version, status ``"draft"``.

        Raises
        ------
        StoreError
            The gdf is not in the store CRS or the write failed.
        UsageError
            Reserved or duplicate column names, unknown key columns, meta not JSON.
        """
        return self._write_version(self._prepare_new_layer(
            district, kind, gdf, key_columns, meta, source_name=source_name,
            source_sha256=source_sha256, created_by=created_by, has_errors=has_errors,
            project=project))

    def _prepare_new_layer(
        self,
        district: str,
        kind: str,
        gdf: gpd.GeoDataFrame,
        key_columns: Sequence[str],
        meta: Mapping[str, Any] | None,
        *,
        source_name: str,
        source_sha256: str,
        created_by: str,
        has_errors: bool,
        project: str | None = None,
    ) -> NewLayer:
        """`add_version`'s arguments checked (as its docstring says) and prepared."""
        district = check_district_code(district)
        kind, project = check_layer(kind, project)
        if not isinstance(gdf, gpd.GeoDataFrame) or gdf.active_geometry_name is None:
            raise UsageError("The layer must be a GeoDataFrame with a geometry column",
                             where="add_version(gdf)",
                             fix="Pass the GeoDataFrame the reader produced")
        self._check_crs(gdf)
        columns = attribute_schema(gdf)
        keys = check_columns(column_list(key_columns), [name for name, _ in columns],
                             f"the new {kind} layer", "key_columns")
        meta_json = dump_meta(meta or {})
        return NewLayer(district, kind, gdf, columns, keys, meta_json, layer_bounds(gdf),
                        source_name, source_sha256, created_by, has_errors, project)

    @abstractmethod
    def _write_version(self, new: NewLayer) -> Version:
        """`add_version` once its arguments are checked: store the layer, return the
        new draft version."""

    @abstractmethod
    def publish(self, version_id: int, *, by: str) -> Version:
        """Make `version_id` the published version of its (district, kind), or of its
        (project, kind) for a project's layer.

        The previously published version becomes ``"superseded"`` in the same
        transaction. Publishing a superseded version again is how a planner rolls back;
        publishing the already published version changes nothing.

        Raises
        ------
        NotFoundError
            No such version.
        StoreError
            The version has validation errors.
        """

    @abstractmethod
    def update_meta(self, version_id: int, meta: Mapping[str, Any]) -> Version:
        """Merge the keys of `meta` into the version's meta (shallow) and return it.

        This is how facts learnt after the upload (the approval decision, say) are
        attached; the layer itself never changes.
        """

    # -- catalogue -----------------------------------------------------------------------

    @abstractmethod
    def version(self, version_id: int) -> Version:
        """The version with this id; `NotFoundError` if there is none."""

    @abstractmethod
    def versions(self, district: str | None = None, kind: str | None = None, *,
                 project: str | None = None) -> list[Version]:
        """Versions, newest first, optionally only those of one district and/or kind.

        A district's own layers (`KINDS`) without `project`; that project's layers
        (`PROJECT_KINDS`) with it: a district's history never lists a project's uploads,
        nor the other way round.
        """

    @abstractmethod
    def published(self, district: str, kind: str) -> Version | None:
        """The published version of the district's `kind` layer, or ``None``.

        Look-ups call this on every request, so backends may cache the answer, but it
        is never stale: once a `publish` or `update_meta` has returned, in this process
        or in another one, every later call answers the new state. The returned
        version is shared with other callers: treat its ``meta`` as read-only.
        """

    @abstractmethod
    def districts(self) -> list[str]:
        """Codes of the districts having any version, sorted (never stale, as `published`)."""

    def published_versions(self, district: str | None = None) -> dict[tuple[str, str], Version]:
        """Every published version at once: ``(district, kind)`` → what `published` answers.

        Only the layers that have a published version are keys; `district` limits the
        answer to that district's layers (`NotFoundError` if it is not a district code).
        Never stale, as `published`: a `publish` or `update_meta` that has returned is in
        the next call's answer. As `published`'s, the versions (and their ``meta``) may
        be shared with other callers: treat ``meta`` as read-only.

        Why this exists: a look-up asks about several layers (every district's boundary
        to find the district at a point, then its parcels and plan), and on a database
        server each `published` call is a network round trip. A caller takes one
        answer per request and asks it everything, so the request sees one state of
        the catalogue throughout (a look-up takes it from `published_snapshot`, which
        may skip even that round trip and confirm it later). Backends answer in one
        query (PostGIS) or from the snapshot they keep (the GeoPackage store); this
        default asks `published` layer by layer (each answer fresh, but not one
        consistent moment).
        """
        codes = [check_district_code(district)] if district is not None else self.districts()
        out: dict[tuple[str, str], Version] = {}
        for code in codes:
            for kind in KINDS:
                version = self.published(code, kind)
                if version is not None:
                    out[(code, kind)] = version
        return out

    @abstractmethod
    def published_projects(self) -> dict[tuple[str, str], Version]:
        """Every published layer of a planning project: ``(project, kind)`` → version.

        Never stale, as `published_versions` (which holds only districts' own layers).
        """

    def published_snapshot(self, district: str | None = None) -> Published:
        """What `published_versions` answers, for one request that will confirm it.

        A backend may answer from a copy it kept from an earlier request (no round
        trip), unconfirmed: the request then confirms it in one of its own statements
        (`records_and_overlays` given the snapshot) or by `confirm`, and asks again
        with a new snapshot when either raises `StalePublished`. What the request
        answers is then never older than the request, as with `published_versions`.
        This default reads `published_versions` afresh: confirmed from the start.
        """
        return Published(self.published_versions(district),
                         projects=self.published_projects())

    def confirm(self, published: Published) -> None:
        """Make sure `published` is still the catalogue (`StalePublished` if not).

        Nothing to do when it is confirmed already (read for this request, or found
        current by a statement of the request); else one round trip. Backends that
        keep no copy (this default) never hand out an unconfirmed snapshot.
        """
        if not published.confirmed:
            raise StalePublished("an unconfirmed snapshot from a store that keeps none")

    # -- reading -------------------------------------------------------------------------

    def read(
        self,
        version_id: int,
        *,
        bbox: Bounds | None = None,
        columns: Sequence[str] | None = None,
    ) -> gpd.GeoDataFrame:
        """Features of a version, in stored order, geometry column ``"geometry"``.

        Parameters
        ----------
        bbox
            ``(minx, miny, maxx, maxy)`` in the store CRS: only features whose geometry
            intersects it, found through the spatial index.
        columns
            Attribute columns to return (geometry always comes along); all by default.
        """
        return self._read(version_id, bbox, columns)

    @abstractmethod
    def _read(self, version_id: int, bbox: Bounds | None,
              columns: Sequence[str] | None) -> gpd.GeoDataFrame:
        """`read` of this backend."""

    def query_bbox(
        self,
        version_id: int,
        bbox: Bounds,
        columns: Sequence[str] | None = None,
    ) -> gpd.GeoDataFrame:
        """Features of a version whose geometry intersects `bbox`, for small boxes.

        The same answer as ``read(version_id, bbox=bbox, columns=columns)``: the
        features whose geometry intersects the closed rectangle ``(minx, miny, maxx,
        maxy)`` (store CRS; touching its edge counts, a box of zero width or height is a
        segment or a point), in stored order, with the requested attribute columns (all
        by default) and ``"geometry"``; dtypes as `read` gives them. Features without
        geometry never match.

        `read` is built for whole layers; this is built for the many small queries of
        look-ups (a parcel's box against the plan zones), where the cost of opening the
        layer would dominate. Backends answer it through their spatial index without
        per-call setup; this default simply calls `read`.

        Raises
        ------
        NotFoundError
            No such version.
        UsageError
            `bbox` is not four finite numbers with min <= max, or an unknown column.
        """
        return self._query_bbox(version_id, bbox, columns)

    def _query_bbox(self, version_id: int, bbox: Bounds,
                    columns: Sequence[str] | None) -> gpd.GeoDataFrame:
        """`query_bbox` of this backend; by default `read`."""
        return self.read(version_id, bbox=check_bbox(bbox), columns=columns)

    def records(
        self,
        version_id: int,
        *,
        where: Mapping[str, object] | None = None,
        point: tuple[float, float] | None = None,
        bbox: Bounds | None = None,
        columns: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The features `find`, `at_point` or `query_bbox` return, as plain dicts.

        Give exactly one of `where` (as `find`), `point` ``(x, y)`` (as `at_point`) or
        `bbox` (as `query_bbox`). Same features, same order, same errors; each is a dict
        of the attribute columns (`columns`, else all; in stored order) to plain Python
        values — ``None`` for a missing value, ``bool`` for boolean columns — and
        ``"geometry"`` to a shapely geometry.

        For look-ups that turn a few features into JSON: building a GeoDataFrame costs
        several times more than the query itself. The default `_records` converts the
        frames; backends answer without building one.
        """
        if sum(arg is not None for arg in (where, point, bbox)) != 1:
            raise UsageError("records() needs exactly one of where, point or bbox",
                             where="records", fix="Give where=, point= or bbox=")
        return self._records(version_id, where, point, bbox, columns)

    def records_and_overlays(
        self,
        version_id: int | None,
        *,
        where: Mapping[str, object] | None = None,
        point: tuple[float, float] | None = None,
        columns: Sequence[str] | None = None,
        overlays: Sequence[Overlay] = (),
        published: Published | None = None,
    ) -> Found:
        """The features `records` finds by `where` or at `point`, and what lies over
        the first of them in other layers: a parcel with its plan zones and projects.

        ``Found.records`` is ``records(version_id, where=…, point=…, columns=…)``
        (none when `version_id` is None: a district without that layer, `point`
        required). ``Found.overlays[i]``, for ``overlays[i] = (version id, columns)``,
        is ``records(id, bbox=<bounds of the first record's geometry>, columns=…)``;
        when nothing was found, at `point` instead (``records(id, point=point, …)``),
        or none without a point; none either when the first record has no geometry.
        An overlay may carry its version's bounds as a third item (``Version.bounds``):
        a store may then answer none for it without asking when they cannot meet (a
        district's planning projects each cover a few streets of it).

        `published`, the request's snapshot the versions were taken from, is confirmed
        by the same round trip where the backend keeps snapshots (`StalePublished`
        when it is stale: ask again with a new one; nothing found is kept).

        Why one method: a look-up asks these questions one after the other, and on a
        database server each is a round trip of a fraction of a millisecond plus the
        driver's own time, more than the look-up's own work; the PostGIS store asks
        them in one statement. This default asks `records` once per layer, as the
        look-up did before (the GeoPackage store: in-process, no round trips to save).

        Raises
        ------
        UsageError
            Not exactly one of `where` and `point` (`point` when `version_id` is None),
            or an error of `records`.
        """
        if version_id is None and (where is not None or point is None):
            raise UsageError("records_and_overlays() without a layer needs a point",
                             where="records_and_overlays", fix="Give point=(x, y)")
        if version_id is not None and (where is None) == (point is None):
            raise UsageError("records_and_overlays() needs exactly one of where or point",
                             where="records_and_overlays", fix="Give where= or point=")
        return self._records_and_overlays(version_id, where, point, columns, overlays,
                                          published)

    def _records_and_overlays(
        self,
        version_id: int | None,
        where: Mapping[str, object] | None,
        point: tuple[float, float] | None,
        columns: Sequence[str] | None,
        overlays: Sequence[Overlay],
        published: Published | None,
    ) -> Found:
        """`records_and_overlays` of this backend, its arguments checked; by default
        `records` once per layer whose bounds (when given) meet the answer's box (a
        snapshot given is left to `confirm`)."""
        found = [] if version_id is None else self.records(
            version_id, where=where, point=point, columns=columns)
        if found:
            geom = found[0]["geometry"]
            if geom is None or shapely.is_empty(geom):
                return Found(found, [[] for _ in overlays])
            box = tuple(float(v) for v in shapely.bounds(geom))
            return Found(found, [self.records(o[0], bbox=box, columns=o[1])  # type: ignore[arg-type]
                                 if _meets(o, box) else [] for o in overlays])
        if point is None:
            return Found(found, [[] for _ in overlays])
        at = (point[0], point[1], point[0], point[1])
        return Found(found, [self.records(o[0], point=point, columns=o[1])
                             if _meets(o, at) else [] for o in overlays])

    def _records(
        self,
        version_id: int,
        where: Mapping[str, object] | None,
        point: tuple[float, float] | None,
        bbox: Bounds | None,
        columns: Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        """`records` of this backend, given exactly one of where, point and bbox; by
        default the frames of `find`, `at_point` or `query_bbox`, converted."""
        if bbox is not None:
            frame = self.query_bbox(version_id, bbox, columns)
        else:
            if where is not None:
                frame = self.find(version_id, where)
            else:
                x, y = point  # type: ignore[misc]
                frame = self.at_point(version_id, x, y)
            if columns is not None:
                names = column_list(columns)
                unknown = [c for c in names if c not in frame.columns or c == "geometry"]
                if unknown:
                    raise UsageError(f"No column {', '.join(map(repr, unknown))}",
                                     where="columns", fix="Use one of: " + ", ".join(
                                         c for c in frame.columns if c != "geometry"))
                frame = frame[[c for c in frame.columns if c in names or c == "geometry"]]
        return [{name: _plain(value) for name, value in row.items()}
                for row in frame.to_dict("records")]

    # -- paging by feature id (OGC API Features) ------------------------------------------

    def columns(self, version_id: int) -> list[str]:
        """The attribute column names of a version, in stored order (no geometry).

        Raises
        ------
        NotFoundError
            No such version.
        """
        frame = self.read(version_id, bbox=(0.0, 0.0, 0.0, 0.0))
        return [name for name in frame.columns if name != frame.geometry.name]

    def feature_ids(
        self,
        version_id: int,
        *,
        where: Mapping[str, object] | None = None,
        intersects: Bounds | BaseGeometry | None = None,
    ) -> np.ndarray:
        """Ids of the features matching every filter given, ascending, as int64.

        A feature id is a positive integer fixed for each feature of a version (versions
        never change): the GeoPackage ``fid``; this default numbers the features 1, 2, ...
        in stored order. Ascending ids are stored order, so a page of features is a slice
        of this array, and its length is an exact count of the matches.

        Parameters
        ----------
        where
            Column → value, matched as `find` matches them (bound parameters, NFC text,
            ``None`` matches missing values); ``None`` or empty: no attribute filter.
        intersects
            ``(minx, miny, maxx, maxy)`` (a closed rectangle, as `query_bbox`) or a shapely
            geometry, in the store CRS: only features whose geometry intersects it.
            Features without geometry never match.

        Raises
        ------
        NotFoundError
            No such version.
        UsageError
            An unknown column, a value that cannot be matched, a bad box or geometry.
        """
        return self._feature_ids(version_id, where, intersects)

    def _feature_ids(
        self,
        version_id: int,
        where: Mapping[str, object] | None,
        intersects: Bounds | BaseGeometry | None,
    ) -> np.ndarray:
        """`feature_ids` of this backend; by default through `read`."""
        frame = self.read(version_id, columns=list(where) if where else [])
        mask = np.ones(len(frame), dtype=bool)
        for column, value in (where or {}).items():
            values = frame[column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                mask &= values.isna().to_numpy(dtype=bool)
            else:
                if isinstance(value, str):
                    value = unicodedata.normalize("NFC", value)
                mask &= values.eq(value).fillna(False).to_numpy(dtype=bool)
        if intersects is not None:
            area = check_intersects(intersects)
            mask &= np.asarray(shapely.intersects(frame.geometry.values, area), dtype=bool)
        return np.flatnonzero(mask).astype(np.int64) + 1

    def records_by_id(
        self,
        version_id: int,
        ids: Sequence[int] | np.ndarray,
        *,
        columns: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The features with these ids, as `records` gives them plus their ``"fid"``.

        In ascending id order, whatever the order of `ids`; ids with no feature are
        skipped (so one id gives a list of at most one record). ``"fid"`` never collides
        with a column: stores refuse it as a column name.

        Raises
        ------
        NotFoundError
            No such version.
        UsageError
            An unknown column.
        """
        return self._records_by_id(version_id, ids, columns)

    def _records_by_id(
        self,
        version_id: int,
        ids: Sequence[int] | np.ndarray,
        columns: Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        """`records_by_id` of this backend; by default through `read`."""
        frame = self.read(version_id, columns=columns)
        wanted = np.unique(np.asarray(ids, dtype=np.int64))
        wanted = wanted[(wanted >= 1) & (wanted <= len(frame))]
        out = []
        for fid, row in zip(wanted, frame.iloc[wanted - 1].to_dict("records"), strict=True):
            rec = {name: _plain(value) for name, value in row.items()}
            rec["fid"] = int(fid)
            out.append(rec)
        return out

    @abstractmethod
    def find(self, version_id: int, where: Mapping[str, object]) -> gpd.GeoDataFrame:
        """Features whose columns equal the given values (all of them), in stored order.

        Values are bound as query parameters, never formatted into SQL, because they come
        from users. ``None`` matches missing values; text is compared after NFC
        normalisation (stored text is NFC). Uses the `key_columns` index when the
        mapping covers its leading columns.
        """

    @abstractmethod
    def at_point(self, version_id: int, x: float, y: float) -> gpd.GeoDataFrame:
        """Features whose geometry intersects the point (store CRS), in stored order.

        A point on an edge shared by two parcels returns both: the caller decides how to
        present the ambiguity rather than the store hiding one of them.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections and files. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- shared checks for backends --------------------------------------------------------

    def _check_crs(self, gdf: gpd.GeoDataFrame) -> None:
        """Refuse a layer whose CRS is not the store's.

        The store never reprojects: the normalise step chose the CRS (and computed areas
        in it), so a mismatch here is a bug upstream, not something to paper over.
        """
        want = pyproj.CRS.from_user_input(self.crs)
        if gdf.crs is None or not pyproj.CRS.from_user_input(gdf.crs).equals(want):
            got = "no CRS" if gdf.crs is None else gdf.crs.to_string()
            raise StoreError(
                f"The layer is in {got}, not in the store's CRS {self.crs}",
                where="add_version(gdf)",
                fix=f"Reproject the layer to {self.crs} (gdf.to_crs) before storing it",
                code="STORE-WRONG-CRS",
            )


def _meets(overlay: Overlay, box: Sequence[float]) -> bool:
    """Whether an overlay's bounds (when it gives them) meet `box` (closed boxes)."""
    bounds = overlay[2] if len(overlay) > 2 else None  # type: ignore[misc]
    if bounds is None:
        return True
    return not (bounds[0] > box[2] or bounds[2] < box[0] or bounds[1] > box[3]
                or bounds[3] < box[1])


def _plain(value: Any) -> Any:
    """A frame value as a plain Python value: ``None`` when missing, numbers unboxed."""
    if value is None or isinstance(value, BaseGeometry):
        return value
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def check_intersects(intersects: Bounds | BaseGeometry) -> BaseGeometry:
    """What `Store.feature_ids` tests against: the geometry, or the closed box as one
    (`UsageError` for an empty or infinite geometry, or a bad box)."""
    if isinstance(intersects, BaseGeometry):
        if intersects.is_empty or not all(math.isfinite(v) for v in intersects.bounds):
            raise UsageError("The area to intersect is empty or not finite",
                             where="intersects", fix="Give a box or a non-empty geometry")
        return intersects
    return box_geometry(*check_bbox(intersects))


def box_geometry(minx: float, miny: float, maxx: float, maxy: float) -> BaseGeometry:
    """The closed rectangle as a geometry; a point or a segment when it is degenerate."""
    if minx == maxx and miny == maxy:
        return shapely.Point(minx, miny)
    if minx == maxx or miny == maxy:
        return shapely.LineString([(minx, miny), (maxx, maxy)])
    return shapely.box(minx, miny, maxx, maxy)


def check_district_code(district: object) -> str:
    """Return `district` if it is a GSO code, else raise `NotFoundError`.

    Codes end up in file names and URLs, so anything but digits is refused here once
    rather than escaped everywhere.
    """
    if not isinstance(district, str) or not _DISTRICT_RE.fullmatch(district):
        raise NotFoundError(
            f"{district!r} is not a district code",
            where="district",
            fix="Use the district's GSO code, e.g. 672 for Đà Lạt",
            code="DISTRICT-UNKNOWN",
        )
    return district


def check_kind(kind: object) -> str:
    """Return `kind` if it is one of `KINDS`, else raise `NotFoundError`."""
    if kind not in KINDS:
        raise NotFoundError(
            f"{kind!r} is not a layer kind",
            where="kind",
            fix="Use one of: " + ", ".join(KINDS),
            code="KIND-UNKNOWN",
        )
    return str(kind)


def check_project(project: object) -> str:
    """Return `project` if it is a well-formed project id, else raise `NotFoundError`."""
    if not isinstance(project, str) or not _PROJECT_RE.fullmatch(project):
        raise NotFoundError(
            f"{project!r} is not a planning project id",
            where="project",
            fix="Use the project's id as `gisportal projects list` shows it: lower-case "
                "letters, digits and hyphens, e.g. 672-dankia-2000",
            code="PROJECT-UNKNOWN",
        )
    return project


def check_layer(kind: object, project: object) -> tuple[str, str | None]:
    """A layer's `kind` and `project`, checked together: a district's own kinds have no
    project, a project's kinds need one (`NotFoundError` / `UsageError` otherwise)."""
    if kind in PROJECT_KINDS:
        if project is None:
            raise UsageError(
                f"a {kind} layer belongs to a planning project", where="--project",
                fix="Create the project first (gisportal projects add ID --district D "
                    "--name ... --level zoning), then name it (--project ID)",
                code="PROJECT-REQUIRED")
        return str(kind), check_project(project)
    kind = check_kind(kind)
    if project is not None:
        raise UsageError(
            f"a {kind} layer belongs to a district, not to a planning project",
            where="--project",
            fix="Leave out the project, or upload the project's lots (zoning_lots) or red "
                "lines (red_lines)")
    return kind, None


def check_bbox(bbox: Sequence[float]) -> Bounds:
    """Return `bbox` as four finite floats with min <= max, else raise `UsageError`."""
    try:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise UsageError(
            f"bbox must be four numbers, got {bbox!r}",
            where="bbox",
            fix="Give (minx, miny, maxx, maxy) in the store CRS",
        ) from None
    box = (minx, miny, maxx, maxy)
    if not all(math.isfinite(v) for v in box) or minx > maxx or miny > maxy:
        raise UsageError(
            f"bbox {box} is empty or not finite",
            where="bbox",
            fix="Give (minx, miny, maxx, maxy) with minx <= maxx and miny <= maxy",
        )
    return box


def dump_meta(meta: Mapping[str, Any]) -> str:
    """Serialise meta as strict JSON (no NaN), keeping Vietnamese text readable.

    Meta is served as JSON to browsers, so anything `json` would only write as
    non-standard JSON is refused when it is stored, not when it is served.
    """
    try:
        return json.dumps(dict(meta), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"meta is not JSON-serialisable: {exc}",
            where="meta",
            fix="Use only str keys and str, number, bool, None, list and dict values",
        ) from exc


def utc_now() -> str:
    """Now as ISO 8601 UTC with seconds, e.g. ``2024-05-01T08:30:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- argument checks the backends call ------------------------------------------------------

#: Column names a layer cannot have: the tables and the returned frames use them.
RESERVED_COLUMNS = frozenset({"fid", "geom", "geometry"})


def attribute_schema(gdf: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    """(name, dtype) of the non-geometry columns; refuse names a table cannot hold."""
    geometry = gdf.geometry.name
    seen: set[str] = set()
    schema = []
    for name in gdf.columns:
        if name == geometry:
            continue
        # SQLite column names are case-insensitive, and fid/geom belong to the table.
        if not isinstance(name, str) or not name or name.lower() in RESERVED_COLUMNS | seen:
            raise UsageError(
                f"Column name {name!r} is reserved, empty or a duplicate (ignoring case)",
                where="add_version(gdf)",
                fix="Rename the column; fid, geom and geometry are reserved",
            )
        seen.add(name.lower())
        schema.append((name, str(gdf[name].dtype)))
    return schema


def layer_bounds(gdf: gpd.GeoDataFrame) -> Bounds | None:
    """The layer's ``(minx, miny, maxx, maxy)``, ``None`` when it has no geometry."""
    box = tuple(float(v) for v in gdf.total_bounds)
    return None if any(math.isnan(v) for v in box) else box  # type: ignore[return-value]


def check_columns(names: Sequence[str], known: Sequence[str], table: str,
                  where: str) -> list[str]:
    """`names` as a list if all are columns of `table`, else `UsageError` listing them.

    Column names reach SQL (quoted) only after this check.
    """
    unknown = [n for n in names if n not in set(known)]
    if unknown:
        raise UsageError(f"No column {', '.join(map(repr, unknown))} in {table}",
                         where=where, fix="Use one of: " + ", ".join(known))
    return list(names)


def column_list(names: str | Sequence[str]) -> list[str]:
    """Column names as a list; one bare name is one column, not its letters."""
    return [names] if isinstance(names, str) else list(names)


def check_version_id(version_id: object) -> int:
    """`version_id` as an int, else `NotFoundError` (there is no such version)."""
    if isinstance(version_id, bool):  # an int to Python, never a version id
        raise no_version(version_id)
    try:
        return operator.index(version_id)  # type: ignore[arg-type]
    except TypeError:
        raise no_version(version_id) from None


def no_version(version_id: object) -> NotFoundError:
    """The error of a version id with no version."""
    return NotFoundError(f"There is no version {version_id!r}", where="version",
                         fix="List the versions of the district to find the right id",
                         code="VERSION-UNKNOWN")


def catalogue_filter(district: str | None, kind: str | None,
                     project: str | None = None) -> tuple[list[str], list[str]]:
    """`Store.versions`' filter: SQL conditions on the catalogue (``?`` placeholders)
    and their parameters, the codes checked; a district's own layers without `project`,
    that project's layers with it."""
    clauses, params = [], []
    if district is not None:
        clauses.append("district = ?")
        params.append(check_district_code(district))
    if project is None:
        clauses.append("project IS NULL")
        if kind is not None:
            clauses.append("kind = ?")
            params.append(check_kind(kind))
    else:
        clauses.append("project = ?")
        params.append(check_project(project))
        if kind is not None:
            if kind not in PROJECT_KINDS:
                raise NotFoundError(f"{kind!r} is not a kind of a project's layer",
                                    where="kind", fix="Use one of: " + ", ".join(PROJECT_KINDS),
                                    code="KIND-UNKNOWN")
            clauses.append("kind = ?")
            params.append(str(kind))
    return clauses, params


def check_publishable(version: Version) -> None:
    """Refuse to publish a version with validation errors (`StoreError`)."""
    if version.has_errors:
        raise StoreError(
            f"Version {version.id} has validation errors and cannot be published",
            where=f"district {version.district}, {version.kind}",
            fix="Fix the errors in the file, upload it again and publish the new "
                "version",
            code="STORE-HAS-ERRORS",
        )


def merged_meta(version: Version, meta: Mapping[str, Any]) -> str:
    """`Store.update_meta`'s new meta as JSON text: `meta`'s keys merged into the
    version's (shallow), checked by `dump_meta`."""
    return dump_meta({**version.meta, **meta})


def check_where(where: Mapping[str, object]) -> Mapping[str, object]:
    """`Store.find`'s mapping, if it names at least one column."""
    if not where:
        raise UsageError("find() needs at least one column to match", where="where",
                         fix="Use read() to get a whole layer")
    return where


def check_point(x: object, y: object) -> tuple[float, float]:
    """`Store.at_point`'s coordinates as finite floats, else `UsageError`."""
    try:
        px, py = float(x), float(y)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        px = py = math.nan
    if not (math.isfinite(px) and math.isfinite(py)):
        raise UsageError(f"({x!r}, {y!r}) is not a point", where="at_point",
                         fix="Give finite coordinates in the store CRS")
    return px, py
