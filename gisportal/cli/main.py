"""The ``gisportal`` command: thin click wrappers over the service functions.

Each command parses options, calls one service (ingest, publish, lookup, demo...)
and prints its answer. Errors raised on purpose (:class:`GisportalError`) are printed
on one line to stderr with the exit code the contract gives; anything else is a bug,
printed on one line with exit 3 by `main` (its traceback goes to a log file).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from tqdm import tqdm

from gisportal.base import seeds
from gisportal.base.errors import GisportalError, UsageError, exception_chain
from gisportal.base.settings import SETTINGS, data_home, load_settings
from gisportal.cli.errors import errors as _errors
from gisportal.cli.errors import fail as _fail

__all__ = ["main", "cli"]

#: Layer kinds stored for a district (``gisportal.store.base.KINDS``).
KIND = click.Choice(["parcels", "plan", "boundary", "annual_plan"])
#: Layer kinds of construction/urban zoning plans: validated today; stored against a
#: project once projects are catalogued, so `ingest` names them only to refuse them.
ZONING_KINDS = ("zoning_lots", "red_lines")
#: What `validate` and `ingest` accept.
CHECK_KIND = click.Choice([*KIND.choices, *ZONING_KINDS])
#: Default demo size per district. The merged province's 30 plan districts × 2 000 =
#: 60 000 parcels take as long as the 12 districts × 10 000 of former Lâm Đồng did (each
#: district's three layers cost about as much to validate and publish as its parcels at
#: this size): 2 min 05 s against 2 min 01 s on 2 cores at load 3 (about a minute on a
#: quiet machine); 4 000 took 2 min 58 s.
DEMO_PARCELS = 2_000


#: Whether this process is the command's own (started through `main`): only then do the
#: heavy commands lower its address space (see `_limited`).
_OWN_PROCESS = False


def _limited(func):
    """Run a heavy command under ``job_memory_mb`` of address space, as a job runs.

    An allocation over the limit (or a full disk) is one line, not a traceback nor a
    server swapping for minutes: exit 2 for memory (the file cannot be handled within
    the limit), 1 for the disk. The limit is set only in the command's own process
    (``gisportal``, ``python -m gisportal``): a process that calls `cli` itself (tests,
    a script) may already hold more address space than a job is allowed, and its limits
    are its own business. It is lifted again when the command returns.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from gisportal.base.diskspace import disk_full_error, is_disk_full
        from gisportal.jobs import limits

        ctx = click.get_current_context()
        settings = ctx.obj["settings"]
        memory_mb = limits.Limits.from_settings(settings).memory_mb
        previous = limits.limit_memory(memory_mb) if _OWN_PROCESS else None
        limited = previous is not None
        try:
            return func(*args, **kwargs)
        except SystemExit as exc:
            limits.restore_memory(previous)
            previous = None
            if limited and exc.code not in (0, None):
                _end_process(exc.code if isinstance(exc.code, int) else 1)
            raise
        except Exception as exc:  # MemoryError, or whatever wrapped one
            # The limit is lifted first: under it, even the one-line message could fail
            # to allocate and come out as an "internal error" (seen once in a full run).
            limits.restore_memory(previous)
            previous = None
            if limits.is_out_of_memory(exc) or (limited and _allocation_failed(exc)):
                err = limits.out_of_memory_error(memory_mb, f"gisportal {ctx.info_name}",
                                                 subject="command")
                if limited:
                    click.echo(f"gisportal: error: {err.one_line()}", err=True)
                    _end_process(err.exit_code)
                _fail(err)
            if not isinstance(exc, GisportalError) and is_disk_full(exc):
                err = disk_full_error(data_home(settings), data_home(settings))
                if limited:
                    click.echo(f"gisportal: error: {err.one_line()}", err=True)
                    _end_process(err.exit_code)
                _fail(err)
            if limited:
                if isinstance(exc, GisportalError):
                    click.echo(f"gisportal: error: {exc.one_line()}", err=True)
                    _end_process(exc.exit_code)
                if os.environ.get("GISPORTAL_DEBUG"):
                    raise
                _internal_error(exc, exit=_end_process)
            raise
        finally:
            limits.restore_memory(previous)

    return wrapper


def _allocation_failed(exc: BaseException) -> bool:
    """Whether a failure under the command's own memory limit was an allocation.

    A C extension whose ``malloc`` failed under the limit does not always raise
    `MemoryError`: some return an error without setting one, and Python reports
    ``SystemError: error return without exception set`` (seen in a full test run, one
    run in a few). Under the limit that is an allocation failure, not a bug.
    """
    return any(isinstance(e, SystemError) for e in exception_chain(exc))


def _end_process(code: int) -> NoReturn:
    """End a limited command's own process now, after its one line.

    Native libraries that failed an allocation (pyarrow's jemalloc could not start its
    background thread) may crash in their exit handlers: a crash would turn exit 2 into
    a -11. Logs and the standard streams are flushed; no finaliser is left to run (the
    store's transactions are committed or rolled back by then).
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _home(ctx: click.Context):
    """The data home the command works on (``--home`` or ``$GISPORTAL_HOME``)."""
    from gisportal.store.home import DataHome

    return DataHome(ctx.obj["settings"])


def _store(ctx: click.Context):
    """A store on the command's data home, closed by the caller."""
    return _home(ctx).open_store()


