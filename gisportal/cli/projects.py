"""``gisportal projects …``: the catalogue of planning projects, thin over
`gisportal.services.projects`.

A project is created and described here; its lots and red lines are uploaded with
``gisportal ingest FILE --kind zoning_lots --project ID`` and published with
``gisportal publish --project ID …`` like any layer. Every change is audited with the
actor ``cli:<operating-system user>`` (``project.add``, ``project.change``,
``project.area``, ``project.document``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from gisportal.accounts import audit
from gisportal.cli.accounts import cli_actor
from gisportal.cli.errors import errors as _errors
from gisportal.store.home import DataHome

__all__ = ["projects_group"]


def _store(ctx: click.Context):
    return DataHome(ctx.obj["settings"]).open_store()


@click.group("projects")
def projects_group() -> None:
    """Construction and urban planning projects (đồ án quy hoạch xây dựng, đô thị)."""


@projects_group.command("add")
@click.argument("project_id", metavar="ID")
@click.option("--district", required=True, help="The district the project lies in (GSO code).")
@click.option("--name", required=True, help="The name on the approving decision.")
@click.option("--level", required=True,
              help="general (quy hoạch chung), zoning (phân khu) or detailed (chi tiết).")
@click.option("--scale", help="The drawings' scale, e.g. 1/2000.")
@click.option("--status", default="preparing", show_default=True,
              help="preparing, appraisal, approved, adjusted or replaced.")
@click.option("--area", "area_file", type=click.Path(dir_okay=False, exists=True,
                                                      path_type=Path),
              help="A file with the project boundary (polygons or closed CAD polylines); "
                   "without it, the first lots uploaded give the area.")
@click.option("--crs", help="The boundary file's CRS, when it says none.")
@click.pass_context
@_errors
def add_command(ctx, project_id, district, name, level, scale, status, area_file, crs) -> None:
    """Create project ID (lower-case letters, digits and hyphens, e.g. 672-dankia-2000)."""
    from gisportal.services import projects

    home = DataHome(ctx.obj["settings"])
    area = None
    if area_file is not None:
        area = projects.read_area(area_file, district=district, crs=crs,
                                  settings=ctx.obj["settings"])
    project = projects.create(home, project_id=project_id, district=district, name=name,
                              level=level, scale=scale, status=status, area=area,
                              by=cli_actor())
    audit.record(home, cli_actor(), "project.add", district=project.district,
                 detail={"project": project.id, "name": project.name,
                         "level": project.level})
    click.echo(f"project {project.id} ({project.level}) in district {project.district}"
               + ("" if project.boundary is None else
                  f", area {project.boundary.area / 10_000:,.2f} ha"))


@projects_group.command("list")
@click.option("--district")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_errors
def list_command(ctx, district, as_json) -> None:
    """List the projects, by district."""
    from gisportal.services import projects
    from gisportal.store import projects as catalogue

    store = _store(ctx)
    rows = catalogue.list_projects(store.home, district)
    published = store.published_projects()
    if as_json:
        click.echo(json.dumps([{**projects.describe(p), "published": sorted(
            kind for (pid, kind) in published if pid == p.id)} for p in rows],
            ensure_ascii=False, indent=2))
        return
    for p in rows:
        layers = ",".join(sorted(kind for (pid, kind) in published if pid == p.id)) or "-"
        click.echo(f"{p.id:<32} {p.district}  {p.level:<8} {p.scale or '-':<7} "
                   f"{p.status:<9} {layers:<20} {p.name}")


@projects_group.command("show")
@click.argument("project_id", metavar="ID")
@click.pass_context
@_errors
def show_command(ctx, project_id) -> None:
    """A project as JSON, with its layers' versions."""
    from gisportal.services import projects
    from gisportal.store import projects as catalogue

    store = _store(ctx)
    project = catalogue.get(store.home, project_id)
    out = projects.describe(project)
    out["layers"] = {kind: [{"id": v.id, "status": v.status, "features": v.feature_count,
                             "source": v.source_name, "created_at": v.created_at,
                             "has_errors": v.has_errors,
                             "decision": (v.meta.get("decision") or {}).get("number")}
                            for v in versions]
                     for kind, versions in projects.layers_of(store, project.id).items()}
    click.echo(json.dumps(out, ensure_ascii=False, indent=2))


@projects_group.command("set")
@click.argument("project_id", metavar="ID")
@click.option("--name")
@click.option("--level")
@click.option("--scale")
@click.option("--status")
@click.option("--replaced-by", help="The project that replaces this one.")
@click.pass_context
@_errors
def set_command(ctx, project_id, name, level, scale, status, replaced_by) -> None:
    """Change a project's description; residents see it at once."""
    from gisportal.services import projects

    store = _store(ctx)
    changes = {"name": name, "level": level, "scale": scale, "status": status,
               "replaced_by": replaced_by}
    project = projects.update(store, project_id, by=cli_actor(), **changes)
    audit.record(store.home, cli_actor(), "project.change", district=project.district,
                 detail={"project": project.id,
                         **{k: v for k, v in changes.items() if v is not None}})
    click.echo(f"project {project.id}: {project.status}, {project.name}")


@projects_group.command("area")
@click.argument("project_id", metavar="ID")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--crs", help="The file's CRS, when it says none.")
@click.pass_context
@_errors
def area_command(ctx, project_id, file, crs) -> None:
    """Give project ID its area (boundary) from FILE."""
    from gisportal.services import projects
    from gisportal.store import projects as catalogue

    store = _store(ctx)
    project = catalogue.get(store.home, project_id)
    area = projects.read_area(file, district=project.district, crs=crs,
                              settings=ctx.obj["settings"])
    project = projects.set_area(store, project.id, area, by=cli_actor())
    audit.record(store.home, cli_actor(), "project.area", district=project.district,
                 detail={"project": project.id, "source": file.name,
                         "area_m2": round(area.area, 1)})
    click.echo(f"project {project.id}: area {area.area / 10_000:,.2f} ha")


@projects_group.command("document")
@click.argument("project_id", metavar="ID")
@click.argument("pdf", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--kind", type=click.Choice(["report", "regulation", "drawing", "other"]),
              required=True)
@click.option("--title", required=True, help="The title residents read.")
@click.pass_context
@_errors
def document_command(ctx, project_id, pdf, kind, title) -> None:
    """Attach a PDF residents may read (report, regulation, drawing) to project ID."""
    from gisportal.services import projects

    store = _store(ctx)
    project = projects.add_document(store, project_id, pdf, kind=kind, title=title,
                                    pdf_name=pdf.name, by=cli_actor(),
                                    settings=ctx.obj["settings"])
    audit.record(store.home, cli_actor(), "project.document", district=project.district,
                 detail={"project": project.id, "title": title, "kind": kind})
    click.echo(f"project {project.id}: {len(project.documents)} documents")
