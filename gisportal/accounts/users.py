"""User accounts: admins, planners scoped to districts, and their passwords.

Names are compared the way people read them: NFC-normalised (a name typed with a
keyboard that decomposes accents is the same name) and case-insensitive (``Lan`` and
``lan`` are one user), so the unique key is the NFC case-folded name. Passwords are
NFC-normalised too (Vietnamese keyboards differ in the same way), hashed with Argon2id
(argon2-cffi's RFC 9106 defaults) and rehashed at the next sign-in whenever those
parameters change. Accounts are never deleted: `disable_user` keeps the row, so the
audit log can always name who did what.

Every change is written with its audit event in one transaction: a change without its
event, or an event without its change, cannot happen.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gisportal.accounts import audit
from gisportal.accounts.db import Connection, Home, connect, lock, transaction
from gisportal.accounts.errors import AuthError, PermissionDenied
from gisportal.base import seeds
from gisportal.base.errors import NotFoundError, StoreError, UsageError

__all__ = [
    "ROLES", "MIN_PASSWORD_LENGTH", "MAX_PASSWORD_LENGTH", "MAX_NAME_LENGTH", "User",
    "normalise_name", "name_key", "check_name", "check_password", "check_districts",
    "add_user", "get_user", "user_by_id", "list_users", "set_password", "disable_user",
    "enable_user", "authenticate", "default_hasher",
]

ROLES = ("admin", "planner")
#: NIST SP 800-63B asks for at least 8; 10 keeps a passphrase the easy choice.
MIN_PASSWORD_LENGTH = 10
#: Argon2 takes any length, but a megabyte "password" is a denial of service, not a secret.
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 64
#: Letters (any script), digits, and . _ - @ inside; starts with a letter or digit. No
#: spaces, quotes or colons: names end up in URLs, CSV cells and "cli:<user>" actors.
_NAME_RE = re.compile(r"[^\W_][\w.@-]*")
#: Names the audit log uses for actors that are not accounts.
RESERVED_NAMES = frozenset({"anonymous", "system"})


def default_hasher() -> PasswordHasher:
    """Argon2id with argon2-cffi's current defaults (RFC 9106 low-memory profile)."""
    return _hasher()


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=8)
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash to verify against when the user is unknown, so the answer takes as long."""
    return hasher.hash("gisportal: no such user")


@dataclass(frozen=True)
class User:
    """An account as the rest of the portal sees it (never its password hash).

    It also answers Flask-Login's questions (``is_authenticated``, ``is_active``,
    ``get_id``) without importing Flask. ``get_id`` includes ``session_epoch``, which
    changes with the password, the role or the account's state: a session signed in
    before such a change stops being valid.
    """

    id: int
    name: str
    role: str
    districts: tuple[str, ...]
    created_at: str
    created_by: str
    disabled_at: str | None
    last_login_at: str | None
    session_epoch: int

    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role,
                "districts": list(self.districts), "active": self.is_active,
                "created_at": self.created_at, "created_by": self.created_by,
                "disabled_at": self.disabled_at, "last_login_at": self.last_login_at}


# --------------------------------------------------------------------------- rules


def normalise_name(name: str) -> str:
    """The name as stored: NFC, surrounding white space removed."""
    return unicodedata.normalize("NFC", str(name)).strip()


def name_key(name: str) -> str:
    """The unique key: NFC, case-folded (``Đ`` → ``đ``), NFC again (folding may decompose)."""
    return unicodedata.normalize("NFC", normalise_name(name).casefold())


def check_name(name: str) -> str:
    """The NFC name if it is a valid user name, else UsageError saying what to change."""
    if not isinstance(name, str):
        raise UsageError("a user name must be text", where="username",
                         fix="give a name such as lan.nguyen", code="USER-NAME-INVALID")
    clean = normalise_name(name)
    shown = clean if len(clean) <= 40 else clean[:40] + "…"
    if not clean:
        raise UsageError("the user name is empty", where="username",
                         fix="give a name such as lan.nguyen", code="USER-NAME-INVALID")
    if len(clean) > MAX_NAME_LENGTH:
        raise UsageError(f"the user name has {len(clean)} characters, more than "
                         f"{MAX_NAME_LENGTH}", where="username",
                         fix=f"use at most {MAX_NAME_LENGTH} characters",
                         code="USER-NAME-INVALID")
    if not _NAME_RE.fullmatch(clean):
        bad = sorted({c for c in clean if not (c.isalnum() or c in "._-@")})
        what = (f"the user name {shown!r} contains " + ", ".join(repr(c) for c in bad[:5])
                if bad else f"the user name {shown!r} must start with a letter or digit")
        raise UsageError(what, where="username",
                         fix="use letters, digits and . _ - @ only, starting with a letter "
                             "or digit (e.g. lan.nguyen)", code="USER-NAME-INVALID")
    if name_key(clean) in RESERVED_NAMES:
        raise UsageError(f"{clean!r} is reserved for the audit log", where="username",
                         fix="choose another name", code="USER-NAME-RESERVED")
    return clean


def check_password(password: str, name: str = "") -> str:
    """The NFC password if it is acceptable, else UsageError saying what to change."""
    if not isinstance(password, str):
        raise UsageError("a password must be text", where="password", code="PASSWORD-WEAK")
    pw = unicodedata.normalize("NFC", password)
    if len(pw) < MIN_PASSWORD_LENGTH:
        raise UsageError(f"the password has {len(pw)} characters; at least "
                         f"{MIN_PASSWORD_LENGTH} are needed", where="password",
                         fix="use a longer password, e.g. a few words in a row",
                         code="PASSWORD-WEAK")
    if len(pw) > MAX_PASSWORD_LENGTH:
        raise UsageError(f"the password has {len(pw)} characters, more than "
                         f"{MAX_PASSWORD_LENGTH}", where="password",
                         fix=f"use at most {MAX_PASSWORD_LENGTH} characters",
                         code="PASSWORD-WEAK")
    if not pw.strip():
        raise UsageError("the password is only white space", where="password",
                         fix="use letters, digits or words", code="PASSWORD-WEAK")
    if name and name_key(pw) == name_key(name):
        raise UsageError("the password is the user name", where="password",
                         fix="choose a password that differs from the user name",
                         code="PASSWORD-WEAK")
    return pw


def check_districts(role: str, districts: Iterable[str]) -> tuple[str, ...]:
    """Sorted unique scope codes fitting ``role``: a planner needs one or more, an admin
    none (an admin has every district).

    A scope is a (former) district's GSO code, or the code of one of today's communes
    and wards (5 digits, from 2025-07-01): a commune officer, who may submit cadastral
    corrections of that unit's former communes only (`gisportal.accounts.roles`)."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}", where="role",
                         fix="use " + " or ".join(ROLES), code="USER-ROLE-INVALID")
    codes: set[str] = set()
    for raw in districts:
        for code in re.split(r"[\s,;]+", str(raw).strip()):
            if not code:
                continue
            if code in seeds.current_units():
                codes.add(code)
            else:
                codes.add(seeds.known_district(code, error=UsageError).code)
    if role == "planner" and not codes:
        raise UsageError("a planner needs at least one district", where="district",
                         fix="give the district codes the planner works on, e.g. 678",
                         code="USER-DISTRICTS-MISSING")
    if role == "admin" and codes:
        raise UsageError("an admin has every district; districts are for planners",
                         where="district", fix="leave the districts out for an admin",
                         code="USER-DISTRICTS-ADMIN")
    return tuple(sorted(codes))


