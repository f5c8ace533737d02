"""What the cadastre records about each parcel besides its shape.

Land-use code (drawn per kind of land, with the combined codes seen in real data),
map sheet and parcel number, the declared area as a surveyor would have written it,
and a synthetic holder and address: personal data the portal must not publish.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from .landscape import FOREST, TOWN, VILLAGE, Landscape
from .lots import BIG, CROSS, PLOT, STREET, TRACK
from .names import organisation_owner, person_names
from .outline import DistrictLayout
from .sheets import number_parcels
from .survey import Candidates

__all__ = ["PARCEL_COLUMNS", "empty_parcel_frame", "parcel_frame"]

PARCEL_COLUMNS = ["commune", "sheet", "parcel", "land_use", "area_m2", "owner", "address",
                  "geometry"]
#: share of parcels whose declared area carries a surveyor's error, and its size
_AREA_ERROR_SHARE, _AREA_ERROR = 0.04, 0.005

#: big plots in towns: schools, temples, clinics, shops, parks, offices
_BIG_TOWN = (["DGD", "TON", "DYT", "TMD", "DKV", "TSC"], [0.3, 0.2, 0.1, 0.25, 0.1, 0.05])
#: (main use of the section, lot tag) -> codes and their odds
_CODES = {
    ("ODT", PLOT): (["ODT", "TMD", "ODT+CLN"], [0.93, 0.05, 0.02]),
    ("ONT", PLOT): (["ONT", "ONT+CLN", "CLN", "TMD"], [0.58, 0.25, 0.14, 0.03]),
    ("ONT", BIG): (["CLN", "DGD", "TON", "ONT+CLN", "DYT", "NTD"],
                   [0.45, 0.15, 0.15, 0.15, 0.05, 0.05]),
    ("CLN", PLOT): (["CLN", "HNK", "NTS", "LUK", "NKH", "NTD"],
                    [0.72, 0.22, 0.02, 0.02, 0.01, 0.01]),
    ("CLN", BIG): (["ONT+CLN", "ONT"], [0.8, 0.2]),
    ("LUC", PLOT): (["LUC", "HNK", "LUK", "CLN", "NTS"], [0.72, 0.14, 0.06, 0.06, 0.02]),
    ("LUC", BIG): (["ONT+CLN", "ONT"], [0.8, 0.2]),
    ("LUC", TRACK): (["DTL", "DGT"], [0.5, 0.5]),
}
_DISTRICT_PREFIXES = ("Thành phố ", "Thị xã ", "Huyện ")


def _land_use(pool: Candidates, land: Landscape, picked: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Land-use code of each picked parcel."""
    code = np.full(len(picked), None, dtype=object)
    kind = pool.kind[picked]
    klass = pool.klass[picked]
    sec = pool.section[picked]
    base = np.where(sec >= 0, land.code[np.maximum(sec, 0)], None)
    fixed = pool.code[picked]
    known = np.array([c is not None for c in fixed], dtype=bool)
    code[known] = fixed[known]
    lots = ~known
    street = lots & np.isin(kind, (STREET, CROSS, TRACK))
    code[street] = "DGT"
    forest = lots & (klass == FOREST)
    code[forest] = base[forest]
    big_town = lots & (klass == TOWN) & (kind == BIG)
    code[big_town] = rng.choice(_BIG_TOWN[0], int(big_town.sum()), p=_BIG_TOWN[1])
    for (main, tag), (choices, weights) in _CODES.items():
        sel = lots & (base == main) & (kind == tag) & ~forest
        if tag != TRACK:
            sel &= ~big_town
        if sel.any():
            code[sel] = rng.choice(choices, int(sel.sum()), p=weights)
    left = lots & np.array([c is None for c in code], dtype=bool)
    code[left] = base[left]  # e.g. forest cut into household plots keeps its code
    return code


def parcel_frame(district: DistrictLayout, land: Landscape, pool: Candidates,
                 picked: np.ndarray, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """The parcels ``picked`` from ``pool`` with all their attributes, in key order."""
    geometry = pool.geometry[picked]
    commune = pool.commune[picked]
    klass = pool.klass[picked]
    sec = pool.section[picked]
    code = _land_use(pool, land, picked, rng)

    # towns and villages on 1:2 000 sheets, farmland and corridors 1:5 000, forest 1:10 000
    scale = np.where(np.isin(klass, (TOWN, VILLAGE)), 0, np.where(klass == FOREST, 2, 1))
    centroid = shapely.get_coordinates(shapely.centroid(geometry))
    origin = np.array([[s.bounds[0], s.bounds[3]] for s in district.commune_shapes])
    sheet, number = number_parcels(commune, scale, centroid, origin)

    # declared area: as measured, to 0.1 m², a few with a small surveying error
    n = len(picked)
    error = np.where(rng.random(n) < _AREA_ERROR_SHARE,
                     rng.uniform(-_AREA_ERROR, _AREA_ERROR, n), 0.0)
    declared = np.round(shapely.area(geometry) * (1.0 + error), 1)

    specs = district.communes
    short = district.seed.name
    for prefix in _DISTRICT_PREFIXES:
        short = short.removeprefix(prefix)
    persons = person_names(rng, n, kho_share=0.1)
    household_forest = rng.random(n) < 0.5  # half the production forest is households'
    owner = np.empty(n, dtype=object)
    address = np.empty(n, dtype=object)
    for i in range(n):
        spec = specs[commune[i]]
        c = code[i]
        org = organisation_owner(c, spec.name, spec.place, short)
        private = org is None or (c == "RSX" and household_forest[i])
        owner[i] = persons[i] if private else org
        s = sec[i]
        if s < 0 or c in ("DGT", "SON", "DTL"):
            address[i] = None  # roads and waterways have no address
        elif klass[i] == FOREST:
            address[i] = f"Tiểu khu {100 + s % 600}, {spec.name}"
        elif spec.kind == "xa":
            address[i] = f"Thôn {1 + s % 9}, {spec.name}"
        else:
            address[i] = f"Tổ dân phố {1 + s % 12}, {spec.name}"

    frame = gpd.GeoDataFrame(
        {
            "commune": np.array([specs[k].code for k in commune], dtype=object),
            "sheet": sheet,
            "parcel": number,
            "land_use": code,
            "area_m2": declared,
            "owner": owner,
            "address": address,
        },
        geometry=gpd.GeoSeries(geometry, crs=district.crs),
        crs=district.crs,
    )
    return frame.sort_values(["commune", "sheet", "parcel"], kind="stable").reset_index(
        drop=True)


def empty_parcel_frame(crs: str) -> gpd.GeoDataFrame:
    """A parcel frame with the columns and no rows, in ``crs``."""
    return gpd.GeoDataFrame({c: [] for c in PARCEL_COLUMNS[:-1]},
                            geometry=gpd.GeoSeries([], crs=crs), crs=crs)
