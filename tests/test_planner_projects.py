"""A planning project through the planner's web pages, with real worker processes: a
planner of Đức Trọng creates the project, uploads its lots (a gap refused, then clean)
and red lines, enters the decision, publishes, adds a document, changes its status,
publishes an adjustment and rolls back; a planner of another district sees nothing of
it; residents see only what is published."""

from __future__ import annotations

import io
import re

import pytest
import shapely.affinity

from gisportal.accounts import audit, users
from gisportal.services.ingest import ingest_file
from gisportal.store import open_store
from tests.conftest import parcel_grid, write_shapefile_zip
from tests.test_decisions import PDF
from tests.test_planner_pages import (
    PW,
    client_for,
    finished,
    job_id_of,
    post,
    stop_workers,
    text_of,
    token_of,
)
from tests.test_projects import lines_frame, lots_frame

PID = "678-lien-nghia-phan-khu"


@pytest.fixture
def town(tmp_path, fast_passwords, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    users.add_user(home, "hoa", "planner", PW, districts=["678"])
    users.add_user(home, "mai", "planner", PW, districts=["672"])
    with open_store(home, crs="EPSG:5899") as store:
        zip_path = write_shapefile_zip(parcel_grid(), tmp_path / "thua.zip")
        assert ingest_file(store, zip_path, "parcels", "678", publish=True).published
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    yield home
    stop_workers(home)


def send(client, path, kind: str):
    token = token_of(client, f"/planner/projects/{PID}/upload")
    with open(path, "rb") as fh:
        return client.post(f"/planner/projects/{PID}/upload", data={
            "csrf_token": token, "kind": kind, "file": (fh, path.name)},
            content_type="multipart/form-data")


def test_a_planner_runs_a_project_from_creation_to_roll_back(town, tmp_path):
    home = town
    c = client_for(home, "hoa")
    public = client_for(home)
    # Create: a bad id is refused with the form kept; then the project.
    form = {"district": "678", "name": "Quy hoạch phân khu trung tâm Liên Nghĩa",
            "level": "zoning", "scale": "1/2000", "status": "appraisal"}
    r = post(c, "/planner/projects/", "/planner/projects/", id="Liên Nghĩa", **form)
    assert r.status_code == 400 and 'value="Quy hoạch phân khu trung tâm Liên Nghĩa"' in text_of(r)
    r = post(c, "/planner/projects/", "/planner/projects/", id=PID, **form)
    assert r.status_code == 303 and r.headers["Location"] == f"/planner/projects/{PID}"
    page = text_of(c.get(f"/planner/projects/{PID}"))
    assert "Đang thẩm định" in page
    assert f'href="/planner/projects/{PID}/upload?kind=zoning_lots"' in page

    # Lots overlapping by a metre: a draft with an error, never publishable.
    gap = lots_frame()
    gap.loc[2, "geometry"] = shapely.affinity.translate(gap.loc[2, "geometry"], xoff=-1.0)
    bad = tmp_path / "lo_chong_lan.gpkg"
    gap.to_file(bad, driver="GPKG")
    job = finished(home, job_id_of(send(c, bad, "zoning_lots")))
    assert job.state == "done" and job.result["summary"]["errors"] >= 1, job.to_dict()
    assert job.params["project"] == PID

    good = tmp_path / "lo.gpkg"
    lots_frame().to_file(good, driver="GPKG")
    job = finished(home, job_id_of(send(c, good, "zoning_lots")))
    v1 = job.result["version"]
    assert job.state == "done" and job.result["summary"]["errors"] == 0, job.to_dict()
    review = text_of(c.get(f"/planner/versions/{v1}"))
    assert 'id="gp-decision-form"' in review
    assert f"/planner/projects/{PID}/zoning_lots/history" in review
    # Publishing without the decision is refused on the page, with the reason.
    r = post(c, f"/planner/versions/{v1}/publish", f"/planner/versions/{v1}")
    assert r.status_code == 409 and "quyết định" in text_of(r)
    r = post(c, f"/planner/versions/{v1}/decision", f"/planner/versions/{v1}",
             number="1234/QĐ-UBND", date="30/06/2019", authority="UBND tỉnh Lâm Đồng",
             pdf=(io.BytesIO(PDF), "QĐ 1234.pdf"))
    assert r.status_code == 303, text_of(r)[:500]
    sha = re.search(r'href="/planner/decisions/([0-9a-f]{64})\.pdf"',
                    text_of(c.get(f"/planner/versions/{v1}"))).group(1)
    assert c.get(f"/planner/decisions/{sha}.pdf").data == PDF  # staff read a draft's
    assert public.get(f"/projects/{PID}/decisions/{sha}.pdf").status_code == 404
    job = finished(home, job_id_of(post(c, f"/planner/versions/{v1}/publish",
                                        f"/planner/versions/{v1}")))
    assert job.state == "done", job.error
    lines = tmp_path / "chi_gioi.gpkg"
    lines_frame().to_file(lines, driver="GPKG")
    job = finished(home, job_id_of(send(c, lines, "red_lines")))
    rl = job.result["version"]
    job = finished(home, job_id_of(post(c, f"/planner/versions/{rl}/publish",
                                        f"/planner/versions/{rl}")))
    assert job.state == "done", job.error

    answer = public.get("/api/lookup?district=678&sheet=1&parcel=1").json
    [plan] = answer["zoning"]
    assert plan["project"]["name"] == "Quy hoạch phân khu trung tâm Liên Nghĩa"
    assert plan["red_line"]["roads"][0]["name"] == "Đường Thống Nhất"
    assert public.get(f"/projects/{PID}/decisions/{sha}.pdf").data == PDF

    # A document and a new status: residents read them at once.
    r = post(c, f"/planner/projects/{PID}/documents", f"/planner/projects/{PID}",
             title="Quy định quản lý theo đồ án", kind="regulation",
             file=(io.BytesIO(PDF.replace(b"1 0 obj", b"4 0 obj")), "quy_dinh.pdf"))
    assert r.status_code == 303, text_of(r)[:500]
    r = post(c, f"/planner/projects/{PID}", f"/planner/projects/{PID}", status="approved")
    assert r.status_code == 303
    shown = public.get(f"/api/projects/{PID}").json
    assert shown["status"] == "approved" and shown["documents"][0]["kind"] == "regulation"
    assert plan["project"]["status"] != "approved"
    assert public.get("/api/lookup?district=678&sheet=1&parcel=1").json["zoning"][0][
        "project"]["status"] == "approved"
    # A photo is no document.
    r = post(c, f"/planner/projects/{PID}/documents", f"/planner/projects/{PID}",
             title="Ảnh", kind="other", file=(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
                                              "anh.png"))
    assert r.status_code == 400 and "PDF" in text_of(r)

    # An adjustment: the housing lot becomes mixed use; then back.
    adjusted = lots_frame()
    adjusted.loc[1, "ChucNang"] = "HH"
    adjusted.loc[2, "TangCao"] = "2"  # the park may have a pavilion of two floors
    adjusted.loc[2, "HeSoSDD"] = "0,08"
    path = tmp_path / "lo_dieu_chinh.gpkg"
    adjusted.to_file(path, driver="GPKG")
    v2 = finished(home, job_id_of(send(c, path, "zoning_lots"))).result["version"]
    review = text_of(c.get(f"/planner/versions/{v2}"))
    assert '<li data-change="use_changed"><strong>1</strong>' in review
    assert '<li data-change="indicators_changed"><strong>1</strong> đổi chỉ tiêu' in review
    post(c, f"/planner/versions/{v2}/decision", f"/planner/versions/{v2}",
         number="77/QĐ-UBND", date="01/03/2024", authority="UBND tỉnh Lâm Đồng",
         pdf=(io.BytesIO(PDF.replace(b"1 0 obj", b"5 0 obj")), "QĐ 77.pdf"))
    job = finished(home, job_id_of(post(c, f"/planner/versions/{v2}/publish",
                                        f"/planner/versions/{v2}")))
    assert job.state == "done", job.error
    lot = public.get("/api/lookup?district=678&sheet=1&parcel=6").json["zoning"][0]["lots"][0]
    assert lot["function"] == "HH"
    history = text_of(c.get(f"/planner/projects/{PID}/zoning_lots/history"))
    assert f'data-version="{v1}" data-status="superseded"' in history
    job = finished(home, job_id_of(post(c, f"/planner/versions/{v1}/rollback",
                                        f"/planner/projects/{PID}/zoning_lots/history")))
    assert job.state == "done", job.error
    lot = public.get("/api/lookup?district=678&sheet=1&parcel=6").json["zoning"][0]["lots"][0]
    assert lot["function"] == "ODM"

    # Everything is on record.
    actions = [e.action for e in audit.events(home, limit=500).events]
    for action in ("project.add", "upload", "decision.attach", "version.publish",
                   "project.document", "project.change", "version.rollback"):
        assert action in actions, action

    # A planner of Đà Lạt sees and changes nothing of it.
    other = client_for(home, "mai")
    assert other.get(f"/planner/projects/{PID}").status_code == 403
    assert PID not in text_of(other.get("/planner/projects/"))
    r = other.post(f"/planner/projects/{PID}/upload", data={
        "csrf_token": token_of(other, "/planner/projects/"), "kind": "zoning_lots",
        "file": (io.BytesIO(b"x"), "a.gpkg")}, content_type="multipart/form-data")
    assert r.status_code == 403
