"""The planner's workflow on stored versions: publish, roll back, history, status.

These are the rules between "a version is stored" and "residents see it":

* **publish** — only a version without validation errors; a *plan* only once its
  approval decision is attached (:mod:`gisportal.services.decisions`); vector tiles are built
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

from gisportal.base import seeds
from gisportal.base.errors import StoreError, UsageError
from gisportal.base.models import layer_model
from gisportal.base.settings import load_settings
from gisportal.outputs.compare import cached_comparison
from gisportal.outputs.tiles import ensure_version_key
from gisportal.services.decisions import DECIDED_KINDS, Decision, decision_of
from gisportal.store.base import (
    PROJECT_KINDS,
    Store,
    Version,
    check_district_code,
    check_kind,
    check_project,
    utc_now,
)
from gisportal.store.home import on_primary

__all__ = [
    "CONSULTATION_LABEL",
    "HistoryRow",
    "PublishPreview",
    "PublishResult",
    "WorkflowStatus",
    "check_publishable",
    "check_removals",
    "district_status",
    "district_statuses",
    "history",
    "is_consultation",
    "preview",
    "publish",
    "published_of",
    "rollback",
    "rollback_project",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PublishResult:
    """What a publish or roll back did: the version now published, the one it replaced
    (None when the layer had none), and whether anything changed at all."""

    version: Version
    previous: Version | None
    changed: bool
    #: What residents saw change (None when nothing changed).
    changes: PublishPreview | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version.id, "previous": None if self.previous is None
                else self.previous.id, "changed": self.changed,
                "district": self.version.district, "kind": self.version.kind,
                "published_at": self.version.published_at,
                "consultation": is_consultation(self.version),
                "changes": None if self.changes is None else self.changes.to_dict()}


def _errors_of(version: Version) -> str:
    report = version.meta.get("report") or {}
    n = report.get("errors")
    return f"{n} validation errors" if isinstance(n, int) else "validation errors"


def is_consultation(version: Version) -> bool:
    """Whether a plan version is (or would be) shown as a draft for comment.

    A plan reaches residents without its approval decision only through the explicit
    consultation publish (`publish(..., consultation=True)`), so a published plan
    without a decision is by construction a draft for comment (dự thảo lấy ý kiến).
    Layers published before that rule existed are labelled the same way: without a
    decision they are not the plan in force either.
    """
    return version.kind in DECIDED_KINDS and decision_of(version) is None


def published_of(store: Store, version: Version) -> Version | None:
    """The published version of `version`'s layer: its district's, or its project's."""
    if version.project is None:
        return store.published(version.district, version.kind)
    return store.published_projects().get((version.project, version.kind))


#: What every public page and answer calls a plan published for consultation.
CONSULTATION_LABEL = {"vi": "Dự thảo lấy ý kiến — chưa phải quy hoạch được phê duyệt",
                      "en": "Draft for comment — not the approved plan"}


def check_publishable(version: Version, *, consultation: bool = False) -> None:
    """Raise StoreError saying why `version` cannot be published, if it cannot.

    A plan needs its approval decision, unless it is published explicitly as a draft
    for comment (``consultation``); a consultation publish of anything else, or of a
    plan that already has its decision, is a UsageError (it would mislabel the layer).
    """
    if version.has_errors:
        raise StoreError(
            f"version {version.id} has {_errors_of(version)} and cannot be published",
            where=f"district {version.district}, {version.kind}, version {version.id}",
            fix="Read its validation report, correct the file (or repair it) and upload "
                "it again; then publish the new version", code="STORE-HAS-ERRORS")
    if consultation:
        if version.kind not in DECIDED_KINDS:
            raise UsageError(
                f"only a plan can be published as a draft for comment, not a {version.kind} "
                "layer", where=f"version {version.id}",
                fix="Publish it without the consultation option", code="CONSULTATION-NOT-PLAN")
        if decision_of(version) is not None:
            raise UsageError(
                f"plan version {version.id} has its approval decision: it is the approved "
                "plan, not a draft for comment", where=f"version {version.id}",
                fix="Publish it without the consultation option", code="CONSULTATION-APPROVED")
        return
    if version.kind in DECIDED_KINDS and decision_of(version) is None:
        layer = (f"district {version.district}, plan" if version.project is None
                 else f"project {version.project}, {version.kind}")
        raise StoreError(
            f"{version.kind} version {version.id} has no approval decision yet",
            where=f"{layer}, version {version.id}",
            fix="Enter the approval decision (number, date, authority and the signed PDF) "
                "for this version, then publish it; or publish it explicitly as a draft for "
                "comment (dự thảo lấy ý kiến: --consultation on the command line, "
                "consultation=true in the API)", code="PLAN-NO-DECISION")


