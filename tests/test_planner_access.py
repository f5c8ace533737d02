"""Who may use each planner route, on real objects: a finished upload job with its
reports, a draft with errors, a draft plan whose decision PDF is not public yet, a
published plan whose decision is — × {anonymous, planner of another district, planner
of Lâm Hà, admin}.

tests/test_authorisation.py lists every route of the app with the objects its sample
home has; this file asks the same routes about objects that exist, so each right is
seen granted as well as refused. CSRF is off here (tests/test_planner_pages.py checks
it); no case starts a worker or changes what another case sees.
"""

from __future__ import annotations

import re

import pytest

from gisportal import jobs
from gisportal.accounts import users
from gisportal.services.decisions import attach_decision, decision_of
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from tests.conftest import sign_in
from tests.test_decisions import PDF
from tests.test_planner_pages import (
    LAM_HA,
    PW,
    USES_V2,
    build_home,
    client_for,
    finished,
    plan_file,
    stop_workers,
)

WHO = ("anonymous", "other_planner", "own_planner", "admin")
NAMES = {"other_planner": "mai", "own_planner": "lan", "admin": "boss"}
#: A second signed decision, attached to a draft only.
PDF_DRAFT = PDF.replace(b"/Count 0", b"/Count 0 ")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The home, the ids of its objects, and a signed-in client per column."""
    root = tmp_path_factory.mktemp("planner-access")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        from argon2 import PasswordHasher

        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(users, "_hasher", lambda: cheap)
        mp.setenv("GISPORTAL_HOME", str(home))
        ids = build_home(home, decision_on_v1=True)
        app_client = client_for(home)
        with open(plan_file(root, USES_V2, defects=True), "rb") as fh:
            job = jobs.submit_upload(home, fh, "qh_loi.gpkg", district=LAM_HA, layer="plan",
                                     actor="lan")
        job = finished(home, job.id)
        assert job.state == "done" and job.result["summary"]["errors"] == 1
        with open_store(home, crs="EPSG:5899") as store:
            clean = ingest_file(store, plan_file(root, USES_V2, name="qh_sach.gpkg"), "plan",
                                LAM_HA, user="lan").version
            attach_decision(store, clean.id, number="777/QĐ-UBND", date="2023-07-01",
                            authority="UBND tỉnh Lâm Đồng", pdf=PDF_DRAFT)
            published_pdf = decision_of(store.version(ids["plan"])).pdf_sha256
            draft_pdf = decision_of(store.version(clean.id)).pdf_sha256
        app = app_client.application
        app.config["WTF_CSRF_ENABLED"] = False
        clients = {"anonymous": app.test_client()}
        for who, name in NAMES.items():
            clients[who] = app.test_client()
            assert sign_in(clients[who], name, PW).status_code == 303
        ids.update(job=job.id, errors=job.result["version"], clean=clean.id,
                   published_pdf=published_pdf, draft_pdf=draft_pdf)
        yield ids, clients
        stop_workers(home)


PAGE = (302, 403, 200, 200)
API = (401, 403, 200, 200)

#: (method, url with {placeholders} from the world's ids, form data, expected statuses).
CASES = [
    ("GET", "/planner/", None, (302, 200, 200, 200)),
    ("GET", "/planner/676/upload", None, PAGE),
    ("POST", "/planner/676/upload", {"kind": "plan"}, (302, 403, 400, 400)),  # no file
    ("GET", "/planner/676/plan/history", None, PAGE),
    ("GET", "/planner/jobs/{job}", None, PAGE),
    ("POST", "/planner/jobs/{job}/cancel", None, (302, 403, 303, 303)),  # finished: unchanged
    ("GET", "/planner/versions/{errors}", None, PAGE),
    ("GET", "/planner/versions/{clean}", None, PAGE),
    ("GET", "/planner/versions/{errors}/report.json", None, PAGE),
    ("GET", "/planner/versions/{errors}/report.geojson", None, PAGE),
    ("GET", "/planner/versions/{errors}/report.html", None, PAGE),
    ("POST", "/planner/versions/{errors}/publish", None, (302, 403, 409, 409)),  # has errors
    ("POST", "/planner/versions/{clean}/public-fields", None, (302, 403, 303, 303)),
    ("POST", "/planner/versions/{errors}/decision",
     {"number": "1/QĐ-UBND", "date": "2023-01-01", "authority": "UBND tỉnh Lâm Đồng"},
     (302, 403, 409, 409)),  # has errors: can never be approved
    ("POST", "/planner/versions/{plan}/decision",  # the same decision again: PDF kept
     {"number": "99/QĐ-UBND", "date": "2022-03-01", "authority": "UBND tỉnh Lâm Đồng"},
     (302, 403, 303, 303)),
    ("POST", "/planner/versions/{parcels}/repair", None, (302, 403, 409, 409)),  # no upload
    ("POST", "/planner/versions/{plan}/rollback", None, (302, 403, 409, 409)),  # published
    ("GET", "/planner/decisions/{published_pdf}.pdf", None, (200, 200, 200, 200)),
    ("GET", "/planner/decisions/{draft_pdf}.pdf", None, PAGE),
    ("POST", "/api/jobs", {"district": LAM_HA, "kind": "plan"}, (401, 403, 400, 400)),
    ("GET", "/api/jobs?district=676", None, API),
    ("GET", "/api/jobs/{job}", None, API),
    ("POST", "/api/jobs/{job}/cancel", None, API),  # finished: unchanged
    ("GET", "/api/versions/{errors}/findings", None, API),
    ("GET", "/api/versions/{errors}/features", None, API),
    ("GET", "/api/versions/{clean}/features", None, API),
    ("GET", "/api/versions/{clean}/preview", None, API),
    ("POST", "/api/versions/{errors}/publish", None, (401, 403, 409, 409)),  # has errors
    ("POST", "/api/versions/{plan}/publish", None, (401, 403, 409, 409)),  # not a draft
]


def _cases():
    for method, url, data, expected in CASES:
        for i, who in enumerate(WHO):
            yield pytest.param(method, url, data, who, expected[i], id=f"{method} {url} | {who}")


@pytest.mark.parametrize("method,url,data,who,expected", _cases())
def test_planner_route_answers_each_kind_of_user(world, method, url, data, who, expected):
    ids, clients = world
    target = url.format(**ids)
    r = clients[who].open(target, method=method, data=data)
    assert r.status_code == expected, (target, who, r.status_code,
                                       r.get_data(as_text=True)[:300])
    if expected == 302:
        assert r.headers["Location"].startswith("/login?next=")
    if expected in (401, 403) and target.startswith("/api/"):
        assert r.json["error"]["code"] in ("AUTH-REQUIRED", "FORBIDDEN")
    if expected == 200 and target.endswith(".pdf"):
        assert r.mimetype == "application/pdf" and r.data.startswith(b"%PDF-")


def test_every_planner_route_has_a_case(world):
    _, clients = world
    app = clients["admin"].application
    planner = {(m, r.rule) for r in app.url_map.iter_rules()
               if r.endpoint.split(".")[0] in ("planner", "planner_review", "planner_api")
               for m in r.methods - {"HEAD", "OPTIONS"}}
    covered = set()
    for method, url, _, _ in CASES:
        path = url.split("?")[0]
        for m, rule in planner:
            pattern = re.sub(r"<[^>]+>", "[^/]+", re.escape(rule).replace(r"\<", "<")
                             .replace(r"\>", ">"))
            if m == method and re.fullmatch(pattern, path):
                covered.add((m, rule))
    assert planner - covered == set()
