"""Accounts: users and roles, passwords, API tokens, sign-in throttling, the audit log.

Plain functions over the data home's catalogue (no Flask), used by the CLI
(``gisportal users …``, ``gisportal audit``) and the web layer (``web/auth.py``,
``web/admin.py``). Every function takes the data home first: a folder, or the
`DataHome` whose settings say where the tables are — the embedded SQLite catalogue, or
with the ``database`` setting the PostgreSQL database every app node shares (``db``).

========================  ===============================================================
module                    what
========================  ===============================================================
``users``                 add / get / list / passwd / disable / enable / authenticate
``roles``                 ``can(user, action, district)``
``tokens``                API tokens for scripts (``Authorization: Bearer``), optional expiry
``throttle``              sign-in limits before the hash (per name+address, per address,
                          per service) → 429; the low-priority hash thread
``sessions``              server-side sign-in sessions (sign-out ends copies of a cookie)
``audit``                 ``record(home, actor, action, …)``, ``events``, CSV export
``secret``                the key that signs sessions
``db``                    the catalogue connection and the accounts' migrations (SQLite,
                          PostgreSQL)
========================  ===============================================================
"""

from __future__ import annotations

from gisportal.accounts.errors import AuthError, PermissionDenied
from gisportal.accounts.roles import ACTIONS, can
from gisportal.accounts.users import (
    ROLES,
    User,
    add_user,
    authenticate,
    disable_user,
    enable_user,
    get_user,
    list_users,
    set_password,
    user_by_id,
)

__all__ = ["AuthError", "PermissionDenied", "ACTIONS", "can", "ROLES", "User", "add_user",
           "authenticate", "disable_user", "enable_user", "get_user", "list_users",
           "set_password", "user_by_id"]
