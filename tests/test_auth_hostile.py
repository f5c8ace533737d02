"""Hostile traffic against sign-in, sessions and tokens (issue 11, items 2, 3, 6, 13, 19).

Each test replays the attack through Flask's test client (or the accounts functions)
against a real data home, and asserts the safe outcome: floods are refused *before*
the password hash, a nameless multipart part is a 400 and not a 500, a token works
whatever cookie comes with it, a signed-out cookie is worthless, an expired token is
refused, and a disabled account answers exactly like a wrong password.

Every test that takes ``home`` runs on the embedded catalogue and, marked ``production``,
on PostgreSQL (``tests/servers.py``): the throttle's counters and the sessions are shared
by every node there, and its admission must stay atomic across them.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from gisportal.accounts import audit, db, sessions, throttle, tokens, users
from gisportal.accounts.db import SQLITE_MIGRATIONS
from gisportal.base.errors import UsageError
from gisportal.cli.main import cli
from gisportal.web.app import create_app
from tests.conftest import csrf_token_of, sign_in
from tests.servers import BACKENDS, on_backend

PW = "mật khẩu đủ dài"
WRONG = "không phải mật khẩu"


class CountingHasher(PasswordHasher):
    """Cheap Argon2id that counts its verifications: the cost a flood would cause."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
        with self._lock:
            self.verified += 1
        return super().verify(hash, password)


@pytest.fixture(params=BACKENDS)
def home(request, home):
    """The data home, its accounts in SQLite or (``production``) in PostgreSQL."""
    on_backend(request)
    return home


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    h = CountingHasher()
    monkeypatch.setattr(users, "_hasher", lambda: h)
    return h


@pytest.fixture
def accounts(home, hasher):
    users.add_user(home, "boss", "admin", PW)
    users.add_user(home, "lan", "planner", PW, districts=["678"])
    return home


def client_of(home, **settings):
    return create_app({"home": str(home), **settings}).test_client()


def post_login(c, token: str, name: str, password: str, ip: str = "127.0.0.1"):
    return c.post("/login", data={"username": name, "password": password, "csrf_token": token},
                  environ_base={"REMOTE_ADDR": ip})


def token_of(c, ip: str = "127.0.0.1") -> str:
    return csrf_token_of(c.get("/login", environ_base={"REMOTE_ADDR": ip})
                         .get_data(as_text=True))


# --------------------------------------------------------------------------- item 2: floods


def test_new_name_flood_from_one_address_stops_before_the_hash(accounts, hasher):
    """The attack: one CSRF token, a new user name per try. The per-(name, address)
    limit never fires; the per-address one does, and refused tries cost no hash."""
    c = client_of(accounts, login_max_per_address=5)
    token = token_of(c)
    answers = [post_login(c, token, f"khong.co.{i}", WRONG).status_code for i in range(12)]
    assert answers == [401] * 5 + [429] * 7
    assert hasher.verified == 5  # the 7 refused tries never reached Argon2
    r = post_login(c, token, "lan", PW)  # even the right password waits, from there
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Đăng nhập sai quá nhiều lần" in r.get_data(as_text=True)
    assert hasher.verified == 5
    other = client_of(accounts, login_max_per_address=5)  # another address is not blocked
    assert post_login(other, token_of(other, "10.0.0.9"), "lan", PW, "10.0.0.9").status_code \
        == 303


def test_flood_from_many_addresses_is_bounded_by_the_service_limit(accounts, hasher):
    c = client_of(accounts, login_max_global=4, login_global_window_seconds=60)
    token = token_of(c)
    answers = []
    for i in range(10):
        answers.append(post_login(c, token, f"ten.moi.{i}", WRONG, f"10.1.0.{i}"))
    assert [r.status_code for r in answers] == [401] * 4 + [429] * 6
    assert hasher.verified == 4
    busy = answers[-1]
    assert 0 < int(busy.headers["Retry-After"]) <= 60
    assert "Cổng đang nhận quá nhiều lượt đăng nhập" in busy.get_data(as_text=True)
    assert len(audit.events(accounts, action="login.failed").events) == 4  # 429s not audited