@dataclass(frozen=True)
class PublishPreview:
    """What residents would see change if `version` were published now.

    ``counts`` are the compare engine's change types (added, removed, reshaped,
    use_changed, renumbered, unchanged) against the published version (``previous``);
    ``areas`` its m² per land-use code. ``needs_confirmation`` says whether the publish
    removes more than ``threshold`` of the published features, which must then be
    confirmed (``confirm_removals``). With nothing published, everything is added.
    """

    version: Version
    previous: Version | None
    counts: dict[str, int]
    areas: list[dict[str, Any]]
    removed: int
    previous_features: int
    threshold: float
    consultation: bool

    @property
    def removed_share(self) -> float:
        return self.removed / self.previous_features if self.previous_features else 0.0

    @property
    def needs_confirmation(self) -> bool:
        return self.removed > 0 and self.removed_share > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version.id,
                "previous": None if self.previous is None else self.previous.id,
                "counts": dict(self.counts), "areas": self.areas, "removed": self.removed,
                "previous_features": self.previous_features,
                "removed_share": round(self.removed_share, 4),
                "threshold": self.threshold,
                "needs_confirmation": self.needs_confirmation,
                "consultation": self.consultation}

    def one_line(self) -> str:
        """The counts as the command line prints them."""
        c = self.counts
        if self.previous is None:
            return f"nothing published yet: {self.version.feature_count} features added"
        if "replaced" in c:  # red lines: replaced as a whole (see `preview`)
            return (f"against published version {self.previous.id}: "
                    f"{c['replaced']} lines replace {self.previous_features}")
        line = (f"against published version {self.previous.id}: "
                f"{c.get('added', 0)} added, {c.get('removed', 0)} removed, "
                f"{c.get('reshaped', 0)} reshaped, {c.get('use_changed', 0)} "
                f"{'function' if self.version.kind == 'zoning_lots' else 'land use'} changed, "
                f"{c.get('renumbered', 0)} renumbered")
        if "indicators_changed" in c:  # a project's lots (density, floors, FAR)
            line += f", {c['indicators_changed']} indicators changed"
        return line


def _threshold(settings: dict[str, Any] | None) -> float:
    value = (settings or load_settings()).get("publish_confirm_removed_share", 0.05)
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 0.05


def preview(store: Store, version_id: int, *, district: str | None = None,
            kind: str | None = None, settings: dict[str, Any] | None = None) -> PublishPreview:
    """Compare `version_id` with the published version of its layer (see PublishPreview).

    Uses the compare engine (pairing by key, then by geometry), kept in the per-store
    comparison cache, so the review page and the publish that follows compute it once
    per process. On the primary database: the draft was just uploaded and the published
    version may have just moved, which a read replica may not show yet.
    """
    store = on_primary(store)
    version = store.version(version_id)
    _check_layer(version, district, kind)
    previous = published_of(store, version)
    threshold = _threshold(settings)
    consultation = is_consultation(version)
    if previous is None:
        return PublishPreview(version, None, {"added": version.feature_count}, [],
                              0, 0, threshold, consultation)
    if previous.id == version.id:
        return PublishPreview(version, previous, {"unchanged": version.feature_count}, [],
                              0, previous.feature_count, threshold, consultation)
    if layer_model(version.kind).geometry != "polygon":
        # Lines have no area to pair and measure by (the compare engine refuses them,
        # COMPARE-LINES): a project's red lines are compared through its lots (the road
        # lots are their edges), and a new version of them replaces the old as a whole,
        # which is no removal to confirm.
        return PublishPreview(version, previous, {"replaced": version.feature_count}, [],
                              0, previous.feature_count, threshold, consultation)
    comparison = cached_comparison(store, previous, version)
    summary = comparison.summary()
    counts = {k: int(v) for k, v in summary["counts"].items()}
    return PublishPreview(version, previous, counts, summary["areas"],
                          counts.get("removed", 0), previous.feature_count, threshold,
                          consultation)


