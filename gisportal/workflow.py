"""The planner's workflow on stored versions: publish, roll back, history, status.

These are the rules between "a version is stored" and "residents see it":

* **publish** — only a version without validation errors; a *plan* only once its
  approval decision is attached (:mod:`gisportal.decisions`); vector tiles are built
  before the published pointer moves, so residents never meet a layer without tiles.
* **roll back** — publish again a version of the same layer that was published
  before; the version it replaces stays readable (superseded), as every version does.
* **history** — every version of a layer with who did what when, the source file and
  its sha256, the validation summary and the decision.
* **district status** — where each district's plan and cadastre stand, derived from
  the versions themselves (the rule below).

Publishing writes the store and builds tiles with GDAL, so the web server does not
call `publish` or `rollback` itself: it queues a job (:func:`gisportal.jobs.submit_publish`)
and the job's worker process calls them. Each returns what changed (the version and
the one it replaced) so the caller can record an audit event.

District status rule
--------------------
The province map colours districts by one *portal status*, built from two parts.

Plan part, from the district's ``plan`` versions:

* ``approved`` — the published plan version has an approval decision;
* ``under_appraisal`` — plan versions exist but the published one has no decision
  (published for consultation, or the demo's unapproved plans) or none is published
  yet (a draft uploaded);
* no plan version at all — the seeds table of August 2023 (``seeds.district_status``),
  or ``under_appraisal`` for a district it does not list.

Cadastre part, from the district's ``parcels`` versions:

* ``in_correction`` — the newest upload has validation errors (the office is
  correcting its data), or clean uploads exist but none is published yet;
* ``digitised`` — a version is published and the newest upload has no errors;
* no parcels version at all — the seeds table (which may say nothing: ``None``).

Portal status, as the seeds table combines its two columns: ``approved`` if the plan
is approved, else the cadastre part when there is one (``in_correction`` or
``digitised``), else the plan part (``under_appraisal``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from gisportal import seeds
from gisportal.decisions import Decision, decision_of
from gisportal.errors import StoreError
from gisportal.ingest import output_home, publish_version
from gisportal.store.base import Store, Version, check_district, check_kind
from gisportal.tiles import ensure_version_tiles

__all__ = [
    "HistoryRow",
    "PublishResult",
    "WorkflowStatus",
    "check_publishable",
    "district_status",
    "district_statuses",
    "history",
    "publish",
    "rollback",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PublishResult:
    """What a publish or roll back did: the version now published, the one it replaced
    (None when the layer had none), and whether anything changed at all."""

    version: Version
    previous: Version | None
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version.id, "previous": None if self.previous is None
                else self.previous.id, "changed": self.changed,
                "district": self.version.district, "kind": self.version.kind,
                "published_at": self.version.published_at}


def _errors_of(version: Version) -> str:
    report = version.meta.get("report") or {}
    n = report.get("errors")
    return f"{n} validation errors" if isinstance(n, int) else "validation errors"


def check_publishable(version: Version) -> None:
    """Raise StoreError saying why `version` cannot be published, if it cannot."""
    if version.has_errors:
        raise StoreError(
            f"version {version.id} has {_errors_of(version)} and cannot be published",
            where=f"district {version.district}, {version.kind}, version {version.id}",
            fix="Read its validation report, correct the file (or repair it) and upload "
                "it again; then publish the new version", code="STORE-HAS-ERRORS")
    if version.kind == "plan" and decision_of(version) is None:
        raise StoreError(
            f"plan version {version.id} has no approval decision yet",
            where=f"district {version.district}, plan, version {version.id}",
            fix="Enter the approval decision (number, date, authority and the signed PDF) "
                "for this version, then publish it", code="PLAN-NO-DECISION")


def publish(store: Store, version_id: int, actor: str, *, district: str | None = None,
            kind: str | None = None, settings: dict[str, Any] | None = None,
            progress: Progress | None = None) -> PublishResult:
    """Publish a stored version: checks, tiles, then the pointer (one transaction).

    Parameters
    ----------
    district, kind
        When given, the version must belong to this layer (the page the planner
        pressed "publish" on), else StoreError.
    progress
        Called with ``"tiles"``, ``"tiles: <step>"`` and ``"publish"`` (just before the
        pointer moves).

    Raises
    ------
    NotFoundError
        No such version.
    StoreError
        Another layer's version, validation errors, or a plan without a decision.
    """
    version = store.version(version_id)
    _check_layer(version, district, kind)
    previous = store.published(version.district, version.kind)
    if version.is_published:
        return PublishResult(version, None, changed=False)
    check_publishable(version)
    if progress:
        progress("tiles")
    ensure_version_tiles(store, output_home(store, settings), version,
                         progress=(lambda step: progress(f"tiles: {step}")) if progress else None)
    if progress:
        progress("publish")
    # publish_version finds the tiles built and moves the pointer.
    published = publish_version(store, version.district, version.kind, version.id,
                                user=actor, settings=settings)
    return PublishResult(published, previous, changed=True)


def rollback(store: Store, district: str, kind: str, to_version: int, actor: str, *,
             settings: dict[str, Any] | None = None,
             progress: Progress | None = None) -> PublishResult:
    """Publish again `to_version`, an earlier published version of (district, kind).

    The currently published version becomes superseded and stays readable. The same
    checks as `publish` apply (a plan still needs its decision).

    Raises
    ------
    StoreError
        The version belongs to another layer, or was never published (publish it
        instead: a roll back returns to something residents have seen).
    """
    district, kind = check_district(district), check_kind(kind)
    version = store.version(to_version)
    _check_layer(version, district, kind)
    if version.status == "draft":
        raise StoreError(
            f"version {version.id} was never published, so there is nothing to roll back to",
            where=f"district {district}, {kind}, version {version.id}",
            fix="Roll back to a superseded version from the history, or publish this "
                "draft after reading its report", code="ROLLBACK-NEVER-PUBLISHED")
    return publish(store, version.id, actor, settings=settings, progress=progress)


def _check_layer(version: Version, district: str | None, kind: str | None) -> None:
    if (district is not None and version.district != district) or \
            (kind is not None and version.kind != kind):
        want = f"{kind or version.kind} of district {district or version.district}"
        raise StoreError(
            f"version {version.id} is a {version.kind} layer of district {version.district}, "
            f"not {want}", where=f"version {version.id}",
            fix="Choose a version from this layer's own history", code="VERSION-OTHER-LAYER")


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryRow:
    """One version in a layer's history page."""

    version: int
    status: str
    created_at: str
    created_by: str
    published_at: str | None
    published_by: str | None
    source_name: str
    source_sha256: str
    feature_count: int
    has_errors: bool
    errors: int | None
    warnings: int | None
    infos: int | None
    decision: Decision | None
    repaired: bool
    job: int | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["decision"] = None if self.decision is None else self.decision.to_meta()
        return out


