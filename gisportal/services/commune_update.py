"""Partial updates of a cadastre by commune (chỉnh lý bản đồ địa chính theo xã).

Cadastral corrections arrive commune by commune: a surveyor re-measures one ward and
the office sends that ward's parcels, not the district's 200 000. Publishing such a
file as the district's layer would remove every other commune's parcels (the reason
the removal confirmation exists). An *update* instead makes a new full version: the
published layer with every feature of the communes the file covers replaced by the
file's features. Versions stay immutable and whole, so look-up, tiles, compare,
export and roll back need nothing new; validation runs on the resulting full layer,
so a corrected commune that now overlaps its neighbour is caught.

Which communes the file covers:

* a file with a commune column (``MaXa``…) covers the codes in it; ``--commune``
  may name them too, and then every row must carry one of the named codes;
* a file without one needs ``--commune CODE``: with one code every feature belongs to
  it; with several, each feature goes to the commune whose published outline (the
  district's boundary layer) holds it, and a feature in none is an error.

Row numbers: the file's features keep their row in the file (findings point into the
file the planner sent); the published features that are kept follow, numbered after
the file's last row, so every ``src_row`` stays unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gisportal.base.errors import InputError, StoreError, UsageError
from gisportal.pipeline.normalise import NormalisedLayer
from gisportal.store.base import Store, Version

__all__ = ["UpdateInfo", "merge_update", "check_commune_codes"]


@dataclass(frozen=True)
class UpdateInfo:
    """What an update replaced: the communes, and feature counts."""

    base_version: int
    communes: tuple[str, ...]
    removed: int
    added: int
    kept: int
    #: Features per commune: published before, and in the file.
    per_commune: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        return {"base_version": self.base_version, "communes": list(self.communes),
                "removed": self.removed, "added": self.added, "kept": self.kept,
                "per_commune": self.per_commune}

    def one_line(self) -> str:
        """What the command line prints."""
        return (f"update of version {self.base_version}: communes "
                f"{', '.join(self.communes)} replaced ({self.removed} features removed, "
                f"{self.added} added); {self.kept} features of other communes kept")


def check_commune_codes(codes: Sequence[str] | None) -> tuple[str, ...]:
    """Commune codes as given (``--commune``, the form, the API): trimmed, unique,
    digits only (GSO commune codes are five digits; a leading zero may be lost)."""
    out: list[str] = []
    for raw in codes or ():
        for part in str(raw).replace(";", ",").split(","):
            code = part.strip()
            if not code:
                continue
            if not code.isdigit() or len(code) > 5:
                raise UsageError(f"{code!r} is not a commune code", where="--commune",
                                 fix="Give the GSO commune code (5 digits, e.g. 24820), "
                                     "once per commune", code="UPDATE-COMMUNE-CODE")
            code = code.zfill(5)
            if code not in out:
                out.append(code)
    return tuple(out)


def _published_base(store: Store, district: str) -> Version:
    base = store.published(district, "parcels")
    if base is None:
        raise StoreError(f"district {district} has no published parcels layer to update",
                         where=f"district {district}, parcels",
                         fix="Publish the whole cadastre first (gisportal ingest FILE --kind "
                             "parcels --district D --publish), then send corrections as "
                             "updates", code="UPDATE-NOTHING-PUBLISHED")
    return base


def _communes_by_location(store: Store, district: str, geoms: np.ndarray,
                          codes: tuple[str, ...]) -> np.ndarray:
    """The commune of each geometry from the published boundary's commune outlines."""
    boundary = store.published(district, "boundary")
    fix = ("Add a commune column (MaXa) to the file, or send one file per commune with "
           "a single --commune")
    if boundary is None:
        raise UsageError("a file without a commune column covering several communes needs "
                         "the district's published commune outlines, and there are none",
                         where="--commune", fix=fix, code="UPDATE-COMMUNE-UNKNOWN")
    units = store.read(boundary.id, columns=["level", "code"])
    units = units[(units["level"] == "commune") & units["code"].isin(codes)]
    missing = sorted(set(codes) - set(units["code"]))
    if missing:
        raise UsageError(f"the published boundary has no outline of commune "
                         f"{', '.join(missing)}", where="--commune", fix=fix,
                         code="UPDATE-COMMUNE-UNKNOWN")
    points = shapely.point_on_surface(geoms)
    tree = shapely.STRtree(units.geometry.values)
    src, dst = tree.query(points, predicate="within")
    out = np.full(len(geoms), None, dtype=object)
    unit_codes = units["code"].to_numpy()
    out[src] = unit_codes[dst]
    return out


