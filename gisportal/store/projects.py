"""The catalogue of planning projects (đồ án quy hoạch xây dựng, đô thị).

A construction or urban zoning plan is a *project*: a town's general plan, a zoning
plan at 1/2000–1/5000 over part of it, a detailed 1/500 plan inside that. What a project
*is* (its name, level, scale, area, status, the documents residents may read) lives in
this table, one row per project, edited in place and audited by the service that edits
it (`gisportal.services.projects`). What a project *draws* (its planned lots and red
lines) are layer versions in the store (`gisportal.store.base.PROJECT_KINDS`), immutable
and published like a district's layers; an adjustment of the plan is a new version of
its lots, compared with the previous one.

The table is its own catalogue component (``projects``, see `gisportal.store.catalogue`):
in the data home's SQLite catalogue by default, in PostgreSQL in production mode
(``gisportal migrate`` creates it there). The project area is kept as WKB in the store's
CRS with its bounds, so listing projects never parses a geometry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shapely
from shapely.geometry.base import BaseGeometry

from gisportal.base.errors import NotFoundError, StoreError
from gisportal.store import catalogue
from gisportal.store.base import check_district_code, check_project, utc_now

if TYPE_CHECKING:
    from gisportal.store import postgres
    from gisportal.store.home import DataHome

__all__ = ["DOCUMENT_KINDS", "LEVELS", "LEVEL_NAMES", "MIGRATIONS", "SQLITE_MIGRATIONS",
           "STATUSES", "STATUS_NAMES", "Project", "add", "connect", "get", "list_projects",
           "update"]

_COMPONENT = "projects"

#: Levels of a construction or urban plan (Luật Quy hoạch đô thị và nông thôn 2024):
#: a general plan (quy hoạch chung), a zoning plan at 1/2000–1/5000 (quy hoạch phân
#: khu), a detailed plan at 1/500 (quy hoạch chi tiết).
LEVELS: tuple[str, ...] = ("general", "zoning", "detailed")
#: Where a project stands: being prepared (đang lập), under appraisal (đang thẩm định),
#: approved (đã phê duyệt), adjusted (đã điều chỉnh: an approved adjustment is in force),
#: replaced (đã thay thế: another project took its place).
STATUSES: tuple[str, ...] = ("preparing", "appraisal", "approved", "adjusted", "replaced")

#: Names of the levels, as the Law on Urban and Rural Planning (2024) writes them.
LEVEL_NAMES: dict[str, dict[str, str]] = {
    "general": {"vi": "Quy hoạch chung", "en": "General plan"},
    "zoning": {"vi": "Quy hoạch phân khu", "en": "Zoning plan"},
    "detailed": {"vi": "Quy hoạch chi tiết", "en": "Detailed plan"},
}
STATUS_NAMES: dict[str, dict[str, str]] = {
    "preparing": {"vi": "Đang lập", "en": "Being prepared"},
    "appraisal": {"vi": "Đang thẩm định", "en": "Under appraisal"},
    "approved": {"vi": "Đã phê duyệt", "en": "Approved"},
    "adjusted": {"vi": "Đã điều chỉnh", "en": "Adjusted"},
    "replaced": {"vi": "Đã được thay thế", "en": "Replaced"},
}
#: Documents residents may read: the explanatory report (thuyết minh), the regulations
#: for management (quy định quản lý theo đồ án), drawings, anything else.
DOCUMENT_KINDS: dict[str, dict[str, str]] = {
    "report": {"vi": "Thuyết minh", "en": "Explanatory report"},
    "regulation": {"vi": "Quy định quản lý", "en": "Regulations for management"},
    "drawing": {"vi": "Bản vẽ", "en": "Drawing"},
    "other": {"vi": "Tài liệu khác", "en": "Other document"},
}

_COLUMNS = ("id, district, name, level, scale, status, boundary, minx, miny, maxx, maxy, "
            "documents, replaced_by, created_at, created_by, updated_at, updated_by")

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"""CREATE TABLE projects (
            id TEXT PRIMARY KEY,
            district TEXT NOT NULL,
            name TEXT NOT NULL,
            level TEXT NOT NULL CHECK (level IN ({", ".join(f"'{v}'" for v in LEVELS)})),
            scale TEXT,
            status TEXT NOT NULL
                CHECK (status IN ({", ".join(f"'{v}'" for v in STATUSES)})),
            boundary BLOB,
            minx REAL, miny REAL, maxx REAL, maxy REAL,
            documents TEXT NOT NULL DEFAULT '[]',
            replaced_by TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL
        )""",
        "CREATE INDEX projects_by_district ON projects (district, id)",
    ),
)
#: The embedded catalogue's migrations.
SQLITE_MIGRATIONS: dict[str, tuple[tuple[str, ...], ...]] = {_COMPONENT: _MIGRATIONS}
#: PostgreSQL: the same table (times as ISO text, JSON as text, as the jobs table keeps
#: them, so rows read back the same from both backends); applied by ``gisportal migrate``.
MIGRATIONS: postgres.Migrations = {
    _COMPONENT: (
        (
            f"""CREATE TABLE projects (
                id text PRIMARY KEY,
                district text NOT NULL,
                name text NOT NULL,
                level text NOT NULL CHECK (level IN ({", ".join(f"'{v}'" for v in LEVELS)})),
                scale text,
                status text NOT NULL
                    CHECK (status IN ({", ".join(f"'{v}'" for v in STATUSES)})),
                boundary bytea,
                minx double precision, miny double precision,
                maxx double precision, maxy double precision,
                documents text NOT NULL DEFAULT '[]',
                replaced_by text,
                created_at text NOT NULL,
                created_by text NOT NULL,
                updated_at text NOT NULL,
                updated_by text NOT NULL
            )""",
            "CREATE INDEX projects_by_district ON projects (district, id)",
        ),
    ),
}


@dataclass(frozen=True)
class Project:
    """One planning project as the catalogue holds it.

    ``documents`` are what residents may read and download: each a mapping with
    ``kind`` (``report``: thuyết minh; ``regulation``: quy định quản lý; ``drawing``:
    bản vẽ; ``other``), ``title``, ``pdf_sha256``, ``pdf_name`` and ``size``; the PDFs
    are kept by content beside the decisions' (`gisportal.services.decisions.store_pdf`).
    ``boundary`` is the project area in the store CRS (None until one is given).
    """

    id: str
    district: str
    name: str
    level: str
    status: str
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str
    scale: str | None = None
    boundary: BaseGeometry | None = None
    bounds: tuple[float, float, float, float] | None = None
    documents: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    replaced_by: str | None = None

    def facts(self) -> dict[str, Any]:
        """What a published layer of the project carries in its meta (``project``) so
        that a look-up answers from the store's snapshot alone, in one statement."""
        return {"id": self.id, "name": self.name, "level": self.level, "scale": self.scale,
                "status": self.status}


