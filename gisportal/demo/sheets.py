"""Map sheets (số tờ) and parcel numbers (số thửa), numbered per commune.

Cadastral maps are drawn on sheets of a grid, at 1:2 000 in towns and villages and at
smaller scales in farmland and forest; sheets are numbered 1..n in each commune, and
parcels 1..n on each sheet in reading order, from north-west to south-east. So a
parcel's key is (commune, sheet, parcel), which is what a resident types in.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHEET_SIZE", "number_parcels"]

#: sheet width and height in metres per scale class: 1:2 000, 1:5 000, 1:10 000
SHEET_SIZE = np.array([[1000.0, 625.0], [3000.0, 1875.0], [6000.0, 3750.0]])
#: reading order goes band by band; a band is this fraction of a sheet's height
_BAND = 1.0 / 25.0


def _group_rank(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sort order of rows by ``keys`` (last key most significant) and group starts."""
    order = np.lexsort(keys)
    change = np.zeros(len(order), dtype=bool)
    if len(order):
        change[0] = True
    for k in keys:
        ks = k[order]
        change[1:] |= ks[1:] != ks[:-1]
    return order, change


def number_parcels(
    commune: np.ndarray,
    scale: np.ndarray,
    centroid: np.ndarray,
    commune_origin: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sheet and parcel numbers.

    Parameters
    ----------
    commune
        Commune index of each parcel.
    scale
        Scale class of each parcel (0, 1, 2: see ``SHEET_SIZE``).
    centroid
        ``(n, 2)`` parcel centroids: a parcel goes on the sheet holding its centroid.
    commune_origin
        ``(n_communes, 2)`` north-west corner of each commune's sheet grid.

    Returns
    -------
    sheet, parcel
        1-based numbers; ``(commune, sheet, parcel)`` is unique.
    """
    n = len(commune)
    size = SHEET_SIZE[scale]
    west = commune_origin[commune, 0]
    north = commune_origin[commune, 1]
    col = np.floor((centroid[:, 0] - west) / size[:, 0]).astype(np.int64)
    row = np.floor((north - centroid[:, 1]) / size[:, 1]).astype(np.int64)

    # sheets: by commune, then scale, then row (north first), then column (west first)
    order, new_sheet = _group_rank([col, row, scale, commune])
    new_commune = np.ones(n, dtype=bool)
    new_commune[1:] = commune[order][1:] != commune[order][:-1]
    counter = np.cumsum(new_sheet)
    base = np.maximum.accumulate(np.where(new_commune, counter - 1, 0))
    sheet = np.empty(n, dtype=np.int64)
    sheet[order] = counter - base

    band_height = size[:, 1] * _BAND
    top = north - row * size[:, 1]
    band = np.floor((top - centroid[:, 1]) / band_height).astype(np.int64)
    order = np.lexsort([centroid[:, 0], band, sheet, commune])
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (commune[order][1:] != commune[order][:-1]) | (
        sheet[order][1:] != sheet[order][:-1]
    )
    position = np.arange(n)
    start = np.maximum.accumulate(np.where(new_group, position, 0))
    parcel = np.empty(n, dtype=np.int64)
    parcel[order] = position - start + 1
    return sheet, parcel
