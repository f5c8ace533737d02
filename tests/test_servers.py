"""The production-mode test servers (tests/servers.py) are real and usable.

Each test asserts behaviour a mock would not have: PostGIS computes areas PROJ agrees
with, the replica really streams and really refuses writes, databases are really apart,
passwords are really checked; S3 stores bytes, serves byte ranges, lists by prefix,
assembles multipart uploads and refuses wrong keys. And stopping a server leaves nothing.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import shapely
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from pyproj import Geod, Transformer

from tests.servers import PostgresReplica, PostgresServer, S3Server, database_name

pytestmark = pytest.mark.production

#: A 0.01° square in Đà Lạt, Lâm Đồng (lon/lat, EPSG:4326).
DALAT_SQUARE = "POLYGON((108.44 11.94,108.45 11.94,108.45 11.95,108.44 11.95,108.44 11.94))"


# ----------------------------------------------------------------------------- PostgreSQL


def test_postgis_computes_areas_as_proj_does(pg_dsn: str) -> None:
    """PostGIS is installed in every test database, knows the project's CRS (VN-2000 / TM-3
    Đà Lạt, EPSG:5899), and its areas agree with pyproj/shapely's."""
    with psycopg.connect(pg_dsn) as conn:
        version = conn.execute("SELECT postgis_full_version()").fetchone()[0]
        planar, geodesic = conn.execute(
            "SELECT ST_Area(ST_Transform(ST_GeomFromText(%(wkt)s, 4326), 5899)), "
            "ST_Area(ST_GeomFromText(%(wkt)s, 4326)::geography)",
            {"wkt": DALAT_SQUARE}).fetchone()
    assert 'POSTGIS="3.' in version and 'PGSQL="150"' in version
    square = shapely.from_wkt(DALAT_SQUARE)
    to_5899 = Transformer.from_crs(4326, 5899, always_xy=True)
    expected_planar = shapely.transform(
        square, lambda x, y: to_5899.transform(x, y), interleaved=False).area
    expected_geodesic = abs(Geod(ellps="WGS84").geometry_area_perimeter(square)[0])
    assert 1.2e6 < planar < 1.21e6  # about 1.1 km × 1.1 km
    assert planar == pytest.approx(expected_planar, rel=1e-7)
    assert geodesic == pytest.approx(expected_geodesic, rel=1e-6)


def test_text_is_utf8_with_unicode_case(pg_dsn: str) -> None:
    """Vietnamese names keep their letters and case-map (UTF-8, C.UTF-8 ctype)."""
    with psycopg.connect(pg_dsn) as conn:
        encoding, upper = conn.execute(
            "SELECT pg_encoding_to_char(encoding), upper('đức trọng') FROM pg_database "
            "WHERE datname = current_database()").fetchone()
    assert (encoding, upper) == ("UTF8", "ĐỨC TRỌNG")