def history(store: Store, district: str, kind: str) -> list[HistoryRow]:
    """Every version of the layer, newest first, as the history page lists them.

    ``published_at/by`` are the last time each version was made the published one
    (a rolled-back version shows its latest publication); earlier publications are in
    the audit log the web layer keeps.
    """
    rows = []
    for v in store.versions(check_district(district), check_kind(kind)):
        report = v.meta.get("report") or {}
        rows.append(HistoryRow(
            version=v.id, status=v.status, created_at=v.created_at, created_by=v.created_by,
            published_at=v.published_at, published_by=v.published_by,
            source_name=v.source_name, source_sha256=v.source_sha256,
            feature_count=v.feature_count, has_errors=v.has_errors,
            errors=report.get("errors"), warnings=report.get("warnings"),
            infos=report.get("infos"), decision=decision_of(v),
            repaired=v.meta.get("repair") is not None, job=v.meta.get("job")))
    return rows


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class WorkflowStatus:
    """Where a district's plan and cadastre stand (see the module's status rule).

    ``plan_status``/``cadastre_status`` and ``portal_status`` mean what they mean in
    :class:`gisportal.seeds.DistrictStatus`; ``*_source`` says whether each part was
    derived from stored versions (``"workflow"``) or taken from the seeds table
    (``"seeds"``), and ``*_as_of`` when (ISO date, or the seeds' month).
    """

    district_code: str
    plan_status: str
    cadastre_status: str | None
    plan_source: str
    cadastre_source: str | None
    plan_as_of: str | None
    cadastre_as_of: str | None
    plan_version: int | None = None
    parcels_version: int | None = None
    decision: Decision | None = None

    @property
    def portal_status(self) -> str:
        """One status for the province map: approved > in_correction > digitised >
        under_appraisal (the seeds table's own rule)."""
        return seeds.DistrictStatus(self.district_code, self.plan_status,
                                    self.cadastre_status, "", "").portal_status

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["decision"] = None if self.decision is None else self.decision.to_meta()
        out["portal_status"] = self.portal_status
        return out


