"""Settings, declared once as a table: name, default, environment variable, help.

Like datasette's settings list, the table is the documentation: ``gisportal
settings`` prints it, and the README lists it. Values come from the environment
(``GISPORTAL_*``) or, for the web app, from a mapping given to the factory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gisportal.errors import UsageError

__all__ = ["Setting", "SETTINGS", "load_settings", "data_home"]


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    env: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "instance", "GISPORTAL_HOME",
            "Data home: the embedded store (catalogue.sqlite, districts/*.gpkg) and "
            "published output. Never committed."),
    Setting("max_upload_bytes", 1024**3, "GISPORTAL_MAX_UPLOAD_BYTES",
            "Largest file accepted for validation or ingest, in bytes."),
    Setting("tiles_max_age", 300, "GISPORTAL_TILES_MAX_AGE",
            "Seconds browsers and proxies may cache a vector tile (ETags follow versions)."),
)


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then environment variables, then ``overrides``; typed like the default."""
    out: dict[str, Any] = {}
    for s in SETTINGS:
        value: Any = s.default
        if s.env in os.environ:
            raw = os.environ[s.env]
            try:
                value = type(s.default)(raw) if not isinstance(s.default, str) else raw
            except ValueError:
                raise UsageError(f"{s.env}={raw!r} is not a {type(s.default).__name__}",
                                 where=s.env, fix=f"set it like the default, {s.default!r}",
                                 code="SETTING-INVALID") from None
        out[s.name] = value
    out.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return out


def data_home(settings: dict[str, Any] | None = None) -> Path:
    """The data home as an absolute path, created if missing."""
    home = Path((settings or load_settings())["home"]).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home