def test_service_window_passes_and_sign_in_works_again(accounts):
    c = client_of(accounts, login_max_global=2, login_global_window_seconds=1)
    token = token_of(c)
    assert [post_login(c, token, f"x{i}", WRONG, f"10.2.0.{i}").status_code
            for i in range(3)] == [401, 401, 429]
    time.sleep(1.1)
    assert post_login(c, token, "lan", PW).status_code == 303


def test_right_password_after_a_few_mistakes_signs_in_and_keeps_the_address_count(accounts):
    c = client_of(accounts, login_max_per_address=4, login_max_failures=5)
    token = token_of(c)
    assert [post_login(c, token, "lan", f"sai lần {i} rồi").status_code for i in range(3)] \
        == [401, 401, 401]
    assert post_login(c, token, "lan", PW).status_code == 303  # a right password still works
    c.post("/logout", data={"csrf_token": csrf_token_of(c.get("/").get_data(as_text=True))})
    # The success took back only its own count: the 3 real failures of the address stay.
    token = token_of(c)
    assert post_login(c, token, "ai.do", WRONG).status_code == 401  # the 4th failure
    assert post_login(c, token, "lan", PW).status_code == 429


def test_admission_is_atomic_across_concurrent_workers(home):
    """16 threads (each its own catalogue connection, like worker processes) race for
    a service limit of 10: exactly 10 are admitted, never more."""
    limits = throttle.Limits(throttle.Limit(100, 60), throttle.Limit(100, 60),
                             throttle.Limit(10, 60))
    throttle.admit(home, "warm", "10.9.9.9", limits)  # migrate the catalogue first
    results: list[object] = []
    start = threading.Barrier(16)

    def attempt(i: int) -> None:
        start.wait()
        for j in range(4):
            results.append(throttle.admit(home, f"n{i}.{j}", f"10.3.{i}.{j}", limits))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    admitted = [r for r in results if isinstance(r, throttle.Admission)]
    assert len(results) == 64 and len(admitted) == 9  # 10 minus the warm-up attempt
    assert {r.scope for r in results if isinstance(r, throttle.Refusal)} == {"service"}


def test_the_hash_runs_alone_and_at_a_lower_priority():
    seen: list[int] = []
    running = []
    lock = threading.Lock()

    def work() -> int:
        with lock:
            running.append(1)
            seen.append(len(running))
        time.sleep(0.05)
        with lock:
            running.pop()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) \
            if sys.platform == "linux" else 0

    out: list[object] = []

    def call() -> None:
        with throttle.hash_slot(wait_s=5) as run:
            out.append(run(work))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) == 1 and len(out) == 4  # one hash at a time, all four done
    if sys.platform == "linux":
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert all(n >= min(19, mine + throttle.HASH_NICE) for n in out)
    # A caller that may not wait gets HashBusy while the thread is taken.
    release = threading.Event()
    holder = threading.Thread(target=hold_hash_slot, args=(release,))
    holder.start()
    time.sleep(0.05)
    with pytest.raises(throttle.HashBusy), throttle.hash_slot(wait_s=0.05):
        pass
    release.set()
    holder.join()
    with throttle.hash_slot(wait_s=0.05) as run:  # free again
        assert run(lambda x: x + 1, 1) == 2


def hold_hash_slot(release: threading.Event) -> None:
    """Keep this process's hash slot (and its thread) until ``release`` is set."""
    with throttle.hash_slot() as run:
        run(release.wait)


def test_a_busy_hash_thread_is_a_429_that_counts_no_failure(accounts):
    c = client_of(accounts, login_max_failures=1)
    token = token_of(c)
    release = threading.Event()
    holder = threading.Thread(target=hold_hash_slot, args=(release,))
    holder.start()
    try:
        time.sleep(0.05)
        r = post_login(c, token, "lan", PW)  # waits HASH_WAIT_S for the thread, then 429
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "Cổng đang nhận quá nhiều lượt đăng nhập" in r.get_data(as_text=True)
        assert post_login(c, token, "lan", WRONG).status_code == 429  # nor a wrong one
    finally:
        release.set()
        holder.join()
    assert post_login(c, token, "lan", PW).status_code == 303  # not counted as a failure


@pytest.mark.parametrize("setting", ["login_max_per_address", "login_max_global",
                                     "login_global_window_seconds"])