def _fields(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise UsageError(f"field override {p!r} is not FIELD=COLUMN", where="--field",
                             fix="write e.g. --field sheet=SO_TO")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


class _Stages:
    """A progress bar over named stages of one file (read, normalise, validate...)."""

    def __init__(self, stages: tuple[str, ...], label: str):
        self.stages = stages
        self.bar = tqdm(total=len(stages), desc=label, unit="step", file=sys.stderr,
                        leave=False, disable=None)

    def __call__(self, stage: str) -> None:
        if stage in self.stages:
            self.bar.set_postfix_str(stage)
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="GISPORTAL_HOME", default=None,
              help="Data home (default $GISPORTAL_HOME or ./instance).")
@click.version_option(package_name="gisportal")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """gisportal — land-use planning publisher (Lâm Đồng).

    Validate and ingest cadastral and 2021–2030 land-use plan layers, keep every
    version, publish them, look parcels up, and serve the portal.
    """
    if not sys.warnoptions:  # library warnings never reach the planner: one stderr line
        warnings.simplefilter("ignore")
    ctx.ensure_object(dict)
    ctx.obj["settings"] = load_settings({"home": home})


# --------------------------------------------------------------------------- validate


_YEAR_HELP = ("Annual plans (--kind annual_plan): the plan year of the features that carry "
              "none, e.g. 2026 for a file of one year's projects.")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=CHECK_KIND, required=True, help="Layer kind of the file.")
@click.option("--district", help="GSO district code (e.g. 678): helps infer the CRS.")
@click.option("--project", help="A planning project: its area is checked against "
                                "(zoning_lots, red_lines).")
@click.option("--crs", help="Override the CRS (EPSG:5899, VN2000:107.75, PROJ or WKT).")
@click.option("--encoding", help="Override the text encoding (utf-8, cp1258, tcvn3, vni).")
@click.option("--layer", help="Layer to read when the file holds several.")
@click.option("--field", "fields", multiple=True, metavar="FIELD=COLUMN",
              help="Map a source column to a field, e.g. --field sheet=SO_TO.")
@click.option("--format", "fmt", type=click.Choice(["json", "html", "geojson"]),
              default="json", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here instead of standard output.")
@click.option("--repair", is_flag=True,
              help="Repair geometry (make_valid, repeated points, small overlaps and gaps) "
                   "and report every change; validation runs on the repaired layer.")
@click.option("--repaired-out", type=click.Path(dir_okay=False, path_type=Path),
              help="With --repair: write the repaired layer here (GeoPackage, VN-2000 TM-3).")
@click.option("--year", help=_YEAR_HELP)
@click.pass_context
@_limited
def validate(ctx, file, kind, district, project, crs, encoding, layer, fields, fmt, out,
             repair, repaired_out, year) -> None:
    """Validate FILE and print the report (exit 0: no errors, 1: errors, 2: unreadable)."""
    from gisportal.outputs.report_html import report_html
    from gisportal.services.ingest import check_file

    if repaired_out and not repair:
        _fail(UsageError("--repaired-out needs --repair", where="--repaired-out",
                         fix="add --repair, or drop --repaired-out"))
    stages = _Stages(("normalise", "repair", "validate"), file.name)
    try:
        if project:
            from gisportal.store import projects as project_catalogue

            project = project_catalogue.get(_home(ctx), project)  # its district, its area
            district = district or project.district
        checked = check_file(file, kind, district=district, crs=crs, encoding=encoding,
                             layer=layer, fields=_fields(fields), settings=ctx.obj["settings"],
                             store=_store(ctx) if district else None, repair=repair,
                             year=year, project=project, progress=stages)
    except GisportalError as err:
        stages.close()
        _fail(err)
        return
    stages.close()
    if repaired_out:
        from gisportal.pipeline.repair import write_repaired

        write_repaired(checked.layer, repaired_out)
        click.echo(f"repaired layer written to {repaired_out}", err=True)
    report = checked.report
    if fmt == "json":
        text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
    elif fmt == "geojson":
        text = json.dumps(report.to_geojson(), ensure_ascii=False)
    else:
        text = report_html(report, checked.layer.frame)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        click.echo(text)
    s = report.summary()
    click.echo(f"{s['features']} features: {s['errors']} errors, {s['warnings']} warnings, "
               f"{s['infos']} infos", err=True)
    sys.exit(1 if report.has_errors else 0)


# --------------------------------------------------------------------------- ingest


_CONFIRM_HELP = ("Publish even if more than 5 % of the published features would be removed "
                 "(publish_confirm_removed_share).")
_CONSULTATION_HELP = ("Publish a plan without its approval decision as a draft for comment "
                      "(dự thảo lấy ý kiến), labelled so on every public page.")


def _print_changes(changes) -> None:
    """What residents see change, as publishing reports it (stderr: stdout ends in the id)."""
    if changes is None:
        return
    click.echo(f"changes: {changes.one_line()}", err=True)
    for row in changes.areas[:12]:
        if row.get("delta_m2"):
            click.echo(f"  {row['code']}: {row['delta_m2']:+,.1f} m²", err=True)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=CHECK_KIND, required=True)