def connect(home: DataHome | str | Path) -> AbstractContextManager[catalogue.Connection]:
    """A connection to the projects table (`gisportal.store.catalogue.connect`)."""
    return catalogue.connect(home, SQLITE_MIGRATIONS, MIGRATIONS)


def _row(row: Sequence[Any]) -> Project:
    (pid, district, name, level, scale, status, boundary, minx, miny, maxx, maxy, documents,
     replaced_by, created_at, created_by, updated_at, updated_by) = row
    return Project(
        id=pid, district=district, name=name, level=level, scale=scale, status=status,
        boundary=None if boundary is None else shapely.from_wkb(bytes(boundary)),
        bounds=None if minx is None else (minx, miny, maxx, maxy),
        documents=tuple(json.loads(documents)), replaced_by=replaced_by,
        created_at=created_at, created_by=created_by, updated_at=updated_at,
        updated_by=updated_by)


def _boundary_values(boundary: BaseGeometry | None) -> tuple[Any, ...]:
    if boundary is None or shapely.is_empty(boundary):
        return (None, None, None, None, None)
    return (shapely.to_wkb(boundary), *(float(v) for v in shapely.bounds(boundary)))


def add(home: DataHome | str | Path, project: Project) -> Project:
    """Insert a new project (`StoreError` ``PROJECT-EXISTS`` if its id is taken)."""
    check_project(project.id)
    check_district_code(project.district)
    with connect(home) as conn, catalogue.transaction(conn):
        row = conn.execute(
            f"INSERT INTO projects ({_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            (project.id, project.district, project.name, project.level, project.scale,
             project.status, *_boundary_values(project.boundary),
             json.dumps(list(project.documents), ensure_ascii=False),
             project.replaced_by, project.created_at, project.created_by,
             project.updated_at, project.updated_by)).fetchone()
    if row is None:
        raise StoreError(f"there is already a project {project.id!r}", where="project id",
                         fix="Choose another id, or change the existing project "
                             "(gisportal projects set)", code="PROJECT-EXISTS")
    return get(home, project.id)


