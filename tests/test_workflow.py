"""Publish, roll back, history and district status on a real store, and the province map.

Versions are stored straight into a GeoPackage store in a temporary data home (the
pipeline that makes them is tested elsewhere); publishing builds real tiles.
"""

from __future__ import annotations

import re

import geopandas as gpd
import pytest
import shapely

from gisportal.base import seeds
from gisportal.base.errors import NotFoundError, StoreError
from gisportal.services import lookup as lk
from gisportal.services import workflow
from gisportal.services.decisions import attach_decision
from gisportal.store.home import DataHome
from gisportal.web.app import create_app
from tests.conftest import DUC_TRONG_XY
from tests.test_decisions import PDF, TODAY

DISTRICT = "678"


@pytest.fixture
def home(backend, home):
    """The data home on the embedded backends, and once more (``production``) on
    PostgreSQL/PostGIS + S3 (`tests.conftest.backend`)."""
    return home


def has_tiles(home, version) -> bool:
    """Whether the version's tile archive is stored (a file, or an object in S3)."""
    area = DataHome.at(home).tile_area
    return area.exists(DataHome.tile_key(version.district, version.kind, version.id))


def frame(kind: str, land_use: str, n: int = 3) -> gpd.GeoDataFrame:
    x0, y0 = DUC_TRONG_XY
    geoms = [shapely.box(x0 + 40 * i, y0, x0 + 40 * i + 40, y0 + 40) for i in range(n)]
    columns = {
        "parcels": {"commune": ["24778"] * n, "sheet": [1] * n, "parcel": list(range(1, n + 1)),
                    "land_use": [land_use] * n, "area_m2": [1600.0] * n},
        "plan": {"zone_id": [f"Z{i}" for i in range(n)], "land_use": [land_use] * n},
        "boundary": {"level": ["district"], "code": [DISTRICT], "name": ["Đức Trọng"]},
    }[kind]
    if kind == "boundary":
        geoms = [shapely.box(x0 - 500, y0 - 500, x0 + 500, y0 + 500)]
    return gpd.GeoDataFrame(columns, geometry=geoms, crs="EPSG:5899")


def add(store, kind: str, land_use: str = "ONT", *, district: str = DISTRICT,
        errors: int = 0, user: str = "planner1"):
    return store.add_version(
        district, kind, frame(kind, land_use), source_name=f"{kind}_{land_use}.zip",
        source_sha256=f"{len(store.versions()):064x}", created_by=user,
        has_errors=errors > 0,
        meta={"report": {"errors": errors, "warnings": 1, "infos": 2}},
        key_columns=["commune", "sheet", "parcel"] if kind == "parcels" else [])


def approve(store, version, number: str = "1234/QĐ-UBND"):
    return attach_decision(store, version.id, number=number, date="2023-06-30",
                           authority="UBND tỉnh Lâm Đồng", pdf=PDF, today=TODAY).version


# -- publish -----------------------------------------------------------------------------------


def test_a_plan_is_published_only_with_its_decision(home, store):
    plan = add(store, "plan", "ODT")
    with pytest.raises(StoreError) as err:
        workflow.publish(store, plan.id, "planner1")
    assert err.value.code == "PLAN-NO-DECISION"
    assert err.value.what == f"plan version {plan.id} has no approval decision yet"
    assert "signed PDF" in err.value.fix
    assert store.published(DISTRICT, "plan") is None
    assert not has_tiles(home, plan)  # checked before tiles
    approve(store, plan)
    stages = []
    done = workflow.publish(store, plan.id, "planner1", progress=stages.append)
    assert done.changed and done.previous is None
    assert (done.version.id, done.version.status, done.version.published_by) == (
        plan.id, "published", "planner1")
    assert stages[:2] == ["compare", "tiles"] and stages[-1] == "publish"
    assert has_tiles(home, plan)
    out = done.to_dict()
    assert out["changes"]["counts"] == {"added": 3} and not out["changes"]["needs_confirmation"]
    del out["changes"]
    assert out == {"version": plan.id, "previous": None, "changed": True,
                   "district": DISTRICT, "kind": "plan", "consultation": False,
                   "published_at": done.version.published_at}
    # Publishing it again changes nothing.
    again = workflow.publish(store, plan.id, "planner2")
    assert not again.changed and again.version.published_by == "planner1"


def test_a_cadastre_needs_no_decision_but_no_errors(home, store):
    v1 = add(store, "parcels")
    done = workflow.publish(store, v1.id, "planner1")
    assert done.version.status == "published" and done.previous is None
    bad = add(store, "parcels", errors=4)
    with pytest.raises(StoreError) as err:
        workflow.publish(store, bad.id, "planner1")
    assert err.value.code == "STORE-HAS-ERRORS"
    assert err.value.what == f"version {bad.id} has 4 validation errors and cannot be published"
    v2 = add(store, "parcels", "CLN")
    done = workflow.publish(store, v2.id, "planner1", district=DISTRICT, kind="parcels")
    assert done.previous.id == v1.id and store.version(v1.id).status == "superseded"