@click.option("--district", help="GSO district code, e.g. 678 (a project's own by default).")
@click.option("--project", help="The planning project of a zoning_lots or red_lines file "
                                "(gisportal projects list).")
@click.option("--crs")
@click.option("--encoding")
@click.option("--layer")
@click.option("--field", "fields", multiple=True, metavar="FIELD=COLUMN")
@click.option("--publish", is_flag=True, help="Publish at once when there are no errors.")
@click.option("--repair", is_flag=True, help="Repair geometry first; the changes are kept "
                                             "with the version.")
@click.option("--update", is_flag=True,
              help="Parcels: replace only the communes the file covers in the published "
                   "layer (cadastral correction); the result is a new full version.")
@click.option("--commune", "communes", multiple=True, metavar="CODE",
              help="With --update: a commune the file covers (repeatable); needed when the "
                   "file has no commune column.")
@click.option("--confirm-removals", is_flag=True, help=_CONFIRM_HELP)
@click.option("--consultation", is_flag=True, help=_CONSULTATION_HELP)
@click.option("--public-field", "public_fields", multiple=True, metavar="COLUMN",
              help="A source column residents may see (repeatable); others stay private.")
@click.option("--year", help=_YEAR_HELP)
@click.option("--user", default="cli", show_default=True, help="Recorded as the uploader.")
@click.pass_context
@_errors
@_limited
def ingest(ctx, file, kind, district, project, crs, encoding, layer, fields, publish, repair,
           update, communes, confirm_removals, consultation, public_fields, year,
           user) -> None:
    """Store FILE as a new draft version; the last output line is the version id."""
    from gisportal.services.ingest import ingest_file

    if kind in ZONING_KINDS and not project:
        _fail(UsageError(f"{kind} layers are uploaded against a planning project",
                         where="--project",
                         fix="Create the project (gisportal projects add ID --district D "
                             "--name ... --level zoning), then add --project ID; "
                             f"gisportal validate FILE --kind {kind} checks a file alone",
                         code="ZONING-NO-PROJECT"))
    if not district and not project:
        _fail(UsageError("ingest needs the district the layer belongs to",
                         where="--district", fix="Add --district CODE, e.g. --district 678"))

    stages = _Stages(("normalise", "repair", "validate", "store", "publish"), file.name)
    try:
        res = ingest_file(_store(ctx), file, kind, district, publish=publish, user=user,
                          project=project,
                          crs=crs, encoding=encoding, layer=layer, fields=_fields(fields),
                          repair=repair, update=update, communes=communes,
                          confirm_removals=confirm_removals, consultation=consultation,
                          public_fields=public_fields, year=year,
                          settings=ctx.obj["settings"], progress=stages)
    finally:
        stages.close()
    s = res.report.summary()
    read = res.report.read
    click.echo(f"read: {read.get('driver')} {res.report.source}; CRS {read['crs']['crs']} "
               f"({read['crs']['origin']}); encoding {read.get('encoding') or '-'}")
    for f in res.report.findings:
        if f.rule in ("CRS-INFERRED", "READ-ENCODING-DETECTED", "READ-ENCODING-UNCERTAIN",
                      "ANNUAL-YEAR-GIVEN", "ANNUAL-YEAR-DIFFERS"):
            click.echo(f"{f.level}: {f.rule}: {f.message('en')}")
    if res.update is not None:
        click.echo(res.update.one_line())
    click.echo(f"{s['features']} features: {s['errors']} errors, {s['warnings']} warnings")
    if res.report.repair is not None:
        rs = res.report.repair["summary"]
        click.echo(f"repair: {rs['changes']} changes to {rs['features_changed']} features, "
                   f"{rs['features_dropped']} dropped")
    _print_changes(res.changes)
    state = "published" if res.published else "draft"
    if publish and not res.published and res.not_published is not None:
        click.echo(f"not published: {res.not_published.one_line()}", err=True)
    owner = f"project {project}" if project else res.version.district
    click.echo(f"version {res.version.id} ({state}) of {owner} {kind}")
    click.echo(str(res.version.id))
    if publish and not res.published:
        sys.exit(1)


@cli.command()
@click.option("--district", help="The district of the layer (or --project).")
@click.option("--project", help="The planning project of the layer (or --district).")
@click.option("--kind", type=CHECK_KIND, required=True)
@click.option("--version", "version_id", type=int, required=True)
@click.option("--confirm-removals", is_flag=True, help=_CONFIRM_HELP)
@click.option("--consultation", is_flag=True, help=_CONSULTATION_HELP)
@click.option("--dry-run", is_flag=True,
              help="Only print what residents would see change; publish nothing.")
