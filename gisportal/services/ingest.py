"""The pipeline as services: check a file, ingest it as a version.

read → normalise → validate → store → publish. The CLI, the jobs and the web app call
these functions and nothing below them, so all behave the same. A file that cannot be
read raises (nothing is stored); a file that reads but has errors is stored as a draft
that cannot be published, so the planner can see and fix it. Publishing has one path,
`gisportal.services.workflow.publish`, which `ingest_file(publish=True)` calls too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gisportal.base import seeds
from gisportal.base.errors import GisportalError, UsageError
from gisportal.base.models import layer_model
from gisportal.base.settings import load_settings
from gisportal.pipeline.annual import check_year_option, give_year
from gisportal.pipeline.memory import give_back, lean_heap
from gisportal.pipeline.normalise import NormalisedLayer, normalise
from gisportal.pipeline.read.sources import SourceLayer, read_source
from gisportal.pipeline.repair import repair as repair_layer
from gisportal.pipeline.validation import Report, ValidationContext, validate
from gisportal.pipeline.validation.context import context_from_boundary
from gisportal.services.commune_update import UpdateInfo, merge_update
from gisportal.store.base import Store, Version, check_layer
from gisportal.store.home import DataHome, scratch_prefix
from gisportal.store.projects import Project

__all__ = ["Checked", "check_file", "district_context", "IngestResult", "ingest_file"]


@dataclass
class Checked:
    """A file read, normalised and validated — everything needed to store it."""

    source: SourceLayer
    layer: NormalisedLayer
    report: Report
    #: What an update (``update=True``) replaced; None for a whole layer.
    update: UpdateInfo | None = None


def _setting_int(settings: Mapping[str, Any], name: str) -> int | None:
    """A numeric setting when the settings mapping has it (the reader's default else)."""
    value = settings.get(name)
    return None if value is None else int(value)


def district_context(store: Store | None, district: str | None) -> ValidationContext:
    """The district's published boundaries as validation context (empty when none).

    A published layer without the district's own unit gives no outline, and a note
    naming its version that the report carries (BOUNDARY-CONTEXT-UNUSABLE).
    """
    if store is None or district is None:
        return ValidationContext(district=district)
    v = store.published(district, "boundary")
    if v is None:
        return ValidationContext(district=district)
    return context_from_boundary(district, store.read(v.id), source=str(v.id))


def check_file(path: str | Path, kind: str, *, district: str | None = None,
               crs: str | None = None, encoding: str | None = None, layer: str | None = None,
               fields: Mapping[str, str] | None = None, settings: dict[str, Any] | None = None,
               store: Store | None = None, repair: bool = False,
               update: bool = False, communes: Sequence[str] | None = None,
               year: int | str | None = None, within: Sequence[str] | None = None,
               project: Project | str | None = None,
               progress: Callable[[str], None] | None = None) -> Checked:
    """Read, normalise and validate ``path`` as a layer of ``kind``; store nothing.

    With a ``store``, the district's published boundary layer is the context for the
    topology and commune checks (a boundary file itself is checked without it).
    With ``repair``, the layer is repaired (:func:`gisportal.pipeline.repair.repair`) before it
    is validated; the report then carries every change under ``repair``. Never the
    default: a planner must see what was changed.
    With ``update`` (parcels only, needs a ``store``), the file replaces the features
    of the communes it covers in the published layer (`gisportal.services.commune_update`) and
    the *resulting full layer* is validated; the report says what was replaced under
    ``update``.
    With ``year`` (annual plans only), the features without a plan year take it
    (`gisportal.pipeline.annual.give_year`): the year of a file of one year's projects
    that carries none; ``read.year_given`` records it.
    With ``within`` (a commune officer's upload), it must be an update, and an update
    of no other commune than those (``UPDATE-OUTSIDE-SCOPE``).
    With ``project`` (a planning project's lots or red lines, or its id), its area is the
    context of the zoning checks (lots cover it, nothing lies beyond it); without one,
    those checks say what they could not check.
    """
    settings = settings or load_settings()
    if isinstance(project, str):
        from gisportal.store import projects as catalogue

        project = catalogue.get(store.home if store is not None else DataHome(settings),
                                project)
    if within is not None and not update:
        raise UsageError("an upload limited to some communes must be an update of them",
                         where="--update", fix="Send it as an update of those communes",
                         code="UPDATE-OUTSIDE-SCOPE")
    model = layer_model(kind)
    district = seeds.district_code(district)
    year = check_year_option(year, kind)  # refused before reading a large file
    # A big file's peak memory is mostly what the allocators keep of freed temporaries:
    # fixed glibc thresholds and a purge after each step keep it to what is alive
    # (gisportal.pipeline.memory).
    lean_heap()
    # Scratch in <home>/tmp, named after this process: what a killed worker leaves is
    # found and removed (gisportal.jobs.housekeeping).
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("read"),
                                     dir=DataHome.scratch_for(settings)) as tmp:
        src = read_source(Path(path), layer=layer, encoding=encoding, workdir=Path(tmp),
                          max_bytes=int(settings["max_upload_bytes"]), progress=progress,
                          max_features=_setting_int(settings, "max_features"),
                          max_columns=_setting_int(settings, "max_columns"))
    give_back()
    if progress:
        progress("normalise")
    norm = normalise(src, model, crs=crs, district=district, field_overrides=fields)
    if year is not None:
        give_year(norm, year)
    # The normalised frame carries every source attribute (src:* columns) and the
    # geometries: drop the reader's table now, it would double the memory of a big file.
    src.frame = src.frame.iloc[0:0]
    give_back()
    if progress:
        progress("validate")
    repaired = None
    if repair:
        if progress:
            progress("repair")
        repaired = repair_layer(norm)
        norm = repaired.apply_to(norm)
    update_info = None
    if update:
        if store is None or district is None:
            raise UsageError("an update replaces communes of a published layer, so it needs "
                             "the district and the store", where="--update",
                             fix="Use gisportal ingest FILE --kind parcels --district D "
                                 "--update", code="UPDATE-NO-STORE")
        norm, update_info = merge_update(store, district, norm, communes,
                                         source_name=src.source_name, within=within)
    elif communes:
        raise UsageError("--commune names the communes of an update", where="--commune",
                         fix="Add --update, or leave --commune out to upload the whole layer")
    ctx = district_context(store if kind != "boundary" else None, district)
    if project is not None:
        ctx = replace(ctx, project_area=project.boundary)
    report = validate(src, norm, ctx)
    give_back()  # the checks' temporaries (coverage edges, pairs, threads' heaps)
    if repaired is not None:
        report.repair = repaired.to_dict()
    if update_info is not None:
        report.read["update"] = update_info.to_dict()
    if year is not None:
        report.read["year_given"] = year
    return Checked(src, norm, report, update_info)


