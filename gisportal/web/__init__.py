"""The web layer: blueprints that turn HTTP into service calls and back."""

from __future__ import annotations

from flask import current_app

from gisportal.store import DataHome, Store
from gisportal.store.home import on_primary

__all__ = ["get_home", "get_store"]


def get_home() -> DataHome:
    """The app's data home (made by `gisportal.web.app.create_app`)."""
    return current_app.extensions["gisportal_home"]


def get_store(*, primary: bool = False) -> Store:
    """The app's store, opened once per app (connections are pooled per process).

    Its reads go to a read replica when ``database_replicas`` names some: the residents'
    routes (look-up, search, pages, tiles, OGC API) read there. ``primary=True`` pins
    the reads to the primary: the planner's routes, which must show at once the upload,
    decision or publication a job has just written (a replica may lag behind it).
    """
    store = get_home().store
    return on_primary(store) if primary else store