@click.option("--user", default="cli", show_default=True)
@click.pass_context
@_errors
def publish(ctx, district, project, kind, version_id, confirm_removals, consultation,
            dry_run, user) -> None:
    """Publish a version (the previous published one becomes superseded).

    The same rules as the planner pages: no validation errors; a plan needs its approval
    decision (gisportal decision) or --consultation; removing more than 5 % of the
    published features needs --confirm-removals.
    """
    from gisportal.base.seeds import district_code
    from gisportal.services import workflow

    store = _store(ctx)
    if not district and not project:
        _fail(UsageError("publish needs the layer's district or project",
                         where="--district", fix="Add --district CODE or --project ID"))
    district = district_code(district) if district else None
    settings = ctx.obj["settings"]
    if project:
        from gisportal.base.errors import StoreError
        from gisportal.store.base import check_project

        if store.version(version_id).project != check_project(project):
            _fail(StoreError(f"version {version_id} is not a layer of project {project}",
                             where="--version", fix="gisportal versions --project "
                             f"{project} lists its versions", code="VERSION-OTHER-LAYER"))
    if dry_run:
        pre = workflow.preview(store, version_id, district=district, kind=kind,
                               settings=settings)
        click.echo(json.dumps(pre.to_dict(), ensure_ascii=False, indent=2))
        return
    done = workflow.publish(store, version_id, user, district=district, kind=kind,
                            confirm_removals=confirm_removals, consultation=consultation,
                            settings=settings)
    _print_changes(done.changes)
    v = done.version
    label = " as a draft for comment" if workflow.is_consultation(v) else ""
    owner = f"project {v.project}" if v.project else v.district
    click.echo(f"published version {v.id} of {owner} {v.kind}{label} at {v.published_at}")


