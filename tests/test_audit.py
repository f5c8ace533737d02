"""The audit log: recording, filters, paging, append-only, CSV for Excel, the pages.

Every test that takes ``home`` runs on the embedded catalogue and, marked ``production``,
on PostgreSQL (``tests/servers.py``)."""

from __future__ import annotations

import csv
import io
import secrets
import sqlite3
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from gisportal.accounts import audit, db, users
from gisportal.base.errors import UsageError
from gisportal.base.settings import load_settings
from gisportal.cli.main import cli
from gisportal.store import postgres
from gisportal.store.home import DataHome
from gisportal.web.app import create_app
from tests.conftest import sign_in
from tests.servers import BACKENDS, on_backend

PW = "mật khẩu đủ dài"


@pytest.fixture(params=BACKENDS)
def home(request, home):
    """The data home, its audit log in SQLite or (``production``) in PostgreSQL."""
    on_backend(request)
    return home


def _vn_today() -> str:
    return (datetime.now(UTC) + timedelta(hours=7)).strftime("%Y-%m-%d")


def test_record_and_read_back(home):
    i = audit.record(home, "Nguyễn.Lan", "version.publish", district="678", kind="plan",
                     version=12, decision="123/QĐ-UBND", ip="10.1.2.3",
                     detail={"note": "Quy hoạch sử dụng đất", "n": 3})
    e = audit.events(home).events[0]
    assert e.id == i
    assert (e.actor, e.action, e.district, e.kind, e.version, e.decision, e.ip) == (
        "Nguyễn.Lan", "version.publish", "678", "plan", 12, "123/QĐ-UBND", "10.1.2.3")
    assert e.detail == {"note": "Quy hoạch sử dụng đất", "n": 3}
    assert e.at.endswith("Z") and len(e.at) == 24
    assert e.at_vn[:10] == _vn_today()


def test_actor_may_be_a_user_or_anonymous(home):
    class Anonymous:
        is_authenticated = False

    u = users.User(1, "Lan", "planner", ("678",), "", "", None, None, 0)
    audit.record(home, u, "login")
    audit.record(home, Anonymous(), "login.failed")
    assert [e.actor for e in audit.events(home).events] == ["anonymous", "Lan"]


@pytest.mark.parametrize("kwargs,message", [
    ({"actor": "", "action": "login"}, "needs an actor"),
    ({"actor": "x", "action": "Login Failed"}, "is not an audit action name"),
    ({"actor": "x", "action": "drop table;"}, "is not an audit action name"),
    ({"actor": "x", "action": "login", "version": "v12"}, "version 'v12' is not a number"),
])
def test_bad_events_are_refused(home, kwargs, message):
    with pytest.raises(UsageError, match=message):
        audit.record(home, **kwargs)


def test_hostile_values_are_clipped(home):
    audit.record(home, "x" * 10_000, "login.failed", detail={"username": "y" * 100_000})
    e = audit.events(home).events[0]
    assert len(e.actor) == 200 and e.actor.endswith("…")
    assert len(e.detail["truncated"]) == 8000
    audit.record(home, "la\x00n\r\n", "login.failed", ip="1.2.3.4\x1b[31m")
    e = audit.events(home).events[0]
    assert (e.actor, e.ip) == ("lan", "1.2.3.4[31m")
    with pytest.raises(UsageError, match="needs an actor"):
        audit.record(home, "\x00\x01", "login")


def test_filters(home):
    audit.record(home, "Lan", "login")
    audit.record(home, "lan", "login.failed", detail={"reason": "LOGIN-FAILED"})
    audit.record(home, "mai", "version.publish", district="678", version=3)
    audit.record(home, "mai", "version.publish", district="679", version=4)
    audit.record(home, "Đức", "loginx")

    def ids(**f):
        return [e.id for e in audit.events(home, **f).events]

    assert ids(actor="LAN") == [2, 1]
    assert ids(actor="đỨC") == [5]
    assert ids(action="login") == [1]
    assert ids(action="login.") == [2, 1]  # the family, not "loginx"
    assert ids(district="679") == [4]
    assert ids(actor="mai", district="678") == [3]
    today = _vn_today()
    yesterday = (datetime.strptime(today, "%Y-%m-%d") - timedelta(days=1)).strftime("%Y-%m-%d")
    assert ids(since=today) == [5, 4, 3, 2, 1]
    assert ids(until=yesterday) == []
    assert ids(since=yesterday, until=today) == [5, 4, 3, 2, 1]
    assert ids(since="2099-01-01T00:00:00Z") == []
    for bad, message in (({"since": "hôm qua"}, "since='hôm qua' is not a date"),
                         ({"limit": 0}, "limit=0 is out of range"),
                         ({"limit": "x"}, "limit='x' is not a whole number"),
                         ({"before": "-1"}, "before=-1 is out of range")):
        with pytest.raises(UsageError, match=message):
            audit.events(home, **bad)


