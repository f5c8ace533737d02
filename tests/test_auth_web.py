"""Sign-in over HTTP: sessions, cookies, throttling, CSRF, API tokens, redirects, and who
sees personal data — through Flask's test client against a real data home.

Every test that takes ``home`` runs on the embedded catalogue and, marked ``production``,
on PostgreSQL (``tests/servers.py``); the last test runs two app nodes on one database."""

from __future__ import annotations

import sqlite3
import time
import unicodedata
from urllib.parse import parse_qs, urlsplit

import pytest

from gisportal.accounts import audit, tokens, users
from gisportal.base.crs import to_lonlat
from gisportal.base.errors import UsageError
from gisportal.base.settings import load_settings
from gisportal.services.ingest import ingest_file
from gisportal.store.home import DataHome
from gisportal.web.app import create_app
from gisportal.web.auth import safe_next
from tests.conftest import DUC_TRONG_XY, csrf_token_of, sign_in
from tests.servers import BACKENDS, on_backend

PW = "mật khẩu đủ dài"
OWNER = "Nguyễn Văn Hùng"  # TenChu of parcel sheet 1 / parcel 1 in parcel_grid()


@pytest.fixture(params=BACKENDS)
def home(request, home):
    """The data home, its accounts in SQLite or (``production``) in PostgreSQL."""
    on_backend(request)
    return home


@pytest.fixture
def accounts(home, fast_passwords):
    users.add_user(home, "boss", "admin", PW)
    users.add_user(home, "lan", "planner", PW, districts=["678"])
    users.add_user(home, "mai", "planner", PW, districts=["672"])
    return home


def make_client(home, **settings):
    app = create_app({"home": str(home), **settings})
    return app.test_client()


@pytest.fixture
def client(accounts):
    return make_client(accounts)


def message_of(r) -> str:
    return r.get_data(as_text=True)


def without_csrf(r) -> str:
    """The page without its CSRF token: a signed time, which differs between two answers
    that straddle a second."""
    page = message_of(r)
    return page.replace(csrf_token_of(page), "")


# --------------------------------------------------------------------------- sign-in


def test_login_page_and_header(client):
    r = client.get("/login")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert 'name="username"' in page and 'name="password"' in page and "csrf_token" in page
    assert "Đăng nhập dành cho cán bộ" in page
    assert 'href="/login"' in client.get("/").get_data(as_text=True)  # the header's link


def test_sign_in_and_out(client, home):
    r = sign_in(client, "BOSS", PW)
    # Staff land on their work: the planner dashboard (admins see every district there).
    assert r.status_code == 303 and r.headers["Location"] == "/planner/"
    page = client.get("/").get_data(as_text=True)
    assert 'id="gp-user-name">boss<' in page and 'id="gp-logout"' in page
    assert 'href="/admin/users"' in page
    me = client.get("/api/me").json
    assert me["user"] == {"name": "boss", "role": "admin", "districts": []}
    assert me["via"] == "session" and me["can"]["manage_users"] is True
    assert client.get("/logout").status_code == 405  # a link cannot sign anyone out
    token = csrf_token_of(page)
    r = client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert client.get("/api/me").status_code == 401
    assert [e.action for e in audit.events(home).events][:2] == ["logout", "login"]


def test_planner_lands_home_and_sees_own_districts(client):
    r = sign_in(client, "lan", PW)
    assert r.status_code == 303 and r.headers["Location"] == "/planner/"
    me = client.get("/api/me").json
    assert me["can"]["upload"] == ["678"] and me["can"]["manage_users"] is False
    assert 'href="/admin/users"' not in client.get("/").get_data(as_text=True)


def test_wrong_password_and_unknown_user(client, home):
    for name, pw in (("lan", "không phải mật khẩu"), ("không.có.ai", PW)):
        r = sign_in(client, name, pw)
        assert r.status_code == 401
        assert "Tên đăng nhập hoặc mật khẩu không đúng." in message_of(r)
    assert client.get("/api/me").status_code == 401
    failed = audit.events(home, action="login.failed").events
    assert [(e.actor, e.detail["reason"]) for e in failed] == [
        ("không.có.ai", "LOGIN-FAILED"), ("lan", "LOGIN-FAILED")]
    assert failed[0].ip == "127.0.0.1"


def test_english_login_message(client):
    client.get("/login?lang=en")
    r = sign_in(client, "lan", "không phải mật khẩu")
    assert "Wrong user name or password." in message_of(r)