@cli.command()
@click.option("--version", "version_id", type=int, required=True, help="Plan version id.")
@click.option("--number", required=True, help="Decision number, e.g. 1234/QĐ-UBND.")
@click.option("--date", "date_", required=True, help="Date signed, YYYY-MM-DD.")
@click.option("--authority", required=True, help="Who approved it (Ủy ban nhân dân tỉnh …).")
@click.option("--pdf", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The signed decision as PDF.")
@click.pass_context
@_errors
def decision(ctx, version_id, number, date_, authority, pdf) -> None:
    """Attach the approval decision to a plan version (needed to publish it as approved)."""
    from gisportal.services.decisions import attach_decision

    res = attach_decision(_store(ctx), version_id, number=number, date=date_,
                          authority=authority, pdf=pdf, pdf_name=pdf.name if pdf else None,
                          home=data_home(ctx.obj["settings"]), settings=ctx.obj["settings"])
    d = res.decision
    click.echo(f"decision {d.number} of {d.date} attached to {res.version.kind} version "
               f"{version_id}")


@cli.command()
@click.option("--district")
@click.option("--project", help="A planning project's layers instead of districts'.")
@click.option("--kind", type=CHECK_KIND)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def versions(ctx, district, project, kind, as_json) -> None:
    """List stored versions, newest first."""
    rows = _store(ctx).versions(district, kind, project=project)
    if as_json:
        click.echo(json.dumps([{"id": v.id, "district": v.district, "kind": v.kind,
                                "status": v.status, "features": v.feature_count,
                                "source": v.source_name, "sha256": v.source_sha256,
                                "created_at": v.created_at, "created_by": v.created_by,
                                "published_at": v.published_at, "has_errors": v.has_errors,
                                "project": v.project}
                               for v in rows], ensure_ascii=False, indent=2))
        return
    for v in rows:
        click.echo(f"{v.id:>6}  {v.district}  {v.kind:<8}  {v.status:<10}  "
                   f"{v.feature_count:>8}  {v.created_at}  {v.source_name}")


# --------------------------------------------------------------------------- lookup


@cli.command()
@click.option("--district", help="GSO district code (needed with --sheet/--parcel).")
@click.option("--sheet")
@click.option("--parcel")
@click.option("--commune")
@click.option("--lat")
@click.option("--lon")
@click.option("--x", "x_north", help="VN-2000 X = northing, as on a land certificate.")
@click.option("--y", "y_east", help="VN-2000 Y = easting.")
@click.option("--zone", help="TM-3 zone of --x/--y: 5899 (107°45′) or 9218 (108°30′); "
                             "default: the district's, else the one the point fits.")
@click.pass_context
@_errors
def lookup(ctx, district, sheet, parcel, commune, lat, lon, x_north, y_east, zone) -> None:
    """Look a parcel up and print the same JSON as /api/lookup (with personal fields)."""
    from gisportal.services import lookup as lk

    store = _store(ctx)
    if sheet is not None or parcel is not None:
        if not (district and sheet and parcel):
            raise UsageError("--sheet and --parcel go together, with --district",
                             fix="e.g. gisportal lookup --district 678 --sheet 12 --parcel 345")
        answer = lk.lookup_key(store, district, sheet, parcel, commune, public=False)
    elif lat is not None or lon is not None:
        if lat is None or lon is None:
            raise UsageError("--lat and --lon go together", fix="give both, in degrees")
        answer = lk.lookup_lonlat(store, lat, lon, district, public=False)
    elif x_north is not None or y_east is not None:
        if x_north is None or y_east is None:
            raise UsageError("--x and --y go together",
                             fix="X is the northing and Y the easting, as on the certificate")
        answer = lk.lookup_xy(store, x_north, y_east, district, zone=zone, public=False)
    else:
        raise UsageError("nothing to look up",
                         fix="give --district with --sheet and --parcel, or --lat and --lon, "
                             "or --x and --y")
    click.echo(json.dumps(answer, ensure_ascii=False, indent=2))


# --------------------------------------------------------------------------- compare


@cli.command()
@click.option("--district", help="GSO district code, e.g. 678 (a district's layer).")
@click.option("--project", help="Planning project id, e.g. 679-dran-chung (its lots: "
                                "--kind zoning_lots).")
@click.option("--kind", type=CHECK_KIND, required=True)
@click.option("--from", "from_id", type=int, required=True, help="Version id before.")
@click.option("--to", "to_id", type=int, required=True, help="Version id after.")
@click.option("--format", "fmt", type=click.Choice(["json", "geojson", "text"]),
              default="json", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result here instead of standard output.")
@click.option("--area-tolerance", type=float, default=None,
              help="m² of shape difference below which a feature is not reshaped "
                   "(default: the layer model's area_tolerance_m2).")
@click.option("--iou-threshold", type=float, default=None,
              help="Overlap (intersection over union) above which features left "
                   "unmatched by key are the same feature (default 0.5).")
@click.pass_context
@_errors
def compare(ctx, district, project, kind, from_id, to_id, fmt, out, area_tolerance,
            iou_threshold) -> None:
    """Compare two versions of a layer: added, removed, reshaped, renumbered, use changed,
    and m² per land-use code (drafts too); of a planning project's lots (--project),
    also the lots whose indicators changed, and m² per function."""
    from gisportal.base.seeds import district_code
    from gisportal.outputs.compare import DEFAULT_IOU_THRESHOLD, compare_versions

    if (district is None) == (project is None):
        raise UsageError("give --district or --project (one of them)",
                         where="--district, --project",
                         fix="--district 678 for a district's layer, --project ID "
                             "--kind zoning_lots for a planning project's lots")
    result = compare_versions(
        _store(ctx), from_id, to_id, district=district_code(district), kind=kind,
        project=project, area_tolerance_m2=area_tolerance,
        iou_threshold=DEFAULT_IOU_THRESHOLD if iou_threshold is None else iou_threshold)
    if fmt == "json":
        text = json.dumps(result.to_dict(), ensure_ascii=False, indent=1)
    elif fmt == "geojson":
        text = json.dumps(result.geojson(), ensure_ascii=False)
    else:
        text = result.to_text()
    if out:
        out.write_text(text, encoding="utf-8")
        s = result.summary()
        click.echo(f"{s['changed_features']} changed features written to {out}", err=True)
    else:
        click.echo(text)


# --------------------------------------------------------------------------- export


@cli.command()
@click.option("--district", help="GSO district code, e.g. 678 (or --project).")
@click.option("--project", "project_id",
              help="A planning project's id (gisportal projects list): its package for the "
                   "Ministry of Construction's portal — published lots, red lines, boundary, "
                   "decision and documents (or --district).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The zip file to write (replaced only once the new one is complete).")
@click.option("--kind", "kinds", type=KIND, multiple=True,
              help="Only this layer (repeatable); default: every published layer.")
@click.option("--version", "version_id", type=int,
              help="Export this version (e.g. an older one) instead of the published ones.")
@click.option("--national-names/--english-names", "national_names", default=True,
              show_default=True,
              help="Name fields as the national land database does (SoHieuToBanDo, "
                   "KyHieuMucDichSuDung...; a project's KyHieuLo, ChucNang...: the default "
                   "for the ministries), or by gisportal's English names (sheet, land_use...).")
@click.option("--include-personal", is_flag=True,
              help="Also export personal data (owner names, ID and certificate numbers). "
                   "Off by default.")
@click.pass_context
@_errors
@_limited
def export(ctx, district, project_id, out, kinds, version_id, national_names,
           include_personal) -> None:
    """Write the ministry export package of a district or of a planning project; the last
    output line is its path."""
    from gisportal.outputs.export import export_package, export_project_package

    if (district is None) == (project_id is None):
        raise UsageError("export needs one of --district and --project",
                         where="--project" if project_id else "--district",
                         fix="Add --district CODE for a district's package, or --project ID "
                             "for a planning project's (not both)", code="EXPORT-SUBJECT")
    if project_id is not None and (kinds or version_id is not None):
        raise UsageError("--kind and --version choose a district's layers",
                         where="--kind" if kinds else "--version",
                         fix="Leave them out: a project's package carries its published "
                             "lots and red lines and its boundary", code="EXPORT-SUBJECT")

    bar = tqdm(desc="export", unit="step", file=sys.stderr, leave=False, disable=None)

    def progress(step: str, total: int) -> None:
        bar.total = total
        bar.set_postfix_str(step)
        bar.update(1)

    try:
        if project_id is not None:
            res = export_project_package(_store(ctx), project_id, out,
                                         national_names=national_names,
                                         include_personal=include_personal,
                                         settings=ctx.obj["settings"], progress=progress)
        else:
            res = export_package(_store(ctx), district, out, kinds=kinds or None,
                                 version_id=version_id, national_names=national_names,
                                 include_personal=include_personal,
                                 settings=ctx.obj["settings"], progress=progress)
    finally:
        bar.close()
    for warning in res.warnings:
        click.echo(f"warning: {warning}", err=True)
    for layer in res.layers:
        v = layer.version
        made = f"version {v.id} ({v.status})" if v is not None else "from the catalogue"
        click.echo(f"{layer.kind}: {made}, {layer.feature_count} features, "
                   f"{len(layer.fields)} fields")
    if include_personal:
        click.echo("personal data included: handle the package as personal data", err=True)
    click.echo(str(res.path))


# --------------------------------------------------------------------------- jobs


@cli.group("jobs")
def jobs_group() -> None:
    """Background jobs (web uploads, publications): list them, cancel one."""


@jobs_group.command("list")
@click.option("--district")
@click.option("--state", type=click.Choice(["queued", "running", "done", "failed",
                                            "cancelled"]))
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def jobs_list(ctx, district, state, limit, as_json) -> None:
    """List jobs, newest first (a job whose worker died shows as failed)."""
    from gisportal import jobs

    rows = jobs.list_jobs(data_home(ctx.obj["settings"]), district, state=state, limit=limit)
    if as_json:
        click.echo(json.dumps([j.to_dict() for j in rows], ensure_ascii=False, indent=2))
        return
    for j in rows:
        detail = (j.error or {}).get("message") or j.message
        # The operator's view names the node that runs or ran a job (where its log is);
        # planners' answers leave it out.
        where = f"{j.node or '-'}#{j.attempt}" if j.node else "-"
        click.echo(f"{j.id:>6}  {j.kind:<8}  {j.district}  {j.layer:<8}  {j.state:<9}  "
                   f"{j.stage:<9} {j.percent:>3}%  {j.actor}  {where}  {j.created_at}  "
                   f"{detail}")


@jobs_group.command("cancel")
@click.argument("job_id", type=int)
@click.pass_context
@_errors
def jobs_cancel(ctx, job_id) -> None:
    """Cancel a queued or running job (its worker is stopped; the store stays intact)."""
    from gisportal import jobs

    job = jobs.cancel(data_home(ctx.obj["settings"]), job_id, settings=ctx.obj["settings"])
    click.echo(f"job {job.id}: {job.state}" + (f" ({job.message})" if job.message else ""))


@cli.command("worker")
@click.option("--jobs", "n_jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Jobs run at once on this node, each in its own process.")
@click.option("--once", is_flag=True,
              help="Run what is queued, then exit (tests, cron).")
@click.option("--grace", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Seconds running jobs get to finish after SIGTERM before they are "
                   "handed back to the queue.")
@click.pass_context
@_errors
def worker_command(ctx, n_jobs, once, grace) -> None:
    """Take background jobs from the queue and run them (any node, production mode).

    Jobs are claimed through the database, so workers on several nodes each run a job
    once; a job whose node stops sending heartbeats is re-queued and run again
    (job_stale_seconds, job_max_attempts). SIGTERM stops claiming and hands running jobs
    back. With job_runner=external the web nodes start no jobs themselves.
    """
    from gisportal.jobs import runner

    def say(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()  # a supervisor (systemd, a test) reads it as it happens

    settings = ctx.obj["settings"]
    runner.run(data_home(settings), settings, jobs=n_jobs, once=once, grace=grace, say=say)


@cli.command("cleanup")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--retention-days", type=click.IntRange(0), default=None,
              help="Remove uploads of jobs finished this many days ago (default: the "
                   "upload_retention_days setting).")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option("--user", default="cli", show_default=True, help="Recorded in the audit log.")
@click.pass_context
@_errors
def cleanup_command(ctx, dry_run, retention_days, as_json, user) -> None:
    """Remove old uploads, tile archives no roll back needs, and stale scratch.

    Uploads of jobs finished more than upload_retention_days ago go, unless their
    version is a draft or published; tile archives of superseded versions go, except the
    last one of each layer; scratch a killed process left goes. Audited as "cleanup".
    """
    from gisportal.jobs.housekeeping import cleanup

    home = data_home(ctx.obj["settings"])
    report = cleanup(home, retention_days=retention_days, dry_run=dry_run, actor=user,
                     settings=ctx.obj["settings"])
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
        return
    from gisportal.base.text import human_size

    verb = "would remove" if dry_run else "removed"
    for entry in (*report.uploads, *report.tiles, *report.scratch):
        row = entry.to_dict(home)
        click.echo(f"{verb} {row['path']} ({human_size(row['bytes'])}): {row['reason']}")
    click.echo(report.one_line())


# --------------------------------------------------------------------------- demo, serve


def _run_demo(ctx: click.Context, parcels: int, districts: tuple[str, ...]) -> None:
    from gisportal.services.demo import build_demo, demo_summary

    codes = list(districts) or [d.code for d in seeds.districts()]
    bar = tqdm(total=len(codes) * 5, desc="demo", unit="step", file=sys.stderr, disable=None)

    def progress(code: str, stage: str) -> None:
        bar.set_postfix_str(f"{code} {stage}")
        bar.update(1)

    try:
        results = build_demo(_store(ctx), parcels_per_district=parcels,
                             districts=list(districts) or None, progress=progress)
    finally:
        bar.close()
    table = demo_summary(results)
    click.echo(table.to_string(index=False))
    bad = table[~table["published"]]
    if not bad.empty:
        raise UsageError(f"{len(bad)} demo layers did not validate and were not published",
                         fix="run gisportal versions and gisportal validate on them")


@cli.command()
@click.option("--parcels-per-district", "parcels", type=click.IntRange(10, 2_000_000),
              default=DEMO_PARCELS, show_default=True)
@click.option("--district", "districts", multiple=True, help="Only these districts.")
@click.pass_context
@_errors
@_limited
def demo(ctx, parcels, districts) -> None:
    """Generate the demo province and publish it into the data home."""
    _run_demo(ctx, parcels, districts)


def _cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _have_gunicorn() -> bool:
    try:
        import gunicorn.app.base  # noqa: F401  (Unix only: it needs fcntl)
    except ImportError:
        return False
    return True


def _default_workers() -> int:
    """One worker process per CPU where gunicorn runs, else one (waitress).

    A request is mostly Python holding the GIL, so one process uses about one core:
    fewer processes than cores leave cores idle, more only queue for the same cores
    (bench/bench_lookup.py measures both).
    """
    return _cpus() if _have_gunicorn() else 1


def _serve_gunicorn(config: dict[str, Any], host: str, port: int, workers: int,
                    threads: int) -> None:
    """gunicorn with `workers` gthread processes; each builds its own app after the fork.

    No ``preload_app``: the app, its store (SQLite connections per thread) and the
    tile readers (memory maps) are made in each worker, never inherited from the master.
    """
    from gunicorn.app.base import BaseApplication

    from gisportal.web.server import close_after

    class Portal(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
                "workers": workers, "worker_class": "gthread", "threads": threads,
                "preload_app": False, "proc_name": "gisportal",
                # A request thread may wait for an on-demand tile build; the worker's
                # main thread keeps answering the arbiter meanwhile, so this is only
                # for a worker that hangs for good.
                "timeout": 120, "graceful_timeout": 30, "keepalive": 5,
                "accesslog": None, "errorlog": "-", "loglevel": "info",
            }.items():
                self.cfg.set(key, value)
            # Spread kept-alive connections over the workers (gisportal/web/server.py).
            hook = close_after(int(load_settings(config)["keepalive_requests"]))
            if hook is not None:
                self.cfg.set("pre_request", hook)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn 25.1+
                # Its runtime control socket has one default path per user: a second
                # portal (or a test) on the machine would take over the first one's.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            from gisportal.web.server import serving_app

            return serving_app(config)

    Portal().run()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", type=click.IntRange(1, 256), envvar="GISPORTAL_WORKERS",
              help="Worker processes (default: one per CPU, with gunicorn on Unix). 1 runs "
                   "one process with waitress. [env GISPORTAL_WORKERS]")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="Threads per process (default: 8 with one process, 4 per worker).")
