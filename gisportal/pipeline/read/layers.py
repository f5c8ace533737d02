"""Which layer to read: the layers an upload offers, and the user's choice among them.

An upload may hold several datasets, and a GeoPackage or KML several layers; each layer
becomes a :class:`Candidate` named the way a user will type it, with aliases such as its
member path in the zip. Layers a user would never want (a KMZ's empty NetworkLink
document) are left out, and a missing or unknown ``--layer`` is refused with the list of
layers and their feature counts, so the user can choose without opening a GIS.
A GeoPackage is first inspected with SQLite (:mod:`gisportal.pipeline.read.geopackage`): GDAL
counts a layer's features to list it, which for a hostile view never ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyogrio
import pyogrio.errors

from gisportal.base.errors import InputError
from gisportal.pipeline.read.formats import KIND_NAME, Dataset, unreadable_error
from gisportal.pipeline.read.geopackage import check_geopackage
from gisportal.pipeline.read.upload import stat_size


@dataclass
class Candidate:
    """One layer the user can choose."""

    name: str
    dataset: Dataset
    inner: str | None  # layer name for GDAL; None for single-layer formats
    aliases: tuple[str, ...] = ()


def _gdal_layers(ds: Dataset) -> list[str]:
    """Layers with geometry in a multi-layer dataset (GeoPackage, KML)."""
    try:
        rows = pyogrio.list_layers(ds.path)
    except (pyogrio.errors.DataSourceError, RuntimeError, OSError) as exc:
        raise unreadable_error(ds, exc) from exc
    names = [str(name) for name, gtype in rows if gtype is not None]
    if not names and len(rows):
        raise InputError(f"the {KIND_NAME[ds.kind]} holds only tables without geometry",
                         where=f"{ds.label}: {', '.join(str(r[0]) for r in rows)}",
                         fix="Export the layer with its geometry", code="LAYER-NO-GEOMETRY")
    return names


def layer_candidates(datasets: list[Dataset]) -> list[Candidate]:
    """The layers the upload offers, named the way the user will type them."""
    single = len(datasets) == 1
    stems = [Path(ds.rel).stem for ds in datasets]
    out: list[Candidate] = []
    for ds, stem in zip(datasets, stems, strict=True):
        base = stem if stems.count(stem) == 1 else str(Path(ds.rel).with_suffix(""))
        aliases = (ds.rel, str(Path(ds.rel).with_suffix("")), Path(ds.rel).name, stem)
        if ds.kind in ("gpkg", "kml") and not ds.missing:
            if ds.kind == "gpkg":
                check_geopackage(ds)  # views and computed columns, before GDAL opens it
            inner = _gdal_layers(ds)
            if len(inner) == 1 and not single:
                out.append(Candidate(base, ds, inner[0], aliases + (inner[0],)))
                continue
            for name in inner:
                label = name if single else f"{base}/{name}"
                out.append(Candidate(label, ds, name, (name,) if not single else ()))
        else:
            out.append(Candidate(base, ds, None, aliases))
    if len(out) > 1:
        # A KMZ's doc.kml is often only a NetworkLink to layers/*.kml, and KML folders
        # without placemarks show up as layers: neither is a choice worth offering.
        kept = [c for c in out if c.dataset.kind != "kml" or _feature_count(c) != "0"]
        out = kept or out
    return out


def _feature_count(c: Candidate) -> str:
    try:
        if c.dataset.kind == "shapefile" and ".shx" in c.dataset.parts:
            return str(max(0, (stat_size(c.dataset.parts[".shx"]) - 100) // 8))
        info = pyogrio.read_info(c.dataset.path, layer=c.inner, force_feature_count=True)
        return str(info["features"])
    except Exception:  # noqa: BLE001 - a count is only decoration in an error message
        return "?"


def _listing(cands: list[Candidate]) -> str:
    return ", ".join(f"{c.name} ({_feature_count(c)} features)" for c in cands)


def choose_layer(cands: list[Candidate], layer: str | None, label: str) -> Candidate:
    if not cands:
        raise InputError("the file holds no layer", where=label,
                         fix="Export the layer again with its features", code="LAYER-EMPTY")
    if layer is None:
        if len(cands) == 1:
            return cands[0]
        raise InputError(f"the file holds {len(cands)} layers and none was chosen",
                         where=f"{label}: {_listing(cands)}",
                         fix="Choose one with --layer NAME (e.g. --layer "
                             f"{cands[0].name})", code="LAYER-REQUIRED")
    for test in (lambda c: c.name == layer,
                 lambda c: c.name.casefold() == layer.casefold(),
                 lambda c: layer.casefold() in (a.casefold() for a in c.aliases)):
        hits = [c for c in cands if test(c)]
        if len(hits) == 1:
            return hits[0]
    raise InputError(f"there is no layer named {layer!r}",
                     where=f"{label}: {_listing(cands)}",
                     fix="Choose one of the layers listed with --layer", code="LAYER-UNKNOWN")