def merge_update(store: Store, district: str, layer: NormalisedLayer,
                 communes: Sequence[str] | None = None, *,
                 source_name: str = "the file", within: Sequence[str] | None = None,
                 ) -> tuple[NormalisedLayer, UpdateInfo]:
    """The published parcels of `district` with the file's communes replaced by `layer`.

    Returns the full layer (a new NormalisedLayer sharing the file's CRS choice and
    field mapping, its findings included) and what was replaced.

    Raises
    ------
    StoreError
        Nothing is published to update.
    UsageError
        The communes cannot be told (no column and no ``--commune``), or a code is
        malformed or has no published outline when one is needed.
    InputError
        Features whose commune is missing, or not among the ``--commune`` codes; with
        ``within`` (a commune officer's upload), a commune outside it
        (``UPDATE-OUTSIDE-SCOPE``).
    """
    if layer.model.kind != "parcels":
        raise UsageError(f"an update replaces communes of a cadastre, not of a "
                         f"{layer.model.kind} layer", where="--update",
                         fix="Upload the whole layer without --update",
                         code="UPDATE-NOT-PARCELS")
    given = check_commune_codes(communes)
    base = _published_base(store, district)
    frame = layer.frame.copy()
    has_column = "commune" in layer.mapping.mapped
    commune = frame["commune"].astype("string").str.strip()
    # A DBF numeric column loses leading zeros: 2482 is commune 02482.
    commune = commune.where(~commune.str.fullmatch(r"\d{1,4}").fillna(False),
                            commune.str.zfill(5))
    where = source_name
    if not has_column:
        if not given:
            raise UsageError("the file has no commune column, so the communes it replaces "
                             "are not known", where="--update",
                             fix="Name them with --commune CODE (repeatable; the form's "
                                 "commune box, communes= in the API)",
                             code="UPDATE-COMMUNE-UNKNOWN")
        if len(given) == 1:
            commune = pd.Series(given[0], index=frame.index, dtype="string")
        else:
            located = _communes_by_location(store, district, frame.geometry.values, given)
            commune = pd.Series(located, index=frame.index, dtype="string")
    missing = commune.isna() | (commune == "")
    if missing.any():
        rows = frame.loc[missing.to_numpy(), "src_row"].head(10).tolist()
        raise InputError(f"{int(missing.sum())} features of the update have no commune "
                         f"(rows {', '.join(map(str, rows))})", where=where,
                         fix="Fill the commune code of every feature, or pass a single "
                             "--commune for a file of one commune",
                         code="UPDATE-COMMUNE-MISSING")
    in_file = tuple(sorted(set(commune.tolist())))
    if given:
        stray = sorted(set(in_file) - set(given))
        if stray:
            raise InputError(f"the file holds communes {', '.join(stray)} that were not named "
                             f"for the update ({', '.join(given)})", where=where,
                             fix="Name every commune the file covers with --commune, or "
                                 "remove those features", code="UPDATE-COMMUNE-STRAY")
        replaced = given
    else:
        replaced = in_file
    if within is not None:
        outside = sorted(set(replaced) - set(within))
        if outside:
            raise InputError(
                f"the update replaces communes {', '.join(outside)}, outside the uploader's "
                f"scope ({', '.join(sorted(within)) or 'none'})", where=where,
                fix="Remove those features, or ask a planner of the district to send them",
                code="UPDATE-OUTSIDE-SCOPE")
    frame["commune"] = commune.astype("string")

    published = store.read(base.id)
    old_commune = published["commune"].astype("string") if "commune" in published.columns \
        else pd.Series(pd.NA, index=published.index, dtype="string")
    drop = old_commune.isin(replaced).fillna(False).to_numpy(dtype=bool)
    kept = published.loc[~drop].copy()
    per_commune = {c: {"published": int((old_commune == c).sum()),
                       "file": int((frame["commune"] == c).sum())} for c in replaced}
    # Kept features are numbered after the file's rows (see the module docstring).
    first = int(frame["src_row"].max()) + 1 if len(frame) else 0
    kept["src_row"] = np.arange(first, first + len(kept), dtype="int64")
    for col in frame.columns:
        if col not in kept.columns:
            kept[col] = pd.Series(pd.NA, index=kept.index, dtype=frame[col].dtype) \
                if col != frame.geometry.name else None
    kept = kept[[c for c in frame.columns] + [c for c in kept.columns
                                              if c not in frame.columns]]
    for col in frame.columns:
        if col in kept.columns and col != frame.geometry.name and \
                str(kept[col].dtype) != str(frame[col].dtype):
            try:
                kept[col] = kept[col].astype(frame[col].dtype)
            except (TypeError, ValueError):
                kept[col] = kept[col].astype("string")
                frame[col] = frame[col].astype("string")
    merged = pd.concat([pd.DataFrame(frame), pd.DataFrame(kept)], ignore_index=True)
    merged = gpd.GeoDataFrame(merged, geometry=frame.geometry.name, crs=frame.crs)
    info = UpdateInfo(base_version=base.id, communes=tuple(replaced),
                      removed=int(drop.sum()), added=len(frame), kept=len(kept),
                      per_commune=per_commune)
    out = NormalisedLayer(merged, layer.model, layer.crs_choice, layer.mapping,
                          list(layer.findings))
    return out, info
