"""The authorisation matrix: every route of the app × who asks → the status expected.

Every rule of ``app.url_map`` (each method apart) must have a row in ``ROUTES``, and
every row must still be a route: a new route without a row fails
``test_every_route_has_a_row`` until its author says who may use it.

Adding a route is one line::

    "GET /planner/<district>/uploads": DISTRICT,     # planner of that district, admin
    "POST /planner/<district>/uploads": DISTRICT,
    "GET /admin/things": ADMIN,                       # admins only
    "GET /api/things": PUBLIC,                        # everyone, residents included
    "GET /api/odd": Row((401, 403, 200, 200), url="/api/odd?district=678"),

The four columns are: anonymous, a planner of another district (672), a planner of
the sample district (678), an admin. ``DISTRICT``/``ADMIN`` expect for anonymous a
redirect to /login (302) on pages and 401 under ``/api/``; 403 for a signed-in user
without the right. URL arguments come from ``SAMPLE`` (``<district>`` → 678, …) unless
the row gives its ``url``; POST rows send ``data``. CSRF is off here (it is tested in
test_auth_web.py), so a POST row tests the right, not the token. Data in the sample
home: the parcels of 678 published, accounts boss (admin), lan (678), mai (672) and
a spare account the admin rows change.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from argon2 import PasswordHasher

from gisportal.accounts import users
from gisportal.base.crs import to_lonlat
from gisportal.services.ingest import ingest_file
from gisportal.store.home import DataHome
from gisportal.web.app import create_app
from tests.conftest import DUC_TRONG_XY, parcel_grid, sign_in, write_shapefile_zip

PW = "mật khẩu đủ dài"
WHO = ("anonymous", "other_planner", "own_planner", "admin")


@dataclass(frozen=True)
class Row:
    """Expected statuses for (anonymous, other-district planner, own planner, admin)."""

    expect: tuple[int, int, int, int]
    url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    #: Why the route does not answer as it should yet, and for which columns: those
    #: cases are strict xfails, so they turn into failures the day the route is fixed
    #: (then delete the ``.until(...)``).
    pending: str = ""
    pending_for: tuple[str, ...] = ()

    def at(self, url: str | None = None, **data: Any) -> Row:
        return Row(self.expect, url or self.url, {**self.data, **data}, self.pending,
                   self.pending_for)

    def until(self, reason: str, *who: str) -> Row:
        return Row(self.expect, self.url, self.data, reason, who)


def public(status: int = 200) -> Row:
    return Row((status,) * 4)


PUBLIC = public(200)
#: A planner of the route's district, and admins. Pages send anonymous to /login.
DISTRICT = Row((302, 403, 200, 200))
DISTRICT_API = Row((401, 403, 200, 200))
#: Admins only.
ADMIN = Row((302, 403, 403, 200))
ADMIN_API = Row((401, 403, 403, 200))
#: Any signed-in user.
SIGNED_IN_API = Row((401, 200, 200, 200))

#: What fills each URL argument (a route whose argument is not here needs a ``url``).
SAMPLE = {"district": "678", "code": "678", "kind": "parcels", "sheet": "1", "parcel": "1",
          "z": "0", "x": "0", "y": "0", "filename": "css/portal.css",
          "collection_id": "678-parcels", "feature_id": "1", "rest": "nothing-here",
          "user_id": "{spare}"}
#: The z14 tile over the sample parcels (parcel_grid starts at DUC_TRONG_XY).
_LON, _LAT = to_lonlat(DUC_TRONG_XY[0] + 5, DUC_TRONG_XY[1] + 5)
_TX = int((_LON + 180) / 360 * 2**14)
_TY = int((1 - math.asinh(math.tan(math.radians(_LAT))) / math.pi) / 2 * 2**14)
TILE = f"14/{_TX}/{_TY}"
NEW_PW = {"password": "mật khẩu mới của tôi", "password2": "mật khẩu mới của tôi"}
#: A planning project of 678 with nothing published.
PROJECT = "678-ma-tran"

ROUTES: dict[str, Row] = {
    # Residents: pages, look-ups, tiles, static files, OGC API.
    "GET /": PUBLIC,
    "GET /districts/<code>": PUBLIC,
    "GET /parcels/<district>/<sheet>/<parcel>": PUBLIC,
    "GET /parcels/<district>/<sheet>/<parcel>.pdf": PUBLIC,
    "GET /api/lookup": PUBLIC.at("/api/lookup?district=678&sheet=1&parcel=1"),
    "GET /api/search": PUBLIC.at("/api/search?q=duc+trong"),
    "GET /api/units": PUBLIC.at("/api/units"),
    "GET /healthz": PUBLIC,
    "GET /tiles/<district>/<kind>/<int(signed=True):z>/<int(signed=True):x>/"
    "<int(signed=True):y>.pbf": PUBLIC.at(f"/tiles/678/parcels/{TILE}.pbf"),
    "GET /static/<path:filename>": PUBLIC,
    "GET /ogc": PUBLIC,
    "GET /ogc/api": PUBLIC,
    "GET /ogc/conformance": PUBLIC,
    "GET /ogc/collections": PUBLIC,
    "GET /ogc/collections/<collection_id>": PUBLIC,
    "GET /ogc/collections/<collection_id>/items": PUBLIC,
    "GET /ogc/collections/<collection_id>/items/<feature_id>": PUBLIC,
    "GET /ogc/collections/<collection_id>/styles/default.<any(sld, qml):fmt>": PUBLIC.at(
        "/ogc/collections/678-parcels/styles/default.sld"),
    "GET /ogc/<path:rest>": public(404),
    "GET /api/openapi.json": PUBLIC,
    # Version comparison of published versions is public; drafts stay hidden (compare.py).
    "GET /districts/<code>/<kind>/compare": PUBLIC,
    "GET /api/compare": public(404).at("/api/compare?district=678&kind=parcels"),
    "GET /api/compare/summary": public(404).at("/api/compare/summary?district=678&kind=parcels"),
    "GET /projects/<project_id>/compare": public(404).at("/projects/678-khong-co/compare"),
    # Planning projects (web/projects.py): public, published only; "678-ma-tran" has
    # nothing published, so its layer, its decision and any document are 404s.
    "GET /projects": PUBLIC,
    "GET /projects/<project_id>": PUBLIC.at(f"/projects/{PROJECT}"),
    "GET /api/projects": PUBLIC,
    "GET /api/projects/<project_id>": PUBLIC.at(f"/api/projects/{PROJECT}"),
    "GET /api/projects/<project_id>/<kind>.geojson": public(404).at(
        f"/api/projects/{PROJECT}/zoning_lots.geojson"),
    "GET /projects/<project_id>/decisions/<sha256>.pdf": public(404).at(
        f"/projects/{PROJECT}/decisions/{'0' * 64}.pdf"),
    "GET /projects/<project_id>/documents/<sha256>.pdf": public(404).at(
        f"/projects/{PROJECT}/documents/{'0' * 64}.pdf"),
    # The tiles for GIS clients.
    "GET /tiles/<district>/<kind>.json": PUBLIC.at("/tiles/678/parcels.json"),
    "GET /tiles/<district>/style.json": PUBLIC.at("/tiles/678/style.json"),
    # Sign-in.
    "GET /login": Row((200, 302, 302, 302)),  # signed in: on to the landing page
    "POST /login": public(401).at(username="nobody", password="wrong password"),
    "POST /logout": public(303),
    "GET /api/me": SIGNED_IN_API,
    # Administration.
    "GET /admin/users": ADMIN,
    "POST /admin/users": Row((302, 403, 403, 303), data={
        "username": "matrix.new", "role": "planner", "district": "678", **NEW_PW}),
    "POST /admin/users/<int:user_id>/disable": Row((302, 403, 403, 303)),
    "POST /admin/users/<int:user_id>/enable": Row((302, 403, 403, 303)),
    "POST /admin/users/<int:user_id>/password": Row((302, 403, 403, 303), data=NEW_PW),
    "GET /admin/audit": ADMIN,
    "GET /admin/audit.csv": ADMIN,
    # The ministry package holds whole layers: the "export" right of the district.
    "GET /admin/export/<district>.zip": DISTRICT,
    # A project's package: the export right of its district; nothing published → 404.
    "GET /admin/export/projects/<project>.zip": Row((302, 403, 404, 404),
                                                    url=f"/admin/export/projects/{PROJECT}.zip"),
    # The export page lists the districts each staff member may export (any planner).
    "GET /admin/export": Row((302, 200, 200, 200)),
    # Planner workflow (web/planner*.py). Version 1 is the published parcels of 678, stored
    # by ingest_file (no upload job, no report); there is no job 999. The same routes
    # with real jobs, drafts and decisions: tests/test_planner_access.py.
    "GET /planner/": Row((302, 200, 200, 200)),
    "GET /planner/<district>/upload": DISTRICT,
    "POST /planner/<district>/upload": Row((302, 403, 400, 400), data={"kind": "parcels"}),
    "GET /planner/<district>/<kind>/history": DISTRICT,
    "GET /planner/jobs/<int:job_id>": Row((302, 404, 404, 404), url="/planner/jobs/999"),
    "POST /planner/jobs/<int:job_id>/cancel": Row((302, 404, 404, 404),
                                                 url="/planner/jobs/999/cancel"),
    "GET /planner/versions/<int:version_id>": DISTRICT.at("/planner/versions/1"),
    "GET /planner/versions/<int:version_id>/report.<any(json, geojson, html):fmt>":
        Row((302, 403, 404, 404), url="/planner/versions/1/report.json"),
    "POST /planner/versions/<int:version_id>/repair": Row((302, 403, 409, 409),
                                                         url="/planner/versions/1/repair"),
    "POST /planner/versions/<int:version_id>/decision": Row(
        (302, 403, 409, 409), url="/planner/versions/1/decision",
        data={"number": "1/QĐ-UBND", "date": "2023-01-01", "authority": "UBND tỉnh"}),
    "POST /planner/versions/<int:version_id>/public-fields": Row(
        (302, 403, 303, 303), url="/planner/versions/1/public-fields"),
    "POST /planner/versions/<int:version_id>/publish": Row((302, 403, 409, 409),
                                                          url="/planner/versions/1/publish"),
    "POST /planner/versions/<int:version_id>/rollback": Row((302, 403, 409, 409),
                                                           url="/planner/versions/1/rollback"),
    "GET /planner/decisions/<sha256>.pdf": public(404).at(f"/planner/decisions/{'0' * 64}.pdf"),
    # Planning projects for planners (web/planner_projects.py): the project's district.
    "GET /planner/projects/": Row((302, 200, 200, 200)),
    "POST /planner/projects/": Row((302, 403, 400, 400), data={
        "district": "678", "id": "Không hợp lệ", "name": "QH", "level": "zoning"}),
    "GET /planner/projects/<project_id>": DISTRICT.at(f"/planner/projects/{PROJECT}"),
    "POST /planner/projects/<project_id>": Row((302, 403, 303, 303),
                                               url=f"/planner/projects/{PROJECT}",
                                               data={"status": "appraisal"}),
    "POST /planner/projects/<project_id>/documents": Row(
        (302, 403, 400, 400), url=f"/planner/projects/{PROJECT}/documents",
        data={"title": "Thuyết minh", "kind": "report"}),
    "GET /planner/projects/<project_id>/upload": DISTRICT.at(
        f"/planner/projects/{PROJECT}/upload"),
    "POST /planner/projects/<project_id>/upload": Row(
        (302, 403, 400, 400), url=f"/planner/projects/{PROJECT}/upload",
        data={"kind": "zoning_lots"}),
    "GET /planner/projects/<project_id>/<kind>/history": DISTRICT.at(
        f"/planner/projects/{PROJECT}/zoning_lots/history"),
    "POST /api/jobs": Row((401, 403, 400, 400), data={"district": "678", "kind": "parcels"}),
    "GET /api/jobs": DISTRICT_API.at("/api/jobs?district=678"),
    "GET /api/jobs/<int:job_id>": Row((401, 404, 404, 404), url="/api/jobs/999"),
    "POST /api/jobs/<int:job_id>/cancel": Row((401, 404, 404, 404), url="/api/jobs/999/cancel"),
    "GET /api/versions/<int:version_id>/findings": Row((401, 403, 404, 404),
                                                      url="/api/versions/1/findings"),
    "GET /api/versions/<int:version_id>/features": DISTRICT_API.at("/api/versions/1/features"),
    "GET /api/versions/<int:version_id>/preview": DISTRICT_API.at("/api/versions/1/preview"),
    "POST /api/versions/<int:version_id>/publish": Row((401, 403, 409, 409),
                                                      url="/api/versions/1/publish"),
}


def _key(rule) -> list[str]:
    return [f"{m} {rule.rule}" for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """One data home and app for the whole matrix, with a client per column."""
    home = tmp_path_factory.mktemp("matrix") / "home"
    with pytest.MonkeyPatch.context() as mp:
        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(users, "_hasher", lambda: cheap)
        from gisportal.store import open_store

        store = open_store(home, crs="EPSG:5899")
        try:
            zipped = write_shapefile_zip(parcel_grid(), home.parent / "thua.zip")
            assert ingest_file(store, zipped, "parcels", "678", publish=True).published
        finally:
            store.close()
        from gisportal.services import projects

        projects.create(DataHome.at(home), project_id=PROJECT, district="678",
                        name="Quy hoạch ma trận quyền", level="zoning", by="test")
        users.add_user(home, "boss", "admin", PW)
        users.add_user(home, "lan", "planner", PW, districts=["678"])
        users.add_user(home, "mai", "planner", PW, districts=["672"])
        spare = users.add_user(home, "spare", "planner", PW, districts=["678"])
        app = create_app({"home": str(home)})
        app.config["WTF_CSRF_ENABLED"] = False
        clients = {"anonymous": app.test_client()}
        for who, name in (("other_planner", "mai"), ("own_planner", "lan"), ("admin", "boss")):
            clients[who] = app.test_client()
            assert sign_in(clients[who], name, PW).status_code == 303
        yield app, clients, {"spare": str(spare.id)}


def test_every_route_has_a_row(matrix):
    app, _, _ = matrix
    routes = {k for rule in app.url_map.iter_rules() for k in _key(rule)}
    missing = sorted(routes - ROUTES.keys())
    stale = sorted(ROUTES.keys() - routes)
    assert not missing, ("routes without a row in tests/test_authorisation.py ROUTES "
                         f"(add one line each, see the top of the file): {missing}")
    assert not stale, f"rows for routes that no longer exist: {stale}"


def _url(key: str, row: Row, ids: dict[str, str]) -> str:
    if row.url:
        return row.url
    path = key.split(" ", 1)[1]

    def fill(m: re.Match) -> str:
        name = m.group(1).split(":")[-1]
        assert name in SAMPLE, f"no SAMPLE value for <{name}> in {key}: give the row a url"
        return SAMPLE[name].format(**ids)

    return re.sub(r"<([^>]+)>", fill, path)


def _cases():
    for key, row in ROUTES.items():
        for i, who in enumerate(WHO):
            marks = [pytest.mark.xfail(strict=True, reason=row.pending)] \
                if who in row.pending_for else []
            yield pytest.param(key, who, row.expect[i], id=f"{key} | {who}", marks=marks)


@pytest.mark.parametrize("key,who,expected", _cases())
def test_route_answers_each_kind_of_user(matrix, key, who, expected):
    app, clients, ids = matrix
    row = ROUTES[key]
    method = key.split(" ", 1)[0]
    url = _url(key, row, ids)
    c = clients[who]
    r = c.open(url, method=method, data=row.data or None)
    if key == "POST /logout" and who != "anonymous":  # sign the column in again
        name = {"other_planner": "mai", "own_planner": "lan", "admin": "boss"}[who]
        assert sign_in(c, name, PW).status_code == 303
    assert r.status_code == expected, (
        f"{method} {url} as {who}: {r.status_code}, expected {expected}: "
        f"{r.get_data(as_text=True)[:300]}")
    if expected == 302 and who == "anonymous":
        assert r.headers["Location"].startswith("/login?next=")
    if expected in (401, 403) and url.startswith("/api/"):
        assert r.json["error"]["code"] in ("AUTH-REQUIRED", "FORBIDDEN")