def test_disabled_user_cannot_sign_in_and_open_sessions_end(client, home):
    other = make_client(home)
    assert sign_in(other, "lan", PW).status_code == 303
    assert other.get("/api/me").status_code == 200
    users.disable_user(home, "lan", actor="boss")
    assert other.get("/api/me").status_code == 401  # the open session ended at once
    right, wrong = sign_in(client, "lan", PW), sign_in(client, "lan", "không phải mật khẩu")
    # The same answer with the right password as with a wrong one: no oracle (issue 11).
    assert right.status_code == wrong.status_code == 401
    assert without_csrf(right) == without_csrf(wrong)
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in message_of(right)
    refused = audit.events(home, action="login.refused").events
    assert [(e.actor, e.detail["reason"]) for e in refused] == [("lan", "LOGIN-DISABLED")]


def test_password_change_ends_open_sessions(client, home):
    assert sign_in(client, "lan", PW).status_code == 303
    users.set_password(home, "lan", "một mật khẩu mới", actor="boss")
    assert client.get("/api/me").status_code == 401
    assert sign_in(client, "lan", "một mật khẩu mới").status_code == 303


def test_session_protection_drops_a_cookie_used_by_another_browser(client):
    sign_in(client, "lan", PW)
    assert client.get("/api/me").status_code == 200
    assert client.get("/api/me", headers={"User-Agent": "curl/8"}).status_code == 401


def test_sign_in_expires_after_session_hours(accounts):
    c = make_client(accounts, session_hours=1 / 3600)  # one second
    sign_in(c, "lan", PW)
    assert c.get("/api/me").status_code == 200
    time.sleep(1.2)
    assert c.get("/api/me").status_code == 401


# --------------------------------------------------------------------------- cookies


def _session_cookie(r) -> str:
    cookies = [v for v in r.headers.getlist("Set-Cookie") if v.startswith("gisportal_session=")]
    assert cookies, "no session cookie was set"
    return cookies[-1]


def test_session_cookie_flags(accounts):
    local = make_client(accounts)
    cookie = _session_cookie(sign_in(local, "lan", PW))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http://localhost (the embedded demo) keeps working

    public = create_app({"home": str(accounts)}).test_client()
    r = public.get("/login", base_url="https://quyhoach.lamdong.gov.vn")
    assert "Secure" in _session_cookie(r)  # "auto": a real host name gets HTTPS-only

    plain = create_app({"home": str(accounts), "cookie_secure": "false"}).test_client()
    r = plain.get("/login", base_url="http://10.0.0.5")
    assert "Secure" not in _session_cookie(r)
    forced = create_app({"home": str(accounts), "cookie_secure": "true"}).test_client()
    assert "Secure" in _session_cookie(forced.get("/login"))
    with pytest.raises(UsageError, match="is not auto, true or false"):
        create_app({"home": str(accounts), "cookie_secure": "maybe"})


def test_login_page_warns_when_secure_cookies_meet_plain_http(accounts):
    c = make_client(accounts)
    page = c.get("/login", base_url="http://quyhoach.lamdong.gov.vn").get_data(as_text=True)
    assert "GISPORTAL_COOKIE_SECURE=false" in page
    page = c.get("/login", base_url="https://quyhoach.lamdong.gov.vn").get_data(as_text=True)
    assert "GISPORTAL_COOKIE_SECURE=false" not in page


def test_secret_key_file_is_used_when_none_is_configured(accounts, monkeypatch):
    monkeypatch.delenv("GISPORTAL_SECRET_KEY", raising=False)
    a, b = make_client(accounts), make_client(accounts)  # two processes of one home
    sign_in(a, "lan", PW)
    b.set_cookie("gisportal_session", a.get_cookie("gisportal_session").value)
    assert b.get("/api/me").status_code == 200  # same key, the session is valid in both
    keyed = make_client(accounts, secret_key="k" * 40)
    keyed.set_cookie("gisportal_session", a.get_cookie("gisportal_session").value)
    assert keyed.get("/api/me").status_code == 401


# --------------------------------------------------------------------------- throttling


def test_rate_limit_then_success_after_the_window(accounts, home):
    c = make_client(accounts, login_max_failures=2, login_window_seconds=1)
    for _ in range(2):
        assert sign_in(c, "lan", "không phải mật khẩu").status_code == 401
    r = sign_in(c, "lan", PW)  # even the right password waits
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 1 giây." in message_of(r)
    time.sleep(1.1)
    assert sign_in(c, "lan", PW).status_code == 303
    assert len(audit.events(home, action="login.failed").events) == 2  # 429s are not logged


