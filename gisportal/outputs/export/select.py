"""Which versions an export carries: a district's published layers, or the ones asked for.

All the refusals of bad arguments live here, before anything is read or written, so a
bad request costs nothing and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence

from gisportal.base import seeds
from gisportal.base.errors import NotFoundError, StoreError, UsageError
from gisportal.store.base import KINDS, Store, Version

__all__ = ["check_export_district", "select_versions"]


def check_export_district(store: Store, district: object) -> str:
    """`district` as a code the province or the store knows, else `NotFoundError`.

    The seeds list the province's districts; the store may also hold districts of a
    newer administrative map (codes are dated), so a code with versions is accepted.
    """
    code = str(district).strip() if district is not None else ""
    if code and code in store.districts():
        return code
    return seeds.known_district(code, where="--district").code


def _check_kinds(kinds: Sequence[str] | None) -> list[str]:
    if not kinds:
        return list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UsageError(f"unknown layer kind {', '.join(map(repr, unknown))}", where="--kind",
                         fix=f"use one of: {', '.join(KINDS)}")
    return [k for k in KINDS if k in kinds]  # package order, each once


def select_versions(store: Store, district: str, kinds: Sequence[str] | None = None,
                    version_id: int | None = None) -> list[Version]:
    """The versions to export, in the order parcels, plan, boundary.

    Without `version_id`: the published version of each kind in `kinds` (all kinds by
    default); a kind asked for by name must be published, a district with nothing
    published at all is refused. With `version_id`: that version alone, which must
    belong to `district` (and to the kind, when one is given) and must have been
    published at some time — drafts never were approved for release.
    """
    district = check_export_district(store, district)
    wanted = _check_kinds(kinds)
    if version_id is not None:
        return [_chosen_version(store, district, kinds, version_id)]
    out = []
    for kind in wanted:
        v = store.published(district, kind)
        if v is not None:
            out.append(v)
        elif kinds:
            raise NotFoundError(f"district {district} has no published {kind} layer",
                                where=f"--district {district} --kind {kind}",
                                fix="publish a version first (gisportal publish), or leave "
                                    "out --kind to export what is published",
                                code="EXPORT-NOTHING-PUBLISHED")
    if not out:
        raise NotFoundError(f"district {district} has no published layer to export",
                            where=f"--district {district}",
                            fix="publish its layers first (gisportal ingest --publish)",
                            code="EXPORT-NOTHING-PUBLISHED")
    return out


def _chosen_version(store: Store, district: str, kinds: Sequence[str] | None,
                    version_id: int) -> Version:
    v = store.version(version_id)  # NotFoundError when there is no such version
    if v.district != district:
        raise UsageError(f"version {version_id} belongs to district {v.district}, not "
                         f"{district}", where=f"--version {version_id}",
                         fix=f"use --district {v.district}, or a version of {district} "
                             "(gisportal versions --district " + district + ")",
                         code="EXPORT-VERSION-DISTRICT")
    if kinds and v.kind not in kinds:
        raise UsageError(f"version {version_id} is a {v.kind} layer, not "
                         f"{' or '.join(kinds)}", where=f"--version {version_id}",
                         fix=f"use --kind {v.kind}, or leave out --kind",
                         code="EXPORT-VERSION-KIND")
    if v.published_at is None:
        raise StoreError(f"version {version_id} is a draft that was never published",
                         where=f"--version {version_id}",
                         fix="only published (or formerly published) versions go to the "
                             "ministry; publish it first", code="EXPORT-VERSION-DRAFT")
    return v
