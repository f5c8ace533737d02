"""The year of an annual plan travels with an upload job as --crs and --encoding do:
checked when the upload is submitted, used by the worker, kept for a repair."""

from __future__ import annotations

import pytest

from gisportal import jobs
from gisportal.base.errors import UsageError
from gisportal.store import open_store
from tests.conftest import write_shapefile_zip
from tests.test_annual_plan import annual_2026

TIMEOUT = 120.0


def _upload(home, path, **kw) -> jobs.Job:
    with open(path, "rb") as fh:
        return jobs.submit_upload(home, fh, path.name, district="678", layer="annual_plan",
                                  actor="planner1", **kw)


def test_the_year_of_an_upload_reaches_the_worker_and_a_repair(home, tmp_path):
    path = write_shapefile_zip(annual_2026(), tmp_path / "kh_2026.zip", encoding="tcvn3")
    job = _upload(home, path, year=" 2026 ")
    assert job.params["year"] == 2026
    done = jobs.wait(home, job.id, timeout=TIMEOUT, poll=0.05)
    assert done.state == "done", done.to_dict()
    assert done.result["summary"]["errors"] == 0
    with open_store(home, crs="EPSG:5899") as store:
        version = store.version(done.result["version"])
        assert version.meta["read"]["year_given"] == 2026
        assert list(store.read(version.id)["year"]) == [2026, 2026]
    again = jobs.submit_repair(home, job.id, actor="planner1", start=False)
    assert again.params["year"] == 2026 and again.params["repair"] is True


@pytest.mark.parametrize("year,layer,code", [("26", "annual_plan", "YEAR-INVALID"),
                                             ("2026", "plan", "YEAR-NOT-ANNUAL")])
def test_a_bad_year_is_refused_before_the_upload_is_queued(home, tmp_path, year, layer, code):
    path = write_shapefile_zip(annual_2026(), tmp_path / "kh.zip")
    with open(path, "rb") as fh, pytest.raises(UsageError) as err:
        jobs.submit_upload(home, fh, path.name, district="678", layer=layer,
                           actor="planner1", year=year, start=False)
    assert err.value.code == code
    assert jobs.list_jobs(home) == []
