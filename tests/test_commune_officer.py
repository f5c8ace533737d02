"""Planners scoped to one of today's communes (a commune's land officer).

Since 2025-07-01 the province has no districts, and each commune's land officer keeps
its cadastre up to date; the cadastres stay the former districts'. An account scoped
to today's Phường Mũi Né (22918: the former wards Mũi Né 22915 and Hàm Tiến 22918 and
the commune Thiện Nghiệp 22957 of Phan Thiết, 593) may send cadastral corrections of
those three, which a planner of the district publishes; nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner

from gisportal import jobs
from gisportal.accounts import roles, tokens, users
from gisportal.base.errors import UsageError
from gisportal.cli.main import cli
from gisportal.store.home import DataHome
from tests.conftest import write_shapefile_zip
from tests.test_zones import PHAN_THIET, office_grid

MUI_NE, HAM_TIEN, THIEN_NGHIEP = "22915", "22918", "22957"
PHU_HAI = "22921"  # a ward of Phan Thiết now in Phường Phú Thủy
PW = "mật khẩu đủ dài cho bài kiểm tra"


class Officer:
    role, is_authenticated, is_active = "planner", True, True
    districts = ("22918",)


def test_the_scope_of_a_commune_officer():
    officer = Officer()
    assert roles.unit_communes(officer, "593") == {MUI_NE, HAM_TIEN, THIEN_NGHIEP}
    assert roles.unit_communes(officer, "594") == frozenset()
    assert roles.can(officer, "upload", "593") and roles.can(officer, "review", "593")
    for action in ("publish", "rollback", "export", "view_personal"):
        assert not roles.can(officer, action, "593"), action
    assert not roles.can(officer, "upload", "672") and not roles.can(officer, "upload", "594")
    assert roles.can(officer, "upload") and not roles.can(officer, "publish")
    assert not roles.district_scope(officer, "593")


def test_accounts_take_a_current_commune_as_scope():
    assert users.check_districts("planner", ["22918", "678"]) == ("22918", "678")
    with pytest.raises(UsageError):
        users.check_districts("planner", ["99999"])


def cadastre(tmp_path: Path, home: Path) -> None:
    """Phan Thiết's published cadastre: a block of Mũi Né and one of Phú Hài."""
    both = pd.concat([office_grid(PHAN_THIET, 9218, MUI_NE),
                      office_grid((PHAN_THIET[0] + 0.01, PHAN_THIET[1]), 9218, PHU_HAI)],
                     ignore_index=True)
    both = gpd.GeoDataFrame(both, geometry="geometry", crs="EPSG:9218")
    path = write_shapefile_zip(both, tmp_path / "phan_thiet.zip")
    result = CliRunner().invoke(cli, ["--home", str(home), "ingest", str(path), "--kind",
                                      "parcels", "--district", "593", "--publish"])
    assert result.exit_code == 0, result.output


def upload(client, token: str, path: Path, **fields):
    with open(path, "rb") as fh:
        return client.post("/api/jobs", headers={"Authorization": f"Bearer {token}"},
                           content_type="multipart/form-data",
                           data={"district": "593", "kind": "parcels",
                                 "file": (fh, path.name), **fields})


def test_a_commune_officer_sends_corrections_of_their_communes_only(home, tmp_path,
                                                                   fast_passwords):
    from gisportal.web.app import create_app

    cadastre(tmp_path, home)
    users.add_user(home, "xa_mui_ne", "planner", PW, districts=["22918"])
    token = tokens.create_token(home, "xa_mui_ne", label="script")
    client = create_app({"home": str(home)}).test_client()
    correction = office_grid(PHAN_THIET, 9218, MUI_NE).iloc[:6]
    fix = write_shapefile_zip(correction, tmp_path / "chinh_ly.zip")
    # A whole layer, or another kind: refused before anything is queued.
    r = upload(client, token, fix)
    assert r.status_code == 403
    assert "22915, 22918, 22957" in json.dumps(r.json, ensure_ascii=False)
    r = upload(client, token, fix, update="1", communes=PHU_HAI)
    assert r.status_code == 403 and PHU_HAI in r.json["error"]["message"]
    assert jobs.list_jobs(home) == []
    # A correction of Mũi Né: queued, stored as a draft for the district to publish.
    r = upload(client, token, fix, update="1")
    assert r.status_code == 202, r.json
    job = jobs.wait(home, r.json["job"]["id"], timeout=120, poll=0.05)
    assert job.state == "done", job.to_dict()
    assert job.params["within"] == [MUI_NE, HAM_TIEN, THIEN_NGHIEP]
    store = DataHome.at(home).store
    draft = store.version(job.result["version"])
    assert draft.status == "draft" and job.result["update"]["communes"] == [MUI_NE]
    # A file that also holds Phú Hài's parcels (no commune named): the update refuses it.
    mixed = pd.concat([correction, office_grid((PHAN_THIET[0] + 0.01, PHAN_THIET[1]), 9218,
                                               PHU_HAI).iloc[:2]], ignore_index=True)
    mixed = gpd.GeoDataFrame(mixed, geometry="geometry", crs="EPSG:9218")
    r = upload(client, token, write_shapefile_zip(mixed, tmp_path / "lan.zip"), update="1")
    assert r.status_code == 202
    job = jobs.wait(home, r.json["job"]["id"], timeout=120, poll=0.05)
    assert job.state == "failed" and job.error["code"] == "UPDATE-OUTSIDE-SCOPE", job.to_dict()
    assert PHU_HAI in job.error["message"]
    published = store.published("593", "parcels")
    assert published is not None and published.id != draft.id  # nothing published


def test_an_admin_gives_a_commune_scope_on_the_users_page(home, fast_passwords):
    from gisportal.web.app import create_app
    from tests.conftest import csrf_token_of, sign_in

    users.add_user(home, "admin", "admin", PW)
    client = create_app({"home": str(home)}).test_client()
    assert sign_in(client, "admin", PW).status_code == 303
    page = client.get("/admin/users").get_data(as_text=True)
    assert 'name="district"' in page and "Hoặc xã, phường phụ trách" in page
    r = client.post("/admin/users", data={
        "csrf_token": csrf_token_of(page), "username": "xa_mui_ne", "role": "planner",
        "district": "22918, 593x", "password": PW, "password2": PW})
    assert r.status_code == 400  # 593x is no code: nothing created, the box kept
    assert 'value="22918' in r.get_data(as_text=True)
    r = client.post("/admin/users", data={
        "csrf_token": csrf_token_of(page), "username": "xa_mui_ne", "role": "planner",
        "district": "22918", "password": PW, "password2": PW})
    assert r.status_code == 303
    assert users.get_user(home, "xa_mui_ne").districts == ("22918",)