def test_rate_limit_is_per_name_and_address_and_success_resets_it(accounts):
    app = create_app({"home": str(accounts), "login_max_failures": 3,
                      "login_window_seconds": 600})
    c = app.test_client()

    def attempt(password, ip="10.0.0.1", name="lan"):
        html = c.get("/login", environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True)
        return c.post("/login", environ_base={"REMOTE_ADDR": ip},
                      data={"username": name, "password": password,
                            "csrf_token": csrf_token_of(html)}).status_code

    assert [attempt("sai mật khẩu 1"), attempt("sai mật khẩu 2")] == [401, 401]
    assert attempt(PW) == 303  # success clears the two failures
    home_page = c.get("/", environ_base={"REMOTE_ADDR": "10.0.0.1"}).get_data(as_text=True)
    assert c.post("/logout", environ_base={"REMOTE_ADDR": "10.0.0.1"},
                  data={"csrf_token": csrf_token_of(home_page)}).status_code == 303
    assert [attempt("sai 3 rồi nhé"), attempt("sai 4 rồi nhé"), attempt("sai 5 rồi nhé")] == \
        [401, 401, 401]
    assert attempt(PW) == 429
    assert attempt(PW, ip="10.0.0.2") == 303  # another address is not blocked
    assert attempt("sai mật khẩu", name="mai") == 401  # nor another name


# --------------------------------------------------------------------------- CSRF


def test_csrf_on_forms(client):
    r = client.post("/login", data={"username": "lan", "password": PW})
    assert r.status_code == 400
    page = message_of(r)
    assert "Biểu mẫu đã hết hạn hoặc thiếu mã bảo vệ (CSRF)" in page
    assert "reload the page" in page
    r = client.post("/login", data={"username": "lan", "password": PW, "csrf_token": "x" * 40})
    assert r.status_code == 400
    assert sign_in(client, "boss", PW).status_code == 303  # with the token: accepted
    r = client.post("/admin/users", data={"username": "moi", "role": "admin",
                                          "password": PW, "password2": PW})
    assert r.status_code == 400 and "CSRF" in message_of(r)
    with pytest.raises(Exception, match="no user named"):
        users.get_user(client.application.config["GISPORTAL_HOME"], "moi")


# --------------------------------------------------------------------------- tokens


def test_bearer_token_works_for_json_without_session_or_csrf(client, home):
    token = tokens.create_token(home, "boss", actor="cli:test")
    auth = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/me", headers=auth).json
    assert me["user"]["name"] == "boss" and me["via"] == "token"
    assert "Set-Cookie" not in client.get("/api/me", headers=auth).headers
    lan = users.get_user(home, "lan")
    r = client.post(f"/admin/users/{lan.id}/disable", headers=auth)  # no CSRF token at all
    assert r.status_code == 303
    assert not users.get_user(home, "lan").is_active
    assert audit.events(home).events[0].actor == "boss"