def check_removals(pre: PublishPreview, confirm_removals: bool) -> None:
    """Refuse a publish that removes more than the threshold without confirmation."""
    if not pre.needs_confirmation or confirm_removals:
        return
    v, prev = pre.version, pre.previous
    assert prev is not None  # needs_confirmation implies a published version
    raise StoreError(
        f"publishing version {v.id} would remove {pre.removed} of the "
        f"{pre.previous_features} published features ({pre.removed_share:.1%}, more than "
        f"{pre.threshold:.0%}); {pre.counts.get('added', 0)} would be added",
        where=f"district {v.district}, {v.kind}, version {v.id} replacing version {prev.id}",
        fix="Check that the file is the whole layer (a correction of some communes is an "
            "update: gisportal ingest --update); if the removals are intended, confirm them "
            "(--confirm-removals, confirm_removals=true in the API, the confirmation box on "
            "the review page)", code="PUBLISH-REMOVALS-UNCONFIRMED")


def publish(store: Store, version_id: int, actor: str, *, district: str | None = None,
            kind: str | None = None, confirm_removals: bool = False,
            consultation: bool = False, settings: dict[str, Any] | None = None,
            progress: Progress | None = None) -> PublishResult:
    """Publish a stored version: checks, tiles, then the pointer (one transaction).

    This is the only way anything reaches residents: the command line (``publish``,
    ``ingest --publish``), the planner pages, the JSON API and the demo all call it, so
    the rules hold everywhere:

    * a version with validation errors is refused;
    * a plan needs its approval decision — or ``consultation=True``, the explicit
      choice to show it as a draft for comment, recorded in its meta
      (``consultation``) and labelled as such on every public page and answer;
    * a version that would remove more than ``publish_confirm_removed_share`` (5 %) of
      the published features needs ``confirm_removals`` (see `preview`).

    Parameters
    ----------
    district, kind
        When given, the version must belong to this layer (the page the planner
        pressed "publish" on), else StoreError.
    progress
        Called with ``"compare"``, ``"tiles"``, ``"tiles: <step>"`` and ``"publish"``
        (just before the pointer moves).

    Raises
    ------
    NotFoundError
        No such version.
    StoreError
        Another layer's version, validation errors, a plan without a decision, or
        unconfirmed removals.
    UsageError
        ``consultation`` for a layer that is not a plan or a plan with its decision.
    """
    # Every read on the primary: the checks must see the version and the published one
    # as they are now, not as a read replica last replayed them.
    store = on_primary(store)
    version = store.version(version_id)
    _check_layer(version, district, kind)
    previous = published_of(store, version)
    if version.is_published:
        return PublishResult(version, None, changed=False)
    check_publishable(version, consultation=consultation)
    if progress:
        progress("compare")
    pre = preview(store, version.id, settings=settings)
    check_removals(pre, confirm_removals)
    if version.project is None:
        # A project's layers are a few thousand lots and lines at most: its page draws
        # them as GeoJSON, so they need no tiles.
        if progress:
            progress("tiles")
        ensure_version_key(store, store.home, version, progress=(
            lambda step: progress(f"tiles: {step}")) if progress else None)
    if progress:
        progress("publish")
    if consultation:
        store.update_meta(version.id, {"consultation": {"by": actor, "at": utc_now()}})
    if pre.needs_confirmation:
        store.update_meta(version.id, {"removals_confirmed": {
            "by": actor, "at": utc_now(), "removed": pre.removed,
            "previous": None if previous is None else previous.id}})
    if version.project is not None:
        # What look-ups say of the project travels with its published layers (see
        # gisportal.services.projects): taken from the catalogue as it is now.
        from gisportal.services.projects import give_facts

        give_facts(store, version)
    published = store.publish(version.id, by=actor)
    return PublishResult(published, previous, changed=True, changes=pre)


