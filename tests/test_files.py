"""File areas (gisportal/store/files.py): one contract, a folder and a real S3 server.

The S3 backend runs against SeaweedFS (``s3_server``/``s3_bucket`` of tests/servers.py),
never a mock: the properties that matter — a PUT is atomic, a failed multipart upload
leaves nothing, a ``Range`` GET returns exactly the bytes asked for, a replaced object is
noticed by its ETag — are properties of the server, which a mock would only restate.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gisportal.base.errors import InputError, UsageError
from gisportal.store import files
from gisportal.store.files import FileArea, LocalArea, ObjectChangedError, S3Area


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> dict[str, str]:
    """The standard AWS_* variables of the test server, as production sets them."""
    env = s3_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.production)])
def area(request, tmp_path) -> Iterator[FileArea]:
    if request.param == "local":
        yield LocalArea(tmp_path / "area")
    else:
        request.getfixturevalue("s3_env")
        bucket = request.getfixturevalue("s3_bucket")
        yield S3Area(bucket, "gp/uploads")


def _blob(n: int, seed: int = 1) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


class _Chunks(io.RawIOBase):
    """A request-body-like stream: fixed-size reads, no seek, counts what was read."""

    def __init__(self, data: bytes, fail_at: int | None = None) -> None:
        self.data, self.pos, self.fail_at = data, 0, fail_at

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.fail_at is not None and self.pos >= self.fail_at:
            raise ConnectionResetError("the client went away")
        n = len(self.data) - self.pos if n < 0 else min(n, 256 * 1024)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def test_put_file_open_range_stat_list_delete(area, tmp_path):
    src = tmp_path / "thửa đất.zip"
    payload = _blob(300_000)
    src.write_bytes(payload)
    assert area.put_file("7/thửa đất.zip", src) == len(payload)
    assert src.exists()  # not moved unless asked
    with area.open("7/thửa đất.zip") as fh:
        assert fh.read() == payload
    assert area.read_bytes("7/thửa đất.zip") == payload
    assert area.read_range("7/thửa đất.zip", 1000, 77) == payload[1000:1077]
    assert area.read_range("7/thửa đất.zip", len(payload) - 5, 100) == payload[-5:]
    info = area.stat("7/thửa đất.zip")
    assert info.size == len(payload) == area.size("7/thửa đất.zip") and info.mtime > 0
    assert area.exists("7/thửa đất.zip") and not area.exists("7/nothing")
    area.put_bytes("7/report.json", b"{}")
    area.put_bytes("8/report.json", b"[]")
    assert [f.key for f in area.list("7/")] == ["7/report.json", "7/thửa đất.zip"]
    assert [f.key for f in area.list()] == ["7/report.json", "7/thửa đất.zip",
                                            "8/report.json"]
    assert {f.key: f.size for f in area.list("8")} == {"8/report.json": 2}
    area.delete("8/report.json")
    area.delete("8/report.json")  # twice is fine
    assert not area.exists("8/report.json")
    assert area.delete_prefix("7/") == 2
    assert list(area.list()) == []


def test_missing_keys_are_file_not_found(area):
    with pytest.raises(FileNotFoundError):
        area.stat("1/none.zip")
    with pytest.raises(FileNotFoundError):
        area.read_bytes("1/none.zip")
    with pytest.raises(FileNotFoundError):
        area.read_range("1/none.zip", 0, 10)
    with pytest.raises(FileNotFoundError), area.local_copy("1/none.zip", "/nonexistent"):
        pass


@pytest.mark.parametrize("key", ["../catalogue.sqlite", "/etc/passwd", "a/../../b", "a//b",
                                 "", "a\\b", "./x"])
def test_keys_that_could_leave_the_area_are_refused(area, key):
    with pytest.raises(UsageError):
        area.put_bytes(key, b"x")


def test_put_stream_large_is_multipart_and_exact(area):
    payload = _blob(files.PART_SIZE * 2 + 12345, seed=2)
    seen = hashlib.sha256()
    size = area.put_stream("9/big.gpkg", _Chunks(payload), max_bytes=len(payload),
                           on_chunk=seen.update)
    assert size == len(payload)
    assert seen.hexdigest() == hashlib.sha256(payload).hexdigest()
    assert area.stat("9/big.gpkg").size == len(payload)
    assert area.read_range("9/big.gpkg", files.PART_SIZE - 3, 6) == \
        payload[files.PART_SIZE - 3:files.PART_SIZE + 3]
    assert hashlib.sha256(area.read_bytes("9/big.gpkg")).digest() == \
        hashlib.sha256(payload).digest()


def test_put_stream_over_the_limit_or_broken_leaves_nothing(area):
    payload = _blob(files.PART_SIZE * 2 + 1, seed=3)
    with pytest.raises(InputError) as err:
        area.put_stream("9/big.gpkg", _Chunks(payload), max_bytes=files.PART_SIZE + 10)
    assert err.value.code == "FILE-TOO-BIG"
    with pytest.raises(ConnectionResetError):
        area.put_stream("9/big.gpkg", _Chunks(payload, fail_at=files.PART_SIZE + 1),
                        max_bytes=len(payload))
    assert not area.exists("9/big.gpkg") and list(area.list()) == []


def test_a_replaced_file_is_seen_by_its_etag(area):
    area.put_bytes("t/v1.pmtiles", b"first version")
    etag = area.stat("t/v1.pmtiles").etag
    assert area.read_range("t/v1.pmtiles", 0, 5, etag=etag) == b"first"
    area.put_bytes("t/v1.pmtiles", b"second version, longer")
    assert area.stat("t/v1.pmtiles").etag != etag
    with pytest.raises(ObjectChangedError):
        area.read_range("t/v1.pmtiles", 0, 5, etag=etag)


def test_readers_never_see_a_partial_put(area, tmp_path):
    """While one thread replaces a 20 MB file again and again, readers only ever see one
    of the complete versions (S3 PUT atomic; the folder renames a temp file)."""
    versions = [_blob(20 * 1024**2 // 4, seed=s) for s in (10, 11)]
    digests = {hashlib.sha256(v).hexdigest() for v in versions}
    area.put_bytes("x/a.bin", versions[0])
    stop = threading.Event()
    bad: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                got = hashlib.sha256(area.read_bytes("x/a.bin")).hexdigest()
            except FileNotFoundError:
                got = "missing"
            if got not in digests:
                bad.append(got)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(6):
            src = tmp_path / f"v{i}"
            src.write_bytes(versions[i % 2])
            area.put_file("x/a.bin", src, move=True)
            assert not src.exists()
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert bad == []


def test_local_copy(area, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    area.put_bytes("3/Đức Trọng.geojson", b'{"type": "FeatureCollection"}')
    with area.local_copy("3/Đức Trọng.geojson", scratch) as path:
        assert path.name == "Đức Trọng.geojson"
        assert path.read_bytes() == b'{"type": "FeatureCollection"}'
        if area.remote:
            assert scratch in path.parents
            assert path.parent.name.startswith(f"gisportal-fetch-{os.getpid()}-")
        else:
            assert path == area.local_file("3/Đức Trọng.geojson")  # no copy
    assert list(scratch.iterdir()) == []  # the fetched copy is gone


def test_local_area_temp_files_are_not_listed(tmp_path):
    area = LocalArea(tmp_path)
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / ".report.json.123.abcd.tmp").write_text("partial")
    (tmp_path / ".incoming-0a1b").mkdir()
    (tmp_path / ".incoming-0a1b" / "x.zip").write_text("partial")
    area.put_bytes("1/report.json", b"{}")
    assert [f.key for f in area.list()] == ["1/report.json"]


def test_local_move_is_a_rename(tmp_path):
    area = LocalArea(tmp_path / "a")
    src = tmp_path / "scratch.bin"
    src.write_bytes(b"abc")
    inode = src.stat().st_ino
    area.put_file("k/x.bin", src, move=True)
    assert not src.exists() and area.path("k/x.bin").stat().st_ino == inode


@pytest.mark.parametrize("location, expected", [
    ("s3://gisportal/prod", ("gisportal", "prod")),
    ("s3://gisportal", ("gisportal", "")),
    ("s3://my.bucket/a/b/", ("my.bucket", "a/b")),
])
def test_parse_location(location, expected):
    assert files.parse_location(location) == expected


@pytest.mark.parametrize("location", ["/srv/files", "s3://", "s3://UPPER/x", "http://x/y",
                                      "s3://b/../x"])
def test_parse_location_refuses(location):
    with pytest.raises(UsageError):
        files.parse_location(location)


def test_open_area_selects_the_backend(tmp_path):
    assert isinstance(files.open_area("", "tiles", tmp_path / "tiles"), LocalArea)
    s3 = files.open_area("s3://gisportal/prod", "tiles", tmp_path / "tiles")
    assert isinstance(s3, S3Area) and s3.describe("678/parcels/v1.pmtiles") == \
        "s3://gisportal/prod/tiles/678/parcels/v1.pmtiles"


@pytest.mark.production
def test_one_client_per_process_and_a_fresh_one_after_fork(s3_env, s3_bucket):
    client = files.s3_client()
    assert files.s3_client() is client
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a client of its own, which works
        try:
            child = files.s3_client()
            S3Area(s3_bucket, "fork").put_bytes("child.txt", b"from the child")
            os.write(w, b"1" if child is not client else b"0")
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1" and status == 0
    os.close(r)
    assert S3Area(s3_bucket, "fork").read_bytes("child.txt") == b"from the child"


@pytest.mark.production
def test_an_unreachable_store_is_a_503_error(monkeypatch, s3_env):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(files.FileAreaError) as err:
        S3Area("nobucket", "gp/uploads").stat("7/a.zip")
    # Planners read job errors: the area and key, not the endpoint, bucket or key id.
    assert err.value.http_status == 503 and err.value.where == "uploads/7/a.zip"
    shown = " ".join(v for v in err.value.to_dict().values() if v)
    for secret in ("127.0.0.1:9", "nobucket", s3_env["AWS_ACCESS_KEY_ID"],
                   s3_env["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in shown


def test_paths_are_not_shared_between_keys(tmp_path):
    area = LocalArea(tmp_path)
    area.put_bytes("a/b", b"1")
    assert area.local_file("a/b") == Path(tmp_path / "a" / "b")


# --------------------------------------------------------------------------- PMTiles by range


def test_pmtiles_reader_over_an_area_reads_what_the_file_holds(area, tmp_path):
    """The same reader, given ranged reads of the area instead of a mapped file: every
    tile (leaf directories included), runs and metadata as from the local file; a
    replaced archive is noticed (S3: by its ETag on the next range) and reopened."""
    from gisportal.outputs.tiles import pmtiles as pm
    from tests.test_tiles import _archive_with

    path, _ = _archive_with(tmp_path, "first", range(0, 6), leaf_size=4)
    key = "678/parcels/v1.pmtiles"
    area.put_file(key, path)
    pm.clear_cache()
    reader = pm.open_area_reader(area, key)
    assert pm.open_area_reader(area, key) is reader  # cached per process
    with pm.PMTilesReader(path) as local:
        assert reader.metadata() == local.metadata() and reader.header == local.header
        cells = [(z, x, y) for z, x, y, _, _ in local.entries()]
        assert len(cells) > 40
        for z, x, y in cells:
            assert reader.tile(z, x, y) == local.tile(z, x, y), (z, x, y)
        assert reader.tile(5, 31, 31) is None
    second, _ = _archive_with(tmp_path, "second", range(0, 6), leaf_size=4)
    area.put_file(key, second)
    if area.remote:
        with pytest.raises(ObjectChangedError):
            reader.tile(5, 1, 2)
        pm.forget_area_reader(area, key)
    again = pm.open_area_reader(area, key)
    assert again is not reader
    assert again.plain(again.tile(5, 1, 2)) == b"second 5/1/2"
    pm.clear_cache()


# --------------------------------------------------------------------------- end to end


def _portal(home: Path, work: Path) -> dict:
    """A Lâm Hà office, built as planners do: parcels uploaded through `jobs.submit_upload`
    and published by the job worker, a plan uploaded, its decision PDF attached and the
    plan published by a publish job; then every tile of both layers, a report, the review
    page and the PDF fetched over the Flask test client."""
    from gisportal import jobs
    from gisportal.accounts import users
    from gisportal.outputs.tiles.pmtiles import PMTilesReader, clear_cache
    from gisportal.services.decisions import attach_decision
    from gisportal.store import open_store
    from gisportal.web.app import create_app
    from tests.conftest import sign_in
    from tests.test_planner_pages import LAM_HA, PDF, PW, USES_V1, parcels_zip, plan_file

    home.mkdir(parents=True, exist_ok=True)
    users.add_user(home, "lan", "planner", PW, districts=[LAM_HA])
    with open(parcels_zip(work), "rb") as fh:
        parcels_job = jobs.submit_upload(home, fh, "thửa đất.zip", district=LAM_HA,
                                         layer="parcels", actor="lan", publish=True)
    parcels_job = jobs.wait(home, parcels_job.id, timeout=180, poll=0.1)
    assert parcels_job.state == "done" and parcels_job.result["published"], \
        parcels_job.to_dict()
    with open(plan_file(work, USES_V1), "rb") as fh:
        plan_job = jobs.submit_upload(home, fh, "quy hoạch.gpkg", district=LAM_HA,
                                      layer="plan", actor="lan")
    plan_job = jobs.wait(home, plan_job.id, timeout=180, poll=0.1)
    assert plan_job.state == "done", plan_job.to_dict()
    plan_id = plan_job.result["version"]
    with open_store(home, crs="EPSG:5899") as store:
        attached = attach_decision(store, plan_id, number="99/QĐ-UBND", date="2022-03-01",
                                   authority="UBND tỉnh Lâm Đồng", pdf=io.BytesIO(PDF),
                                   pdf_name="QĐ 99.pdf")
    publish_job = jobs.wait(home, jobs.submit_publish(home, plan_id, district=LAM_HA,
                                                      layer="plan", actor="lan").id,
                            timeout=180, poll=0.1)
    assert publish_job.state == "done", publish_job.to_dict()

    clear_cache()
    client = create_app({"home": str(home)}).test_client()
    tiles: dict[str, tuple[int, bytes, bytes]] = {}
    for kind, version in (("parcels", parcels_job.result["version"]), ("plan", plan_id)):
        archive = work / f"{kind}.pmtiles"  # the archive, wherever it is kept
        from gisportal.store.home import DataHome

        area = DataHome.at(home).tile_area
        archive.write_bytes(area.read_bytes(DataHome.tile_key(LAM_HA, kind, version)))
        with PMTilesReader(archive) as reader:
            cells = sorted({(z, x, y) for z, x, y, _, _ in reader.entries()})
        assert cells
        # Every stored tile and a few around them (204s), gzip and plain.
        for z, x, y in [*cells, (12, 0, 0), (16, cells[-1][1] + 1, cells[-1][2])]:
            url = f"/tiles/{LAM_HA}/{kind}/{z}/{x}/{y}.pbf"
            gz = client.get(url, headers={"Accept-Encoding": "gzip"})
            plain = client.get(url, headers={"Accept-Encoding": "identity"})
            assert gz.status_code == plain.status_code in (200, 204), url
            tiles[url] = (gz.status_code, gz.get_data(), plain.get_data())
        assert sum(tiles[f"/tiles/{LAM_HA}/{kind}/{z}/{x}/{y}.pbf"][0] == 200
                   for z, x, y in cells) == len(cells)
    assert sign_in(client, "lan", PW).status_code == 303
    review = client.get(f"/planner/versions/{plan_id}")
    assert review.status_code == 200
    report = client.get(f"/planner/versions/{plan_id}/report.json")
    assert report.status_code == 200 and report.mimetype == "application/json"
    findings = client.get(f"/api/versions/{plan_id}/findings")
    assert findings.status_code == 200
    html = client.get(f"/planner/versions/{plan_id}/report.html")
    assert html.status_code == 200 and b"<html" in html.get_data().lower()
    sha = attached.decision.pdf_sha256
    pdf = client.get(f"/planner/decisions/{sha}.pdf")
    assert pdf.status_code == 200 and pdf.get_data() == PDF
    assert pdf.headers["Content-Length"] == str(len(PDF))
    assert client.get(f"/planner/decisions/{'0' * 64}.pdf").status_code == 404
    return {"tiles": tiles, "report": report.get_json(), "pdf": pdf.get_data(), "sha": sha,
            "jobs": (parcels_job, plan_job), "findings": findings.get_json()["summary"]}


@pytest.mark.production
def test_s3_mode_end_to_end_matches_the_embedded_files_byte_for_byte(
        tmp_path, monkeypatch, fast_passwords, s3_server, s3_bucket):
    """The same office in the embedded mode and with ``GISPORTAL_FILES=s3://…`` (store and
    catalogue embedded in both): the same tiles, byte for byte, the same report and
    PDF; and in S3 mode no upload, report, archive or PDF on the node's disk."""
    work = tmp_path / "work"
    work.mkdir()
    local_home = tmp_path / "local"
    monkeypatch.setenv("GISPORTAL_HOME", str(local_home))
    monkeypatch.delenv("GISPORTAL_FILES", raising=False)
    embedded = _portal(local_home, work)

    s3_home = tmp_path / "s3"
    monkeypatch.setenv("GISPORTAL_HOME", str(s3_home))
    monkeypatch.setenv("GISPORTAL_FILES", f"s3://{s3_bucket}/gp")
    # A tile served from the node's copy of an archive asks for its ETag first, so the
    # archive replaced under its key below is noticed on the next request whether or
    # not the copy is there yet (the default asks every 30 s).
    monkeypatch.setenv("GISPORTAL_TILE_CACHE_CHECK_SECONDS", "0")
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    remote = _portal(s3_home, work)

    assert remote["tiles"].keys() == embedded["tiles"].keys()
    for url, got in remote["tiles"].items():
        assert got == embedded["tiles"][url], url
    assert remote["sha"] == embedded["sha"] and remote["pdf"] == embedded["pdf"]
    assert remote["report"]["summary"] == embedded["report"]["summary"]
    assert remote["findings"] == embedded["findings"]

    # What the bucket holds: every shared file, under the prefix.
    keys = {o["Key"] for page in s3_server.client().get_paginator("list_objects_v2")
            .paginate(Bucket=s3_bucket) for o in page.get("Contents", [])}
    parcels_job, plan_job = remote["jobs"]
    assert {f"gp/{job.params['upload']}" for job in (parcels_job, plan_job)} <= keys
    assert {f"gp/uploads/{plan_job.id}/report.{ext}" for ext in ("json", "geojson", "html")
            } <= keys
    assert f"gp/decisions/{remote['sha']}.pdf" in keys
    assert {k for k in keys if k.endswith(".pmtiles")} == {
        f"gp/tiles/676/parcels/v{parcels_job.result['version']}.pmtiles",
        f"gp/tiles/676/plan/v{plan_job.result['version']}.pmtiles"}

    # And the node's disk: the store, the catalogue, scratch (empty), logs, locks, and
    # the node's cache of tile archives (copies of the bucket's, not state: see below).
    on_disk = sorted(p.relative_to(s3_home).as_posix() for p in s3_home.rglob("*")
                     if p.is_file() and not p.relative_to(s3_home).as_posix()
                     .startswith("cache/tiles/"))
    shared = [p for p in on_disk if p.split("/")[0] in ("uploads", "tiles", "decisions",
                                                       "exports")
              or p.endswith((".pmtiles", ".pdf", ".zip", ".geojson", ".html"))
              or "report" in p or "thửa" in p or "quy hoạch" in p]
    assert shared == [], shared
    assert {p.split("/")[0] for p in on_disk} <= {
        "catalogue.sqlite", "catalogue.sqlite-wal", "catalogue.sqlite-shm", "districts",
        "jobs", "logs", "tmp", "secret_key"}, on_disk
    assert not [p for p in on_disk if p.startswith("tmp/")], on_disk
    cached = {p.name for p in (s3_home / "cache" / "tiles").glob("*.pmtiles")}
    assert len(cached) <= 2 and all(
        (s3_home / "cache" / "tiles" / n).read_bytes() in
        {s3_server.client().get_object(Bucket=s3_bucket, Key=k)["Body"].read()
         for k in keys if k.endswith(".pmtiles")} for n in cached)

    # An archive replaced under its key (rebuilt after a clean-up, by another node) is
    # noticed by its ETag on the next ranged read: the app reopens it instead of
    # slicing the new object with the old directory's offsets.
    from gisportal.store.home import DataHome
    from gisportal.web.app import create_app

    def cells(kind: str) -> set[str]:
        return {url.split(f"/{kind}/")[1] for url, (status, _, _) in remote["tiles"].items()
                if f"/{kind}/" in url and status == 200}

    z_x_y = sorted(cells("parcels") & cells("plan"))[0]
    area = DataHome.at(s3_home).tile_area
    client = create_app({"home": str(s3_home)}).test_client()
    gz = {"Accept-Encoding": "gzip"}
    before = client.get(f"/tiles/676/parcels/{z_x_y}", headers=gz)
    assert before.get_data() == remote["tiles"][f"/tiles/676/parcels/{z_x_y}"][1]
    area.put_bytes(DataHome.tile_key("676", "parcels", parcels_job.result["version"]),
                   area.read_bytes(DataHome.tile_key("676", "plan",
                                                     plan_job.result["version"])))
    after = client.get(f"/tiles/676/parcels/{z_x_y}", headers=gz)
    assert after.status_code == 200
    assert after.get_data() == remote["tiles"][f"/tiles/676/plan/{z_x_y}"][1]


