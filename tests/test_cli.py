"""The command line: contract verbs, exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gisportal.cli.main import cli
from tests.conftest import parcel_grid


def test_validate_clean_file_exits_0_with_json_report(run, make_shapefile_zip):
    r = run("validate", str(make_shapefile_zip()), "--kind", "parcels", "--district", "678")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert set(report) >= {"summary", "findings"}
    assert report["summary"]["errors"] == 0
    for f in report["findings"]:
        assert set(f) >= {"rule", "severity", "feature", "message", "location"}


def test_validate_file_with_errors_exits_1(run, tmp_path):
    gdf = parcel_grid(2, 2)
    gdf.loc[3, "LoaiDat"] = "QQQ"
    path = tmp_path / "bad.geojson"
    gdf.to_crs(4326).to_file(path, driver="GeoJSON")
    r = run("validate", str(path), "--kind", "parcels")
    assert r.exit_code == 1
    findings = json.loads(r.stdout)["findings"]
    bad = [f for f in findings if f["rule"] == "CODE-UNKNOWN"]
    assert len(bad) == 1 and bad[0]["feature"]["row"] == 3
    assert bad[0]["feature"]["key"] == {"commune": "24778", "sheet": 1, "parcel": 4}
    assert bad[0]["location"]["type"] == "Point"
    lon, lat = bad[0]["location"]["coordinates"]
    assert 108 < lon < 109 and 11 < lat < 12  # WGS 84, lon/lat order


def test_validate_unreadable_exits_2_with_one_line(run, tmp_path):
    path = tmp_path / "notes.zip"
    path.write_bytes(b"this is not a zip archive")
    r = run("validate", str(path), "--kind", "parcels")
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gisportal: error:")


@pytest.mark.parametrize("fmt", ["html", "geojson"])
def test_validate_other_formats_to_file(run, make_shapefile_zip, tmp_path, fmt):
    out = tmp_path / f"report.{fmt}"
    r = run("validate", str(make_shapefile_zip()), "--kind", "parcels", "--format", fmt,
            "--out", str(out))
    assert r.exit_code == 0
    text = out.read_text(encoding="utf-8")
    if fmt == "html":
        assert "Báo cáo kiểm tra dữ liệu" in text and "http" not in text.split("</style>")[0]
    else:
        assert json.loads(text)["type"] == "FeatureCollection"


def test_ingest_publish_lookup_round_trip(run, make_shapefile_zip):
    r = run("ingest", str(make_shapefile_zip()), "--kind", "parcels", "--district", "678")
    assert r.exit_code == 0, r.output
    vid = r.stdout.strip().splitlines()[-1]
    assert vid.isdigit()
    r = run("lookup", "--district", "678", "--sheet", "1", "--parcel", "1")
    assert r.exit_code == 1 and "no published parcels" in r.stderr
    r = run("publish", "--district", "678", "--kind", "parcels", "--version", vid)
    assert r.exit_code == 0, r.output
    r = run("lookup", "--district", "678", "--sheet", "1", "--parcel", "1")
    assert r.exit_code == 0
    answer = json.loads(r.stdout)
    assert answer["parcel"]["parcel"] == 1
    assert answer["parcel"]["attributes"]["TenChu"] == "Nguyễn Văn Hùng"  # operator sees it
    r = run("versions", "--json")
    assert json.loads(r.stdout)[0]["status"] == "published"


def test_ingest_with_errors_and_publish_flag_exits_1_keeps_draft(run, tmp_path):
    gdf = parcel_grid(2, 2)
    gdf.loc[0, "SoThua"] = None
    path = tmp_path / "nulls.gpkg"
    gdf.to_file(path, driver="GPKG")
    r = run("ingest", str(path), "--kind", "parcels", "--district", "678", "--publish")
    assert r.exit_code == 1
    assert r.stdout.strip().splitlines()[-1].isdigit()
    assert "not published" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (("lookup",), "nothing to look up"),
    (("lookup", "--sheet", "1"), "go together"),
    (("lookup", "--lat", "91", "--lon", "108"), "out of range"),
    (("publish", "--district", "678", "--kind", "plan", "--version", "999"), "999"),
])
def test_bad_arguments_give_one_line_errors(run, args, needle):
    r = run(*args)
    assert r.exit_code != 0
    assert needle in r.stderr
    assert "Traceback" not in r.output


def test_python_dash_m_runs_the_same_cli(home):
    r = subprocess.run([sys.executable, "-m", "gisportal", "--help"], capture_output=True,
                       text=True, check=True)
    for verb in ("demo", "ingest", "publish", "validate", "lookup", "serve"):
        assert verb in r.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_a_real_wsgi_server(home, make_shapefile_zip):
    import time
    import urllib.request

    port = _free_port()
    env = {**__import__("os").environ, "GISPORTAL_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "gisportal", "serve", "--port", str(port),
                             "--workers", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.load(r)["status"] == "ok"
                    assert "waitress" in r.headers.get("Server", "")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert "Lâm Đồng" in r.read().decode("utf-8")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_validate_repair_fixes_a_bow_tie_and_writes_the_repaired_layer(run, tmp_path):
    import geopandas as gpd

    from tests.conftest import bow_tie_file

    path = bow_tie_file(tmp_path, row=1)
    plain = run("validate", str(path), "--kind", "parcels")
    assert plain.exit_code == 1
    out = tmp_path / "fixed.gpkg"
    r = run("validate", str(path), "--kind", "parcels", "--repair", "--repaired-out", str(out))
    report = json.loads(r.stdout)
    changes = report["repair"]["changes"]
    assert [(c["row"], c["action"]) for c in changes] == [(1, "REPAIR-MAKE-VALID")]
    assert not [f for f in report["findings"] if f["rule"] == "GEOM-INVALID"]
    fixed = gpd.read_file(out)
    assert list(fixed.columns[:3]) == ["MaXa", "SoTo", "SoThua"]
    assert fixed.geometry.is_valid.all() and fixed.crs.to_epsg() == 5899


def test_repaired_out_needs_repair(run, tmp_path, make_shapefile_zip):
    r = run("validate", str(make_shapefile_zip()), "--kind", "parcels", "--repaired-out",
            str(tmp_path / "x.gpkg"))
    assert r.exit_code == 2 and "--repair" in r.stderr


def test_a_bug_is_one_line_with_its_traceback_in_the_log(tmp_path):
    """The last safety net of `gisportal.cli.main`: no traceback on a user's terminal."""
    import os
    import subprocess
    import sys

    code = ("import gisportal.cli.main as c\n"
            "def boom(**kw):\n    raise ValueError('unexpected shape')\n"
            "c.cli = boom\nc.main()\n")
    env = {k: v for k, v in os.environ.items() if k != "GISPORTAL_DEBUG"}
    env["GISPORTAL_HOME"] = str(tmp_path / "home")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "Traceback" not in done.stderr
    assert "ValueError: unexpected shape" in lines[0]
    log = tmp_path / "home" / "logs" / "gisportal-errors.log"
    assert "Traceback" in log.read_text(encoding="utf-8")