@click.option("--demo", "with_demo", is_flag=True,
              help="Seed the demo province first when the data home is empty.")
@click.pass_context
@_errors
def serve(ctx, host, port, workers, threads, with_demo) -> None:
    """Run the portal with a production WSGI server: gunicorn workers, or waitress."""
    if with_demo:
        with _store(ctx) as store:
            empty = not store.versions()
        if empty:
            click.echo("seeding the demo province into an empty data home…", err=True)
            _run_demo(ctx, DEMO_PARCELS, ())
            gc.collect()  # close the demo's store here, not in a forked worker
    workers = _default_workers() if workers is None else workers
    if workers > 1 and not _have_gunicorn():
        raise UsageError(f"--workers {workers} needs gunicorn, which runs on Unix only",
                         where="--workers", fix="use --workers 1 (waitress) on this system")
    config = {"home": ctx.obj["settings"]["home"]}
    server = (f"gunicorn, {workers} worker processes × {threads or 4} threads"
              if workers > 1 else f"waitress, {threads or 8} threads")
    click.echo(f"gisportal on http://{host}:{port}/ ({server}; data home "
               f"{data_home(ctx.obj['settings'])})", err=True)
    if workers > 1:
        _serve_gunicorn(config, host, port, workers, threads or 4)
        return
    import signal

    import waitress

    from gisportal.web.server import serving_app

    # SIGTERM (systemd, docker stop) ends the server like Ctrl-C: exit status 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    waitress.serve(serving_app(config), host=host, port=port, threads=threads or 8)


