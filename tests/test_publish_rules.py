"""One publish path, no silent shrink, partial updates by commune (issue 10, items 5–7).

Each test drives the real command line or the engine on files written here, shaped
like what offices send: a whole district cadastre, then a two-parcel file by mistake,
then a correction of one commune with or without a commune column.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from gisportal.base.errors import InputError, StoreError, UsageError
from gisportal.cli.main import cli
from gisportal.services import workflow
from gisportal.services.ingest import ingest_file
from gisportal.services.lookup import lookup_key
from tests import test_planner_pages as pages
from tests.conftest import DUC_TRONG_XY, parcel_grid
from tests.test_decisions import PDF

COMMUNES = ("24778", "24781", "24784")

#: The seeded Lâm Hà home of the planner page tests (a fresh copy per test).
base_home = pages.base_home
lam_ha = pages.lam_ha


def three_communes(rows: int = 4, cols: int = 10) -> gpd.GeoDataFrame:
    """Three communes side by side, `rows × cols` parcels each (sheet 1 in each)."""
    parts = []
    for i, code in enumerate(COMMUNES):
        g = parcel_grid(rows, cols, origin=(DUC_TRONG_XY[0] + i * 400, DUC_TRONG_XY[1]))
        g["MaXa"] = code
        g["SoTo"] = 1
        g["SoThua"] = np.arange(1, len(g) + 1)
        parts.append(g)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:5899")


def run(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *map(str, args)],
                              catch_exceptions=False)


@pytest.fixture
def published(store, tmp_path):
    path = tmp_path / "whole.gpkg"
    three_communes().to_file(path, driver="GPKG")
    res = ingest_file(store, path, "parcels", "678", publish=True)
    assert res.published, res.not_published
    return res.version


# -- one publish path --------------------------------------------------------------------


def plan_file(tmp_path):
    x, y = DUC_TRONG_XY
    plan = gpd.GeoDataFrame({"MaLoaiDat": ["ODT", "CLN"]},
                            geometry=[shapely.box(x - 500, y - 500, x + 50, y + 600),
                                      shapely.box(x + 50, y - 500, x + 600, y + 600)],
                            crs="EPSG:5899")
    path = tmp_path / "quy_hoach.gpkg"
    plan.to_file(path, driver="GPKG")
    return path


def test_the_command_line_refuses_a_plan_without_its_decision(home, tmp_path):
    path = plan_file(tmp_path)
    res = run(home, "ingest", path, "--kind", "plan", "--district", "678", "--publish")
    assert res.exit_code == 1
    assert "PLAN-NO-DECISION" in res.stderr or "no approval decision" in res.stderr
    vid = res.stdout.strip().splitlines()[-1]
    assert "(draft)" in res.stdout
    res = run(home, "publish", "--district", "678", "--kind", "plan", "--version", vid)
    assert res.exit_code == 1 and "no approval decision" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    pdf = tmp_path / "qd.pdf"
    pdf.write_bytes(PDF)
    res = run(home, "decision", "--version", vid, "--number", "1234/QĐ-UBND", "--date",
              "2023-06-30", "--authority", "Ủy ban nhân dân tỉnh Lâm Đồng", "--pdf", pdf)
    assert res.exit_code == 0, res.stderr
    res = run(home, "publish", "--district", "678", "--kind", "plan", "--version", vid)
    assert res.exit_code == 0, res.stderr
    assert "draft for comment" not in res.stdout


def test_a_draft_for_comment_is_an_explicit_choice_and_says_so(home, store, tmp_path):
    res = ingest_file(store, plan_file(tmp_path), "plan", "678")
    out = run(home, "publish", "--district", "678", "--kind", "plan", "--version",
              res.version.id, "--consultation")
    assert out.exit_code == 0, out.stderr
    assert "as a draft for comment" in out.stdout
    v = store.published("678", "plan")
    assert v.id == res.version.id and v.meta["consultation"]["by"] == "cli"
    assert workflow.is_consultation(v)
    # Only plans are drafts for comment.
    parcels = ingest_file(store, *_parcels(tmp_path)).version
    with pytest.raises(UsageError) as err:
        workflow.publish(store, parcels.id, "cli", consultation=True)
    assert err.value.code == "CONSULTATION-NOT-PLAN"


def _parcels(tmp_path):
    path = tmp_path / "p.gpkg"
    parcel_grid().to_file(path, driver="GPKG")
    return path, "parcels", "678"


# -- no silent shrink --------------------------------------------------------------------


def test_a_small_file_does_not_silently_replace_a_district(home, store, published, tmp_path):
    small = three_communes().iloc[:2]
    path = tmp_path / "two.gpkg"
    small.to_file(path, driver="GPKG")
    res = run(home, "ingest", path, "--kind", "parcels", "--district", "678", "--publish")
    assert res.exit_code == 1
    assert "would remove 118 of the 120 published features" in res.stderr
    assert "--confirm-removals" in res.stderr and "Traceback" not in res.stderr
    draft = int(res.stdout.strip().splitlines()[-1])
    # Nothing changed for residents: the whole cadastre is still published.
    assert store.published("678", "parcels").id == published.id
    assert lookup_key(store, "678", 1, 40, "24784")["parcel"]["parcel"] == 40
    # The dry run says the same, as JSON.
    res = run(home, "publish", "--district", "678", "--kind", "parcels", "--version", draft,
              "--dry-run")
    preview = json.loads(res.stdout)
    assert preview["counts"]["removed"] == 118 and preview["needs_confirmation"] is True
    res = run(home, "publish", "--district", "678", "--kind", "parcels", "--version", draft)
    assert res.exit_code == 1 and "would remove 118 of the 120" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1  # one line, not a traceback
    assert store.published("678", "parcels").id == published.id
    res = run(home, "publish", "--district", "678", "--kind", "parcels", "--version", draft,
              "--confirm-removals")
    assert res.exit_code == 0, res.stderr
    assert "118 removed" in res.stderr
    now = store.published("678", "parcels")
    assert now.id == draft and now.meta["removals_confirmed"]["removed"] == 118


def test_small_changes_need_no_confirmation(store, published, tmp_path):
    frame = three_communes()
    frame.loc[0, "LoaiDat"] = "CLN" if frame.loc[0, "LoaiDat"] != "CLN" else "ONT"
    frame = frame.drop(index=[5, 6])  # 2 of 120 removed: under 5 %
    path = tmp_path / "edited.gpkg"
    frame.to_file(path, driver="GPKG")
    res = ingest_file(store, path, "parcels", "678", publish=True)
    assert res.published, res.not_published
    assert res.changes.counts["removed"] == 2 and res.changes.counts["use_changed"] == 1
    assert not res.changes.needs_confirmation


def test_the_threshold_is_a_setting(store, published, tmp_path):
    frame = three_communes().drop(index=[5, 6])
    path = tmp_path / "edited.gpkg"
    frame.to_file(path, driver="GPKG")
    res = ingest_file(store, path, "parcels", "678", publish=True,
                      settings={"home": str(store.home), "publish_confirm_removed_share": 0.01,
                                "max_upload_bytes": 2**30})
    assert not res.published
    assert res.not_published.code == "PUBLISH-REMOVALS-UNCONFIRMED"


# -- partial updates by commune ----------------------------------------------------------


def _features(store, version_id, commune):
    frame = store.read(version_id)
    sub = frame[frame["commune"] == commune].sort_values(["sheet", "parcel"])
    return sub.drop(columns=["src_row"]).reset_index(drop=True)


def test_an_update_of_one_commune_leaves_the_others_untouched(home, store, published,
                                                              tmp_path):
    fix = three_communes()
    fix = fix[fix["MaXa"] == "24781"].iloc[:30].copy()  # ten parcels merged away
    fix["LoaiDat"] = "ODT"
    path = tmp_path / "chinh_ly_24781.gpkg"
    fix.to_file(path, driver="GPKG")
    res = run(home, "ingest", path, "--kind", "parcels", "--district", "678", "--update",
              "--publish", "--confirm-removals")  # 10 of 120 parcels merged away: 8 %
    assert res.exit_code == 0, res.stderr
    assert "communes 24781 replaced (40 features removed, 30 added); 80 features of other " \
           "communes kept" in res.stdout
    new = store.published("678", "parcels")
    assert new.id != published.id and new.feature_count == 110
    assert new.meta["update"]["communes"] == ["24781"]
    for other in ("24778", "24784"):
        before, after = _features(store, published.id, other), _features(store, new.id, other)
        pd.testing.assert_frame_equal(before.drop(columns="geometry"),
                                      after.drop(columns="geometry"))
        assert all(shapely.equals_exact(before.geometry.values, after.geometry.values, 0))
    changed = _features(store, new.id, "24781")
    assert len(changed) == 30 and set(changed["land_use"]) == {"ODT"}
    # Residents see it at once; a parcel that the correction removed is gone.
    assert lookup_key(store, "678", 1, 5, "24781")["parcel"]["current_use"] == "ODT"


def test_a_file_without_a_commune_column_names_its_commune(store, published, tmp_path):
    fix = three_communes()
    fix = fix[fix["MaXa"] == "24784"].drop(columns="MaXa")
    path = tmp_path / "thua_dat_xa.gpkg"
    fix.to_file(path, driver="GPKG")
    with pytest.raises(UsageError) as err:
        ingest_file(store, path, "parcels", "678", update=True)
    assert err.value.code == "UPDATE-COMMUNE-UNKNOWN" and "--commune" in err.value.fix
    res = ingest_file(store, path, "parcels", "678", update=True, communes=["24784"])
    assert res.update.communes == ("24784",) and res.update.removed == 40
    assert res.version.feature_count == 120
    assert set(store.read(res.version.id)["commune"]) == set(COMMUNES)


def test_an_update_refuses_communes_it_was_not_told_about(store, published, tmp_path):
    fix = three_communes().iloc[35:45]  # rows of 24778 and 24781
    path = tmp_path / "mixed.gpkg"
    fix.to_file(path, driver="GPKG")
    with pytest.raises(InputError) as err:
        ingest_file(store, path, "parcels", "678", update=True, communes=["24781"])
    assert err.value.code == "UPDATE-COMMUNE-STRAY" and "24778" in err.value.what
    with pytest.raises(UsageError):
        ingest_file(store, path, "parcels", "678", communes=["24781"])  # needs --update
    with pytest.raises(UsageError):
        ingest_file(store, path, "parcels", "678", update=True, communes=["24x81"])
    assert store.published("678", "parcels").id == published.id


def test_an_update_needs_something_published(store, tmp_path):
    path = tmp_path / "x.gpkg"
    parcel_grid().to_file(path, driver="GPKG")
    with pytest.raises(StoreError) as err:
        ingest_file(store, path, "parcels", "678", update=True)
    assert err.value.code == "UPDATE-NOTHING-PUBLISHED"


def test_an_update_is_validated_as_the_whole_layer(store, published, tmp_path):
    # The corrected commune now overlaps its neighbour: caught on the merged layer.
    fix = three_communes()
    fix = fix[fix["MaXa"] == "24781"].copy()
    fix["geometry"] = fix.geometry.translate(-300, 0)  # onto commune 24778
    path = tmp_path / "shifted.gpkg"
    fix.to_file(path, driver="GPKG")
    res = ingest_file(store, path, "parcels", "678", update=True, publish=True)
    assert not res.published and res.report.has_errors
    assert {"TOPO-OVERLAP", "GEOM-DUPLICATE"} & {f.rule for f in res.report.findings}
    assert store.published("678", "parcels").id == published.id


def test_an_update_through_the_upload_job(home, store, published, tmp_path):
    from gisportal import jobs
    from tests.test_jobs import finished

    fix = three_communes()
    fix = fix[fix["MaXa"] == "24778"].iloc[:10]
    path = tmp_path / "chinh_ly.gpkg"
    fix.to_file(path, driver="GPKG")
    with open(path, "rb") as fh:
        job = jobs.submit_upload(home, fh, path.name, district="678", layer="parcels",
                                 actor="lan", update=True)
    done = finished(home, job.id)
    assert done.state == "done", done.error
    assert done.result["update"]["communes"] == ["24778"]
    assert done.result["update"]["removed"] == 40 and done.result["update"]["added"] == 10
    assert store.version(done.result["version"]).feature_count == 90
    with pytest.raises(UsageError), open(path, "rb") as fh:
        jobs.submit_upload(home, fh, path.name, district="678", layer="plan", actor="lan",
                           update=True)


# -- the web and the JSON API ------------------------------------------------------------


def test_the_review_page_shows_the_changes_and_asks_to_confirm_removals(lam_ha, tmp_path):
    from tests.test_planner_api import api_upload, bearer
    from tests.test_planner_pages import (
        LAM_HA,
        XY,
        client_for,
        finished,
        job_id_of,
        plan_file,
        post,
        text_of,
        upload,
    )

    home, ids = lam_ha
    c = client_for(home, "lan")
    # Two of the twenty published parcels, sent as if they were the whole cadastre.
    few = parcel_grid(origin=(XY[0] + 10, XY[1] + 10)).iloc[:2]
    path = tmp_path / "hai_thua.gpkg"
    few.to_file(path, driver="GPKG")
    job = finished(home, job_id_of(upload(c, path, kind="parcels")))
    draft = job.result["version"]
    page = text_of(c.get(f"/planner/versions/{draft}"))
    assert 'id="gp-publish-preview"' in page and 'data-change="removed"' in page
    assert "sẽ gỡ bỏ 18 trong số 20" in page and 'id="gp-confirm-removals"' in page
    # Without the box: refused on the page, nothing queued, nothing changed.
    r = post(c, f"/planner/versions/{draft}/publish", f"/planner/versions/{draft}")
    assert r.status_code == 409 and "would remove 18 of the 20" in text_of(r)
    with open_store_of(home) as store:
        assert store.published(LAM_HA, "parcels").id == ids["parcels"]
    # The API says the same, and publishes once confirmed.
    api = client_for(home)
    headers = bearer(home)
    r = api.post(f"/api/versions/{draft}/publish", headers=headers)
    assert r.status_code == 409 and r.json["error"]["code"] == "PUBLISH-REMOVALS-UNCONFIRMED"
    pre = api.get(f"/api/versions/{draft}/preview", headers=headers).json["preview"]
    assert pre["removed"] == 18 and pre["needs_confirmation"] is True
    r = api.post(f"/api/versions/{draft}/publish", headers=headers,
                 data={"confirm_removals": "true"})
    assert r.status_code == 202, r.json
    assert finished(home, r.json["job"]["id"]).state == "done"
    with open_store_of(home) as store:
        assert store.published(LAM_HA, "parcels").id == draft
    # A plan without its decision: the consultation button, and the API's consultation.
    r = api_upload(api, headers, plan_file(tmp_path, pages.USES_V2))
    plan = finished(home, r.json["job"]["id"]).result["version"]
    page = text_of(c.get(f"/planner/versions/{plan}"))
    assert 'id="gp-consultation-button"' in page
    r = api.post(f"/api/versions/{plan}/publish", headers=headers)
    assert r.status_code == 409 and r.json["error"]["code"] == "PLAN-NO-DECISION"
    job = finished(home, job_id_of(post(c, f"/planner/versions/{plan}/publish",
                                        f"/planner/versions/{plan}", consultation="1")))
    assert job.state == "done" and job.result["consultation"] is True, job.error
    assert 'id="gp-is-consultation"' in text_of(c.get(f"/planner/versions/{plan}"))


def test_the_upload_form_sends_a_commune_update(lam_ha, tmp_path):
    from tests.test_planner_pages import XY, client_for, finished, job_id_of, upload

    home, ids = lam_ha
    c = client_for(home, "lan")
    fix = parcel_grid(origin=(XY[0] + 10, XY[1] + 10)).drop(columns="MaXa").iloc[:18]
    path = tmp_path / "chinh_ly.gpkg"
    fix.to_file(path, driver="GPKG")
    job = finished(home, job_id_of(upload(c, path, kind="parcels", update="1",
                                          communes="24778")))
    assert job.state == "done", (job.error, job.params)
    assert job.result["update"]["communes"] == ["24778"]
    page = c.get(f"/planner/versions/{job.result['version']}").get_data(as_text=True)
    assert 'id="gp-update"' in page and "24778" in page


def open_store_of(home):
    from gisportal.store import open_store

    return open_store(home, crs="EPSG:5899")


def test_residents_are_told_a_draft_for_comment_is_not_the_plan(home, store, tmp_path):
    from gisportal.web.app import create_app

    path, _, _ = _parcels(tmp_path)
    assert ingest_file(store, path, "parcels", "678", publish=True).published
    res = ingest_file(store, plan_file(tmp_path), "plan", "678", publish=True,
                      consultation=True)
    assert res.published
    client = create_app({"home": str(home)}).test_client()
    answer = client.get("/api/lookup?district=678&sheet=1&parcel=1").json
    assert answer["plan"]["status"] == "consultation"
    assert answer["plan"]["status_label"].startswith("Dự thảo lấy ý kiến")
    for url in ("/districts/678", "/parcels/678/1/1"):
        page = client.get(url).get_data(as_text=True)
        assert 'id="gp-consultation"' in page and "Dự thảo lấy ý kiến" in page, url
    page = client.get("/districts/678?lang=en").get_data(as_text=True)
    assert "Draft for comment" in page
    # Once approved, the label is gone everywhere.
    store.update_meta(res.version.id, {"decision": {
        "number": "12/QĐ-UBND", "date": "2023-06-30", "authority": "UBND tỉnh Lâm Đồng"}})
    answer = client.get("/api/lookup?district=678&sheet=1&parcel=1").json
    assert answer["plan"]["status"] == "approved" and answer["plan"]["status_label"] is None
    assert 'id="gp-consultation"' not in client.get("/districts/678").get_data(as_text=True)


def test_the_review_page_marks_columns_public_and_guards_personal_ones(lam_ha, tmp_path):
    from tests.test_planner_pages import XY, client_for, finished, job_id_of, post, upload

    home, _ = lam_ha
    c = client_for(home, "lan")
    grid = parcel_grid(origin=(XY[0] + 10, XY[1] + 10))
    grid["GhiChu"] = "đất ở ven đường"
    grid["tenchusdd"] = grid["TenChu"]
    path = tmp_path / "thua_co_ghi_chu.gpkg"
    grid.drop(columns="TenChu").to_file(path, driver="GPKG")
    version = finished(home, job_id_of(upload(c, path, kind="parcels"))).result["version"]
    page = c.get(f"/planner/versions/{version}").get_data(as_text=True)
    assert 'id="gp-public-fields"' in page
    assert '<li data-column="tenchusdd" data-personal="1">' in page
    review = f"/planner/versions/{version}"
    r = post(c, f"{review}/public-fields", review, public=["GhiChu", "tenchusdd"])
    assert r.status_code >= 400 and "tenchusdd" in r.get_data(as_text=True)
    r = post(c, f"{review}/public-fields", review, public=["GhiChu"])
    assert r.status_code == 303
    with open_store_of(home) as store:
        assert store.version(version).meta["public_source"]
    page = c.get(review).get_data(as_text=True)
    assert 'value="GhiChu" checked' in page


def test_an_update_keeps_the_columns_marked_public(store, tmp_path):
    from gisportal.outputs import privacy

    whole = three_communes()
    whole["GhiChu"] = "ven suối"
    path = tmp_path / "whole.gpkg"
    whole.to_file(path, driver="GPKG")
    base = ingest_file(store, path, "parcels", "678", publish=True, public_fields=["GhiChu"])
    assert base.published and privacy.is_public(base.version, "src:GhiChu")
    fix = whole[whole["MaXa"] == "24781"]
    path = tmp_path / "fix.gpkg"
    fix.to_file(path, driver="GPKG")
    res = ingest_file(store, path, "parcels", "678", update=True)
    assert privacy.is_public(res.version, "src:GhiChu")
    assert not privacy.is_public(res.version, "src:TenChu")