def test_settings_never_show_a_database_password(monkeypatch):
    monkeypatch.setenv("GISPORTAL_DATABASE", "postgresql://gp:s3cr3t-pw@db.local:5432/gp")
    monkeypatch.setenv("GISPORTAL_DATABASE_REPLICAS",
                       "postgresql://gp:s3cr3t-pw@r1:5432/gp,postgresql://gp:s3cr3t-pw@r2/gp")
    r = CliRunner().invoke(cli, ["settings"])
    assert r.exit_code == 0, r.output
    assert "s3cr3t-pw" not in r.output
    assert "postgresql://gp:***@db.local:5432/gp" in r.output
    assert "postgresql://gp:***@r2/gp" in r.output


@pytest.mark.parametrize("url", ["notaurl", "host=db port=x", "postgresql://gp:pw-9@127.0.0.1:1/gp"])
def test_a_database_setting_that_cannot_work_is_one_line(home, monkeypatch, url):
    """A mistyped or unreachable GISPORTAL_DATABASE is a user's error (one line, exit
    1 or 2, the password masked), never an internal error."""
    monkeypatch.setenv("GISPORTAL_DATABASE", url)
    r = CliRunner().invoke(cli, ["versions"])
    assert r.exit_code in (1, 2), r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gisportal: error:"), r.output
    assert "pw-9" not in r.output