@cli.command("rules")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True)
def show_rules(fmt) -> None:
    """Print the validation rule catalogue (codes, severities, meaning)."""
    from gisportal.base.findings import rules, rules_markdown

    if fmt == "json":
        click.echo(json.dumps({c: {"family": r.family, "severity": r.severity, "vi": r.vi,
                                   "en": r.en, "doc": r.doc} for c, r in rules().items()},
                              ensure_ascii=False, indent=1))
    else:
        click.echo(rules_markdown())


@cli.command("settings")
@click.pass_context
def show_settings(ctx) -> None:
    """Show every setting, its value and where to change it."""
    values: dict[str, Any] = ctx.obj["settings"]
    for s in SETTINGS:
        shown = ("(set, hidden)" if values[s.name] else "(unset)") \
            if s.secret else repr(_masked(s.name, values[s.name]))
        click.echo(f"{s.name} = {shown}   (env {s.env}) — {s.help}")


def _masked(name: str, value: Any) -> Any:
    """A database URL without its password: ``gisportal settings`` is shown on screens
    and pasted into tickets."""
    if name not in ("database", "database_replicas") or not value:
        return value
    from gisportal.store.postgres import describe

    return ",".join(describe(part.strip()) for part in str(value).split(",") if part.strip())


# --------------------------------------------------------------------------- backup