def test_unusable_limits_fail_at_start_up(home, setting):
    with pytest.raises(UsageError, match=setting):
        create_app({"home": str(home), setting: 0})


# --------------------------------------------------------------------------- item 3: nameless parts

NAMELESS = (b"--XX\r\nContent-Disposition: form-data\r\n\r\nhello\r\n"
            b"--XX\r\nContent-Disposition: form-data; filename=\"a.zip\"\r\n"
            b"Content-Type: application/zip\r\n\r\nPK\r\n--XX--\r\n")
MULTIPART = "multipart/form-data; boundary=XX"


@pytest.mark.parametrize("path", ["/login", "/logout", "/admin/users", "/admin/users/1/disable",
                                  "/planner/678/upload", "/planner/versions/1/publish",
                                  "/planner/jobs/1/cancel"])
def test_nameless_multipart_part_is_a_400_page(accounts, path):
    r = client_of(accounts).post(path, data=NAMELESS, content_type=MULTIPART)  # anonymous
    assert r.status_code == 400 and "text/html" in r.content_type
    page = r.get_data(as_text=True)
    assert "không có tên" in page and "has no name" in page
    signed = client_of(accounts)
    assert sign_in(signed, "boss", PW).status_code == 303
    r = signed.post(path, data=NAMELESS, content_type=MULTIPART)
    assert r.status_code == 400 and "has no name" in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/jobs", "/api/jobs/1/cancel", "/api/versions/1/publish"])
def test_nameless_multipart_part_is_a_400_json(accounts, path):
    c = client_of(accounts)
    r = c.post(path, data=NAMELESS, content_type=MULTIPART)
    assert r.status_code == 400 and r.json["error"]["code"] == "FORM-INVALID"
    token = tokens.create_token(accounts, "boss")
    r = c.post(path, data=NAMELESS, content_type=MULTIPART,
               headers={"Authorization": f"Bearer {token}"})  # no CSRF for tokens: still 400
    assert r.status_code == 400 and r.json["error"]["code"] == "FORM-INVALID"


# ---------------------------------------------------------------- item 6: tokens and cookies


def test_token_works_whatever_cookie_comes_with_it(accounts):
    token = tokens.create_token(accounts, "boss")
    auth = {"Authorization": f"Bearer {token}"}
    c = client_of(accounts)  # keeps cookies, like requests.Session
    for path in ("/planner/", "/admin/users", "/api/me", "/admin/users", "/api/me"):
        r = c.get(path, headers=auth)
        assert r.status_code == 200, path
        assert not r.headers.getlist("Set-Cookie"), path  # no cookie for a token request
    # The cookie a form page gives an anonymous visitor (its CSRF token) rides along:
    c.get("/login")
    assert c.get_cookie("gisportal_session") is not None
    for path in ("/api/me", "/admin/users", "/planner/"):
        r = c.get(path, headers=auth)
        assert r.status_code == 200 and not r.headers.getlist("Set-Cookie"), path
    assert c.get("/api/me", headers=auth).json["via"] == "token"
    # ... and another user's signed-in cookie does not change who the token is.
    sign_in(c, "lan", PW)
    assert c.get("/api/me", headers=auth).json["user"]["name"] == "boss"
    assert c.get("/api/me").json["user"]["name"] == "lan"  # the session is untouched


# --------------------------------------------------------------------------- item 13: sessions


def test_a_cookie_copied_before_sign_out_is_refused_after_it(accounts):
    a, thief, phone = client_of(accounts), client_of(accounts), client_of(accounts)
    assert sign_in(a, "lan", PW).status_code == 303
    assert sign_in(phone, "lan", PW).status_code == 303  # the same person elsewhere
    thief.set_cookie("gisportal_session", a.get_cookie("gisportal_session").value)
    assert thief.get("/api/me").status_code == 200  # the copy works while signed in
    home_page = a.get("/").get_data(as_text=True)
    assert a.post("/logout", data={"csrf_token": csrf_token_of(home_page)}).status_code == 303
    assert thief.get("/api/me").status_code == 401  # ended server-side
    assert thief.get("/admin/users").status_code in (302, 403)
    assert phone.get("/api/me").status_code == 200  # only that session ended