@dataclass
class IngestResult:
    version: Version
    report: Report
    published: bool
    #: Why ``publish=True`` did not publish (the error's what/where/fix), or None.
    not_published: GisportalError | None = None
    #: What publishing changed for residents (`gisportal.services.workflow.PublishPreview`).
    changes: Any = None
    #: What an update replaced.
    update: UpdateInfo | None = None


def ingest_file(store: Store, path: str | Path, kind: str, district: str, *,
                publish: bool = False, user: str = "cli", crs: str | None = None,
                encoding: str | None = None, layer: str | None = None,
                fields: Mapping[str, str] | None = None, meta: Mapping[str, Any] | None = None,
                repair: bool = False, update: bool = False,
                communes: Sequence[str] | None = None, confirm_removals: bool = False,
                consultation: bool = False, public_fields: Sequence[str] | None = None,
                year: int | str | None = None, within: Sequence[str] | None = None,
                project: str | None = None, settings: dict[str, Any] | None = None,
                progress: Callable[[str], None] | None = None) -> IngestResult:
    """Check ``path`` and store it as a new draft version of (district, kind).

    With ``publish`` the version is then published through `gisportal.services.workflow.publish`
    (the only publish path: a plan needs its decision or ``consultation``, removals
    beyond the threshold need ``confirm_removals``); when it cannot be, it stays a
    draft, ``published`` is False and ``not_published`` says why. ``update`` and
    ``communes``: see `check_file`. ``public_fields``: source columns the planner
    marks public at upload (`gisportal.outputs.privacy.mark_public`). ``year``: the plan
    year of an annual plan whose features carry none, ``within`` the communes a commune
    officer may replace (see `check_file`). ``project``: the planning project whose lots
    or red lines the file holds (`gisportal.services.projects`); its district is the
    layer's, and a project without an area takes its first lots' union.
    """
    from gisportal.services import projects

    the_project = None
    if project is not None:
        from gisportal.store import projects as project_catalogue

        the_project = project_catalogue.get(store.home, project)
        if district is not None and seeds.district_code(district) != the_project.district:
            raise UsageError(f"project {the_project.id} lies in district "
                             f"{the_project.district}, not {district}", where="--district",
                             fix=f"Leave out --district or give {the_project.district}",
                             code="PROJECT-OTHER-DISTRICT")
        district = the_project.district
    check_layer(kind, project)  # before the file is read
    district = seeds.district_code(district)
    checked = check_file(path, kind, district=district, crs=crs, encoding=encoding,
                         layer=layer, fields=fields, settings=settings, store=store,
                         repair=repair, update=update, communes=communes, year=year, within=within,
                         project=the_project, progress=progress)
    model = checked.layer.model
    if progress:
        progress("store")
    version = store.add_version(
        district, kind, checked.layer.frame,
        source_name=checked.source.source_name,
        source_sha256=checked.source.sha256,
        created_by=user,
        has_errors=checked.report.has_errors,
        key_columns=[k for k in model.key if k in checked.layer.frame.columns],
        meta={"report": checked.report.summary(), "read": checked.report.read,
              "repair": None if checked.report.repair is None
              else checked.report.repair["summary"],
              "personal_fields": [f for f in model.personal_fields],
              "update": None if checked.update is None else checked.update.to_dict(),
              **({"project": the_project.facts()} if the_project is not None else {}),
              **dict(meta or {})},
        project=None if the_project is None else the_project.id,
    )
    if the_project is not None and kind == "zoning_lots" and not version.has_errors:
        projects.area_from_lots(store, the_project, version, by=user)
    if checked.update is not None:
        from gisportal.outputs.privacy import carry_marks

        version = carry_marks(store, version.id, store.version(checked.update.base_version),
                              actor=user)
    if public_fields:
        from gisportal.outputs.privacy import mark_public

        version = mark_public(store, version.id, list(public_fields), actor=user)
    result = IngestResult(version, checked.report, False, update=checked.update)
    if publish:
        from gisportal.services import workflow  # workflow builds on this module's results

        if progress:
            progress("publish")
        try:
            done = workflow.publish(store, version.id, user, confirm_removals=confirm_removals,
                                    consultation=consultation, settings=settings)
        except GisportalError as err:
            result.not_published = err
        else:
            result.version, result.published, result.changes = done.version, True, done.changes
    return result