def rollback(store: Store, district: str, kind: str, to_version: int, actor: str, *,
             confirm_removals: bool = False, settings: dict[str, Any] | None = None,
             progress: Progress | None = None) -> PublishResult:
    """Publish again `to_version`, an earlier published version of (district, kind).

    The currently published version becomes superseded and stays readable. The same
    checks as `publish` apply (a plan still needs its decision — a roll back never shows
    a draft for comment again implicitly, that stays an explicit choice; removals beyond
    the threshold need ``confirm_removals``).

    Raises
    ------
    StoreError
        The version belongs to another layer, or was never published (publish it
        instead: a roll back returns to something residents have seen).
    """
    district, kind = check_district_code(district), check_kind(kind)
    store = on_primary(store)  # as `publish`
    version = store.version(to_version)
    _check_layer(version, district, kind)
    return _republish(store, version, f"district {district}, {kind}", actor,
                      confirm_removals=confirm_removals, settings=settings, progress=progress)


def rollback_project(store: Store, project: str, kind: str, to_version: int, actor: str, *,
                     confirm_removals: bool = False, settings: dict[str, Any] | None = None,
                     progress: Progress | None = None) -> PublishResult:
    """`rollback` for a planning project's layer: publish again an earlier published
    version of (project, kind)."""
    project = check_project(project)
    if kind not in PROJECT_KINDS:
        raise UsageError(f"{kind!r} is not a kind of a project's layer", where="kind",
                         fix="Use one of: " + ", ".join(PROJECT_KINDS))
    store = on_primary(store)
    version = store.version(to_version)
    if (version.project, version.kind) != (project, kind):
        raise StoreError(
            f"version {version.id} is not a {kind} layer of project {project}",
            where=f"version {version.id}", fix="Choose a version from the project's history",
            code="VERSION-OTHER-LAYER")
    return _republish(store, version, f"project {project}, {kind}", actor,
                      confirm_removals=confirm_removals, settings=settings, progress=progress)


def _republish(store: Store, version: Version, layer: str, actor: str, *,
               confirm_removals: bool, settings: dict[str, Any] | None,
               progress: Progress | None) -> PublishResult:
    """The roll back itself, once the version is known to be of the layer: only to
    something residents have seen, and through `publish`'s checks."""
    if version.status == "draft":
        raise StoreError(
            f"version {version.id} was never published, so there is nothing to roll back to",
            where=f"{layer}, version {version.id}",
            fix="Roll back to a superseded version from the history, or publish this "
                "draft after reading its report", code="ROLLBACK-NEVER-PUBLISHED")
    return publish(store, version.id, actor, confirm_removals=confirm_removals,
                   settings=settings, progress=progress)


def _check_layer(version: Version, district: str | None, kind: str | None) -> None:
    if (district is not None and version.district != district) or \
            (kind is not None and version.kind != kind):
        want = f"{kind or version.kind} of district {district or version.district}"
        raise StoreError(
            f"version {version.id} is a {version.kind} layer of district {version.district}, "
            f"not {want}", where=f"version {version.id}",
            fix=f"Choose a version from this layer's own history, or name the version's own "
                f"layer (--district {version.district} --kind {version.kind})",
            code="VERSION-OTHER-LAYER")


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


def history(store: Store, district: str | None, kind: str, *,
            project: str | None = None) -> list[HistoryRow]:
    """Every version of the layer, newest first, as the history page lists them: a
    district's (`district`, `kind`), or a planning `project`'s `kind` layer.

    ``published_at/by`` are the last time each version was made the published one
    (a rolled-back version shows its latest publication); earlier publications are in
    the audit log the web layer keeps.
    """
    rows = []
    versions = store.versions(kind=kind, project=check_project(project)) if project else \
        store.versions(check_district_code(district), check_kind(kind))
    for v in versions:
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
    :class:`gisportal.base.seeds.DistrictStatus`; ``*_source`` says whether each part was
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

    @property
    def public_status(self) -> str:
        """The plan's status as residents are told it, one vocabulary on the province map
        and the district pages: ``approved`` (approved, with its decision),
        ``under_appraisal`` (prepared or out for comment, not approved) or ``none`` (no
        plan known to the portal). The cadastre's progress (`portal_status`) is staff's
        business: mixed into one colour it made a digitised cadastre read as a plan."""
        return self.plan_status if self.plan_status in ("approved", "under_appraisal") \
            else "none"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["decision"] = None if self.decision is None else self.decision.to_meta()
        out["portal_status"] = self.portal_status
        out["public_status"] = self.public_status
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
        out.update(plan_status=fallback.plan_status if fallback else "unknown",
                   plan_as_of=(fallback.as_of or None) if fallback else None,
                   plan_source="seeds")
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
    code = check_district_code(district)
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