def _day(timestamp: str | None) -> str | None:
    return None if timestamp is None else timestamp[:10]


def _status(code: str, plans: list[Version], parcels: list[Version]) -> WorkflowStatus:
    """The status of one district from its plan and parcels versions (newest first)."""
    fallback = seeds.district_status().get(code)
    out: dict[str, Any] = {"district_code": code}
    if plans:
        published = next((v for v in plans if v.is_published), None)
        decision = None if published is None else decision_of(published)
        if published is not None and decision is not None:
            out.update(plan_status="approved", plan_as_of=_day(published.published_at),
                       plan_version=published.id, decision=decision)
        else:
            latest = published or plans[0]
            out.update(plan_status="under_appraisal",
                       plan_as_of=_day(latest.published_at or latest.created_at),
                       plan_version=latest.id)
        out["plan_source"] = "workflow"
    else:
        out.update(plan_status=fallback.plan_status if fallback else "under_appraisal",
                   plan_as_of=fallback.as_of if fallback else None, plan_source="seeds")
    if parcels:
        newest = parcels[0]
        published = next((v for v in parcels if v.is_published), None)
        if newest.has_errors or published is None:
            out.update(cadastre_status="in_correction", cadastre_as_of=_day(newest.created_at),
                       parcels_version=newest.id)
        else:
            out.update(cadastre_status="digitised",
                       cadastre_as_of=_day(max(filter(None, (published.published_at,
                                                             newest.created_at)))),
                       parcels_version=published.id)
        out["cadastre_source"] = "workflow"
    else:
        status = fallback.cadastre_status if fallback else None
        out.update(cadastre_status=status, cadastre_as_of=fallback.as_of if status else None,
                   cadastre_source="seeds" if status else None)
    return WorkflowStatus(**out)


def _by_district(versions: Iterable[Version]) -> dict[str, list[Version]]:
    out: dict[str, list[Version]] = {}
    for v in versions:  # newest first, as Store.versions gives them
        out.setdefault(v.district, []).append(v)
    return out


def district_status(store: Store, district: str) -> WorkflowStatus:
    """The plan and cadastre status of one district (module docstring: the rule)."""
    code = check_district(district)
    return _status(code, store.versions(code, "plan"), store.versions(code, "parcels"))


def district_statuses(store: Store) -> dict[str, WorkflowStatus]:
    """The status of every district of the province, and of any other district the
    store holds versions of, in two catalogue queries (the province map asks on every
    page view)."""
    plans = _by_district(store.versions(kind="plan"))
    parcels = _by_district(store.versions(kind="parcels"))
    codes = [d.code for d in seeds.districts()]
    codes += sorted((set(plans) | set(parcels)) - set(codes))
    return {code: _status(code, plans.get(code, []), parcels.get(code, [])) for code in codes}
