"""Read replicas (``GISPORTAL_DATABASE_REPLICAS``) against a real primary and a real
streaming hot standby (``pg_server``, ``pg_replica`` of tests/servers.py).

What is proved, not assumed: a resident's look-up is answered by the replica (its
connection shows in the replica's ``pg_stat_activity``, and with the replica's replay
paused it still answers the version the replica has, while the primary already
publishes the next one); staff reads pinned to the primary see a publish at once; a
version id learnt from the primary reads even where the replica has neither its row nor
its table yet; the replica shows the publish once it has caught up; and a replica that
is down (nothing listens at its port) never fails a look-up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gisportal.services import lookup as lk
from gisportal.services.ingest import ingest_file
from gisportal.store import postgis
from gisportal.store.home import DataHome, on_primary
from gisportal.web import get_store
from gisportal.web.app import create_app
from tests.conftest import parcel_grid, write_shapefile_zip
from tests.servers import PostgresReplica, _free_ports, database_name

pytestmark = pytest.mark.production

DISTRICT = "678"


@pytest.fixture
def replicated(home: Path, production_env: str, pg_replica: PostgresReplica,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This test's database with the session's replica as ``GISPORTAL_DATABASE_REPLICAS``;
    the replica's DSN. The process's record of failed replicas is cleared afterwards."""
    pg_replica.wait_caught_up()  # the test's database exists on the replica
    replica = pg_replica.dsn_for(production_env)
    monkeypatch.setenv("GISPORTAL_DATABASE_REPLICAS", replica)
    try:
        yield replica
    finally:
        postgis._replica_down.clear()


def publish_parcels(store, tmp_path: Path, land_use: str) -> int:
    """Ingest and publish the parcels of DISTRICT, every one of them in `land_use`; the
    version id (a job worker's store: every read on the primary)."""
    gdf = parcel_grid()
    gdf["LoaiDat"] = land_use
    path = write_shapefile_zip(gdf, tmp_path / f"thua_{land_use}.zip")
    result = ingest_file(store, path, "parcels", DISTRICT, publish=True)
    assert result.published, result
    return result.version.id


@contextmanager
def replay_paused(replica: PostgresReplica) -> Iterator[None]:
    """The replica receives WAL but applies none of it until the block ends."""
    with replica.connect("postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        with replica.connect("postgres", autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


def replica_sessions(replica: PostgresReplica, dsn: str) -> int:
    """Connections this process holds on the replica's copy of the test database."""
    with replica.connect("postgres", autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                            "AND application_name = %s",
                            (database_name(dsn), f"gisportal[{os.getpid()}]")).fetchone()[0]


def test_public_reads_come_from_the_replica_and_staff_reads_from_the_primary(
        home: Path, tmp_path: Path, replicated: str, pg_replica: PostgresReplica) -> None:
    writer = DataHome.at(home).open_store()  # as a job worker: no replicas
    assert writer.replicas == ()
    v1 = publish_parcels(writer, tmp_path, "ONT")
    pg_replica.wait_caught_up()

    web = DataHome.at(home)
    public = web.store  # the web app's store
    assert public.replicas == (replicated,)
    staff = on_primary(public)
    assert staff is public.primary() and staff is not public
    assert replica_sessions(pg_replica, replicated) == 0
    answer = lk.lookup_key(public, DISTRICT, 1, 3)
    assert answer["parcel"]["version"] == v1 and answer["parcel"]["current_use"] == "ONT"
    assert replica_sessions(pg_replica, replicated) >= 1  # the look-up's connection

    with replay_paused(pg_replica):
        v2 = publish_parcels(writer, tmp_path, "CLN")
        # The primary has published v2; the replica, not replaying, still has v1.
        assert staff.published(DISTRICT, "parcels").id == v2
        assert lk.lookup_key(staff, DISTRICT, 1, 3)["parcel"]["current_use"] == "CLN"
        assert public.published(DISTRICT, "parcels").id == v1
        answer = lk.lookup_key(public, DISTRICT, 1, 3)
        assert answer["parcel"]["version"] == v1 and answer["parcel"]["current_use"] == "ONT"
        assert [v.id for v in public.versions(DISTRICT, "parcels")] == [v1]
        # A version id learnt from the primary reads through the default store although
        # the replica has neither its row nor its table: the primary answers instead.
        assert public.version(v2).status == "published"
        assert set(public.read(v2)["land_use"]) == {"CLN"}
        assert public.find(v2, {"sheet": 1, "parcel": 3})["land_use"].tolist() == ["CLN"]
        assert len(public.feature_ids(v2)) == 20
        # The web app: the residents' look-up reads the replica, a planner route's store
        # is pinned to the primary.
        app = create_app({"home": str(home)})
        got = app.test_client().get(f"/api/lookup?district={DISTRICT}&sheet=1&parcel=3")
        assert got.status_code == 200 and got.json["parcel"]["version"] == v1
        with app.app_context():
            assert get_store().published(DISTRICT, "parcels").id == v1
            assert get_store(primary=True).published(DISTRICT, "parcels").id == v2

    pg_replica.wait_caught_up()
    assert public.published(DISTRICT, "parcels").id == v2
    answer = lk.lookup_key(public, DISTRICT, 1, 3)
    assert answer["parcel"]["version"] == v2 and answer["parcel"]["current_use"] == "CLN"
    assert postgis._replica_down == {}  # the replica never failed
    writer.close()


def test_a_replica_that_is_down_never_fails_a_look_up(
        home: Path, tmp_path: Path, replicated: str, pg_replica: PostgresReplica,
        monkeypatch: pytest.MonkeyPatch) -> None:
    writer = DataHome.at(home).open_store()
    v1 = publish_parcels(writer, tmp_path, "ONT")
    pg_replica.wait_caught_up()
    port = pg_replica.port
    dead = replicated.replace(f":{port}/", f":{_free_ports(1)[0]}/")  # nothing listens
    assert dead != replicated

    # Only a dead replica: every look-up is answered by the primary; the replica is
    # tried once, then left alone for the back-off (one failure recorded, not five).
    monkeypatch.setenv("GISPORTAL_DATABASE_REPLICAS", dead)
    public = DataHome.at(home).store
    for _ in range(5):
        answer = lk.lookup_key(public, DISTRICT, 1, 3)
        assert answer["parcel"]["version"] == v1 and answer["parcel"]["current_use"] == "ONT"
    assert postgis._replica_down[dead][0] == 1
    assert replica_sessions(pg_replica, replicated) == 0

    # Once its back-off has passed it is tried again, fails again, and waits longer.
    failures, retry_at = postgis._replica_down[dead]
    while time.monotonic() < retry_at:
        time.sleep(0.05)
    assert public.published(DISTRICT, "parcels").id == v1
    assert postgis._replica_down[dead][0] == 2
    assert postgis._replica_down[dead][1] - time.monotonic() > postgis.REPLICA_BACKOFF_S

    # A dead one and a live one: look-ups answer, the live replica serves them.
    postgis._replica_down.clear()
    monkeypatch.setenv("GISPORTAL_DATABASE_REPLICAS", f" {dead} , ,{replicated}")
    public = DataHome.at(home).store
    assert public.replicas == (dead, replicated)
    for _ in range(4):
        assert lk.lookup_key(public, DISTRICT, 1, 3)["parcel"]["version"] == v1
    assert dead in postgis._replica_down and replicated not in postgis._replica_down
    assert replica_sessions(pg_replica, replicated) >= 1
    writer.close()
