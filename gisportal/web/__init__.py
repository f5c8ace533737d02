"""The web layer: blueprints that turn HTTP into service calls and back."""

from __future__ import annotations

from flask import current_app

from gisportal.store import DataHome, Store

__all__ = ["get_home", "get_store"]


def get_home() -> DataHome:
    """The app's data home (made by `gisportal.web.app.create_app`)."""
    return current_app.extensions["gisportal_home"]


def get_store() -> Store:
    """The app's store, opened once per app (connections are cached per thread)."""
    return get_home().store
