"""Which two versions to compare: ids checked against each other, a layer (a district's
kind, or a planning project's), and the default pair (what is published now against
what was published before).
"""

from __future__ import annotations

from gisportal.base.errors import NotFoundError, UsageError
from gisportal.store.base import (
    PROJECT_KINDS,
    Store,
    Version,
    check_district_code,
    check_kind,
    check_layer,
)

__all__ = ["PUBLIC_STATUSES", "parse_version_id", "check_pair", "layer_versions",
           "public_versions", "default_pair"]

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


def _layer_name(kind: str, district: str | None, project: str | None) -> str:
    """"a zoning_lots layer of project X" / "a parcels layer of district 678"."""
    return (f"{kind} layer of project {project}" if project is not None
            else f"{kind} layer of district {district}")


def check_pair(store: Store, from_id: int, to_id: int, *, district: str | None = None,
               kind: str | None = None, project: str | None = None
               ) -> tuple[Version, Version]:
    """The two versions, checked: they exist, are versions of one layer (a district's, or
    a planning project's), and of `district`, `kind` and `project` when those are given.

    Raises
    ------
    NotFoundError
        An id is unknown, or not a version of the given district, kind or project.
    UsageError
        The two versions are versions of different layers.
    """
    if district is not None:
        check_district_code(district)
    if project is not None:
        kind, project = check_layer(kind or PROJECT_KINDS[0], project)
    elif kind is not None and kind not in PROJECT_KINDS:
        check_kind(kind)
    before = _version(store, from_id, "from")
    after = _version(store, to_id, "to")
    for v, name in ((before, "from"), (after, "to")):
        if (district is not None and v.district != district) or (
                kind is not None and v.kind != kind) or (
                project is not None and v.project != project):
            wanted = _layer_name(kind or v.kind, district or v.district,
                                 project if project is not None else v.project)
            asked = project if project is not None else (
                None if district is not None else v.project)
            listing = (f"--project {asked}" if asked is not None
                       else f"--district {district or v.district}")
            raise NotFoundError(
                f"version {v.id} is not a {wanted} (it is a "
                f"{_layer_name(v.kind, v.district, v.project)})",
                where=name, fix=f"pick two versions of the same layer; gisportal versions "
                                f"{listing} lists them",
                code="COMPARE-NO-VERSION")
    if (before.district, before.kind, before.project) != (
            after.district, after.kind, after.project):
        raise UsageError(
            f"version {before.id} is a "
            f"{_layer_name(before.kind, before.district, before.project)} and version "
            f"{after.id} a {_layer_name(after.kind, after.district, after.project)}",
            where="from, to", fix="compare two versions of the same layer of one district "
                                  "or project", code="COMPARE-MISMATCH")
    return before, after


def layer_versions(store: Store, district: str | None, kind: str, *,
                   project: str | None = None) -> list[Version]:
    """Every version of a layer, newest first: the district's `kind` layer, or the
    project's when `project` is given (`district` is then not needed)."""
    if project is not None:
        kind, project = check_layer(kind, project)
        return store.versions(kind=kind, project=project)
    return store.versions(check_district_code(district), check_kind(kind))


def _published(store: Store, district: str | None, kind: str,
               project: str | None) -> Version | None:
    if project is not None:
        kind, project = check_layer(kind, project)
        return store.published_projects().get((project, kind))
    return store.published(check_district_code(district), check_kind(kind))


def public_versions(store: Store, district: str | None, kind: str, *,
                    project: str | None = None) -> list[Version]:
    """Published and superseded versions of a layer (see `layer_versions`), newest first."""
    return [v for v in layer_versions(store, district, kind, project=project)
            if v.status in PUBLIC_STATUSES]


def default_pair(store: Store, district: str | None, kind: str, *,
                 project: str | None = None) -> tuple[Version, Version] | None:
    """(previously published, published now), or ``None`` with fewer than two.

    The layer is the district's `kind` layer, or the project's with `project`.
    "Previously published" is the superseded version published last, so after a roll
    back from version 15 to 12 the default shows what undoing 15 changed.
    """
    current = _published(store, district, kind, project)
    if current is None:
        return None
    earlier = [v for v in layer_versions(store, district, kind, project=project)
               if v.status == "superseded" and v.id != current.id]
    if not earlier:
        return None
    previous = max(earlier, key=lambda v: (v.published_at or "", v.id))
    return previous, current