@cli.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tiles", is_flag=True,
              help="Include the vector tiles (left out by default: they are rebuilt from "
                   "the versions on first use).")
@click.pass_context
@_errors
def backup_command(ctx, dest: Path, tiles: bool) -> None:
    """Back up the data home to DEST (.tar, or .tar.gz compressed) while the portal runs.

    Holds the catalogue (versions, users, jobs, audit log), every district's layers, the
    uploads, the decision PDFs and the session key. Restore with `gisportal restore`.
    """
    from gisportal.services import backup

    result = backup.backup(_home(ctx), dest, tiles=tiles,
                           progress=lambda step: click.echo(f"backup: {step}", err=True))
    click.echo(f"backup: {result.path} ({result.versions} versions of "
               f"{len(result.districts)} districts, {result.files} files, "
               f"{result.bytes / 1e6:.1f} MB)")


@cli.command("restore")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@_errors
def restore_command(ctx, src: Path) -> None:
    """Restore the backup SRC into the data home (--home), which must be empty."""
    from gisportal.services import backup

    result = backup.restore(_home(ctx), src,
                            progress=lambda step: click.echo(f"restore: {step}", err=True))
    click.echo(f"restored {result.versions} versions of {len(result.districts)} districts "
               f"from {result.path} (made {result.manifest.get('created_at')}) into "
               f"{_home(ctx).root}")


# --------------------------------------------------------------------------- migrate

#: Modules whose ``MIGRATIONS`` (component → numbered steps, see
#: `gisportal.store.postgres`) ``gisportal migrate`` applies, in this order. A catalogue
#: component (accounts, jobs, audit) that moves to PostgreSQL adds its module here.
MIGRATED: tuple[str, ...] = ("gisportal.store.postgis", "gisportal.accounts.db",
                             "gisportal.jobs.table", "gisportal.store.projects")


@cli.command("migrate")
@click.pass_context
@_errors
def migrate_command(ctx) -> None:
    """Create or upgrade the production database's schema (GISPORTAL_DATABASE).

    Run once per release, before the nodes start: they refuse a database whose schema
    is not the one they know. Safe to run from several nodes at once.
    """
    import importlib

    from gisportal.store import postgres

    dsn = ctx.obj["settings"].get("database")
    if not dsn:
        raise UsageError("No database to migrate: the embedded store creates its own "
                         "catalogue", where="database",
                         fix="Set GISPORTAL_DATABASE=postgresql://… for production mode")
    migrations: dict[str, Any] = {}
    for module in MIGRATED:
        migrations.update(importlib.import_module(module).MIGRATIONS)
    click.echo(f"database {postgres.describe(dsn)}")
    for component, (before, after) in postgres.migrate(dsn, migrations).items():
        click.echo(f"{component}: schema {after} (up to date)" if before == after
                   else f"{component}: schema {before} → {after}")


# --------------------------------------------------------------------------- accounts

from gisportal.cli.accounts import audit_command, users_group  # noqa: E402
from gisportal.cli.projects import projects_group  # noqa: E402

cli.add_command(users_group)
cli.add_command(audit_command)
cli.add_command(projects_group)


#: Exit status of an internal error (a bug): distinct from the contract's 1 and 2.
EXIT_BUG = 3


def _internal_error(exc: BaseException,
                    exit: Callable[[int], NoReturn] = sys.exit) -> NoReturn:  # noqa: A002
    """One line for the user and the traceback in a log file: never a traceback on the
    terminal of a land office (``GISPORTAL_DEBUG=1`` shows it, for developers).

    `exit` ends the process: `_end_process` for a command under its memory limit.
    """
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    log = None
    from gisportal.store.home import DataHome

    for folder in (DataHome().logs, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            log = folder / "gisportal-errors.log"
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"--- gisportal {' '.join(sys.argv[1:])}\n{text}\n")
            break
        except (OSError, GisportalError):
            log = None
    where = f"; details in {log}" if log else ""
    click.echo(f"gisportal: internal error (a bug in gisportal, not in your file): "
               f"{type(exc).__name__}: {str(exc)[:200]}{where}; please report it",
               err=True)
    exit(EXIT_BUG)


def main() -> None:
    """Console-script entry point.

    Errors raised on purpose are one line with the contract's exit code (`_errors`);
    anything else is a bug, reported in one line with exit 3 and the traceback in
    ``<home>/logs/gisportal-errors.log`` (tests call `cli` directly, so they still see it).
    """
    global _OWN_PROCESS
    _OWN_PROCESS = True
    try:
        cli(prog_name="gisportal")
    except Exception as exc:  # noqa: BLE001 - the last safety net, see the docstring
        if os.environ.get("GISPORTAL_DEBUG"):
            raise
        _internal_error(exc)
