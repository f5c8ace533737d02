"""Who may do what: ``can(user, action, district)``, one function for every layer.

- **admin**: every action, every district.
- **planner**: the district actions, only in the districts of the account.
- **anonymous** (residents, no sign-in): none of these actions. What residents can do
  (look up, view maps and tiles) needs no action at all.

District actions (planner in own districts, admin everywhere): upload, publish,
rollback, review, export, view_personal. Admin actions (admin only): manage_users,
view_audit. ``district=None`` asks "in some district": true for a planner with any
district, which is what a page listing the planner's own districts needs.

A planner's scope is a (former) district or one of today's communes and wards (since
2025-07-01 the province has no districts, while its plans and cadastres stay the
former districts'). A planner scoped to a current unit — a commune's land officer —
may ``upload`` and ``review`` in the former districts its former communes belonged
to, and nothing else there: an upload of theirs must be a cadastral correction
(``update``) of those former communes only (`unit_communes` says which; the upload
routes and the update itself refuse the rest), which a district planner or an admin
then publishes.

Another module that needs a new action registers it once with `add_action`.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["ACTIONS", "UNIT_ACTIONS", "can", "add_action", "allowed_districts",
           "unit_communes", "district_scope"]

Scope = Literal["district", "admin"]

#: action → scope ("district": planners in their districts; "admin": admins only).
ACTIONS: dict[str, Scope] = {
    "upload": "district",
    "publish": "district",
    "rollback": "district",
    "review": "district",
    "export": "district",
    "view_personal": "district",
    "manage_users": "admin",
    "view_audit": "admin",
}


#: What a planner scoped to a current commune or ward may do in its former districts.
UNIT_ACTIONS = frozenset({"upload", "review"})


def _scopes(user: Any) -> tuple[str, ...]:
    return tuple(getattr(user, "districts", ()))


def unit_communes(user: Any, district: str) -> frozenset[str]:
    """The former communes of `district` (GSO codes) that `user`'s current-unit scopes
    cover: what a commune officer may correct there (empty: none)."""
    from gisportal.base import seeds

    listed = seeds.communes()  # the plans' districts: 681–683 apart
    out = set()
    for scope in _scopes(user):
        if len(scope) != 5:
            continue
        for part in seeds.former_parts_of(scope):
            commune = listed.get(part.code)
            if (commune.district if commune else part.district) == str(district):
                out.add(part.code)
    return frozenset(out)


def district_scope(user: Any, district: str) -> bool:
    """Whether `user` holds all of `district` (an admin, or a planner of the district),
    as against a commune officer's part of it."""
    if getattr(user, "role", None) == "admin":
        return True
    return str(district) in _scopes(user)


def add_action(name: str, scope: Scope) -> None:
    """Register an action; registering the same one twice with another scope is a bug."""
    if scope not in ("district", "admin"):
        raise ValueError(f"scope must be 'district' or 'admin', not {scope!r}")
    if ACTIONS.get(name, scope) != scope:
        raise ValueError(f"action {name!r} is already registered as {ACTIONS[name]!r}")
    ACTIONS[name] = scope


def can(user: Any, action: str, district: str | None = None) -> bool:
    """Whether ``user`` may do ``action`` (in ``district``, for district actions).

    ``user`` is a :class:`~gisportal.accounts.users.User`, Flask-Login's anonymous user
    or None. An unknown action raises ValueError: a typo must fail loudly, not deny
    (or allow) quietly.
    """
    scope = ACTIONS.get(action)
    if scope is None:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(sorted(ACTIONS))}")
    if user is None or not getattr(user, "is_authenticated", False) \
            or not getattr(user, "is_active", False):
        return False
    role = getattr(user, "role", None)
    if role == "admin":
        return True
    if role != "planner" or scope != "district":
        return False
    scopes = _scopes(user)
    if district is None:
        return bool(scopes) if action in UNIT_ACTIONS else any(len(c) != 5 for c in scopes)
    if str(district) in scopes:
        return True
    return action in UNIT_ACTIONS and bool(unit_communes(user, str(district)))


def allowed_districts(user: Any, action: str, all_districts: list[str]) -> list[str]:
    """The districts of ``all_districts`` where ``user`` may do ``action``."""
    return [d for d in all_districts if can(user, action, d)]
