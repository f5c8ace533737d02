"""The web layer: blueprints that turn HTTP into service calls and back."""

from __future__ import annotations

from flask import current_app

from gisportal import seeds
from gisportal.store import Store, open_store

__all__ = ["get_store"]


def get_store() -> Store:
    """The app's store, opened once per app (connections are cached per thread)."""
    store = current_app.extensions.get("gisportal_store")
    if store is None:
        store = open_store(current_app.config["GISPORTAL_HOME"], crs=seeds.province()["crs"])
        current_app.extensions["gisportal_store"] = store
    return store