def test_replica_streams_and_refuses_writes(pg_server: PostgresServer,
                                            pg_replica: PostgresReplica,
                                            pg_dsn: str) -> None:
    """A row committed on the primary (in a database created after the replica started) is
    read on the replica once it has caught up; the replica refuses a write."""
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE parcel (id int PRIMARY KEY, owner text, "
                     "geom geometry(Polygon, 4326))")
        conn.execute("INSERT INTO parcel VALUES (1, 'Nguyễn Văn Hùng', "
                     "ST_GeomFromText(%s, 4326))", (DALAT_SQUARE,))
    pg_replica.wait_caught_up(timeout=30)

    with psycopg.connect(pg_replica.dsn_for(pg_dsn), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        assert conn.execute("SELECT id, owner, ST_AsText(geom) FROM parcel").fetchall() == [
            (1, "Nguyễn Văn Hùng", DALAT_SQUARE)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction,
                           match="cannot execute INSERT in a read-only transaction"):
            conn.execute("INSERT INTO parcel VALUES (2, 'Trần Thị Lan', NULL)")

    with pg_server.connect(autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        states = conn.execute("SELECT state FROM pg_stat_replication").fetchall()
    assert states == [("streaming",)]


def test_replica_follows_later_changes(pg_replica: PostgresReplica, pg_dsn: str) -> None:
    """wait_caught_up waits for each new commit, not just the first one."""
    with psycopg.connect(pg_dsn, autocommit=True) as primary:
        primary.execute("CREATE TABLE counter (n int)")
        for n in range(1, 4):
            primary.execute("INSERT INTO counter VALUES (%s)", (n,))
            pg_replica.wait_caught_up(timeout=30)
            with psycopg.connect(pg_replica.dsn_for(pg_dsn)) as replica:
                assert replica.execute("SELECT max(n) FROM counter").fetchone()[0] == n


@pytest.fixture
def second_pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """A second database for one test, made the way pg_dsn makes its one."""
    name = f"second_{os.getpid()}_{time.monotonic_ns()}"
    dsn = pg_server.create_database(name)
    yield dsn
    pg_server.drop_database(name)


def test_test_databases_are_isolated(pg_dsn: str, second_pg_dsn: str) -> None:
    """Two test databases are separate: a table of one does not exist in the other."""
    assert database_name(pg_dsn) != database_name(second_pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE only_here (x int)")
        conn.execute("INSERT INTO only_here VALUES (1), (2)")
    with psycopg.connect(second_pg_dsn) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM only_here")
        conn.rollback()
        conn.execute("CREATE TABLE only_here (x int)")
        assert conn.execute("SELECT count(*) FROM only_here").fetchone()[0] == 0
        # Both come from the PostGIS template.
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'"
                            ).fetchone()[0] == 1
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM only_here").fetchone()[0] == 2


def test_drop_database_ends_open_connections(pg_server: PostgresServer) -> None:
    """drop_database works while a connection is open (WITH (FORCE)), and the database is
    gone afterwards."""
    dsn = pg_server.create_database("to_be_dropped")
    held = psycopg.connect(dsn)
    try:
        pg_server.drop_database("to_be_dropped")
        with pg_server.connect(autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                                ("to_be_dropped",)).fetchone()[0] == 0
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
    finally:
        held.close()


def test_passwords_are_checked(pg_server: PostgresServer) -> None:
    """TCP connections authenticate (scram-sha-256), as in production: a wrong password is
    refused."""
    wrong = pg_server.dsn.replace(pg_server.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_stopping_a_server_leaves_nothing_behind() -> None:
    """A stopped server leaves no process (postmaster or child), no port and no files."""
    server = PostgresServer.start()
    pid, port, root = server.process.pid, server.port, server.root
    with server.connect():  # a backend process exists
        children = [int(p.name) for p in Path("/proc").glob("[0-9]*")
                    if _ppid(int(p.name)) == pid]
        assert children, "a running PostgreSQL has child processes"
        server.stop()
    for p in [pid, *children]:
        assert not _alive(p), f"process {p} outlived the server"
    assert _port_is_free(port)
    assert not root.exists()


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ----------------------------------------------------------------------------- S3


def test_put_get_range_list_delete(s3_server: S3Server, s3_bucket: str) -> None:
    """Objects round-trip byte for byte; a ranged GET returns exactly the range; listing
    by prefix lists only that prefix; a deleted object is gone."""
    s3 = s3_server.client()
    data = bytes(range(256)) * 4
    keys = ["plans/2021-2030/lam-dong.gpkg", "plans/2021-2030/da-lat.gpkg", "cadastre/x.zip"]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=s3_bucket, Key=key, Body=data[i:])

    assert s3.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read() == data

    part = s3.get_object(Bucket=s3_bucket, Key=keys[0], Range="bytes=10-19")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 10-19/{len(data)}"
    assert part["Body"].read() == data[10:20]

    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="plans/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(keys[:2])
    assert {o["Key"]: o["Size"] for o in listed["Contents"]} == {
        keys[0]: len(data), keys[1]: len(data) - 1}

    s3.delete_object(Bucket=s3_bucket, Key=keys[0])
    with pytest.raises(ClientError) as gone:
        s3.get_object(Bucket=s3_bucket, Key=keys[0])
    assert gone.value.response["Error"]["Code"] == "NoSuchKey"
    listed = s3.list_objects_v2(Bucket=s3_bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(keys[1:])


def test_multipart_upload_of_12_mb(s3_server: S3Server, s3_bucket: str) -> None:
    """A 12 MB object uploaded in three parts (5 MiB, 5 MiB, the rest) reads back whole,
    and a range across the first part boundary is exact."""
    s3 = s3_server.client()
    data = os.urandom(12_000_000)
    part_size = 5 * 1024 * 1024
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key="tiles/big.pmtiles")
    parts = []
    for number, start in enumerate(range(0, len(data), part_size), start=1):
        done = s3.upload_part(Bucket=s3_bucket, Key="tiles/big.pmtiles", PartNumber=number,
                              UploadId=upload["UploadId"], Body=data[start:start + part_size])
        parts.append({"PartNumber": number, "ETag": done["ETag"]})
    assert len(parts) == 3
    s3.complete_multipart_upload(Bucket=s3_bucket, Key="tiles/big.pmtiles",
                                 UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})

    head = s3.head_object(Bucket=s3_bucket, Key="tiles/big.pmtiles")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # S3's multipart ETag: <md5>-<parts>
    whole = s3.get_object(Bucket=s3_bucket, Key="tiles/big.pmtiles")["Body"].read()
    assert hashlib.sha256(whole).digest() == hashlib.sha256(data).digest()
    lo, hi = part_size - 10, part_size + 9
    across = s3.get_object(Bucket=s3_bucket, Key="tiles/big.pmtiles", Range=f"bytes={lo}-{hi}")
    assert across["Body"].read() == data[lo:hi + 1]


def test_objects_survive_across_clients(s3_server: S3Server, s3_bucket: str) -> None:
    """What one client stores, a new client reads, and so does another process configured
    only by s3_server.env() (the standard AWS_* variables)."""
    s3_server.client().put_object(Bucket=s3_bucket, Key="a/b.txt", Body="Đà Lạt".encode())
    again = s3_server.client()
    assert again.get_object(Bucket=s3_bucket, Key="a/b.txt")["Body"].read().decode() == "Đà Lạt"

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3_server.env())
    script = ("import boto3, sys; s3 = boto3.client('s3'); "
              "sys.stdout.write(s3.get_object(Bucket=sys.argv[1], Key='a/b.txt')"
              "['Body'].read().decode())")
    out = subprocess.run([sys.executable, "-c", script, s3_bucket], env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout == "Đà Lạt"


def test_wrong_or_missing_keys_are_refused(s3_server: S3Server, s3_bucket: str) -> None:
    """Only the configured identity gets in: a wrong secret and an unsigned request fail."""
    import boto3

    wrong = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                         aws_access_key_id=s3_server.access_key,
                         aws_secret_access_key="wrong-secret")
    anonymous = boto3.client("s3", endpoint_url=s3_server.endpoint_url,
                             region_name="us-east-1", config=Config(signature_version=UNSIGNED))
    for client in (wrong, anonymous):
        with pytest.raises(ClientError) as refused:
            client.list_objects_v2(Bucket=s3_bucket)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_each_test_gets_an_empty_bucket_of_its_own(s3_server: S3Server,
                                                   s3_bucket: str) -> None:
    """s3_bucket is new and empty (so tests cannot see each other's objects)."""
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    names = [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]
    assert s3_bucket in names
