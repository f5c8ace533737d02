"""Accounts as plain functions and through ``gisportal users``: names, passwords, roles,
tokens, throttling, the catalogue schema, the secret key.

Every test that takes ``home`` runs twice: on the embedded catalogue and, marked
``production``, on a fresh PostgreSQL database (``tests/servers.py``)."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
import unicodedata
from datetime import datetime

import psycopg
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from gisportal.accounts import audit, db, roles, throttle, tokens, users
from gisportal.accounts.errors import AuthError, PermissionDenied
from gisportal.accounts.secret import secret_key
from gisportal.base.errors import NotFoundError, StoreError, UsageError
from gisportal.base.settings import load_settings
from gisportal.cli.accounts import cli_actor
from gisportal.cli.main import cli
from gisportal.store import catalogue, postgres
from gisportal.store.home import DataHome
from tests.servers import BACKENDS, on_backend

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture(params=BACKENDS)
def home(request, home):
    """The data home, its accounts in SQLite or (``production``) in PostgreSQL."""
    on_backend(request)
    return home


PW = "mật khẩu đủ dài"


def test_names_are_nfc_and_case_insensitive(home):
    nfd = unicodedata.normalize("NFD", "Nguyễn.Lan")
    assert nfd != "Nguyễn.Lan"
    u = users.add_user(home, nfd, "planner", PW, districts=["678"], actor="cli:test")
    assert u.name == "Nguyễn.Lan" and u.name == unicodedata.normalize("NFC", u.name)
    assert u.role == "planner" and u.districts == ("678",) and u.is_active
    for spelling in ("nguyễn.lan", "NGUYỄN.LAN", unicodedata.normalize("NFD", "nguyễn.LAN"),
                     "  Nguyễn.Lan "):
        assert users.get_user(home, spelling).id == u.id
    for taken in ("NGUYỄN.LAN", unicodedata.normalize("NFD", "nguyễn.lan")):
        with pytest.raises(StoreError) as err:
            users.add_user(home, taken, "planner", PW, districts=["678"])
        assert err.value.code == "USER-EXISTS" and "'Nguyễn.Lan' already exists" in str(err.value)
    with pytest.raises(NotFoundError, match="no user named 'ai.do'"):
        users.get_user(home, "ai.do")


@pytest.mark.parametrize("name,message", [
    ("", "the user name is empty"),
    ("a" * 65, "the user name has 65 characters, more than 64"),
    ("x'; DROP TABLE users;--", "contains ' ', \"'\", ';'"),
    ("admin' OR '1'='1", "contains ' ', \"'\", '='"),
    ("cli:root", "contains ':'"),
    (".hidden", "must start with a letter or digit"),
    ("Anonymous", "'Anonymous' is reserved"),
])
def test_bad_names_are_refused_with_the_reason(home, name, message):
    with pytest.raises(UsageError) as err:
        users.add_user(home, name, "admin", PW)
    assert message in str(err.value)
    assert users.list_users(home) == []  # and the users table is still there


@pytest.mark.parametrize("password,message", [
    ("ngắn", "the password has 4 characters; at least 10 are needed"),
    ("x" * 1025, "the password has 1025 characters, more than 1024"),
    (" " * 12, "only white space"),
    ("Trần.Thị.Mai", "the password is the user name"),
])
def test_weak_passwords_are_refused(home, password, message):
    with pytest.raises(UsageError, match=message):
        users.add_user(home, "trần.thị.mai", "admin", password)


def test_password_length_counts_nfc_characters(home):
    # "khẩu" typed decomposed is 6 code points, composed 4: the rule counts what people see.
    nfd = unicodedata.normalize("NFD", "mậtkhẩuđẹp")
    assert len(nfd) > 10 and len(unicodedata.normalize("NFC", nfd)) == 10
    users.add_user(home, "lan", "admin", nfd)
    assert users.authenticate(home, "lan", "mậtkhẩuđẹp").name == "lan"  # NFC typed matches
    with pytest.raises(UsageError, match="9 characters"):
        users.add_user(home, "mai", "admin", unicodedata.normalize("NFD", "mậtkhẩuđẹ"))


@pytest.mark.parametrize("role,districts,code", [
    ("planner", [], "USER-DISTRICTS-MISSING"),
    ("planner", ["999"], "DISTRICT-UNKNOWN"),
    ("planner", ["678", "abc"], "DISTRICT-UNKNOWN"),
    ("admin", ["678"], "USER-DISTRICTS-ADMIN"),
    ("superuser", [], "USER-ROLE-INVALID"),
])
def test_roles_and_districts_are_checked(home, role, districts, code):
    with pytest.raises(UsageError) as err:
        users.add_user(home, "lan", role, PW, districts=districts)
    assert err.value.code == code
    if code == "DISTRICT-UNKNOWN":
        assert "678 Đức Trọng" in err.value.fix  # the known codes are listed


def test_districts_may_be_given_in_one_string(home):
    u = users.add_user(home, "lan", "planner", PW, districts=["679, 678", "678"])
    assert u.districts == ("678", "679")


def test_authenticate(home):
    users.add_user(home, "lan", "planner", PW, districts=["678"])
    u = users.authenticate(home, "LAN", PW)
    assert u.name == "lan" and u.last_login_at is not None
    for name, pw in (("lan", "sai mật khẩu rồi"), ("không.có", PW), ("x" * 5000, PW),
                     ("lan", "y" * 100_000), ("lan", "")):
        with pytest.raises(AuthError) as err:
            users.authenticate(home, name, pw)
        assert err.value.code == "LOGIN-FAILED" and err.value.http_status == 401
        assert str(err.value) == ("wrong user name or password [login]. Check both; the user "
                                  "name ignores case.")


def test_disabled_account_keeps_its_row_and_cannot_sign_in(home):
    users.add_user(home, "boss", "admin", PW)
    users.add_user(home, "lan", "planner", PW, districts=["678"])
    u = users.disable_user(home, "lan", actor="boss")
    assert not u.is_active and u.session_epoch == 1
    assert users.disable_user(home, "lan", actor="boss").session_epoch == 1  # idempotent
    assert [x.name for x in users.list_users(home)] == ["boss", "lan"]
    with pytest.raises(PermissionDenied) as err:
        users.authenticate(home, "lan", PW)
    assert err.value.code == "LOGIN-DISABLED" and err.value.http_status == 403
    with pytest.raises(AuthError):  # a wrong password does not even learn it is disabled
        users.authenticate(home, "lan", "sai mật khẩu rồi")
    assert users.enable_user(home, "lan").is_active
    assert users.authenticate(home, "lan", PW).name == "lan"
    actions = [e.action for e in audit.events(home).events]
    assert actions == ["user.enable", "user.disable", "user.add", "user.add"]


def test_the_last_admin_cannot_be_disabled(home):
    users.add_user(home, "boss", "admin", PW)
    with pytest.raises(StoreError, match="'boss' is the last active admin"):
        users.disable_user(home, "boss")
    users.add_user(home, "boss2", "admin", PW)
    assert not users.disable_user(home, "boss").is_active
    with pytest.raises(StoreError, match="last active admin"):
        users.disable_user(home, "boss2")


def test_password_change_ends_sessions_and_old_password(home):
    u = users.add_user(home, "lan", "admin", PW)
    v = users.set_password(home, "lan", "mật khẩu mới hoàn toàn", actor="lan")
    assert v.session_epoch == u.session_epoch + 1 and v.get_id() != u.get_id()
    with pytest.raises(AuthError):
        users.authenticate(home, "lan", PW)
    assert users.authenticate(home, "lan", "mật khẩu mới hoàn toàn").id == u.id


def test_hash_is_upgraded_at_sign_in_when_parameters_change(home):
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    users.add_user(home, "lan", "admin", PW, hasher=old)
    assert users.password_hash_parameters(home, "lan") == {"m": 8192, "t": 1, "p": 1}
    users.authenticate(home, "lan", PW, hasher=old)  # same parameters: left alone
    assert users.password_hash_parameters(home, "lan") == {"m": 8192, "t": 1, "p": 1}
    new = PasswordHasher()  # argon2-cffi's defaults, what production uses
    users.authenticate(home, "lan", PW, hasher=new)
    assert users.password_hash_parameters(home, "lan") == {
        "m": new.memory_cost, "t": new.time_cost, "p": new.parallelism}
    assert users.authenticate(home, "lan", PW, hasher=new).name == "lan"
    with db.connect(home) as conn:
        stored = conn.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and PW not in stored


def test_roles_matrix():
    admin = users.User(1, "boss", "admin", (), "", "", None, None, 0)
    planner = users.User(2, "lan", "planner", ("678", "679"), "", "", None, None, 0)
    gone = users.User(3, "old", "planner", ("678",), "", "", "2024-01-01", None, 1)
    for action, scope in roles.ACTIONS.items():
        assert roles.can(admin, action, "678") and roles.can(admin, action)
        assert roles.can(planner, action, "678") is (scope == "district")
        assert roles.can(planner, action, "679") is (scope == "district")
        assert not roles.can(planner, action, "672")
        assert roles.can(planner, action) is (scope == "district")  # "in some district"
        assert not roles.can(gone, action, "678")
        assert not roles.can(None, action, "678")
    with pytest.raises(ValueError, match="unknown action 'publsh'"):
        roles.can(admin, "publsh", "678")
    assert roles.allowed_districts(planner, "upload", ["672", "678", "679"]) == ["678", "679"]


def test_tokens(home):
    users.add_user(home, "boss", "admin", PW)
    users.add_user(home, "lan", "planner", PW, districts=["678"])
    token = tokens.create_token(home, "lan", label="nightly upload", actor="boss")
    assert token.startswith("gp_") and len(token) > 40
    assert tokens.user_for_token(home, token).name == "lan"
    with db.connect(home) as conn:
        stored = [r[0] for r in conn.execute("SELECT token_sha256 FROM api_tokens")]
    assert token not in stored and len(stored[0]) == 64  # only its hash is kept
    for bad in ("", "gp_", token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 10_000,
                "gp_' OR 1=1 --", None):
        assert tokens.user_for_token(home, bad) is None
    users.disable_user(home, "lan")
    assert tokens.user_for_token(home, token) is None
    users.enable_user(home, "lan")
    assert tokens.user_for_token(home, token).name == "lan"
    assert tokens.revoke_tokens(home, "lan", actor="boss") == 1
    assert tokens.user_for_token(home, token) is None


def test_throttle_counts_failures_per_name_and_address(home):
    limit = throttle.Limit(max_failures=3, window_s=10)
    for t in (0.0, 1.0, 2.0):
        assert throttle.retry_after(home, "lan", "10.0.0.1", limit, now=t) == 0
        throttle.record_failure(home, "lan", "10.0.0.1", limit, now=t)
    assert throttle.retry_after(home, "lan", "10.0.0.1", limit, now=3.0) == 7
    assert throttle.retry_after(home, "LAN", "10.0.0.1", limit, now=3.0) == 7  # same name
    assert throttle.retry_after(home, "lan", "10.0.0.2", limit, now=3.0) == 0  # other address
    assert throttle.retry_after(home, "mai", "10.0.0.1", limit, now=3.0) == 0  # other name
    assert throttle.retry_after(home, "lan", "10.0.0.1", limit, now=10.5) == 0  # first expired
    throttle.reset(home, "lan", "10.0.0.1")
    assert throttle.retry_after(home, "lan", "10.0.0.1", limit, now=3.0) == 0
    with pytest.raises(UsageError, match="not usable"):
        throttle.Limit(0, 10)


@pytest.mark.parametrize("home", ["embedded"], indirect=True)  # SQLite's own file
def test_schema_rows_and_a_catalogue_from_the_future(home, store):
    users.add_user(home, "lan", "admin", PW)
    with sqlite3.connect(home / "catalogue.sqlite") as conn:
        rows = dict(conn.execute("SELECT component, version FROM schema_version"))
        assert rows["users"] == 2 and rows["audit"] == 1 and "store" in rows
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'users'")
    from gisportal.store import catalogue

    catalogue._current.clear()  # a new process would look again
    with pytest.raises(StoreError) as err:
        users.list_users(home)
    assert err.value.code == "USERS-SCHEMA-NEWER" and "Upgrade gisportal" in str(err.value)


def test_secret_key_is_made_once_and_private(home):
    key = secret_key(home)
    path = home / "secret_key"
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key(home) == key
    assert secret_key(home, "k" * 40) == "k" * 40
    with pytest.raises(UsageError, match="at least 32"):
        secret_key(home, "short")


# --------------------------------------------------------------------------- CLI


def run(home, *args, input=None):
    return CliRunner().invoke(cli, ["--home", str(home), *args], input=input,
                              catch_exceptions=False)


def test_cli_users_lifecycle(home):
    r = run(home, "users", "add", "boss", "--role", "admin", "--password-stdin", input=PW + "\n")
    assert r.exit_code == 0 and "added boss (admin; mọi huyện / all districts)" in r.output
    # Prompted twice when no --password-stdin (a typo in the repeat is asked again).
    r = run(home, "users", "add", "Lan", "--role", "planner", "--district", "678",
            "--district", "679", input=f"{PW}\n{PW}\n")
    assert r.exit_code == 0 and "added Lan (planner; 678, 679)" in r.output
    r = run(home, "users", "add", "LAN", "--role", "planner", "--district", "678",
            "--password-stdin", input=PW + "\n")
    assert r.exit_code == 1 and "a user named 'Lan' already exists" in r.output
    r = run(home, "users", "add", "mai", "--role", "planner", input="")
    assert r.exit_code == 2 and "a planner needs at least one district" in r.output
    r = run(home, "users", "add", "mai", "--role", "admin", "--password-stdin", input="ngắn\n")
    assert r.exit_code == 2 and "at least 10 are needed" in r.output

    listed = json.loads(run(home, "users", "list", "--json").output)
    assert [(u["name"], u["role"], u["districts"], u["active"]) for u in listed] == [
        ("boss", "admin", [], True), ("Lan", "planner", ["678", "679"], True)]

    r = run(home, "users", "passwd", "lan", "--password-stdin", input="một mật khẩu khác\n")
    assert r.exit_code == 0 and "password changed for Lan" in r.output
    assert users.authenticate(home, "lan", "một mật khẩu khác").name == "Lan"

    token = run(home, "users", "token", "lan", "--label", "script").output.strip()
    assert tokens.user_for_token(home, token).name == "Lan"
    assert "revoked 1 token(s) of Lan" in run(home, "users", "token", "lan", "--revoke").output
    assert tokens.user_for_token(home, token) is None

    assert run(home, "users", "disable", "lan").output.strip() == "disabled Lan"
    assert "disabled 20" in run(home, "users", "list").output
    assert run(home, "users", "enable", "lan").output.strip() == "enabled Lan"
    r = run(home, "users", "disable", "nobody")
    assert r.exit_code == 1 and "no user named 'nobody'" in r.output

    me = cli_actor()
    assert me.startswith("cli:")
    events = audit.events(home).events
    assert {e.actor for e in events} == {me}
    assert [e.action for e in events] == ["user.enable", "user.disable", "token.revoke",
                                          "token.create", "user.passwd", "user.add", "user.add"]
    out = run(home, "audit", "--action", "user.add", "--json").output.splitlines()
    assert [json.loads(x)["detail"]["user"] for x in out] == ["Lan", "boss"]


def test_cli_settings_hide_the_secret_key(home, monkeypatch):
    monkeypatch.setenv("GISPORTAL_SECRET_KEY", "s3cr3t-" * 8)
    out = run(home, "settings").output
    assert "s3cr3t" not in out and "secret_key = (set, hidden)" in out
    assert "login_max_failures = 5" in out and "cookie_secure = 'auto'" in out


# --------------------------------------------------------------------------- both backends


def test_the_catalogue_seam_speaks_one_sql(home):
    """What the components rely on, the same on both backends: ``?`` beside a literal
    ``%`` and a quoted ``?``, RETURNING, ON CONFLICT, rows by name and index, and times
    given and read back as the same UTC text."""
    at = "2025-05-01T08:30:00.123Z"
    insert = ("INSERT INTO users (name, name_key, role, password_hash, created_at, "
              "created_by, password_changed_at) VALUES (?, ?, 'admin', ?, ?, '50% ?', ?) "
              "ON CONFLICT (name_key) DO NOTHING RETURNING id, created_at")
    with db.connect(home) as conn, db.transaction(conn):
        new = conn.execute(insert, ("a", "a", "h", at, at)).fetchone()
        assert new["id"] == new[0] and new["created_at"] == new[1] == at
        assert conn.execute(insert, ("A", "a", "h", at, at)).fetchone() is None
    with db.connect(home) as conn:
        row = conn.execute("SELECT created_by, name FROM users WHERE created_by LIKE '50%' "
                           "AND created_at < ?", ("2025-05-01T08:30:00.124Z",)).fetchone()
        assert tuple(row) == ("50% ?", "a") and list(row.keys()) == ["created_by", "name"]
        assert row["name"] == row[1] == "a"
        assert conn.execute("SELECT count(*) FROM users WHERE created_at < ?",
                            (at,)).fetchone()[0] == 0


def _race_to_disable(home, names: tuple[str, str]) -> list[str]:
    """Disable both accounts from two threads released at the same moment; outcomes."""
    start = threading.Barrier(len(names))
    outcomes: list[str] = []

    def disable(name: str) -> None:
        start.wait()
        try:
            users.disable_user(home, name)
            outcomes.append("disabled")
        except StoreError as err:
            outcomes.append(err.code)

    threads = [threading.Thread(target=disable, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_two_admins_disabling_each_other_at_once_leave_one(home):
    """The last-admin rule holds when two requests race: SQLite has one writer, and
    PostgreSQL's transactions take a lock (without it each would still see the other
    admin active, and both would be disabled). Five rounds, each between the survivor
    of the last and a new admin."""
    users.add_user(home, "boss", "admin", PW)
    survivor = "boss"
    for n in range(5):
        users.add_user(home, f"chief{n}", "admin", PW)
        assert _race_to_disable(home, (survivor, f"chief{n}")) == ["USER-LAST-ADMIN",
                                                                   "disabled"]
        active = [u.name for u in users.list_users(home) if u.is_active]
        assert len(active) == 1
        survivor = active[0]


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.production
def test_production_opens_only_a_migrated_database(pg_dsn, tmp_path, monkeypatch):
    """Opening the accounts never creates tables (a mistyped URL must not fill the wrong
    database): until ``gisportal migrate`` ran they are refused with that advice; after
    it they are the database's, with real ``timestamptz`` values; a schema from a newer
    gisportal is refused, as the PostGIS store refuses one."""
    monkeypatch.delenv("GISPORTAL_DATABASE", raising=False)
    root = tmp_path / "home"
    home = DataHome.at(root, load_settings({"database": pg_dsn}))  # settings, not env
    try:
        with pytest.raises(StoreError) as err:
            users.list_users(home)
        assert err.value.code == "DATABASE-NOT-MIGRATED"
        assert "gisportal migrate" in str(err.value) and "users 0 → 1" in str(err.value)
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute("SELECT to_regclass('users')").fetchone()[0] is None

        monkeypatch.setenv("GISPORTAL_DATABASE", pg_dsn)
        first = run(root, "migrate")
        assert first.exit_code == 0, first.output
        assert "users: schema 0 → 1" in first.output and "audit: schema 0 → 1" in first.output
        assert "users: schema 1 (up to date)" in run(root, "migrate").output
        monkeypatch.delenv("GISPORTAL_DATABASE")

        users.add_user(home, "boss", "admin", PW)
        assert [u.name for u in users.list_users(home)] == ["boss"]
        assert not (root / "catalogue.sqlite").exists()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            created = conn.execute("SELECT created_at FROM users").fetchone()[0]
            assert isinstance(created, datetime) and created.utcoffset() is not None
            assert users.get_user(home, "boss").created_at == \
                created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'users'")
        catalogue._current.clear()  # a new process would look again
        with pytest.raises(StoreError) as err:
            users.list_users(home)
        assert err.value.code == "USERS-SCHEMA-NEWER"
    finally:
        postgres.close_pools()
