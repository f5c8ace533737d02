"""The planner's workflow through the web pages, with real worker processes.

A planner of Lâm Hà (676) signs in, uploads the new plan with a gap and a small
overlap, reads the report (summary, findings, map data, downloads), repairs it, enters
the approval decision with its PDF, publishes, sees the district turn "approved" on
the province map and the look-up change, and rolls back — every step through Flask's
test client on a real data home. The builders here are shared by the other planner
test files.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from pyproj import Transformer

from gisportal import jobs
from gisportal.accounts import audit, users
from gisportal.base import seeds
from gisportal.base.crs import to_lonlat
from gisportal.jobs import process
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from gisportal.web.app import create_app
from tests.conftest import csrf_token_of, parcel_grid, sign_in, write_shapefile_zip
from tests.test_decisions import PDF

PW = "mật khẩu đủ dài"
LAM_HA = "676"
#: The anchor of Lâm Hà in EPSG:5899: the plan's zones and the parcels start here.
XY = Transformer.from_crs(4326, 5899, always_xy=True).transform(
    *seeds.district(LAM_HA).anchor_lonlat)
ZONE = 200.0
#: Planned uses of the 3 × 3 zones, row by row from the south-west.
USES_V1 = ["LUC", "CLN", "ONT", "HNK", "DGT", "SKC", "CLN", "ONT", "LUC"]
USES_V2 = ["ONT", "CLN", "ONT", "HNK", "DGT", "SKC", "CLN", "ONT", "LUC"]
TIMEOUT = 120.0


# --------------------------------------------------------------------------- builders


def plan_frame(uses: list[str], *, defects: bool = False) -> gpd.GeoDataFrame:
    """Nine 200 m plan zones. With `defects`, the middle zone is shifted: a 4 cm gap on
    its west side (8 m², a TOPO-GAP error) and a 2 cm overlap on its east side (4 m²,
    a minor overlap) — both within what repair fixes."""
    geoms, ids = [], []
    for r in range(3):
        for c in range(3):
            x0, y0 = XY[0] + c * ZONE, XY[1] + r * ZONE
            x1, y1 = x0 + ZONE, y0 + ZONE
            if defects and (r, c) == (1, 1):
                x0, x1 = x0 + 0.04, x1 + 0.02
            geoms.append(shapely.box(x0, y0, x1, y1))
            ids.append(f"K{r}{c}")
    return gpd.GeoDataFrame({"MaVung": ids, "KH_MDSD": uses}, geometry=geoms, crs="EPSG:5899")


def plan_file(folder: Path, uses: list[str], *, defects: bool = False,
              name: str = "quy_hoach.gpkg") -> Path:
    path = folder / name
    plan_frame(uses, defects=defects).to_file(path, driver="GPKG")
    return path


def parcels_zip(folder: Path) -> Path:
    """The 4 × 5 parcel grid in the south-west zone of the plan (sheet 1, parcels 1…10)."""
    return write_shapefile_zip(parcel_grid(origin=(XY[0] + 10, XY[1] + 10)),
                               folder / "thua_lam_ha.zip")


def build_home(home: Path, *, decision_on_v1: bool = False) -> dict[str, int]:
    """Accounts (boss admin, lan planner of 676, mai planner of 672), the published
    parcels of 676 and its published plan v1 (without a decision unless asked)."""
    home.mkdir(parents=True, exist_ok=True)
    work = home.parent / "files"
    work.mkdir(exist_ok=True)
    users.add_user(home, "boss", "admin", PW)
    users.add_user(home, "lan", "planner", PW, districts=[LAM_HA])
    users.add_user(home, "mai", "planner", PW, districts=["672"])
    with open_store(home, crs="EPSG:5899") as store:
        parcels = ingest_file(store, parcels_zip(work), "parcels", LAM_HA, publish=True,
                              user="seed").version
        plan = ingest_file(store, plan_file(work, USES_V1), "plan", LAM_HA, publish=True,
                           consultation=True, user="seed").version
        if decision_on_v1:
            from gisportal.services.decisions import attach_decision

            attach_decision(store, plan.id, number="99/QĐ-UBND", date="2022-03-01",
                            authority="UBND tỉnh Lâm Đồng", pdf=PDF)
    return {"parcels": parcels.id, "plan": plan.id}


@pytest.fixture(scope="module")
def base_home(tmp_path_factory):
    """One seeded home per module; tests copy it (seeding costs seconds, copying ms)."""
    root = tmp_path_factory.mktemp("planner-base")
    with pytest.MonkeyPatch.context() as mp:
        from argon2 import PasswordHasher

        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(users, "_hasher", lambda: cheap)
        ids = build_home(root / "home")
    return root / "home", ids


@pytest.fixture
def lam_ha(base_home, tmp_path, fast_passwords, monkeypatch):
    """A fresh copy of the seeded home, as ``$GISPORTAL_HOME``; its ids."""
    src, ids = base_home
    home = tmp_path / "home"
    shutil.copytree(src, home)
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    yield home, ids
    stop_workers(home)


def stop_workers(home: Path) -> None:
    """Kill any worker a failed test left waiting (the pause hook waits for ever)."""
    import signal

    if (home / "catalogue.sqlite").exists():
        for job in jobs.list_jobs(home, state="running"):
            if job.pid and process.is_alive(home, job.id):
                process.signal_group(job.pid, signal.SIGKILL)


def client_for(home: Path, name: str | None = None, **settings):
    app = create_app({"home": str(home), **settings})
    client = app.test_client()
    if name:
        assert sign_in(client, name, PW).status_code == 303
    return client


def token_of(client, url: str) -> str:
    return csrf_token_of(client.get(url).get_data(as_text=True))


def job_id_of(response) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    found = re.fullmatch(r"/planner/jobs/(\d+)", response.headers["Location"])
    assert found, response.headers["Location"]
    return int(found.group(1))


def finished(home: Path, job_id: int) -> jobs.Job:
    job = jobs.wait(home, job_id, timeout=TIMEOUT, poll=0.05)
    assert job.finished, job.to_dict()
    return job


def upload(client, path: Path, kind: str = "plan", district: str = LAM_HA, **fields):
    token = token_of(client, f"/planner/{district}/upload")
    with open(path, "rb") as fh:
        return client.post(f"/planner/{district}/upload", data={
            "csrf_token": token, "kind": kind, "file": (fh, path.name), **fields},
            content_type="multipart/form-data")


def post(client, url: str, page: str, **data):
    """A form post with the CSRF token of `page` (the page the form is on)."""
    return client.post(url, data={"csrf_token": token_of(client, page), **data},
                       content_type="multipart/form-data")


def text_of(response) -> str:
    return response.get_data(as_text=True)


def lookup_planned(client, lon: float, lat: float) -> list[str]:
    answer = client.get(f"/api/lookup?lat={lat}&lon={lon}").json
    return [p["code"] for p in answer["planned"]]


def province_status(client, code: str) -> str:
    """The status label the province page gives a district."""
    page = text_of(client.get("/"))
    found = re.search(rf'href="/districts/{code}">[^<]+</a> <small class="alt">([^<]+)</small>',
                      page)
    assert found, f"district {code} is not listed on /"
    return found.group(1)


# --------------------------------------------------------------------------- the workflow


def test_upload_review_repair_decide_publish_and_roll_back(lam_ha, tmp_path):
    home, ids = lam_ha
    v1 = ids["plan"]
    c = client_for(home, "lan")
    public = client_for(home)
    lon, lat = (float(v) for v in to_lonlat(XY[0] + 25, XY[1] + 25))  # parcel 1 of sheet 1
    assert lookup_planned(public, lon, lat) == ["LUC"]

    # The dashboard: Lâm Hà only, its plan published as v1 without a decision.
    page = text_of(c.get("/planner/"))
    assert 'id="gp-district-676"' in page and 'id="gp-district-672"' not in page
    assert f'<a href="/planner/versions/{v1}">Phiên bản {v1}</a>' in page
    assert 'href="/planner/676/upload?kind=plan"' in page
    assert '<b class="gp-pl-district-status">Đã số hóa địa chính</b>' in page
    # Without a decision the plan is under appraisal, so the province map says so (one
    # plan vocabulary for residents), not "approved" as the 2023 table had it, and not
    # the cadastre's progress, which the staff's dashboard shows.
    assert province_status(public, LAM_HA) == "Đang thẩm định, chưa phê duyệt"

    # Upload the new plan with a gap and an overlap: a job, then a draft with 1 error.
    r = upload(c, plan_file(tmp_path, USES_V2, defects=True, name="QH Lâm Hà 2030.gpkg"))
    job = finished(home, job_id_of(r))
    assert job.state == "done", job.error
    v2 = job.result["version"]
    assert job.result["summary"]["errors"] == 1 and job.params["upload_name"] == \
        "QH Lâm Hà 2030.gpkg"
    polled = c.get(f"/api/jobs/{job.id}").json["job"]
    assert (polled["state"], polled["percent"], polled["result"]["version"]) == ("done", 100, v2)
    assert polled["labels"]["state"] == ["Hoàn tất", "Done"]
    assert polled["links"]["review"] == f"/planner/versions/{v2}"
    page = text_of(c.get(f"/planner/jobs/{job.id}"))
    assert f'href="/planner/versions/{v2}" id="gp-job-review"' in page
    assert "gp-job-config" not in page  # finished: nothing left to poll

    # The review page: the summary, the reason it cannot be published, repair offered.
    page = text_of(c.get(f"/planner/versions/{v2}"))
    assert 'data-rule="TOPO-GAP"' in page and 'data-rule="TOPO-OVERLAP-MINOR"' in page
    assert "Chưa công bố được: phiên bản có 1 lỗi" in page
    assert 'id="gp-repair-button"' in page and 'id="gp-decision-form"' not in page
    assert f'href="/planner/versions/{v2}/report.json"' in page

    # Findings: paged, filtered, located; the map's data layer.
    found = c.get(f"/api/versions/{v2}/findings").json
    rules = [f["properties"]["rule"] for f in found["findings"]["features"]]
    assert found["total"] == len(rules) == 4 and rules[0] == "TOPO-GAP"
    gap = found["findings"]["features"][0]
    assert gap["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert gap["properties"]["severity"] == "error" and "8" in gap["properties"]["message"]
    only = c.get(f"/api/versions/{v2}/findings?severity=error").json
    assert only["total"] == 1 and only["findings"]["features"][0]["id"] == 0
    minor = c.get(f"/api/versions/{v2}/findings?rule=TOPO-OVERLAP-MINOR").json
    assert [f["properties"]["rule"] for f in minor["findings"]["features"]] == \
        ["TOPO-OVERLAP-MINOR"]
    second = c.get(f"/api/versions/{v2}/findings?limit=1&offset=1").json
    assert (second["returned"], second["complete"],
            second["findings"]["features"][0]["id"]) == (1, False, 1)
    data = c.get(f"/api/versions/{v2}/features").json
    assert len(data["features"]) == 9 and data["page"]["complete"] is True
    assert sorted(f["properties"]["zone_id"] for f in data["features"])[0] == "K00"
    assert {f["properties"]["land_use"] for f in data["features"]} == set(USES_V2)
    x, y = data["features"][0]["geometry"]["coordinates"][0][0]
    assert abs(x - lon) < 0.01 and abs(y - lat) < 0.01  # WGS 84, at Lâm Hà
    # Downloads: the three reports of the upload.
    report = json.loads(c.get(f"/planner/versions/{v2}/report.json").data)
    assert report["summary"]["errors"] == 1 and len(report["findings"]) == 4
    r = c.get(f"/planner/versions/{v2}/report.geojson")
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert len(json.loads(r.data)["features"]) == 4
    assert b"<html" in c.get(f"/planner/versions/{v2}/report.html").data.lower()

    # Publishing it is refused, with the reason, and nothing is queued.
    before = len(jobs.list_jobs(home))
    r = post(c, f"/planner/versions/{v2}/publish", f"/planner/versions/{v2}")
    assert r.status_code == 409 and "STORE-HAS-ERRORS" not in text_of(r)
    assert f"version {v2} has 1 validation errors" in text_of(r)
    assert len(jobs.list_jobs(home)) == before

    # Repair: a new draft, its list of changes with the areas before and after.
    job = finished(home, job_id_of(post(c, f"/planner/versions/{v2}/repair",
                                        f"/planner/versions/{v2}")))
    assert job.state == "done" and job.kind == "repair", job.error
    v3 = job.result["version"]
    page = text_of(c.get(f"/planner/versions/{v3}"))
    assert '<tr data-row="3" data-action="REPAIR-GAP-FILLED">' in page
    assert '<td><code>REPAIR-GAP-FILLED</code></td><td class="num">40.000,00</td>' \
        '<td class="num">40.008,00</td><td class="num">+8,00</td>' in page
    assert '<td><code>REPAIR-OVERLAP-TRIMMED</code></td><td class="num">40.000,00</td>' \
        '<td class="num">39.996,00</td><td class="num">−4,00</td>' in page
    assert 'id="gp-repair-button"' not in page  # repairing a repair would change nothing
    assert "Chưa công bố được: quy hoạch cần quyết định phê duyệt" in page
    assert f"Bản sửa lỗi của công việc {polled['id']}" in page

    # The decision: a photo instead of the PDF is refused and said so; then the PDF.
    fields = {"number": "1234/QĐ-UBND", "date": "30/06/2023",
              "authority": "UBND tỉnh Lâm Đồng"}
    r = post(c, f"/planner/versions/{v3}/decision", f"/planner/versions/{v3}", **fields,
             pdf=(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 64), "scan.png"))
    assert r.status_code == 400 and "the file is a PNG image, not a PDF" in text_of(r)
    assert 'value="1234/QĐ-UBND"' in text_of(r)  # the form keeps what was typed
    r = post(c, f"/planner/versions/{v3}/decision", f"/planner/versions/{v3}", **fields,
             pdf=(io.BytesIO(PDF), "QĐ 1234.pdf"))
    assert r.status_code == 303 and r.headers["Location"] == f"/planner/versions/{v3}"
    page = text_of(c.get(f"/planner/versions/{v3}"))
    assert "Đã lưu quyết định 1234/QĐ-UBND ngày 30/06/2023 của UBND tỉnh Lâm Đồng." in page
    sha = re.search(r'href="/planner/decisions/([0-9a-f]{64})\.pdf"', page).group(1)
    assert c.get(f"/planner/decisions/{sha}.pdf").data == PDF
    assert public.get(f"/planner/decisions/{sha}.pdf").status_code == 302  # a draft's: staff

    # Publish: a job; then the district is approved, the look-up answers the new plan.
    job = finished(home, job_id_of(post(c, f"/planner/versions/{v3}/publish",
                                        f"/planner/versions/{v3}")))
    assert job.state == "done" and job.result["previous"] == v1, job.error
    page = text_of(c.get(f"/planner/jobs/{job.id}"))
    assert f"Đã công bố phiên bản {v3}" in page and "1234/QĐ-UBND" in page
    assert lookup_planned(public, lon, lat) == ["ONT"]
    plan = public.get("/api/lookup?district=676&sheet=1&parcel=1").json["plan"]
    assert plan["decision"].startswith("1234/QĐ-UBND")
    assert plan["decision_pdf"] == f"/planner/decisions/{sha}.pdf"  # for residents too
    sheet = text_of(public.get("/parcels/676/1/1"))
    assert 'id="gp-decision-pdf"' in sheet and f"/planner/decisions/{sha}.pdf" in sheet
    assert province_status(public, LAM_HA) == "Đã phê duyệt (có quyết định)"
    assert '<b class="gp-pl-district-status">Đã phê duyệt</b>' in text_of(c.get("/planner/"))
    r = public.get(f"/planner/decisions/{sha}.pdf")
    assert r.status_code == 200 and r.data == PDF and r.mimetype == "application/pdf"

    # History: every version; rolling back to v1 needs v1's decision first.
    page = text_of(c.get("/planner/676/plan/history"))
    statuses = re.findall(r'<tr data-version="(\d+)" data-status="(\w+)">', page)
    assert statuses == [(str(v3), "published"), (str(v2), "draft"), (str(v1), "superseded")]
    assert f'action="/planner/versions/{v1}/rollback"' in page
    assert f'action="/planner/versions/{v2}/rollback"' not in page
    r = post(c, f"/planner/versions/{v1}/rollback", "/planner/676/plan/history")
    assert r.status_code == 409 and f"plan version {v1} has no approval decision" in text_of(r)
    r = post(c, f"/planner/versions/{v1}/decision", f"/planner/versions/{v1}",
             number="88/QĐ-UBND", date="2022-01-10", authority="UBND tỉnh Lâm Đồng",
             pdf=(io.BytesIO(PDF.replace(b"Catalog", b"Catalog ")), "qd88.pdf"))
    assert r.status_code == 303
    job = finished(home, job_id_of(post(c, f"/planner/versions/{v1}/rollback",
                                        "/planner/676/plan/history")))
    assert job.state == "done" and (job.result["version"], job.result["previous"]) == (v1, v3)
    assert lookup_planned(public, lon, lat) == ["LUC"]

    # The audit log tells who did what to which version under which decision.
    events = list(reversed(audit.events(home, district=LAM_HA).events))
    actions = [(e.actor, e.action, e.kind, e.version) for e in events
               if e.action != "login"]
    assert ("lan", "upload", "plan", None) in actions
    assert ("lan", "version.repair", "plan", v2) in actions
    assert ("lan", "version.publish", "plan", v3) in actions
    assert ("lan", "version.rollback", "plan", v1) in actions
    attach = [e for e in events if e.action == "decision.attach" and e.version == v3][0]
    assert attach.decision == "1234/QĐ-UBND ngày 30/06/2023 của UBND tỉnh Lâm Đồng"
    published = [e for e in events if e.action == "version.publish"][0]
    assert published.decision.startswith("1234/QĐ-UBND") and \
        published.detail["replacing"] == v1
    done = [e for e in events if e.action == "job.done" and e.detail["job_kind"] == "publish"]
    assert len(done) == 1 and done[0].version == v3 and done[0].actor == "lan"
    assert done[0].decision.startswith("1234/QĐ-UBND") and done[0].detail["previous"] == v1


# --------------------------------------------------------------------------- pages, languages


def test_pages_speak_vietnamese_first_and_english_on_request(lam_ha):
    home, ids = lam_ha
    c = client_for(home, "lan")
    anonymous = client_for(home)  # before the job: a starting app starts queued jobs
    job = jobs.submit_publish(home, ids["plan"], district=LAM_HA, layer="plan", actor="lan",
                              start=False)  # queued only: no worker needed to show a job
    pages = {
        "/planner/": ("Quản lý dữ liệu quy hoạch", "Planning data"),
        "/planner/676/upload": ("Tải lên dữ liệu", "Upload data"),
        f"/planner/jobs/{job.id}": ("Công việc số", "Job "),
        f"/planner/versions/{ids['plan']}": ("Kết quả kiểm tra", "Validation summary"),
        "/planner/676/plan/history": ("Lịch sử phiên bản", "Version history"),
    }
    for url, (vi, _) in pages.items():
        page = text_of(c.get(url))
        assert vi in page and '<html lang="vi">' in page, url
    for url, (_, en) in pages.items():
        english = text_of(c.get(url + "?lang=en"))
        assert en in english and '<html lang="en">' in english, url
    c.get("/?lang=vi")
    # The running job's page polls the API; the header links to the dashboard.
    page = text_of(c.get(f"/planner/jobs/{job.id}"))
    assert f'"api": "/api/jobs/{job.id}"' in page and 'id="gp-job-cancel"' in page
    assert 'id="gp-planner-link"' in text_of(c.get("/"))
    assert 'id="gp-planner-link"' not in text_of(anonymous.get("/"))
    # A version stored by the command line has no detailed report: the page says so.
    page = text_of(c.get(f"/planner/versions/{ids['plan']}"))
    assert 'id="gp-no-report"' in page and 'id="gp-downloads"' not in page
    assert c.get(f"/api/versions/{ids['plan']}/findings").json["error"]["code"] == \
        "REPORT-MISSING"


def test_signing_in_lands_on_the_dashboard(lam_ha):
    home, _ = lam_ha
    c = client_for(home)
    r = sign_in(c, "lan", PW)
    assert r.status_code == 303 and r.headers["Location"] == "/planner/"
    assert c.get("/planner").status_code == 308  # the rule ends in a slash


def test_bad_ids_and_other_districts_never_give_a_500(lam_ha):
    home, ids = lam_ha
    with open_store(home, crs="EPSG:5899") as store:
        other = ingest_file(store, write_shapefile_zip(parcel_grid(), home.parent / "dl.zip"),
                            "parcels", "672", user="mai").version.id
    c = client_for(home, "lan")
    boss = client_for(home, "boss")
    theirs = jobs.submit_publish(home, other, district="672", layer="parcels", actor="mai",
                                 start=False)
    v = ids["plan"]
    cases = {
        "/planner/versions/999999": (404, 404),
        "/planner/versions/abc": (404, 404),
        "/planner/versions/-1": (404, 404),
        "/planner/versions/99999999999999999999999": (404, 404),
        f"/planner/versions/{other}": (403, 200),
        f"/planner/versions/{v}/report.xml": (404, 404),
        f"/planner/versions/{v}/report.json": (404, 404),  # stored by the CLI: no report
        "/planner/676/roads/history": (404, 404),
        "/planner/999/upload": (403, 404),
        "/planner/672/upload": (403, 200),
        "/planner/abc/plan/history": (403, 404),
        f"/planner/jobs/{theirs.id}": (403, 200),
        "/planner/jobs/424242": (404, 404),
        "/planner/jobs/99999999999999999999999": (404, 404),
        "/planner/decisions/abc.pdf": (404, 404),
        "/planner/decisions/" + "0" * 64 + ".pdf": (404, 404),
        "/api/jobs/abc": (404, 404),
        "/api/jobs/424242": (404, 404),
        f"/api/jobs/{theirs.id}": (403, 200),
        "/api/jobs?district=672": (403, 200),
        "/api/jobs?district=999": (403, 404),
        "/api/jobs?state=sleeping": (400, 400),
        "/api/jobs?limit=-3": (400, 400),
        f"/api/versions/{other}/features": (403, 200),
        f"/api/versions/{v}/features?bbox=1,2,3": (400, 400),
        f"/api/versions/{v}/features?bbox=200,0,210,1": (400, 400),
        f"/api/versions/{v}/features?bbox=nan,1,2,3": (400, 400),
        f"/api/versions/{v}/features?limit=99999999": (400, 400),
        f"/api/versions/{v}/findings?severity=fatal": (404, 404),  # no report at all
    }
    for url, (planner, admin) in cases.items():
        for client, expected in ((c, planner), (boss, admin)):
            r = client.get(url)
            assert r.status_code == expected, (url, r.status_code, text_of(r)[:300])
            if url.startswith("/api/") and expected >= 400:
                assert r.json["error"]["what"], url
    posts = {
        "/planner/versions/999999/publish": 404,
        f"/planner/versions/{other}/publish": 403,
        f"/planner/versions/{other}/decision": 403,
        f"/planner/versions/{other}/repair": 403,
        f"/planner/versions/{other}/rollback": 403,
        f"/planner/versions/{v}/publish": 409,  # published already
        f"/planner/versions/{v}/rollback": 409,  # published already
        f"/planner/versions/{v}/repair": 409,  # stored by the CLI: no upload kept
        f"/planner/versions/{ids['parcels']}/decision": 409,  # not a plan
        f"/planner/jobs/{theirs.id}/cancel": 403,
        "/planner/jobs/424242/cancel": 404,
    }
    for url, expected in posts.items():
        r = post(c, url, "/planner/")
        assert r.status_code == expected, (url, r.status_code, text_of(r)[:300])
    assert jobs.get(home, theirs.id).state == "queued"  # the other district's job untouched


def test_a_form_without_its_csrf_token_is_refused(lam_ha, tmp_path):
    home, ids = lam_ha
    c = client_for(home, "lan")
    queued = jobs.submit_publish(home, ids["plan"], district=LAM_HA, layer="plan",
                                 actor="lan", start=False)
    v = ids["plan"]
    content = plan_file(tmp_path, USES_V2).read_bytes()
    forms = {
        "/planner/676/upload": {"kind": "plan", "file": (io.BytesIO(content), "qh.gpkg")},
        f"/planner/versions/{v}/decision": {"number": "1/QĐ-UBND", "date": "2023-01-01",
                                            "authority": "UBND tỉnh Lâm Đồng"},
        f"/planner/versions/{v}/publish": {},
        f"/planner/versions/{v}/repair": {},
        f"/planner/versions/{v}/rollback": {},
        f"/planner/jobs/{queued.id}/cancel": {},
        "/api/jobs": {"district": LAM_HA, "kind": "plan",
                      "file": (io.BytesIO(content), "qh.gpkg")},
    }
    for url, data in forms.items():
        r = c.post(url, data=data, content_type="multipart/form-data")
        assert r.status_code == 400, (url, r.status_code)
        assert "CSRF" in text_of(r), url
    assert [j.id for j in jobs.list_jobs(home)] == [queued.id]
    assert jobs.get(home, queued.id).state == "queued"
    with open_store(home, crs="EPSG:5899") as store:
        assert store.published(LAM_HA, "plan").id == v and len(store.versions()) == 2


def test_the_job_page_shows_the_job_as_it_is_whenever_it_is_opened(lam_ha, tmp_path,
                                                                  monkeypatch):
    from gisportal.jobs.worker import PAUSE_ENV
    from tests.test_jobs import resume, wait_paused

    home, _ = lam_ha
    c = client_for(home, "lan")
    monkeypatch.setenv(PAUSE_ENV, "validate")
    job_id = job_id_of(upload(c, plan_file(tmp_path, USES_V2)))
    job = wait_paused(home, job_id, "validate")
    # Opened (again) while the worker validates: the stage, the percentage, the poller.
    page = text_of(c.get(f"/planner/jobs/{job_id}"))
    assert 'data-state="running"' in page and 'value="35"' in page
    assert '<span id="gp-job-stage">Đang kiểm tra dữ liệu</span>' in page
    assert f'"api": "/api/jobs/{job_id}"' in page
    assert 'id="gp-job-cancel"' in page
    dashboard = text_of(c.get("/planner/"))
    assert f'<tr data-job="{job_id}" data-state="running">' in dashboard
    resume(job)
    finished(home, job_id)
    page = text_of(c.get(f"/planner/jobs/{job_id}?lang=en"))
    assert 'data-state="done"' in page and 'id="gp-job-review"' in page
    assert "gp-job-config" not in page and 'id="gp-job-cancel"' not in page


def test_the_map_data_of_a_big_layer_comes_by_the_box_in_view(lam_ha):
    home, ids = lam_ha
    c = client_for(home, "lan")
    v = ids["parcels"]  # 20 parcels; a limit of 5 makes it a "big" layer
    part = c.get(f"/api/versions/{v}/features?limit=5").json
    assert part["page"] == {"total": 20, "returned": 5, "limit": 5, "complete": False,
                            "bbox": None}
    assert set(part["features"][0]["properties"]) == {"commune", "sheet", "parcel", "land_use"}
    assert "TenChu" not in json.dumps(part, ensure_ascii=False)  # no personal data
    lon, lat = (float(v) for v in to_lonlat(XY[0] + 25, XY[1] + 25))
    small = f"{lon - 0.00002},{lat - 0.00002},{lon + 0.00002},{lat + 0.00002}"  # ±2 m
    one = c.get(f"/api/versions/{v}/features?limit=5&bbox={small}").json
    assert [(f["properties"]["sheet"], f["properties"]["parcel"]) for f in one["features"]] \
        == [(1, 1)] and one["page"]["complete"] is True
    big = f"{lon - 0.1},{lat - 0.1},{lon + 0.1},{lat + 0.1}"
    r = c.get(f"/api/versions/{v}/features?limit=5&bbox={big}")
    assert r.status_code == 400 and r.json["error"]["code"] == "BBOX-TOO-BIG"
    assert "zoom in" in r.json["error"]["fix"]
    # A layer within the limit is sent whole, whatever the box.
    assert len(c.get(f"/api/versions/{v}/features?bbox={big}").json["features"]) == 20
