"""``GET /healthz``: 200 when the node can serve, 503 naming the failed check (and never
its paths or addresses) when it cannot; the object store is checked in S3 mode."""

from __future__ import annotations

import pytest

from gisportal.web.app import create_app


def test_a_healthy_embedded_node_answers_200_with_its_checks(home):
    client = create_app({"home": str(home)}).test_client()
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    doc = r.get_json()
    assert doc["status"] == "ok"
    assert set(doc["checks"]) == {"store", "files", "scratch"}
    assert all(c["status"] == "ok" and c["ms"] >= 0 for c in doc["checks"].values())


def test_a_broken_catalogue_is_a_503_that_names_the_check_not_the_path(home):
    app = create_app({"home": str(home)})
    # The catalogue is opened on the first request that needs the store.
    (home / "catalogue.sqlite").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (home / f"catalogue.sqlite{suffix}").unlink(missing_ok=True)
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    doc = r.get_json()
    assert doc["status"] == "fail"
    assert doc["checks"]["store"]["status"] == "fail"
    assert doc["checks"]["scratch"]["status"] == "ok"
    assert str(home) not in r.get_data(as_text=True)


@pytest.mark.production
def test_s3_mode_checks_the_object_store(home, s3_server, s3_bucket, monkeypatch):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    good = create_app({"home": str(home), "files": f"s3://{s3_bucket}/gp"}).test_client()
    r = good.get("/healthz")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["checks"]["files"]["status"] == "ok"

    bad = create_app({"home": str(home), "files": "s3://no-such-bucket-here/gp"})
    r = bad.test_client().get("/healthz")
    assert r.status_code == 503
    doc = r.get_json()
    assert doc["checks"]["files"]["status"] == "fail"
    assert "no-such-bucket" not in r.get_data(as_text=True)


def test_answers_are_reused_for_two_seconds_so_a_flood_costs_nothing(home):
    from gisportal.services import health
    from gisportal.store import DataHome

    data_home = DataHome({"home": str(home)})
    first = health.check(data_home)
    assert first.ok
    assert health.check(data_home) is first  # within CACHE_SECONDS: not run again
    fresh = health.check(data_home, max_age=0)
    assert fresh is not first and fresh.ok