def test_paging_is_stable_while_events_arrive(home):
    for i in range(120):
        audit.record(home, "lan", "test.event", detail={"i": i})
    first = audit.events(home, limit=50)
    assert [e.detail["i"] for e in first.events] == list(range(119, 69, -1))
    audit.record(home, "lan", "test.event", detail={"i": "new"})  # arrives meanwhile
    second = audit.events(home, limit=50, before=first.next_before)
    assert [e.detail["i"] for e in second.events] == list(range(69, 19, -1))
    third = audit.events(home, limit=50, before=second.next_before)
    assert [e.detail["i"] for e in third.events] == list(range(19, -1, -1))
    assert third.next_before is None
    assert len(list(audit.iter_events(home, chunk=7))) == 121


@pytest.mark.parametrize("home", ["embedded"], indirect=True)  # SQLite's own file
def test_the_log_is_append_only_for_every_client(home):
    audit.record(home, "lan", "login")
    with sqlite3.connect(home / "catalogue.sqlite") as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET actor = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit")
    assert [e.actor for e in audit.events(home).events] == ["lan"]
    assert not {"update", "delete", "remove", "clear"} & {n.split("_")[0] for n in audit.__all__}


@pytest.mark.parametrize("home", [BACKENDS[1]], indirect=True)  # production
def test_the_log_is_append_only_in_postgresql_for_every_client(home, production_env):
    """A plain psycopg session with the app's own credentials (no gisportal code between)
    can add events but neither change, delete nor truncate them — not even a statement
    that matches no row — inside a transaction or not."""
    audit.record(home, "lan", "login")
    with psycopg.connect(production_env, autocommit=True) as conn:
        for sql in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit",
                    "DELETE FROM audit WHERE false", "TRUNCATE audit",
                    "TRUNCATE audit RESTART IDENTITY CASCADE"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("INSERT INTO audit (at, actor, actor_key, action) "
                         "VALUES (now(), 'x', 'x', 'forged')")
            conn.execute("DELETE FROM audit WHERE action = 'login'")
        conn.execute("INSERT INTO audit (at, actor, actor_key, action) "
                     "VALUES (now(), 'psql', 'psql', 'note')")  # appending stays open
    assert [e.actor for e in audit.events(home).events] == ["psql", "lan"]


@pytest.mark.production
def test_nodes_that_do_not_own_the_table_cannot_even_drop_the_trigger(production_env,
                                                                      tmp_path):
    """The deployment db.py describes: the schema owned by the role that ran ``gisportal
    migrate``, the nodes connected as a role granted only what they use. The accounts
    work as that role; history cannot be rewritten by a statement, nor the guard taken
    away first (ALTER TABLE … DISABLE TRIGGER, DROP TRIGGER and DROP FUNCTION need the
    owner)."""
    role = f"node_{secrets.token_hex(4)}"
    node_dsn = _dsn_as(production_env, role, "node-pass-" + secrets.token_hex(8))
    password = urllib.parse.unquote(urllib.parse.urlsplit(node_dsn).password or "")
    with psycopg.connect(production_env, autocommit=True) as owner:
        owner.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        for grant in ("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                      "TO {}", "REVOKE UPDATE, DELETE ON audit FROM {}",
                      "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}"):
            owner.execute(sql.SQL(grant).format(sql.Identifier(role)))
    try:
        node = DataHome.at(tmp_path / "node", load_settings({"database": node_dsn}))
        users.add_user(node, "boss", "admin", PW)
        audit.record(node, "boss", "version.publish", district="678", version=3)
        assert [e.action for e in audit.events(node).events] == ["version.publish",
                                                                  "user.add"]
        with psycopg.connect(node_dsn, autocommit=True) as conn:
            for attempt in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit",
                            "TRUNCATE audit", "ALTER TABLE audit DISABLE TRIGGER ALL",
                            "ALTER TABLE audit DISABLE TRIGGER audit_no_update",
                            "DROP TRIGGER audit_no_delete ON audit",
                            "DROP FUNCTION audit_append_only() CASCADE",
                            "SET session_replication_role = replica"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(attempt)
        assert len(audit.events(node).events) == 2
    finally:
        postgres.close_pools()
        with psycopg.connect(production_env, autocommit=True) as owner:
            owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _dsn_as(dsn: str, user: str, password: str) -> str:
    """``dsn`` with another user and password."""
    parts = urllib.parse.urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[1]
    q = urllib.parse.quote
    return urllib.parse.urlunsplit(parts._replace(
        netloc=f"{q(user, safe='')}:{q(password, safe='')}@{host}"))


def test_a_nul_in_a_filter_matches_nothing(home):
    """No stored text holds NUL (it is dropped when recorded), and PostgreSQL cannot even
    compare text holding one: a typed NUL finds nothing, with no error, on both."""
    audit.record(home, "lan", "login", district="678")
    for bad in ({"actor": "lan\x00"}, {"action": "login\x00"}, {"action": "log\x00."},
                {"district": "678\x00"}):
        assert audit.events(home, **bad).events == [], bad
    assert len(audit.events(home, actor="lan", district="678").events) == 1


