"""Who may do what: ``can(user, action, district)``, one function for every layer.

- **admin**: every action, every district.
- **planner**: the district actions, only in the districts of the account.
- **anonymous** (residents, no sign-in): none of these actions. What residents can do
  (look up, view maps and tiles) needs no action at all.

District actions (planner in own districts, admin everywhere): upload, publish,
rollback, review, export, view_personal. Admin actions (admin only): manage_users,
view_audit. ``district=None`` asks "in some district": true for a planner with any
district, which is what a page listing the planner's own districts needs.

Another module that needs a new action registers it once with `add_action`.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["ACTIONS", "can", "add_action", "allowed_districts"]

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
    districts = tuple(getattr(user, "districts", ()))
    return bool(districts) if district is None else str(district) in districts


def allowed_districts(user: Any, action: str, all_districts: list[str]) -> list[str]:
    """The districts of ``all_districts`` where ``user`` may do ``action``."""
    return [d for d in all_districts if can(user, action, d)]
