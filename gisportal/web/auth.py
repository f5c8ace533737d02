"""Sign-in for planners and admins; the authorisation helpers every blueprint uses.

``init_app(app)`` (called by ``create_app``) sets up, in this order:

- the **secret key** (``GISPORTAL_SECRET_KEY`` or a key kept in the data home);
- **session cookies**: HttpOnly, SameSite=Lax, ``Secure`` per ``cookie_secure``
  (``auto``: secure except on localhost/127.0.0.1 — the embedded demo over plain http
  keeps working, a production host name gets HTTPS-only cookies); a sign-in lasts
  ``session_hours`` at most and ends with the browser;
- **Flask-Login** with strong session protection (a session cookie replayed from
  another address or browser is dropped), the user reloaded from the catalogue on
  each request (a disabled account or a changed password ends its sessions at once)
  together with the cookie's **server-side session** row (``accounts/sessions.py``):
  signing out deletes it, so a copy of the cookie made before sign-out is worthless;
- **API tokens**: ``Authorization: Bearer gp_…`` authenticates a script without a
  session; a bad or expired token is a 401, never a fall-back to the cookie. A token
  request neither reads nor writes the session cookie: whatever cookie a client's
  cookie jar sends along, the token decides, and no cookie is set in return;
- **multipart forms** with a part that has no name are a 400 before anything reads
  them (Flask-WTF's CSRF check used to fail on them with a 500);
- **CSRF** (Flask-WTF) on every POST/PUT/PATCH/DELETE of the app, except requests
  authenticated by a token (they carry no ambient credential a foreign page could
  ride on) and ``/api/`` requests no session signs in (they answer 401); a missing or
  stale token is a 400 that says to reload the page;
- the ``auth`` blueprint (``/login``, ``/logout``, ``/api/me``); ``web/admin.py`` uses these
  helpers and is registered by the app factory.

Sign-in under attack (issue 11): every limit of ``accounts/throttle.py`` is checked
before the password hash — failures per address, per (name, address), and attempts
per service — then the hash runs on the process's one low-priority hash thread, so a
flood of sign-ins costs look-ups and tiles little CPU. A wrong password and a disabled
account get the same 401 and the same page (the audit log keeps the real reason).

For other blueprints
--------------------
``@requires("publish")`` on a view (the district comes from the view argument or the
query/form field ``district``, or from ``district_from``), or ``require("publish",
district)`` inside it once the district is known (e.g. from a version id — prefer
this whenever the district follows from something other than what the client says).
Anonymous: redirect to ``/login?next=…`` for pages, 401 JSON under ``/api/`` (and for
token requests); signed in without the right: 403 (page or JSON, ``web/errors.py``).
``audit_event("version.publish", district=…, version=…)`` records an event for the
current user and address. Templates get ``current_user``, ``can`` and ``csrf_token()``:
a form carries ``<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">``;
a page's JS sending POST/PUT/DELETE with the session sends the same value in an
``X-CSRFToken`` header.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from gisportal.accounts import audit, roles, sessions, throttle, tokens, users
from gisportal.accounts.errors import AuthError, PermissionDenied
from gisportal.accounts.secret import secret_key
from gisportal.base.errors import UsageError
from gisportal.web import get_home
from gisportal.web.i18n import add_strings, tr

__all__ = ["bp", "init_app", "login_required", "requires", "require", "can", "audit_event",
           "safe_next", "wants_json"]

bp = Blueprint("auth", __name__)
logger = logging.getLogger(__name__)

can = roles.can

add_strings({
    "login": ("Đăng nhập", "Sign in"),
    "logout": ("Đăng xuất", "Sign out"),
    "auth_title": ("Đăng nhập dành cho cán bộ", "Staff sign-in"),
    "auth_staff_only": ("Dành cho cán bộ quy hoạch và quản trị. Người dân tra cứu quy hoạch "
                        "không cần đăng nhập.",
                        "For planners and administrators. Residents look plans up without "
                        "signing in."),
    "auth_username": ("Tên đăng nhập", "User name"),
    "auth_password": ("Mật khẩu", "Password"),
    "auth_signed_in_as": ("Đã đăng nhập", "Signed in as"),
    "auth_failed": ("Tên đăng nhập hoặc mật khẩu không đúng.", "Wrong user name or password."),
    "auth_too_many": ("Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {wait}.",
                      "Too many failed sign-ins. Please try again in {wait}."),
    "auth_busy": ("Cổng đang nhận quá nhiều lượt đăng nhập. Vui lòng thử lại sau {wait}.",
                  "The portal is receiving too many sign-ins. Please try again in {wait}."),
    "auth_seconds": ("{n} giây", "{n} seconds"),
    "auth_minutes": ("{n} phút", "{n} minutes"),
    "auth_cookie_https": ("Cổng chỉ gửi cookie đăng nhập qua HTTPS nhưng trang này mở bằng "
                          "HTTP: hãy mở cổng bằng HTTPS, hoặc đặt "
                          "GISPORTAL_COOKIE_SECURE=false trên mạng nội bộ tin cậy.",
                          "The sign-in cookie is sent over HTTPS only but this page was opened "
                          "over HTTP: open the portal over HTTPS, or set "
                          "GISPORTAL_COOKIE_SECURE=false on a trusted intranet."),
    "role_admin": ("Quản trị", "Administrator"),
    "role_planner": ("Cán bộ quy hoạch", "Planner"),
    "admin_link": ("Quản trị", "Administration"),
})

#: Paths that JSON clients call (errors there are JSON, see web/errors.py).
_JSON_PREFIXES = ("/api/", "/tiles/", "/ogc")
_COOKIE_MODES = {"auto": "auto", "true": "true", "yes": "true", "1": "true", "false": "false",
                 "no": "false", "0": "false"}


# --------------------------------------------------------------------------- helpers


def _bearer(req=None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (other schemes are not ours:
    a proxy doing Basic authentication in front of the portal must keep working)."""
    scheme, _, value = (req or request).headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def wants_json() -> bool:
    """Whether the client is a script or the map's JS rather than a person's browser."""
    return (request.path.startswith(_JSON_PREFIXES) or request.path == "/healthz"
            or _bearer() is not None)


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirect).

    Refused: absolute URLs, scheme-relative ``//host``, backslashes (browsers read
    ``/\\host`` as ``//host``), control characters, and the sign-in pages themselves.
    """
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    if parts.path in ("/login", "/logout"):
        return None
    return target


def _here() -> str:
    """The current path and query, for ``next``."""
    return request.full_path.rstrip("?") if request.query_string else request.path


def _login_redirect():
    return redirect(url_for("auth.login", next=_here()))


def _client_ip() -> str | None:
    return request.remote_addr


def audit_event(action: str, **fields: Any) -> int:
    """Record ``action`` for the current user (or token user) and client address."""
    return audit.record(get_home(), current_user, action, ip=_client_ip(), **fields)


def _landing(user: users.User) -> str:
    """Where staff land after signing in: their work (admins see every district there)."""
    return url_for("planner.dashboard")


# --------------------------------------------------------------------------- authorisation


def require(action: str, district: str | None = None) -> None:
    """Stop the request unless the current user may do ``action`` in ``district``.

    Anonymous: a redirect to the sign-in page (pages) or AuthError 401 (JSON, tokens);
    signed in without the right: PermissionDenied 403.
    """
    if not current_user.is_authenticated:
        if wants_json():
            raise AuthError("sign in first / cần đăng nhập", where=request.path,
                            fix="sign in at /login, or send Authorization: Bearer <token>")
        abort(_login_redirect())
    if not can(current_user, action, district):
        scope = f" in district {district}" if district else ""
        raise PermissionDenied(
            f"Bạn không có quyền {action}{' tại huyện ' + district if district else ''} / "
            f"{current_user.name} may not {action}{scope}",
            where=request.path, fix="ask an administrator for this right")


def requires(action: str, *, district_arg: str = "district",
             district_from: Callable[..., str | None] | None = None):
    """View decorator: `require` ``action`` before the view runs.

    The district is ``district_from(**view_args)`` when given, else the view argument
    ``district_arg``, else the query or form field of that name, else None ("in some
    district").
    """

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if district_from is not None:
                district = district_from(**kwargs)
            elif kwargs.get(district_arg) is not None:
                district = kwargs[district_arg]
            else:
                district = request.values.get(district_arg) or None
            require(action, district)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def login_required(view):
    """View decorator: any signed-in user (or valid token), whatever the role."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            if wants_json():
                raise AuthError("sign in first / cần đăng nhập", where=request.path,
                                fix="sign in at /login, or send Authorization: Bearer <token>")
            return _login_redirect()
        return view(*args, **kwargs)

    return wrapped


# --------------------------------------------------------------------------- set-up


class _Sessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the Secure flag decided per request, and none
    at all for token requests."""

    def __init__(self, mode: str):
        self.mode = mode

    def open_session(self, app: Flask, request):
        """An empty session for a request with a Bearer token, whatever cookie it sends.

        Why: a client that keeps cookies (requests.Session, a browser extension) got a
        cookie from its first token request to an HTML page (the CSRF token of the
        page's forms lives in the session); on the next request Flask-Login's strong
        protection saw a session without its fingerprint, dropped the user before the
        token was looked at, and every later request was a 401 (issue 11, item 6).
        """
        if _bearer(request) is not None:
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        if self.mode == "auto":
            return not _is_loopback(request.host)
        return self.mode == "true"

    def save_session(self, app: Flask, session, response) -> None:
        """As Flask's, but vector tiles stay shareable by caches.

        Flask-Login looks into the session after every request, and Flask then adds
        ``Vary: Cookie``: a proxy would keep one copy of a tile per visitor. Tiles hold
        public fields only and are the same for everyone, so the session is no part of
        them (they are never built for a signed-in user alone).
        """
        if _bearer() is not None:
            return  # a token request sets no cookie (nor deletes the client's one)
        super().save_session(app, session, response)
        if request.blueprint == "tiles" and not session.modified:
            # (HeaderSet.discard does not write the header back; set it ourselves.)
            kept = [v for v in response.vary if v.lower() != "cookie"]
            if kept:
                response.headers["Vary"] = ", ".join(kept)
            else:
                response.headers.pop("Vary", None)


def _is_loopback(host: str) -> bool:
    """Whether a Host header names this machine (localhost, 127.0.0.0/8, ::1)."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host[1:]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _cookie_mode(value: Any) -> str:
    mode = _COOKIE_MODES.get(str(value).strip().lower())
    if mode is None:
        raise UsageError(f"GISPORTAL_COOKIE_SECURE={value!r} is not auto, true or false",
                         where="GISPORTAL_COOKIE_SECURE", fix="use auto, true or false",
                         code="SETTING-INVALID")
    return mode


def _limits(settings: dict[str, Any] | None = None) -> throttle.Limits:
    """The sign-in limits of the settings (UsageError naming the setting if unusable)."""
    s = current_app.config["GISPORTAL"] if settings is None else settings
    window = float(s.get("login_window_seconds", 900))
    return throttle.Limits(
        per_name=throttle.Limit(int(s.get("login_max_failures", 5)), window),
        per_address=throttle.Limit(int(s.get("login_max_per_address", 20)), window,
                                   "login_max_per_address / login_window_seconds"),
        service=throttle.Limit(int(s.get("login_max_global", 10)),
                               float(s.get("login_global_window_seconds", 5)),
                               "login_max_global / login_global_window_seconds"))


def _session_seconds() -> float:
    return float(current_app.config["GISPORTAL"].get("session_hours", 8)) * 3600


def _load_session_user(user_id: str) -> users.User | None:
    """Flask-Login's user loader: ``<id>:<session epoch>`` and the server-side session
    id (``gp_sid``) from the session cookie; None unless that session is live."""
    if _bearer() is not None:
        return None  # a token request is the token's user, whatever cookie it carries
    uid, _, epoch = str(user_id).partition(":")
    if not uid.isdigit() or not epoch.isdigit():
        return None
    return sessions.user_for_session(get_home(), int(uid), int(epoch), session.get("gp_sid"),
                                     max_age_s=_session_seconds())


def _load_token_user(_request) -> users.User | None:
    return g.get("gp_token_user")


def _unauthorized():
    if wants_json():
        raise AuthError("sign in first / cần đăng nhập", where=request.path,
                        fix="sign in at /login, or send Authorization: Bearer <token>")
    return _login_redirect()


def _anonymous_api_call() -> bool:
    """A JSON API request that no session signs in: CSRF has nothing to protect there
    (no ambient credential rides on it), and the view's sign-in check then answers 401
    as documented, not a 400 about a form token a script never had."""
    return request.path.startswith("/api/") and not current_user.is_authenticated


def _refuse_nameless_parts() -> None:
    """A 400 for a multipart body with a part that has no ``name``.

    Werkzeug files such a part under the key None, and code that reads the form's keys
    as text — Flask-WTF's CSRF check first of all — failed with a 500 on every POST
    route, for anyone (issue 11, item 3). No form of the portal sends one.
    """
    if request.mimetype != "multipart/form-data":
        return
    if None in request.form or None in request.files:
        raise UsageError("Biểu mẫu có một phần không có tên / a part of the multipart form "
                         "has no name", where=request.path,
                         fix='give every part a name (Content-Disposition: form-data; '
                             'name="…"), or send the form from the portal\'s page',
                         code="FORM-INVALID")


def _before_request() -> None:
    """Token first, then CSRF (not for anonymous /api/ calls), then the session's age."""
    token = _bearer()
    if token is not None:
        g.gp_token_user = tokens.check_token(get_home(), token)  # AuthError 401 if not valid
        _refuse_nameless_parts()
        return  # no CSRF: nothing ambient (a cookie) authenticates this request
    _refuse_nameless_parts()  # before anything reads the form's keys
    if current_app.config.get("WTF_CSRF_ENABLED", True) and not _anonymous_api_call():
        try:
            current_app.extensions["csrf"].protect(apply_exemptions=True)
        except CSRFError as err:
            raise UsageError(
                "Biểu mẫu đã hết hạn hoặc thiếu mã bảo vệ (CSRF) / the form is stale or its "
                f"CSRF token is missing ({err.description})", where=request.path,
                fix="reload the page and send the form again (scripts: use an API token)",
                code="CSRF-INVALID") from None
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies and "_user_id" in session:
        hours = float(current_app.config["GISPORTAL"].get("session_hours", 8))
        if time.time() - float(session.get("gp_auth_at", 0)) > hours * 3600:
            logout_user()
            session.clear()


def _after_request(response):
    if response.status_code == 401 and wants_json():
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="gisportal"')
    user = g.get("_login_user")
    if user is not None and user.is_authenticated:
        # What a signed-in user sees may hold personal data: never in a shared cache.
        response.headers["Cache-Control"] = "private, no-store"
        response.vary.add("Cookie")
        response.vary.add("Authorization")
    return response


def init_app(app: Flask) -> None:
    """Sessions, Flask-Login, CSRF, tokens and the auth blueprint (the admin one, which
    uses these helpers, is registered by the app factory: no import circle)."""
    settings = app.config["GISPORTAL"]
    app.secret_key = secret_key(app.config["GISPORTAL_HOME"], settings.get("secret_key", ""))
    mode = _cookie_mode(settings.get("cookie_secure", "auto"))
    app.session_interface = _Sessions(mode)
    app.config.update(
        SESSION_COOKIE_NAME="gisportal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=mode != "false",
        SESSION_PROTECTION="strong",
        # Checked by _before_request (token requests are exempt), not by Flask-WTF's hook.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A CSRF token lives as long as the session (itself at most session_hours).
        WTF_CSRF_TIME_LIMIT=None,
    )
    _limits(settings)  # unusable limits fail at start-up, not at the first sign-in

    manager = LoginManager(app)
    manager.session_protection = "strong"
    manager.user_loader(_load_session_user)
    manager.request_loader(_load_token_user)
    manager.unauthorized_handler(_unauthorized)
    CSRFProtect(app)
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.context_processor(lambda: {"can": can})
    app.register_blueprint(bp)


# --------------------------------------------------------------------------- views


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return tr("auth_seconds").format(n=seconds)
    return tr("auth_minutes").format(n=-(-seconds // 60))


def _login_page(status: int = 200, *, message: str | None = None, username: str = "",
                next_url: str | None = None, headers: dict[str, str] | None = None):
    cookie_warning = (app_cookie_secure() and not request.is_secure
                      and request.headers.get("X-Forwarded-Proto", "") != "https")
    shown = "".join(c for c in username[:100] if c.isprintable())  # echo no control bytes
    html = render_template("login.html", message=message, username=shown,
                           next_url=next_url or "", cookie_warning=cookie_warning)
    return html, status, headers or {}


def app_cookie_secure() -> bool:
    """Whether this request's session cookie will carry the Secure flag."""
    return bool(current_app.session_interface.get_cookie_secure(current_app))


#: Last time (monotonic) a refusal of each scope was logged by this process.
_logged_refusals: dict[str, float] = {}


def _too_many(wait: int, scope: str, name: str, next_url: str | None):
    """The 429 page with Retry-After, before any hash; logged once a minute per scope
    (not audited: a flood would fill the audit log with its own refusals)."""
    now = time.monotonic()
    if now - _logged_refusals.get(scope, -60.0) >= 60:
        _logged_refusals[scope] = now
        logger.warning("sign-in refused before the password hash (limit: %s, from %s); "
                       "further refusals of this limit are not logged for a minute",
                       scope, _client_ip())
    key = "auth_too_many" if scope in ("name", "address") else "auth_busy"
    return _login_page(429, message=tr(key).format(wait=_wait_text(wait)), username=name,
                       next_url=next_url, headers={"Retry-After": str(wait)})


def _typed(name: str) -> str:
    """The name a failed sign-in typed, as the audit log's actor (never empty)."""
    shown = "".join(c for c in users.normalise_name(name)[:64] if c.isprintable()).strip()
    return shown or "(empty)"


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form (fields ``username``, ``password``; contract) and its answer."""
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url or _landing(current_user))
        return _login_page(next_url=next_url)
    name = request.form.get("username", "")
    password = request.form.get("password", "")
    ip = _client_ip()
    # Every limit before any hash (issue 11, item 2): a refused try costs a read of the
    # catalogue — no Argon2 hash, no write lock, no wait for the hash thread.
    limits = _limits()
    refused = throttle.check(get_home(), name, ip, limits)
    if refused:
        return _too_many(refused.wait, refused.scope, name, next_url)
    try:
        # One sign-in at a time per worker process, from its admission to its audit
        # event: however slow the hash or the disk, a flood holds one request thread
        # per worker (and others for HASH_WAIT_S at most), the rest serve look-ups.
        with throttle.hash_slot() as run:
            return _sign_in(run, name, password, ip, limits, next_url)
    except throttle.HashBusy:
        return _too_many(1, "busy", name, next_url)


def _sign_in(run, name: str, password: str, ip: str | None, limits: throttle.Limits,
             next_url: str | None):
    """The admitted part of a sign-in, inside the hash slot: count, hash, answer."""
    admitted = throttle.admit(get_home(), name, ip, limits)  # checked again, and counted
    if isinstance(admitted, throttle.Refusal):
        return _too_many(admitted.wait, admitted.scope, name, next_url)
    try:
        user = run(users.authenticate, get_home(), name, password)
    except (AuthError, PermissionDenied) as err:
        # A disabled account (whose password was right) gets the very answer of a wrong
        # password: a different one told an attacker the password (issue 11, item 19).
        # It stays counted as a failure, so the throttle does not tell either; the
        # audit log keeps the real reason.
        action = "login.refused" if isinstance(err, PermissionDenied) else "login.failed"
        audit.record(get_home(), _typed(name), action, ip=ip, detail={"reason": err.code})
        return _login_page(401, message=tr("auth_failed"), username=name, next_url=next_url)
    throttle.succeeded(get_home(), name, ip, admitted)
    session.clear()  # nothing from before the sign-in survives it (session fixation)
    login_user(user)
    session["gp_sid"] = sessions.start(get_home(), user.id, max_age_s=_session_seconds())
    session["gp_auth_at"] = time.time()
    audit.record(get_home(), user, "login", ip=ip)
    return redirect(next_url or _landing(user), 303)


@bp.post("/logout")
def logout():
    """Sign out (POST with the CSRF token: a link or an image cannot sign anyone out)."""
    if current_user.is_authenticated:
        audit_event("logout")
    # Server-side: a copy of this cookie made before now no longer signs anyone in.
    sessions.end(get_home(), session.get("gp_sid"))
    logout_user()
    session.clear()
    return redirect("/", 303)


@bp.get("/api/me")
@login_required
def me():
    """Who the session or token is: name, role, districts, and the actions allowed."""
    u: users.User = current_user._get_current_object()
    allowed = {a: ("*" if u.is_admin else list(u.districts)) if roles.ACTIONS[a] == "district"
               else u.is_admin for a in sorted(roles.ACTIONS)}
    return jsonify({"user": {"name": u.name, "role": u.role, "districts": list(u.districts)},
                    "can": allowed, "via": "token" if g.get("gp_token_user") else "session"})

