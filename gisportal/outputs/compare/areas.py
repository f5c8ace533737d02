"""Land-use codes as compared between versions, and the m² table per code.

A combined code (``"ONT+CLN"``: a residential parcel with perennial crops) is kept as
one row of the table, not split into its parts: a file says that the parcel serves
both uses, never how many m² each takes, so splitting would either count the parcel
twice or invent shares. Its separators and repeated parts are tidied (``"ONT, CLN"``
and ``"ONT+CLN"`` are the same code) but the order of the parts is kept, because the
first part is the main use (it decides the map colour), so ``"CLN+ONT"`` is a change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gisportal.base import seeds

__all__ = ["canonical_code", "canonical_codes", "area_table"]


def canonical_code(value: object) -> str | None:
    """``"ont, cln"`` → ``"ONT+CLN"``; ``None`` for a missing or blank code."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    parts = seeds.LandUseCatalogue.split(str(value))
    return "+".join(dict.fromkeys(parts)) or None


def canonical_codes(values: pd.Series) -> np.ndarray:
    """`canonical_code` of a whole column, as an object array (``None`` when missing).

    A land-use column of 200 000 rows holds a few dozen distinct values: each is tidied
    once and spread back with the factorised codes.
    """
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    tidy = np.array([canonical_code(u) for u in uniques] + [None], dtype=object)
    return tidy[codes]  # the sentinel -1 picks the trailing None


def area_table(codes_before: np.ndarray, area_before: np.ndarray,
               codes_after: np.ndarray, area_after: np.ndarray) -> pd.DataFrame:
    """Total m² per code in each version and the change, largest change first.

    Columns ``code`` (``None`` for features without a code), ``name``, ``name_en``,
    ``color`` (the catalogue's official colour of the main part; grey when unknown),
    ``before_m2``, ``after_m2``, ``delta_m2``. Every code present in either version has
    a row, unchanged ones too (delta 0), so the table also shows what stayed.
    """
    key = "__none__"  # pandas drops None group keys; a sentinel keeps them
    before = pd.Series(area_before, dtype=float).groupby(
        pd.Series(codes_before, dtype=object).fillna(key).to_numpy()).sum()
    after = pd.Series(area_after, dtype=float).groupby(
        pd.Series(codes_after, dtype=object).fillna(key).to_numpy()).sum()
    table = pd.DataFrame({"before_m2": before, "after_m2": after}).fillna(0.0)
    table["delta_m2"] = table["after_m2"] - table["before_m2"]
    table.index.name = "code"
    table = table.reset_index()
    table["code"] = table["code"].astype(object).where(table["code"] != key, None)
    cat = seeds.land_use_catalogue()
    table["name"] = [cat.name(c) if c else "" for c in table["code"]]
    table["name_en"] = [cat.name(c, "en") if c else "" for c in table["code"]]
    table["color"] = [cat.color(c) if c else seeds.UNKNOWN_COLOR for c in table["code"]]
    order = np.lexsort((table["code"].fillna("").to_numpy(dtype=str),
                        -np.abs(table["delta_m2"].to_numpy())))
    table = table.iloc[order].reset_index(drop=True)
    return table[["code", "name", "name_en", "color", "before_m2", "after_m2", "delta_m2"]]