@pytest.mark.production
def test_s3_mode_cleanup_applies_retention_in_the_bucket(tmp_path, monkeypatch, s3_server,
                                                         s3_bucket):
    """``gisportal cleanup`` with S3 file areas: a check job's folder and an upload no
    version uses go from the bucket, a draft's upload and an archive in use stay, an
    archive of a version the catalogue lost goes — the rules of the folders, on keys."""
    from datetime import UTC, datetime, timedelta

    from gisportal import jobs
    from gisportal.jobs.housekeeping import cleanup
    from gisportal.store.home import DataHome
    from tests.conftest import parcel_grid, write_shapefile_zip

    home = tmp_path / "home"
    monkeypatch.setenv("GISPORTAL_HOME", str(home))
    monkeypatch.setenv("GISPORTAL_FILES", f"s3://{s3_bucket}/gp")
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    grid = write_shapefile_zip(parcel_grid(), tmp_path / "thua.zip")

    def run(**kw) -> jobs.Job:
        with open(grid, "rb") as fh:
            job = jobs.submit_upload(home, fh, "thua.zip", district="678", layer="parcels",
                                     actor="lan", **kw)
        job = jobs.wait(home, job.id, timeout=180, poll=0.1)
        assert job.state == "done", job.to_dict()
        return job

    check = run(kind="check")
    draft = run()
    data_home = DataHome.at(home)
    data_home.tile_area.put_bytes("678/parcels/v99.pmtiles", b"an archive the catalogue lost")
    later = datetime.now(UTC) + timedelta(days=31)

    dry = cleanup(home, dry_run=True, now=later)
    assert {e.to_dict(home)["path"] for e in dry.uploads} == {f"uploads/{check.id}"}
    assert {e.to_dict(home)["path"] for e in dry.tiles} == {"tiles/678/parcels/v99.pmtiles"}
    assert data_home.upload_area.exists(f"{check.id}/report.json")  # dry: nothing gone

    done = cleanup(home, now=later)
    assert done.summary()["uploads"]["count"] == 1 and done.bytes > 0
    area = data_home.upload_area
    assert list(area.list(f"{check.id}/")) == []
    assert area.exists(DataHome.upload_key_of(draft.params["upload"]))
    assert not data_home.tile_area.exists("678/parcels/v99.pmtiles")
    assert not (home / "uploads").exists() and not (home / "tiles").exists()