def test_publish_checks_the_layer_the_planner_is_on(home, store):
    v = add(store, "parcels", district="672")
    with pytest.raises(StoreError) as err:
        workflow.publish(store, v.id, "planner1", district=DISTRICT, kind="parcels")
    assert err.value.code == "VERSION-OTHER-LAYER"
    assert err.value.what == f"version {v.id} is a parcels layer of district 672, " \
                             "not parcels of district 678"
    with pytest.raises(NotFoundError):
        workflow.publish(store, 999, "planner1")


# -- roll back ----------------------------------------------------------------------------------


def test_roll_back_to_an_earlier_version(home, store):
    v1, v2 = add(store, "parcels", "ONT"), add(store, "parcels", "CLN")
    workflow.publish(store, v1.id, "planner1")
    workflow.publish(store, v2.id, "planner1")
    assert lk.lookup_key(store, DISTRICT, 1, 2, "24778")["parcel"]["current_use"] == "CLN"
    done = workflow.rollback(store, DISTRICT, "parcels", v1.id, "planner2")
    assert done.changed and (done.version.id, done.previous.id) == (v1.id, v2.id)
    assert done.version.published_by == "planner2"
    assert store.published(DISTRICT, "parcels").id == v1.id
    assert store.version(v2.id).status == "superseded"
    assert list(store.read(v2.id)["land_use"]) == ["CLN"] * 3  # still readable
    answer = lk.lookup_key(store, DISTRICT, 1, 2, "24778")
    assert (answer["parcel"]["current_use"], answer["parcel"]["version"]) == ("ONT", v1.id)
    # Rolling back to what is published changes nothing.
    assert not workflow.rollback(store, DISTRICT, "parcels", v1.id, "planner2").changed


def test_roll_back_refuses_other_layers_drafts_and_errors(home, store):
    ours = add(store, "parcels")
    workflow.publish(store, ours.id, "planner1")
    other_district = add(store, "parcels", district="672")
    workflow.publish(store, other_district.id, "planner1")
    other_kind = add(store, "boundary")
    workflow.publish(store, other_kind.id, "planner1")
    for v in (other_district, other_kind):
        with pytest.raises(StoreError) as err:
            workflow.rollback(store, DISTRICT, "parcels", v.id, "planner1")
        assert err.value.code == "VERSION-OTHER-LAYER"
        assert err.value.fix.startswith("Choose a version from this layer's own history")
        assert f"--district {v.district} --kind {v.kind}" in err.value.fix
    for v in (add(store, "parcels", errors=2), add(store, "parcels")):
        with pytest.raises(StoreError) as err:
            workflow.rollback(store, DISTRICT, "parcels", v.id, "planner1")
        assert err.value.code == "ROLLBACK-NEVER-PUBLISHED"
    assert store.published(DISTRICT, "parcels").id == ours.id


def test_roll_back_of_a_plan_still_needs_its_decision(home, store):
    # A plan published before decisions were required (the CLI, an import): rolling back
    # to it is publishing it, and the rule applies.
    old = add(store, "plan", "ODT")
    store.publish(old.id, by="cli")
    new = approve(store, add(store, "plan", "CLN"))
    workflow.publish(store, new.id, "planner1")
    with pytest.raises(StoreError) as err:
        workflow.rollback(store, DISTRICT, "plan", old.id, "planner1")
    assert err.value.code == "PLAN-NO-DECISION"
    approve(store, store.version(old.id), number="999/QĐ-UBND")
    assert workflow.rollback(store, DISTRICT, "plan", old.id, "planner1").previous.id == new.id


# -- history -----------------------------------------------------------------------------------


def test_history_lists_every_version_newest_first(home, store):
    v1 = add(store, "plan", "ODT", user="planner1")
    v2 = add(store, "plan", "CLN", errors=3, user="planner2")
    v3 = approve(store, add(store, "plan", "LUC"))
    store.update_meta(v3.id, {"job": 17, "repair": {"changes": 2}})
    workflow.publish(store, v3.id, "planner3")
    rows = workflow.history(store, DISTRICT, "plan")
    assert [r.version for r in rows] == [v3.id, v2.id, v1.id]
    top = rows[0].to_dict()
    assert top["status"] == "published" and top["published_by"] == "planner3"
    assert top["decision"]["number"] == "1234/QĐ-UBND" and top["job"] == 17
    assert top["repaired"] is True and top["source_name"] == "plan_LUC.zip"
    assert (top["errors"], top["warnings"], top["infos"]) == (0, 1, 2)
    assert (rows[1].has_errors, rows[1].errors, rows[1].created_by) == (True, 3, "planner2")
    assert rows[2].decision is None and rows[2].published_at is None
    assert rows[2].source_sha256 == v1.source_sha256
    assert workflow.history(store, DISTRICT, "parcels") == []
    with pytest.raises(NotFoundError):
        workflow.history(store, "Đức Trọng", "plan")


# -- district status ----------------------------------------------------------------------------


