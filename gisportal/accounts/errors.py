"""Errors of the accounts layer: sign-in refused (401) and a right missing (403).

They are :class:`~gisportal.base.errors.GisportalError` subclasses, so the CLI prints them
on one line and the web layer (``web/errors.py``) answers JSON under ``/api/`` and a
Vietnamese page elsewhere, like every other error.
"""

from __future__ import annotations

from gisportal.base.errors import GisportalError

__all__ = ["AuthError", "PermissionDenied"]


class AuthError(GisportalError):
    """Who is asking is unknown or not trusted: no session, a bad password or token."""

    code = "AUTH-REQUIRED"
    exit_code = 1
    http_status = 401


class PermissionDenied(GisportalError):
    """The signed-in user lacks the right for this action (or this district)."""

    code = "FORBIDDEN"
    exit_code = 1
    http_status = 403