def test_bad_tokens_are_401_json(client, home):
    token = tokens.create_token(home, "lan")
    for header in (f"Bearer {token}x", "Bearer ", "bearer gp_nope", f"Bearer {'a' * 5000}"):
        r = client.get("/api/me", headers={"Authorization": header})
        assert r.status_code == 401 and r.json["error"]["code"] == "TOKEN-INVALID"
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="gisportal"'
    tokens.revoke_tokens(home, "lan")
    r = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    # Basic authentication of a proxy in front of the portal is not ours: ignored.
    assert client.get("/healthz", headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code \
        == 200


def test_token_wins_over_a_session_cookie(client, home):
    sign_in(client, "boss", PW)
    token = tokens.create_token(home, "lan")
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json
    assert me["user"]["name"] == "lan"


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("target,expected", [
    ("/admin/audit?actor=lan", "/admin/audit?actor=lan"),
    ("/districts/678#18/11.7/108.3", "/districts/678#18/11.7/108.3"),
    ("https://evil.example/", None), ("//evil.example/x", None), ("/\\evil.example", None),
    ("http:/evil", None), ("javascript:alert(1)", None), ("evil.example", None),
    ("/ok\r\nSet-Cookie: x=1", None), ("/login", None), ("", None), (None, None),
    ("/" + "a" * 3000, None),
])
def test_safe_next(target, expected):
    assert safe_next(target) == expected


def test_open_redirect_is_refused(client):
    page = client.get("/login?next=https://evil.example/").get_data(as_text=True)
    assert "evil" not in page
    r = sign_in(client, "boss", PW, next="https://evil.example/")
    assert r.status_code == 303 and r.headers["Location"] == "/planner/"
    r = client.get("/login?next=//evil.example/")  # signed in: GET /login redirects too
    assert r.status_code == 302 and r.headers["Location"] == "/planner/"


def test_anonymous_is_sent_to_login_and_back(client):
    r = client.get("/admin/audit?actor=lan")
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/admin/audit?actor=lan"]}
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/admin/audit?actor=lan"' in page
    r = sign_in(client, "boss", PW, next="/admin/audit?actor=lan")
    assert r.headers["Location"] == "/admin/audit?actor=lan"


def test_anonymous_json_is_401_and_planner_is_403(client):
    r = client.get("/api/me")
    assert r.status_code == 401 and r.json["error"]["code"] == "AUTH-REQUIRED"
    sign_in(client, "lan", PW)
    r = client.get("/admin/users")
    assert r.status_code == 403 and "text/html" in r.content_type
    assert "lan may not manage_users" in message_of(r)


# --------------------------------------------------------------------------- hostile input


def test_hostile_sign_in_input_is_a_clean_refusal(client):
    assert sign_in(client, "x" * 10_000, PW).status_code == 401
    assert sign_in(client, "lan", "p" * 100_000).status_code == 401
    assert sign_in(client, "admin' OR '1'='1", "' OR '1'='1").status_code == 401
    assert sign_in(client, "lan\x00", PW).status_code == 401
    assert sign_in(client, "   ", PW).status_code == 401
    home = client.application.config["GISPORTAL_HOME"]
    actors = [e.actor for e in audit.events(home, action="login.failed").events]
    assert actors[:2] == ["(empty)", "lan"]  # control bytes never reach the log
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    form = "application/x-www-form-urlencoded"
    r = client.post("/login", content_type=form,
                    data=b"username=%FF%FE%00&password=%C3%28&csrf_token=" + token.encode())
    assert r.status_code == 401 and "\x00" not in message_of(r)
    # Raw non-UTF-8 bytes: Werkzeug drops the undecodable form, so the token is missing.
    r = client.post("/login", content_type=form,
                    data=b"username=\xff\xfelan&password=\xc3\x28&csrf_token=" + token.encode())
    assert r.status_code == 400 and "CSRF" in message_of(r)
    nfd = unicodedata.normalize("NFD", "Đức.Trọng")
    users.add_user(client.application.config["GISPORTAL_HOME"], "Đức.Trọng", "admin", PW)
    assert sign_in(client, nfd, PW).status_code == 303  # NFD typed, NFC stored


def test_admin_form_refuses_bad_accounts_with_the_reason(client, home):
    sign_in(client, "boss", PW)
    token = csrf_token_of(client.get("/admin/users").get_data(as_text=True))

    def add(**form):
        data = {"csrf_token": token, "role": "planner", "district": ["678"], "password": PW,
                "password2": PW, **form}
        return client.post("/admin/users", data=data)

    r = add(username="x'; DROP TABLE users;--")
    assert r.status_code == 400 and "contains" in message_of(r)
    assert 'value="x&#39;; DROP TABLE users;--"' in message_of(r)  # kept, escaped
    r = add(username="mới", password2="khác hẳn rồi đấy")
    assert r.status_code == 400 and "the two passwords differ" in message_of(r)
    r = add(username="mới", district=["999"])
    assert r.status_code == 400 and "unknown district code" in message_of(r)
    r = add(username="LAN")
    assert r.status_code == 409 and "already exists" in message_of(r)
    r = add(username="Mới.Tuyển", district=["678", "679"])
    assert r.status_code == 303
    assert users.get_user(home, "mới.tuyển").districts == ("678", "679")
    boss = users.get_user(home, "boss")
    r = client.post(f"/admin/users/{boss.id}/disable", data={"csrf_token": token})
    assert r.status_code == 409 and "last active admin" in message_of(r)
    assert client.post("/admin/users/9999/disable", data={"csrf_token": token}).status_code \
        == 404


def test_admin_resets_a_password_and_enables(client, home):
    sign_in(client, "boss", PW)
    token = csrf_token_of(client.get("/admin/users").get_data(as_text=True))
    lan = users.get_user(home, "lan")
    r = client.post(f"/admin/users/{lan.id}/password",
                    data={"csrf_token": token, "password": "mật khẩu tạm thời",
                          "password2": "mật khẩu tạm thời"})
    assert r.status_code == 303
    assert "Đã đặt lại mật khẩu cho lan." in client.get("/admin/users").get_data(as_text=True)
    assert users.authenticate(home, "lan", "mật khẩu tạm thời").name == "lan"
    client.post(f"/admin/users/{lan.id}/disable", data={"csrf_token": token})
    assert not users.get_user(home, "lan").is_active
    client.post(f"/admin/users/{lan.id}/enable", data={"csrf_token": token})
    assert users.get_user(home, "lan").is_active
    assert [e.action for e in audit.events(home, actor="boss").events][:3] == [
        "user.enable", "user.disable", "user.passwd"]


# --------------------------------------------------------------------------- personal data


@pytest.fixture
def published(accounts, store, make_shapefile_zip):
    assert ingest_file(store, make_shapefile_zip(), "parcels", "678", publish=True).published
    return accounts


@pytest.mark.parametrize("who,shown", [(None, False), ("mai", False), ("lan", True),
                                       ("boss", True)])
def test_personal_fields_only_for_own_district_planner_and_admin(published, who, shown):
    c = make_client(published)
    if who:
        assert sign_in(c, who, PW).status_code == 303
    r = c.get("/api/lookup?district=678&sheet=1&parcel=1")
    assert r.status_code == 200
    attributes = r.json["parcel"]["attributes"]
    assert ("TenChu" in attributes) is shown
    if shown:
        assert attributes["TenChu"] == OWNER
        assert r.headers["Cache-Control"] == "private, no-store"
    lon, lat = to_lonlat(DUC_TRONG_XY[0] + 5, DUC_TRONG_XY[1] + 5)
    by_point = c.get(f"/api/lookup?lat={lat}&lon={lon}").json
    assert by_point["parcel"]["parcel"] == 1
    assert ("TenChu" in by_point["parcel"]["attributes"]) is shown
    sheet = c.get("/parcels/678/1/1")
    assert sheet.status_code == 200
    assert (OWNER in sheet.get_data(as_text=True)) is shown
    assert ('id="gp-attributes"' in sheet.get_data(as_text=True)) is shown


def test_personal_fields_by_token(published):
    c = make_client(published)
    for name, shown in (("lan", True), ("mai", False)):
        token = tokens.create_token(published, name)
        r = c.get("/api/lookup?district=678&sheet=1&parcel=1",
                  headers={"Authorization": f"Bearer {token}"})
        assert ("TenChu" in r.json["parcel"]["attributes"]) is shown


# --------------------------------------------------------------------------- several nodes


@pytest.mark.production
def test_two_app_nodes_share_accounts_sessions_and_the_throttle(production_env, tmp_path,
                                                                monkeypatch, fast_passwords):
    """Two apps, each with its own data home, given the database in their settings only
    (no GISPORTAL_DATABASE): a session started on one is live on the other and ends on
    both at sign-out, failures counted by one refuse on the other, and neither home gets
    an embedded catalogue."""
    monkeypatch.delenv("GISPORTAL_DATABASE")
    shared = {"database": production_env, "secret_key": "k" * 40}
    homes = [tmp_path / "node-a", tmp_path / "node-b"]
    admin_home = DataHome.at(homes[0], load_settings(shared))
    users.add_user(admin_home, "boss", "admin", PW)
    users.add_user(admin_home, "lan", "planner", PW, districts=["678"])
    a, b = (create_app({"home": str(h), "login_max_failures": 2, **shared}).test_client()
            for h in homes)

    assert sign_in(a, "boss", PW).status_code == 303
    b.set_cookie("gisportal_session", a.get_cookie("gisportal_session").value)
    assert b.get("/api/me").json["user"]["name"] == "boss"  # the load balancer moved us
    assert b.get("/admin/users").status_code == 200
    page = b.get("/").get_data(as_text=True)
    assert b.post("/logout", data={"csrf_token": csrf_token_of(page)}).status_code == 303
    assert a.get("/api/me").status_code == 401  # signed out on b: the copy on a is dead

    assert sign_in(a, "lan", "sai mật khẩu 1").status_code == 401
    assert sign_in(b, "lan", "sai mật khẩu 2").status_code == 401
    assert sign_in(a, "lan", PW).status_code == 429  # two failures, on two nodes
    events = audit.events(DataHome.at(homes[1], load_settings(shared))).events
    assert [e.action for e in events][:3] == ["login.failed", "login.failed", "logout"]
    for h in homes:  # no account table in SQLite (create_app still hands jobs.startup a
        #              plain path, home.root, which reads the environment: jobs' gap, not ours)
        if (h / "catalogue.sqlite").exists():
            with sqlite3.connect(h / "catalogue.sqlite") as conn:
                assert not conn.execute("SELECT name FROM sqlite_master WHERE name IN "
                                        "('users', 'audit', 'login_sessions')").fetchall()
