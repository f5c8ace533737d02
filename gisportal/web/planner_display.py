"""How the planner pages show things: Vietnam time and dates, numbers in the page's
language, layer titles, a version's status line. Registered as template filters by
:func:`gisportal.web.planner.init_app` (``vn_time``, ``vn_date``, ``pl_num``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gisportal.base.models import layer_model
from gisportal.services.decisions import decision_of
from gisportal.store.base import Version
from gisportal.web.i18n import current_lang

__all__ = ["layer_title", "number", "status_of", "vn_date", "vn_time"]

_VN = timedelta(hours=7)


def vn_time(timestamp: str | None) -> str:
    """``2024-05-01T03:04:05Z`` (UTC, as stored) → ``2024-05-01 10:04`` Vietnam time."""
    if not timestamp:
        return "—"
    try:
        t = datetime.strptime(str(timestamp)[:19], "%Y-%m-%dT%H:%M:%S") + _VN
    except ValueError:
        return str(timestamp)
    return t.strftime("%Y-%m-%d %H:%M")


def vn_date(day: str | None) -> str:
    """``2023-06-30`` → ``30/06/2023``, as dates are written in Vietnam (both languages:
    decisions are cited so)."""
    parts = str(day or "").split("-")
    if len(parts) != 3:
        return str(day or "—")
    return f"{parts[2]}/{parts[1]}/{parts[0]}"


def number(value: Any, digits: int = 2, sign: bool = False) -> str:
    """``40008.5`` → ``40.008,50`` in Vietnamese, ``40,008.50`` in English."""
    if value is None:
        return "—"
    try:
        text = f"{float(value):{'+' if sign else ''},.{digits}f}"
    except (TypeError, ValueError):
        return str(value)
    if current_lang() == "vi":
        text = text.translate(str.maketrans({",": ".", ".": ","}))
    return text.replace("-", "−")


def layer_title(kind: str) -> str:
    """The layer kind's title in the page language ("Quy hoạch sử dụng đất 2021–2030")."""
    title = layer_model(kind).title
    return title.get(current_lang()) or title.get("vi") or kind


def status_of(version: Version) -> dict[str, Any]:
    """What a page says about a version: status, decision, error count."""
    report = version.meta.get("report") or {}
    decision = decision_of(version)
    return {"id": version.id, "status": version.status, "errors": report.get("errors"),
            "warnings": report.get("warnings"), "has_errors": version.has_errors,
            "decision": decision, "published_at": version.published_at,
            "created_at": version.created_at, "features": version.feature_count}