# --------------------------------------------------------------------------- storage

_USER_COLUMNS = ("id, name, role, created_at, created_by, disabled_at, last_login_at, "
                 "session_epoch")


def _user(conn: Connection, row: Any) -> User:
    districts = tuple(r[0] for r in conn.execute(
        "SELECT district FROM user_districts WHERE user_id = ? ORDER BY district",
        (row["id"],)))
    return User(id=row["id"], name=row["name"], role=row["role"], districts=districts,
                created_at=row["created_at"], created_by=row["created_by"],
                disabled_at=row["disabled_at"], last_login_at=row["last_login_at"],
                session_epoch=row["session_epoch"])


def _findable(name: Any) -> bool:
    """Whether ``name`` could be a stored name's spelling at all: text without NUL (no
    valid name has one, and PostgreSQL cannot even compare text holding it), so a typed
    NUL finds nobody on both backends instead of failing on one."""
    return "\0" not in str(name)


def _row(conn: Connection, name: str) -> Any:
    row = None
    if _findable(name):
        row = conn.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM users "
                           "WHERE name_key = ?", (name_key(name),)).fetchone()
    if row is None:
        shown = normalise_name(name)[:MAX_NAME_LENGTH]
        raise NotFoundError(f"no user named {shown!r}", where="username",
                            fix="check the spelling, or list accounts with gisportal users list",
                            code="USER-UNKNOWN")
    return row