def status(store, code=DISTRICT):
    s = workflow.district_status(store, code)
    return s.plan_status, s.cadastre_status, s.portal_status


def test_status_falls_back_to_the_seeds_table(home, store):
    for code, seed in seeds.district_status().items():
        s = workflow.district_status(store, code)
        assert (s.plan_status, s.cadastre_status, s.portal_status) == (
            seed.plan_status, seed.cadastre_status, seed.portal_status)
        known = seed.plan_status != "unknown"  # the 2023 table covers former Lâm Đồng
        assert s.plan_source == "seeds" and s.plan_as_of == ("2023-08" if known else None)
    assert status(store, "676") == ("approved", None, "approved")
    assert status(store, "673") == ("under_appraisal", "in_correction", "in_correction")
    assert status(store, "674") == ("under_appraisal", None, "under_appraisal")
    assert status(store, "593") == ("unknown", None, "unknown")  # former Bình Thuận
    assert status(store, "999") == ("unknown", None, "unknown")


def test_plan_status_follows_the_plan_versions(home, store):
    assert status(store)[0] == "under_appraisal"  # seeds: 678 under appraisal
    draft = add(store, "plan", "ODT")
    s = workflow.district_status(store, DISTRICT)
    assert (s.plan_status, s.plan_source, s.plan_version) == (
        "under_appraisal", "workflow", draft.id)
    store.publish(draft.id, by="cli")  # published without a decision (for consultation)
    assert status(store)[0] == "under_appraisal"
    approve(store, draft)
    s = workflow.district_status(store, DISTRICT)
    assert (s.plan_status, s.portal_status) == ("approved", "approved")
    assert s.decision.number == "1234/QĐ-UBND" and s.plan_as_of == s.to_dict()["plan_as_of"]
    add(store, "plan", "CLN")  # a revision under appraisal: the approved plan stays in force
    assert status(store)[0] == "approved"


def test_cadastre_status_follows_the_parcels_versions(home, store):
    assert status(store)[1] == "digitised"  # seeds: 678 digitised in 2023
    first = add(store, "parcels")
    assert status(store) == ("under_appraisal", "in_correction", "in_correction")
    workflow.publish(store, first.id, "planner1")
    s = workflow.district_status(store, DISTRICT)
    assert (s.cadastre_status, s.cadastre_source, s.parcels_version) == (
        "digitised", "workflow", first.id)
    assert s.portal_status == "digitised"
    add(store, "parcels", errors=5)  # the newest upload has errors: being corrected
    assert status(store)[1:] == ("in_correction", "in_correction")
    add(store, "parcels")  # corrected, clean, not yet published: a version is published
    assert status(store)[1] == "digitised"
    # An approved plan outranks the cadastre on the province map.
    workflow.publish(store, approve(store, add(store, "plan", "ODT")).id, "planner1")
    assert status(store) == ("approved", "digitised", "approved")


def test_statuses_of_the_whole_province(home, store):
    add(store, "parcels", district="672", errors=1)
    add(store, "parcels", district="11111")  # a code the seeds do not know
    every = workflow.district_statuses(store)
    assert list(every)[:30] == [d.code for d in seeds.districts()]
    assert list(every)[30:] == ["11111"]
    assert every["672"].portal_status == "in_correction"
    assert every["11111"].to_dict()["portal_status"] == "in_correction"
    assert every["676"].portal_status == "approved" and every["676"].plan_source == "seeds"
    assert {c: s for c, s in every.items() if c in ("672", DISTRICT)} == {
        "672": workflow.district_status(store, "672"),
        DISTRICT: workflow.district_status(store, DISTRICT)}


def _row_label(html: str, code: str) -> str:
    m = re.search(rf'href="/districts/{code}">[^<]*</a> <small class="alt">([^<]*)</small>', html)
    assert m, html[:2000]
    return m.group(1)


def test_the_province_map_shows_the_derived_status(home, store):
    client = create_app({"home": str(home)}).test_client()
    # Residents see the plan's status only (the cadastre's progress is the staff's).
    assert _row_label(client.get("/").get_data(as_text=True),
                      DISTRICT) == "Đang thẩm định, chưa phê duyệt"
    workflow.publish(store, add(store, "boundary").id, "planner1")
    workflow.publish(store, approve(store, add(store, "plan", "ODT")).id, "planner1")
    html = client.get("/").get_data(as_text=True)
    assert _row_label(html, DISTRICT) == "Đã phê duyệt (có quyết định)"
    # The district's outline on the map carries the same status and colour.
    approved = next(s for s in seeds_statuses() if s["id"] == "approved")
    assert re.search(r'"code": "678", "color": "' + approved["color"]
                     + r'"[^}]*"status": "approved"', html)
    # untouched: the seeds table (plan under appraisal, cadastre in correction)
    assert _row_label(html, "673") == "Đang thẩm định, chưa phê duyệt"
    assert client.get("/districts/678").status_code == 200


def seeds_statuses():
    from gisportal.web import maps

    return maps.composition("province")["plan_statuses"]