def test_events_are_numbered_in_commit_order(home):
    """An event whose transaction is still open holds back the next one, so ids follow
    commit order: a reader paging "older than id N" can never miss an event committed
    after it read (SQLite: one writer; PostgreSQL: the lock `audit.insert` takes)."""
    later: list[int] = []
    with db.connect(home) as conn, db.transaction(conn):
        first = audit.insert(conn, "lan", "version.publish", version=1)
        racer = threading.Thread(target=lambda: later.append(
            audit.record(home, "mai", "version.publish", version=2)))
        racer.start()
        racer.join(0.5)
        assert racer.is_alive() and not later  # waiting for this transaction to end
    racer.join(10)
    assert later and later[0] > first
    assert [e.id for e in audit.events(home).events] == [later[0], first]


def _read_csv(data: bytes, delimiter: str = ",") -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""),
                           delimiter=delimiter))


def test_csv_export(home, tmp_path):
    audit.record(home, "Nguyễn.Lan", "version.publish", district="678", version=7,
                 decision="12/QĐ-UBND", detail={"ghi chú": "đã duyệt"})
    audit.record(home, "=HYPERLINK(\"http://x\")", "login.failed", ip="10.0.0.9")
    path = tmp_path / "audit.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        assert audit.write_csv(home, out) == 2
    data = path.read_bytes()
    assert b"\r\n" in data
    rows = _read_csv(data)
    assert rows[0] == list(audit.CSV_COLUMNS)
    assert rows[1][3:] == ["'=HYPERLINK(\"http://x\")", "login.failed", "", "", "", "",
                           "10.0.0.9", ""]  # a formula would run in Excel: quoted
    assert rows[2][3:10] == ["Nguyễn.Lan", "version.publish", "678", "", "7", "12/QĐ-UBND", ""]
    assert rows[2][10] == '{"ghi chú": "đã duyệt"}'
    assert rows[2][1].endswith("Z") and len(rows[2][2]) == 19  # UTC and Vietnam time
    semi = "".join(audit.csv_chunks(home, delimiter="semicolon", actor="nguyễn.lan"))
    assert _read_csv(semi.encode(), ";")[1][3] == "Nguyễn.Lan"
    with pytest.raises(UsageError, match="is not a CSV delimiter"):
        next(audit.csv_chunks(home, delimiter="|"))


def test_cli_audit_csv(home, tmp_path):
    audit.record(home, "lan", "login")
    out = tmp_path / "nhat_ky.csv"
    r = CliRunner().invoke(cli, ["--home", str(home), "audit", "--csv", str(out)])
    assert r.exit_code == 0 and "1 events written" in r.output
    assert [row[4] for row in _read_csv(out.read_bytes())[1:]] == ["login"]
    assert audit.events(home).events[0].action == "audit.export"  # the export is audited
    r = CliRunner().invoke(cli, ["--home", str(home), "audit", "--since", "tuần trước"])
    assert r.exit_code == 2 and "since='tuần trước' is not a date" in r.output


# --------------------------------------------------------------------------- web


@pytest.fixture
def admin_client(home, fast_passwords):
    users.add_user(home, "boss", "admin", PW)
    users.add_user(home, "lan", "planner", PW, districts=["678"])
    app = create_app({"home": str(home)})
    c = app.test_client()
    assert sign_in(c, "boss", PW).status_code == 303
    return c


def test_audit_page_filters_and_pages(admin_client, home):
    for i in range(60):
        audit.record(home, "lan", "version.publish", district="678", version=i)
    audit.record(home, "mai", "version.publish", district="679", version=99)
    r = admin_client.get("/admin/audit?district=678")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "Nhật ký hoạt động" in page and page.count("<tr><td>") == 50
    assert "v59" in page and "v99" not in page and "v9<" not in page
    assert "/admin/audit?before=" in page and "district=678" in page
    cursor = page.split("before=")[1].split("&")[0]
    older = admin_client.get(f"/admin/audit?district=678&before={cursor}")
    rest = older.get_data(as_text=True)
    assert rest.count("<tr><td>") == 10 and "v0<" in rest and "id=\"gp-older\"" not in rest
    assert admin_client.get("/admin/audit?since=bad").status_code == 400
    r = admin_client.get("/admin/audit?actor=lan%00")
    assert r.status_code == 200 and "v59" not in r.get_data(as_text=True)


def test_audit_csv_over_http(admin_client, home):
    audit.record(home, "lan", "version.publish", district="678", version=1)
    r = admin_client.get("/admin/audit.csv?district=678&sep=semicolon")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert 'filename="audit.csv"' in r.headers["Content-Disposition"]
    rows = _read_csv(r.data, ";")
    assert [row[3:6] for row in rows[1:]] == [["lan", "version.publish", "678"]]
    assert audit.events(home).events[0].action == "audit.export"
    assert admin_client.get("/admin/audit.csv?since=x").status_code == 400
    assert admin_client.get("/admin/audit.csv?sep=pipe").status_code == 400


def test_planners_cannot_read_the_log(home, fast_passwords):
    users.add_user(home, "lan", "planner", PW, districts=["678"])
    c = create_app({"home": str(home)}).test_client()
    sign_in(c, "lan", PW)
    assert c.get("/admin/audit").status_code == 403
    assert c.get("/admin/audit.csv").status_code == 403
