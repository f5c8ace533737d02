"""Which two versions to compare: ids checked against each other, a district and a kind,
and the default pair (what is published now against what was published before).
"""

from __future__ import annotations

from gisportal.base.errors import NotFoundError, UsageError
from gisportal.store.base import Store, Version, check_district_code, check_kind

__all__ = ["PUBLIC_STATUSES", "parse_version_id", "check_pair", "public_versions",
           "default_pair"]

#: Statuses residents may see: what is published now and what was published before.
PUBLIC_STATUSES = ("published", "superseded")


def parse_version_id(value: object, name: str) -> int:
    """A version id given as text (query string, option) → int, else `UsageError`."""
    text = str(value).strip() if value is not None else ""
    if not text.isdigit() or not text.isascii():
        raise UsageError(f"{name} must be a version id (a whole number), got {value!r}",
                         where=name, fix=f"give {name}=<id>, e.g. {name}=12; "
                                         "gisportal versions lists the ids")
    return int(text)


def _version(store: Store, version_id: int, name: str) -> Version:
    try:
        return store.version(version_id)
    except NotFoundError:
        raise NotFoundError(f"there is no version {version_id}", where=name,
                            fix="gisportal versions --district CODE lists the ids",
                            code="COMPARE-NO-VERSION") from None


def check_pair(store: Store, from_id: int, to_id: int, *, district: str | None = None,
               kind: str | None = None) -> tuple[Version, Version]:
    """The two versions, checked: they exist, are layers of one district and kind, and
    of `district` and `kind` when those are given.

    Raises
    ------
    NotFoundError
        An id is unknown, or not a version of the given district or kind.
    UsageError
        The two versions are layers of different districts or kinds.
    """
    if district is not None:
        check_district_code(district)
    if kind is not None:
        check_kind(kind)
    before = _version(store, from_id, "from")
    after = _version(store, to_id, "to")
    for v, name in ((before, "from"), (after, "to")):
        if (district is not None and v.district != district) or (
                kind is not None and v.kind != kind):
            raise NotFoundError(
                f"version {v.id} is not a {kind or v.kind} layer of district "
                f"{district or v.district} (it is a {v.kind} layer of district {v.district})",
                where=name, fix="pick two versions of the same layer; gisportal versions "
                                f"--district {district or v.district} lists them",
                code="COMPARE-NO-VERSION")
    if (before.district, before.kind, before.project) != (
            after.district, after.kind, after.project):
        raise UsageError(
            f"version {before.id} is a {before.kind} layer of district {before.district} "
            f"and version {after.id} a {after.kind} layer of district {after.district}",
            where="from, to", fix="compare two versions of the same layer of one district",
            code="COMPARE-MISMATCH")
    return before, after


def public_versions(store: Store, district: str, kind: str) -> list[Version]:
    """Published and superseded versions of a layer, newest first."""
    return [v for v in store.versions(check_district_code(district), check_kind(kind))
            if v.status in PUBLIC_STATUSES]


def default_pair(store: Store, district: str, kind: str) -> tuple[Version, Version] | None:
    """(previously published, published now), or ``None`` with fewer than two.

    "Previously published" is the superseded version published last, so after a roll
    back from version 15 to 12 the default shows what undoing 15 changed.
    """
    current = store.published(check_district_code(district), check_kind(kind))
    if current is None:
        return None
    earlier = [v for v in store.versions(district, kind)
               if v.status == "superseded" and v.id != current.id]
    if not earlier:
        return None
    previous = max(earlier, key=lambda v: (v.published_at or "", v.id))
    return previous, current