def test_a_cookie_without_a_live_server_session_is_refused(accounts):
    c = client_of(accounts)
    assert sign_in(c, "lan", PW).status_code == 303
    with c.session_transaction() as s:
        sid = s["gp_sid"]
        s["gp_sid"] = "x" * 43  # a forged or old session id (the cookie is still signed)
    assert c.get("/api/me").status_code == 401
    with c.session_transaction() as s:
        s["gp_sid"] = sid
    assert c.get("/api/me").status_code == 200
    user = users.get_user(accounts, "lan")
    assert sessions.end_all(accounts, user.id) == 1
    assert c.get("/api/me").status_code == 401
    with db.connect(accounts) as conn:
        stored = [r[0] for r in conn.execute("SELECT sid_sha256 FROM login_sessions")]
    assert sid not in stored  # only hashes of session ids are kept


def test_server_side_session_expires_with_session_hours(home):
    users.add_user(home, "lan", "planner", PW, districts=["678"], hasher=PasswordHasher(
        time_cost=1, memory_cost=1024, parallelism=1))
    uid = users.get_user(home, "lan").id
    sid = sessions.start(home, uid, max_age_s=3600, now=1000.0)
    assert sessions.user_for_session(home, uid, 0, sid, max_age_s=3600, now=2000.0).name \
        == "lan"
    assert sessions.user_for_session(home, uid, 0, sid, max_age_s=3600, now=5000.0) is None
    assert sessions.user_for_session(home, uid, 1, sid, max_age_s=3600, now=2000.0) is None
    assert sessions.user_for_session(home, uid + 1, 0, sid, max_age_s=3600, now=2000.0) is None
    for bad in (None, "", "short", "y" * 5000):
        assert sessions.user_for_session(home, uid, 0, bad, max_age_s=3600) is None


# --------------------------------------------------------------------------- item 13: token expiry

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text,expected", [
    ("90d", "2026-05-30T12:00:00.000Z"), ("12h", "2026-03-02T00:00:00.000Z"),
    ("2w", "2026-03-15T12:00:00.000Z"), (" 7D ", "2026-03-08T12:00:00.000Z"),
    ("2027-01-31", "2027-01-31T17:00:00.000Z"),  # through that day in Vietnam (UTC+7)
    ("2026-04-01T08:00+07:00", "2026-04-01T01:00:00.000Z"),
    ("2026-04-01T08:00:00Z", "2026-04-01T08:00:00.000Z"), ("never", None), (None, None),
])
def test_token_expiry_is_read_from_durations_dates_and_times(text, expected):
    assert tokens.parse_expiry(text, now=NOW) == expected


@pytest.mark.parametrize("text,message", [
    ("2026-04-01T08:00", "no time zone"), ("2025-12-31", "not in the future"),
    ("0d", "not in the future"), ("soon", "not a duration"), ("2026-02-30", "not a date"),
    ("5000d", "more than 10 years"), ("90 days", "not a duration"),
])
def test_bad_token_expiries_are_refused_with_the_reason(text, message):
    with pytest.raises(UsageError, match=message) as err:
        tokens.parse_expiry(text, now=NOW)
    assert err.value.code == "TOKEN-EXPIRY-INVALID"


def test_an_expired_token_is_a_401_that_says_so(accounts):
    token = tokens.create_token(accounts, "lan", label="ci", expires="1h")
    forever = tokens.create_token(accounts, "lan", label="nightly")
    c = client_of(accounts)
    assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with db.connect(accounts) as conn:  # an hour and a bit later
        conn.execute("UPDATE api_tokens SET expires_at = '2026-01-01T00:00:00.000Z' "
                     "WHERE label = 'ci'")
    r = c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN-EXPIRED"
    assert "expired at 2026-01-01 00:00 UTC" in r.json["error"]["what"]
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="gisportal"'
    assert tokens.user_for_token(accounts, token) is None
    assert c.get("/api/me", headers={"Authorization": f"Bearer {forever}"}).status_code == 200
    states = {t.label: (t.state, t.expires_at) for t in tokens.list_tokens(accounts, "lan")}
    assert states == {"ci": ("expired", "2026-01-01T00:00:00.000Z"), "nightly": ("valid", None)}
    created = audit.events(accounts, action="token.create").events
    assert created[-1].detail["expires_at"] is not None and created[0].detail["expires_at"] \
        is None


