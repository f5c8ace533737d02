"""The collections: one per district and layer kind that has a published version.

A collection's id is ``<district GSO code>-<kind>`` (``678-parcels``, ``678-plan``,
``678-boundary``): readable, stable across publications, and safe in a URL. It always
serves the version published *now*, so a publish or a roll back changes what it serves
at the next request, as for the map tiles.

What a collection shows of its features is the allow-list of `gisportal.outputs.privacy`
(`public_fields`, worked out once per version and per set of marks): the public
canonical fields, then the source columns a planner marked public — exactly what
``/api/lookup`` shows; every other uploaded column (owner names, ID numbers, birth
years, whatever the district's software called them) stays out. The queryable
properties are the public canonical text and number fields; a personal field can never
be filtered on, so no one can test whether a name owns land.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gisportal.base import seeds
from gisportal.base.errors import NotFoundError
from gisportal.base.models import layer_model
from gisportal.outputs import privacy
from gisportal.outputs.ogc import crs as ogc_crs
from gisportal.outputs.ogc.links import GEOJSON, HTML, JSON, link, url
from gisportal.pipeline.normalise import SOURCE_PREFIX
from gisportal.store.base import KINDS, Store, Version
from gisportal.store.derived import derived

__all__ = [
    "Collection",
    "PLAN_PERIOD",
    "PublicFields",
    "collection_json",
    "get_collection",
    "public_fields",
    "published_collections",
]

_ID_RE = re.compile(r"([0-9]{2,5})-(" + "|".join(KINDS) + r")")
#: The period of the district land-use plans: the temporal extent of plan collections.
PLAN_PERIOD = ("2021-01-01T00:00:00Z", "2030-12-31T23:59:59Z")
_GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
#: Field types a collection can be filtered on (equality); floats (areas) are not.
_QUERYABLE_TYPES = ("int", "str", "code")


@dataclass(frozen=True)
class Collection:
    """A published district layer as an OGC API collection."""

    version: Version

    @property
    def id(self) -> str:
        return f"{self.version.district}-{self.version.kind}"

    @property
    def district(self) -> str:
        return self.version.district

    @property
    def kind(self) -> str:
        return self.version.kind

    def district_names(self) -> tuple[str, str]:
        """(Vietnamese, English) name of the district, e.g. ("Huyện Đức Trọng", "Đức Trọng
        District"); a code the seeds do not know is named by its code."""
        try:
            unit = seeds.district(self.district)
        except KeyError:
            return f"Huyện {self.district}", f"District {self.district}"
        return unit.name, f"{unit.short_name} {'City' if unit.type == 'city' else 'District'}"

    @property
    def title(self) -> str:
        """Vietnamese, then English: ``Thửa đất địa chính – Huyện Đức Trọng / Cadastral
        parcels – Đức Trọng District``."""
        model = layer_model(self.kind)
        vi, en = self.district_names()
        return f"{model.title['vi']} – {vi} / {model.title['en']} – {en}"

    @property
    def description(self) -> str:
        v = self.version
        model = layer_model(self.kind)
        published = (v.published_at or "")[:10]
        text = (f"Phiên bản {v.id}, công bố ngày {published}. {model.description} "
                f"Version {v.id}, published {published}.")
        decision = (v.meta.get("decision") or {}) if self.kind == "plan" else {}
        if decision.get("number"):
            text += (f" Quyết định phê duyệt / approved by decision {decision['number']}"
                     f" ({decision.get('date') or '?'}, {decision.get('authority') or '?'}).")
        return text

    @property
    def temporal(self) -> tuple[str, str] | None:
        """The time its features are about: the plan period for plans, else none."""
        return PLAN_PERIOD if self.kind == "plan" else None


def published_collections(store: Store) -> list[Collection]:
    """Every collection, by district then kind (parcels, plan, boundary, annual_plan)."""
    out = []
    for district in store.districts():
        for kind in KINDS:
            version = store.published(district, kind)
            if version is not None:
                out.append(Collection(version))
    return out


def get_collection(store: Store, collection_id: str) -> Collection:
    """The collection with this id.

    Raises
    ------
    NotFoundError
        Not an id of the form ``<district>-<kind>``, or nothing published for it (404).
    """
    m = _ID_RE.fullmatch(collection_id)
    version = store.published(m.group(1), m.group(2)) if m else None
    if version is None:
        raise NotFoundError(f"there is no collection {collection_id[:100]!r}",
                            where="collectionId",
                            fix="list the collections at /ogc/collections; ids are "
                                "<district code>-<" + "|".join(KINDS) + ">, e.g. 678-parcels")
    return Collection(version)


@dataclass(frozen=True)
class PublicFields:
    """What of a version's columns goes out, as feature properties in this order."""

    #: Canonical columns (layer model order), e.g. commune, sheet, parcel, land_use.
    canonical: tuple[str, ...]
    #: Stored source-attribute columns (``src:<name>``), served as text.
    source: tuple[str, ...]
    #: Canonical field → its model type, for the fields one may filter on.
    queryables: dict[str, str]

    @property
    def columns(self) -> list[str]:
        return [*self.canonical, *self.source]


def public_fields(store: Store, version: Version) -> PublicFields:
    """The public fields of a version (`gisportal.outputs.privacy.public_columns` restricted to
    its stored columns), cached per version and per allow-list: a planner marking a
    column public changes the allow-list, and so the cache entry asked for."""
    allowed = privacy.public_columns(version)
    return derived(store, version, ("ogc-public-fields", allowed),
                   lambda s, v: _build_public_fields(s, v, allowed))


def _build_public_fields(store: Store, version: Version,
                         allowed: privacy.PublicColumns) -> PublicFields:
    model = layer_model(version.kind)
    columns = store.columns(version.id)
    canonical = tuple(name for name in allowed.canonical if name in columns)
    # Source attributes in stored (upload) order, whatever order they were marked in.
    source = tuple(name for name in columns
                   if name.startswith(SOURCE_PREFIX) and allowed.allows(name))
    queryables = {f.name: f.type for f in model.fields
                  if f.name in canonical and f.type in _QUERYABLE_TYPES}
    return PublicFields(canonical, source, queryables)


#: Media types of the styles a collection links (OGC API – Styles names them so).
SLD = "application/vnd.ogc.sld+xml;version=1.1"
QML = "application/vnd.qgis.qml"


def collection_json(coll: Collection, root: str, store_crs: str) -> dict[str, Any]:
    """The collection description (Part 1 ``collection`` with Part 2 ``crs``/``storageCrs``)."""
    base = f"{root}/collections/{coll.id}"
    offered = ogc_crs.offered(store_crs, ogc_crs.survey_crs(coll.district))
    extent: dict[str, Any] = {}
    if coll.version.bounds is not None:
        extent["spatial"] = {"bbox": [ogc_crs.extent_crs84(coll.version.bounds, store_crs)],
                             "crs": ogc_crs.CRS84}
    if coll.temporal is not None:
        extent["temporal"] = {"interval": [list(coll.temporal)], "trs": _GREGORIAN}
    storage = next((c.uri for c in offered if c.is_storage), ogc_crs.CRS84)
    return {
        "id": coll.id,
        "title": coll.title,
        "description": coll.description,
        "links": [
            link(base, "self", JSON, "Mô tả tập dữ liệu / this collection"),
            link(url(base, "", {"f": "html"}), "alternate", HTML, "Trang HTML / as HTML"),
            # A clean href: GDAL appends "/{featureId}" to it to fetch one feature.
            link(f"{base}/items", "items", GEOJSON, "Đối tượng (GeoJSON) / features as GeoJSON"),
            link(url(base, "/items", {"f": "html"}), "items", HTML,
                 "Đối tượng (HTML) / features as HTML"),
            link(url(root.removesuffix("/ogc"), f"/districts/{coll.district}"), "related", HTML,
                 "Bản đồ của huyện / the district's map"),
            # The official colours for GIS software (gisportal.outputs.styles): the same
            # style the export package carries, for a client that reads the layer here.
            link(f"{base}/styles/default.sld", "stylesheet", SLD,
                 "Kiểu hiển thị chính thức (SLD 1.1) / the official style as SLD 1.1"),
            link(f"{base}/styles/default.qml", "stylesheet", QML,
                 "Kiểu hiển thị chính thức (QGIS) / the official style for QGIS"),
        ],
        "extent": extent,
        "itemType": "feature",
        "crs": [c.uri for c in offered],
        "storageCrs": storage,
    }
