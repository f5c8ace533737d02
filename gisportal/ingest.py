"""The pipeline as services: check a file, ingest it as a version, publish a version.

read → normalise → validate → store → publish. The CLI and the web app call these
functions and nothing below them, so both behave the same. A file that cannot be read
raises (nothing is stored); a file that reads but has errors is stored as a draft
that cannot be published, so the planner can see and fix it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gisportal import seeds
from gisportal.errors import StoreError, UsageError
from gisportal.models import layer_model
from gisportal.normalise import NormalisedLayer, normalise
from gisportal.read.sources import SourceLayer, read_source
from gisportal.repair import repair as repair_layer
from gisportal.settings import data_home, load_settings
from gisportal.store.base import Store, Version
from gisportal.tiles import ensure_version_tiles
from gisportal.validation import Report, ValidationContext, validate
from gisportal.validation.context import context_from_boundary

__all__ = ["Checked", "check_file", "district_context", "IngestResult", "ingest_file",
           "publish_version", "check_district"]


@dataclass
class Checked:
    """A file read, normalised and validated — everything needed to store it."""

    source: SourceLayer
    layer: NormalisedLayer
    report: Report


def output_home(store: Store, settings: dict[str, Any] | None = None) -> Path:
    """Where published output (tiles) goes: the data home the store lives in, so a
    store opened on another home than ``$GISPORTAL_HOME`` keeps its tiles with it."""
    home = getattr(store, "home", None)
    return Path(home) if home is not None else data_home(settings)


def check_district(code: str | None) -> str | None:
    """A known district code, or UsageError listing the known ones."""
    if code is None:
        return None
    code = str(code).strip()
    try:
        seeds.district(code)
    except KeyError:
        known = ", ".join(f"{d.code} {d.short_name}" for d in seeds.districts())
        raise UsageError(f"unknown district code {code!r}", where="--district",
                         fix=f"use a GSO district code: {known}") from None
    return code


def district_context(store: Store | None, district: str | None) -> ValidationContext:
    """The district's published boundaries as validation context (empty when none)."""
    if store is None or district is None:
        return ValidationContext(district=district)
    v = store.published(district, "boundary")
    if v is None:
        return ValidationContext(district=district)
    return context_from_boundary(district, store.read(v.id))


def check_file(path: str | Path, kind: str, *, district: str | None = None,
               crs: str | None = None, encoding: str | None = None, layer: str | None = None,
               fields: Mapping[str, str] | None = None, settings: dict[str, Any] | None = None,
               store: Store | None = None, repair: bool = False,
               progress: Callable[[str], None] | None = None) -> Checked:
    """Read, normalise and validate ``path`` as a layer of ``kind``; store nothing.

    With a ``store``, the district's published boundary layer is the context for the
    topology and commune checks (a boundary file itself is checked without it).
    With ``repair``, the layer is repaired (:func:`gisportal.repair.repair`) before it
    is validated; the report then carries every change under ``repair``. Never the
    default: a planner must see what was changed.
    """
    settings = settings or load_settings()
    model = layer_model(kind)
    district = check_district(district)
    with tempfile.TemporaryDirectory(prefix="gisportal-read-") as tmp:
        src = read_source(Path(path), layer=layer, encoding=encoding, workdir=Path(tmp),
                          max_bytes=int(settings["max_upload_bytes"]), progress=progress)
    if progress:
        progress("normalise")
    norm = normalise(src, model, crs=crs, district=district, field_overrides=fields)
    # The normalised frame carries every source attribute (src:* columns) and the
    # geometries: drop the reader's table now, it would double the memory of a big file.
    src.frame = src.frame.iloc[0:0]
    if progress:
        progress("validate")
    repaired = None
    if repair:
        if progress:
            progress("repair")
        repaired = repair_layer(norm)
        norm = repaired.apply_to(norm)
    ctx = district_context(store if kind != "boundary" else None, district)
    report = validate(src, norm, ctx)
    if repaired is not None:
        report.repair = repaired.to_dict()
    return Checked(src, norm, report)


@dataclass
class IngestResult:
    version: Version
    report: Report
    published: bool


def ingest_file(store: Store, path: str | Path, kind: str, district: str, *,
                publish: bool = False, user: str = "cli", crs: str | None = None,
                encoding: str | None = None, layer: str | None = None,
                fields: Mapping[str, str] | None = None, meta: Mapping[str, Any] | None = None,
                repair: bool = False,
                settings: dict[str, Any] | None = None,
                progress: Callable[[str], None] | None = None) -> IngestResult:
    """Check ``path`` and store it as a new draft version of (district, kind).

    With ``publish`` the version is published at once when it has no errors; with
    errors it stays a draft and ``published`` is False (the caller says why).
    """
    district = check_district(district)
    checked = check_file(path, kind, district=district, crs=crs, encoding=encoding,
                         layer=layer, fields=fields, settings=settings, store=store,
                         repair=repair, progress=progress)
    model = checked.layer.model
    if progress:
        progress("store")
    version = store.add_version(
        district, kind, checked.layer.frame,
        source_name=checked.source.source_name,
        source_sha256=checked.source.sha256,
        created_by=user,
        has_errors=checked.report.has_errors,
        key_columns=[k for k in model.key if k in checked.layer.frame.columns],
        meta={"report": checked.report.summary(), "read": checked.report.read,
              "repair": None if checked.report.repair is None
              else checked.report.repair["summary"],
              "personal_fields": [f for f in model.personal_fields],
              **dict(meta or {})},
    )
    published = False
    if publish and not checked.report.has_errors:
        if progress:
            progress("publish")
        # Tiles first: they depend only on the version, so residents never meet a
        # published layer without its tiles.
        ensure_version_tiles(store, output_home(store, settings), version)
        version = store.publish(version.id, by=user)
        published = True
    return IngestResult(version, checked.report, published)


def publish_version(store: Store, district: str, kind: str, version_id: int, *,
                    user: str = "cli", settings: dict[str, Any] | None = None) -> Version:
    """Publish ``version_id`` after checking it belongs to (district, kind).

    Its vector tiles are built first (or found, for a roll back to an older version).
    """
    district = check_district(district)
    layer_model(kind)
    v = store.version(version_id)
    if v.district != district or v.kind != kind:
        raise StoreError(f"version {version_id} is a {v.kind} layer of district {v.district}",
                         where=f"--district {district} --kind {kind}",
                         fix=f"use --district {v.district} --kind {v.kind}, or list versions")
    if v.has_errors:
        return store.publish(version_id, by=user)  # the store refuses it with its reason
    ensure_version_tiles(store, output_home(store, settings), v)
    return store.publish(version_id, by=user)