def _actor(actor: Any) -> str:
    return audit.actor_name(actor)


def add_user(home: Home, name: str, role: str, password: str, *,
             districts: Iterable[str] = (), actor: Any = "system", ip: str | None = None,
             hasher: PasswordHasher | None = None) -> User:
    """Create an account; StoreError when the name (case-insensitively) is taken."""
    clean = check_name(name)
    codes = check_districts(role, districts)
    pw_hash = (hasher or _hasher()).hash(check_password(password, clean))
    now = audit.utc_now()
    with connect(home) as conn, transaction(conn):
        # ON CONFLICT rather than catching the IntegrityError: in PostgreSQL an error
        # aborts the transaction, and the taken name is read in it afterwards.
        new = conn.execute(
            "INSERT INTO users (name, name_key, role, password_hash, created_at, "
            "created_by, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name_key) DO NOTHING RETURNING id",
            (clean, name_key(clean), role, pw_hash, now, _actor(actor), now)).fetchone()
        if new is None:
            existing = conn.execute("SELECT name FROM users WHERE name_key = ?",
                                    (name_key(clean),)).fetchone()
            raise StoreError(f"a user named {existing[0]!r} already exists (names ignore "
                             "case and accents' encoding)", where="username",
                             fix="choose another name, or reset that user's password",
                             code="USER-EXISTS")
        conn.executemany("INSERT INTO user_districts (user_id, district) VALUES (?, ?)",
                         [(new[0], c) for c in codes])
        audit.insert(conn, actor, "user.add", ip=ip,
                     detail={"user": clean, "role": role, "districts": list(codes)})
        return _user(conn, _row(conn, clean))


def get_user(home: Home, name: str) -> User:
    """The account named ``name`` (any case, NFC or NFD), or NotFoundError."""
    with connect(home) as conn:
        return _user(conn, _row(conn, name))


def user_by_id(home: Home, user_id: int) -> User | None:
    """The account with this id, or None."""
    with connect(home) as conn:
        row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?",
                           (int(user_id),)).fetchone()
        return None if row is None else _user(conn, row)


def list_users(home: Home) -> list[User]:
    """Every account, disabled ones too, by name."""
    with connect(home) as conn:
        rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name_key").fetchall()
        return [_user(conn, r) for r in rows]


def set_password(home: Home, name: str, password: str, *, actor: Any = "system",
                 ip: str | None = None, hasher: PasswordHasher | None = None) -> User:
    """Replace a password; sessions signed in with the old one end."""
    with connect(home) as conn:
        clean = _row(conn, name)["name"]
    pw_hash = (hasher or _hasher()).hash(check_password(password, clean))
    with connect(home) as conn, transaction(conn):
        row = _row(conn, name)
        conn.execute("UPDATE users SET password_hash = ?, password_changed_at = ?, "
                     "session_epoch = session_epoch + 1 WHERE id = ?",
                     (pw_hash, audit.utc_now(), row["id"]))
        audit.insert(conn, actor, "user.passwd", ip=ip, detail={"user": row["name"]})
        return _user(conn, _row(conn, name))