def _cli(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def test_cli_token_expiry_and_listing(accounts):
    day = (date.today() + timedelta(days=60)).isoformat()
    r = _cli(accounts, "users", "token", "lan", "--label", "ci", "--expires", day)
    assert r.exit_code == 0
    token = r.stdout.strip()  # alone on standard output: $(gisportal users token …) works
    assert tokens.user_for_token(accounts, token).name == "lan"
    end = (datetime.fromisoformat(day) + timedelta(hours=17)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert f"expires {end}" in r.stderr
    _cli(accounts, "users", "token", "lan", "--label", "nightly")
    listed = _cli(accounts, "users", "token", "lan", "--list").output.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [
        [listed[0].split("\t")[0], "valid", "expires never"],
        [listed[1].split("\t")[0], "valid", f"expires {end}"]]
    table = _cli(accounts, "users", "list").output
    lan_line = next(line for line in table.splitlines() if line.startswith("lan\t"))
    assert lan_line.endswith(f"tokens expire never, {end}")
    assert next(line for line in table.splitlines() if line.startswith("boss\t")) \
        .endswith("tokens expire -")
    as_json = {u["name"]: u for u in json.loads(_cli(accounts, "users", "list", "--json")
                                                 .output)}
    assert sorted(str(t["expires_at"]) for t in as_json["lan"]["tokens"]) == [end, "None"]
    r = _cli(accounts, "users", "token", "lan", "--expires", "2001-01-01")
    assert r.exit_code == 2 and "not in the future" in r.output


@pytest.mark.parametrize("home", ["embedded"], indirect=True)  # SQLite's own file
def test_a_catalogue_from_before_token_expiry_is_migrated(home, hasher):
    """A data home made by the previous version (users schema 1) keeps its tokens."""
    path = home / "catalogue.sqlite"
    home.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (component TEXT PRIMARY KEY, "
                     "version INTEGER NOT NULL)")
        for sql in SQLITE_MIGRATIONS["users"][0]:
            conn.execute(sql)
        conn.execute("INSERT INTO schema_version VALUES ('users', 1)")
        conn.execute("INSERT INTO users (name, name_key, role, password_hash, created_at, "
                     "created_by, password_changed_at) VALUES ('lan', 'lan', 'admin', 'x', "
                     "'t', 'system', 't')")
        conn.execute("INSERT INTO api_tokens (user_id, token_sha256, created_at, created_by) "
                     "VALUES (1, ?, 't', 'system')", (tokens._digest("gp_" + "a" * 43),))
    from gisportal.store import catalogue

    catalogue._current.clear()
    assert tokens.user_for_token(home, "gp_" + "a" * 43).name == "lan"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version WHERE component = 'users'"
                            ).fetchone()[0] == 2


# ---------------------------------------------------------------- item 19: disabled accounts


def same_but_nonce(text: str) -> str:
    """``text`` with per-response CSP nonces blanked (they differ on every answer)."""
    return re.sub(r"nonce-[A-Za-z0-9_+/=-]+|nonce=\"[^\"]*\"", "nonce", text)


def test_a_disabled_account_answers_like_a_wrong_password(accounts):
    users.disable_user(accounts, "lan", actor="boss")
    c = client_of(accounts, login_max_failures=3)
    token = token_of(c)
    right, wrong = post_login(c, token, "lan", PW), post_login(c, token, "lan", WRONG)
    assert right.status_code == wrong.status_code == 401
    assert same_but_nonce(right.get_data(as_text=True)) == \
        same_but_nonce(wrong.get_data(as_text=True))  # the same page, but for CSP nonces
    assert {k: same_but_nonce(v) for k, v in right.headers.items() if k != "Date"} == \
        {k: same_but_nonce(v) for k, v in wrong.headers.items() if k != "Date"}
    # The throttle does not tell either: the right password counted as a failure too.
    assert post_login(c, token, "lan", PW).status_code == 401
    assert post_login(c, token, "lan", PW).status_code == 429
    events = audit.events(accounts, action="login.").events
    assert [(e.action, e.detail["reason"]) for e in reversed(events)] == [
        ("login.refused", "LOGIN-DISABLED"), ("login.failed", "LOGIN-FAILED"),
        ("login.refused", "LOGIN-DISABLED")]
