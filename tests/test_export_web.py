"""Staff download of the ministry package over HTTP: ``GET /admin/export/<district>.zip``."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from gisportal.accounts.users import add_user
from gisportal.services.ingest import ingest_file
from gisportal.web.app import create_app
from tests.conftest import parcel_grid, sign_in

PASSWORD = "mat-khau-du-dai"


@pytest.fixture
def app(home, store, make_shapefile_zip, fast_passwords):
    ingest_file(store, make_shapefile_zip(parcel_grid(3, 4)), "parcels", "678", publish=True)
    add_user(home, "can.bo", "planner", PASSWORD, districts=["678"])
    add_user(home, "quan.tri", "admin", PASSWORD)
    app = create_app({"home": str(home)})
    app.config["TESTING"] = True
    return app


def _staff(app, name: str = "can.bo"):
    """A client signed in as a planner of district 678 (the export right is staff-only),
    or as the admin, who may ask for any district."""
    client = app.test_client()
    assert sign_in(client, name, PASSWORD).status_code in (302, 303)
    return client


def _package(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def test_download_streams_the_package_and_leaves_nothing(app, home):
    with _staff(app) as client:
        r = client.get("/admin/export/678.zip")
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.mimetype == "application/zip"
        disposition = r.headers["Content-Disposition"]
        assert disposition.startswith("attachment; filename=gisportal_678_")
        assert disposition.endswith(".zip")
        package = _package(r)
        r.close()
    manifest = json.loads(package.read("manifest.json"))
    assert manifest["district"]["code"] == "678"
    assert [(x["kind"], x["feature_count"]) for x in manifest["layers"]] == [("parcels", 12)]
    # The ministry's package names fields as the national land database does by default.
    assert manifest["options"] == {"national_names": True, "include_personal": False}
    assert manifest["layers"][0]["fields"][:3] == ["MaXa", "SoHieuToBanDo", "SoThuTuThua"]
    # The land users' names never leave through the web, whatever the query says.
    gpkg = package.read("678.gpkg")
    for name in ("Nguyễn Văn Hùng", "Trần Thị Lan", "K'Brêu"):
        assert name.encode() not in gpkg
    assert list((home / "exports").iterdir()) == []


@pytest.mark.parametrize("query, first_fields", [
    ("national_names=yes", ["MaXa", "SoHieuToBanDo", "SoThuTuThua"]),
    ("national_names=0", ["commune", "sheet", "parcel"]),  # gisportal's English names
])
def test_kind_and_names_from_the_query(app, query, first_fields):
    r = _staff(app).get(f"/admin/export/678.zip?kind=parcels&{query}")
    assert r.status_code == 200
    package = _package(r)
    manifest = json.loads(package.read("manifest.json"))
    assert manifest["layers"][0]["fields"][:3] == first_fields
    assert manifest["options"]["national_names"] == (first_fields[0] == "MaXa")
    assert "shapefile/parcels_678.zip" in package.namelist()


@pytest.mark.parametrize("url, status, text", [
    ("/admin/export/999.zip", 404, "unknown district code"),
    ("/admin/export/672.zip", 404, "no published layer"),
    ("/admin/export/678.zip?kind=plan", 404, "no published plan layer"),
    ("/admin/export/678.zip?kind=roads", 400, "unknown layer kind"),
    ("/admin/export/678.zip?national_names=maybe", 400, "is not yes or no"),
])
def test_bad_requests_answer_with_a_page_not_a_500(app, home, url, status, text):
    r = _staff(app, "quan.tri").get(url)
    assert r.status_code == status
    assert text in r.get_data(as_text=True)
    exports = home / "exports"
    assert not exports.exists() or list(exports.iterdir()) == []


def test_export_page_lists_only_the_users_districts_and_downloads_are_audited(app, home):
    from gisportal.accounts import audit

    client = _staff(app)
    page = client.get("/admin/export").get_data(as_text=True)
    assert 'id="gp-export-678"' in page and 'id="gp-export-672"' not in page
    assert 'action="/admin/export/678.zip"' in page and 'value="parcels" checked' in page
    # National names are the choice made already; English names are the other one.
    assert 'name="national_names" value="1" checked' in page
    assert 'name="national_names" value="0">' in page
    admin_page = _staff(app, "quan.tri").get("/admin/export").get_data(as_text=True)
    assert 'id="gp-export-672"' in admin_page  # every district, nothing published there
    r = client.get("/admin/export/678.zip?kind=parcels&national_names=1")
    assert r.status_code == 200
    r.close()
    events = audit.events(home, action="export.download").events
    assert [(e.actor, e.district, e.detail["national_names"]) for e in events] == \
        [("can.bo", "678", True)]


# --------------------------------------------------------------------------- projects


@pytest.fixture
def town_app(tmp_path, monkeypatch, fast_passwords):
    """`tests.test_projects_web.build_town`'s home (a published project and a draft one
    in 678) with a planner of 678, a planner of 672 and an admin."""
    from tests.test_projects_web import build_town

    home, _ = build_town(tmp_path)
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    add_user(home, "can.bo", "planner", PASSWORD, districts=["678"])
    add_user(home, "lam.dong", "planner", PASSWORD, districts=["672"])
    add_user(home, "quan.tri", "admin", PASSWORD)
    app = create_app({"home": str(home)})
    app.config["TESTING"] = True
    return app, home


def test_project_package_is_offered_and_downloaded_by_the_districts_staff(town_app):
    from gisportal.accounts import audit
    from tests.test_projects import PID
    from tests.test_projects_web import DRAFT

    app, home = town_app
    client = _staff(app)
    page = client.get("/admin/export").get_data(as_text=True)
    assert f'id="gp-export-project-{PID}"' in page
    assert f'action="/admin/export/projects/{PID}.zip"' in page
    # The draft project is listed, with nothing to download.
    assert f'id="gp-export-project-{DRAFT}"' in page
    assert f'action="/admin/export/projects/{DRAFT}.zip"' not in page
    r = client.get(f"/admin/export/projects/{PID}.zip")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Disposition"].startswith(f"attachment; filename=gisportal_{PID}_")
    package = _package(r)
    r.close()
    manifest = json.loads(package.read("manifest.json"))
    assert manifest["project"]["id"] == PID
    assert [x["kind"] for x in manifest["layers"]] == ["zoning_lots", "red_lines",
                                                       "project_area"]
    assert manifest["layers"][0]["fields"][:2] == ["KyHieuLo", "ChucNang"]
    assert "decision/QD-1234.pdf" in package.namelist()
    assert list((home / "exports").iterdir()) == []
    english = _package(client.get(f"/admin/export/projects/{PID}.zip?national_names=0"))
    assert json.loads(english.read("manifest.json"))["layers"][0]["fields"][:2] == \
        ["lot_code", "function"]
    events = audit.events(home, action="export.project_download").events
    assert [(e.actor, e.district, e.detail["project"]) for e in events] == \
        [("can.bo", "678", PID), ("can.bo", "678", PID)]
    # Another district's planner sees no project of 678 and may not download it.
    other = _staff(app, "lam.dong")
    assert f"gp-export-project-{PID}" not in other.get("/admin/export").get_data(as_text=True)
    assert other.get(f"/admin/export/projects/{PID}.zip").status_code == 403


@pytest.mark.parametrize("url, status, text", [
    ("/admin/export/projects/678-ban-nhap-500.zip", 404, "has no published layer"),
    ("/admin/export/projects/678-khong-co.zip", 404, "there is no planning project"),
    ("/admin/export/projects/KHÔNG HỢP LỆ.zip", 404, "is not a planning project id"),
    ("/admin/export/projects/678-lien-nghia-2000.zip?national_names=maybe", 400,
     "is not yes or no"),
])
def test_project_bad_requests_answer_with_a_page_not_a_500(town_app, url, status, text):
    app, home = town_app
    r = _staff(app, "quan.tri").get(url)
    assert r.status_code == status
    assert text in r.get_data(as_text=True)
    exports = home / "exports"
    assert not exports.exists() or list(exports.iterdir()) == []