def get(home: DataHome | str | Path, project_id: str) -> Project:
    """The project with this id (`NotFoundError` ``PROJECT-UNKNOWN`` if none)."""
    pid = check_project(project_id)
    with connect(home) as conn:
        row = conn.execute(f"SELECT {_COLUMNS} FROM projects WHERE id = ?", (pid,)).fetchone()
    if row is None:
        raise NotFoundError(f"there is no planning project {pid!r}", where="project",
                            fix="List the projects (gisportal projects list) and use one "
                                "of their ids", code="PROJECT-UNKNOWN")
    return _row(row)


def list_projects(home: DataHome | str | Path, district: str | None = None) -> list[Project]:
    """Every project, or a district's, by district then id."""
    with connect(home) as conn:
        if district is None:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM projects ORDER BY district, id")
        else:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM projects WHERE district = ? "
                                "ORDER BY id", (check_district_code(district),))
        return [_row(r) for r in rows]


@contextmanager
def _locked(home: DataHome | str | Path, project_id: str) -> Iterator[
        tuple[catalogue.Connection, Project]]:
    """The project read inside a write transaction that will change it."""
    pid = check_project(project_id)
    with connect(home) as conn, catalogue.transaction(conn):
        catalogue.lock(conn, f"project/{pid}")
        row = conn.execute(f"SELECT {_COLUMNS} FROM projects WHERE id = ?", (pid,)).fetchone()
        if row is None:
            raise NotFoundError(f"there is no planning project {pid!r}", where="project",
                                fix="List the projects (gisportal projects list)",
                                code="PROJECT-UNKNOWN")
        yield conn, _row(row)


def update(home: DataHome | str | Path, project_id: str, *, by: str,
           **changes: Any) -> Project:
    """Change some of a project's fields (those of `Project` but its id and creation),
    recording who and when; the new project."""
    allowed = {"district", "name", "level", "scale", "status", "boundary", "documents",
               "replaced_by"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not a field a project update can change: {sorted(unknown)}")
    with _locked(home, project_id) as (conn, old):
        new = replace(old, **changes, updated_at=utc_now(), updated_by=by)
        check_district_code(new.district)
        conn.execute(
            "UPDATE projects SET district = ?, name = ?, level = ?, scale = ?, status = ?, "
            "boundary = ?, minx = ?, miny = ?, maxx = ?, maxy = ?, documents = ?, "
            "replaced_by = ?, updated_at = ?, updated_by = ? WHERE id = ?",
            (new.district, new.name, new.level, new.scale, new.status,
             *_boundary_values(new.boundary),
             json.dumps(list(new.documents), ensure_ascii=False), new.replaced_by,
             new.updated_at, new.updated_by, new.id))
    return get(home, project_id)