def disable_user(home: Home, name: str, *, actor: Any = "system",
                 ip: str | None = None) -> User:
    """Disable an account (kept for the audit log); its sessions and tokens stop working.

    Disabling an already disabled account changes nothing. The last active admin cannot
    be disabled: nobody could manage accounts from the web any more.
    """
    with connect(home) as conn, transaction(conn):
        lock(conn, "users.admins")  # two admins disabling each other: one is the last
        row = _row(conn, name)
        if row["disabled_at"] is not None:
            return _user(conn, row)
        if row["role"] == "admin":
            others = conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND "
                                  "disabled_at IS NULL AND id != ?", (row["id"],)).fetchone()[0]
            if not others:
                raise StoreError(f"{row['name']!r} is the last active admin",
                                 where="username",
                                 fix="add or enable another admin first",
                                 code="USER-LAST-ADMIN")
        conn.execute("UPDATE users SET disabled_at = ?, disabled_by = ?, "
                     "session_epoch = session_epoch + 1 WHERE id = ?",
                     (audit.utc_now(), _actor(actor), row["id"]))
        audit.insert(conn, actor, "user.disable", ip=ip, detail={"user": row["name"]})
        return _user(conn, _row(conn, name))


def enable_user(home: Home, name: str, *, actor: Any = "system",
                ip: str | None = None) -> User:
    """Enable a disabled account again (same name, role, districts and password)."""
    with connect(home) as conn, transaction(conn):
        row = _row(conn, name)
        if row["disabled_at"] is None:
            return _user(conn, row)
        conn.execute("UPDATE users SET disabled_at = NULL, disabled_by = NULL, "
                     "session_epoch = session_epoch + 1 WHERE id = ?", (row["id"],))
        audit.insert(conn, actor, "user.enable", ip=ip, detail={"user": row["name"]})
        return _user(conn, _row(conn, name))


def authenticate(home: Home, name: str, password: str, *,
                 hasher: PasswordHasher | None = None) -> User:
    """The account if ``password`` is its password and it is active.

    Raises AuthError (code ``LOGIN-FAILED``) for an unknown name or a wrong password —
    the same error, after the same Argon2 work, so answers do not tell which names
    exist — and PermissionDenied (``LOGIN-DISABLED``) for a disabled account, only once
    the password was right. On success the hash is upgraded if the hasher's parameters
    changed since it was made, and the sign-in time is stored.
    """
    hasher = hasher or _hasher()
    failed = AuthError("wrong user name or password", where="login",
                       fix="check both; the user name ignores case", code="LOGIN-FAILED")
    pw = unicodedata.normalize("NFC", password) if isinstance(password, str) else ""
    row = None
    if isinstance(name, str) and _findable(name) \
            and 0 < len(normalise_name(name)) <= MAX_NAME_LENGTH \
            and len(pw) <= MAX_PASSWORD_LENGTH:
        with connect(home) as conn:
            row = conn.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM users "
                               "WHERE name_key = ?", (name_key(name),)).fetchone()
    try:
        # A too-long password found no row: clip it so the dummy check costs the usual.
        hasher.verify(row["password_hash"] if row else _dummy_hash(hasher),
                      pw[:MAX_PASSWORD_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise failed from None
    if row is None:
        raise failed
    if row["disabled_at"] is not None:
        raise PermissionDenied(f"the account {row['name']!r} is disabled", where="login",
                               fix="ask an administrator to enable it",
                               code="LOGIN-DISABLED")
    new_hash = hasher.hash(pw) if hasher.check_needs_rehash(row["password_hash"]) else None
    with connect(home) as conn, transaction(conn):
        if new_hash:
            # Only if the hash is still the one verified: a concurrent password change wins.
            conn.execute("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                         (new_hash, row["id"], row["password_hash"]))
        conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?",
                     (audit.utc_now(), row["id"]))
        return _user(conn, _row(conn, row["name"]))


def password_hash_parameters(home: Home, name: str) -> dict[str, int]:
    """Argon2 parameters of a stored hash (``m``, ``t``, ``p``), for checks and tests."""
    with connect(home) as conn:
        encoded = _row(conn, name)["password_hash"]
    params = encoded.split("$")[3]
    return {k: int(v) for k, v in (p.split("=") for p in params.split(","))}


def dump(users: Iterable[User]) -> str:
    """JSON of accounts, as ``gisportal users list --json`` prints it."""
    return json.dumps([u.to_dict() for u in users], ensure_ascii=False, indent=1)
