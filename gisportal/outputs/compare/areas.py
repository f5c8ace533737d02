"""Land-use codes as compared between versions, and the m² table per code.

A layer's codes are named from its own catalogue: a district's parcels and plan zones
from the land-use codes (``seeds/land_use_codes.csv``), a planning project's lots from
the zoning functions (``seeds/zoning_functions.csv``: ODM, HH, CX…), whose codes the
land-use catalogue does not know (HH is no land-use code; ODT is one of both with
different names).

A combined code (``"ONT+CLN"``: a residential parcel with perennial crops) is kept as
one row of the table, not split into its parts: a file says that the parcel serves
both uses, never how many m² each takes, so splitting would either count the parcel
twice or invent shares. Its separators and repeated parts are tidied (``"ONT, CLN"``
and ``"ONT+CLN"`` are the same code) but the order of the parts is kept, because the
first part is the main use (it decides the map colour), so ``"CLN+ONT"`` is a change.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from gisportal.base import seeds

__all__ = ["ZONING_KINDS", "canonical_code", "canonical_codes", "area_table"]

#: Kinds whose codes are zoning functions, not land-use codes.
ZONING_KINDS = frozenset({"zoning_lots"})


def canonical_code(value: object, kind: str | None = None) -> str | None:
    """``"ont, cln"`` → ``"ONT+CLN"``; ``None`` for a missing or blank code.

    A zoning function (`kind` in `ZONING_KINDS`) is one code, never combined: the
    upload resolved it to its catalogue code already, and a value the catalogue does
    not know was kept as the file wrote it (ZONING-FUNCTION-UNKNOWN), so it is only
    stripped here, not upper-cased or split on its commas.
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if kind in ZONING_KINDS:
        return " ".join(str(value).split()) or None
    parts = seeds.LandUseCatalogue.split(str(value))
    return "+".join(dict.fromkeys(parts)) or None


def canonical_codes(values: pd.Series, kind: str | None = None) -> np.ndarray:
    """`canonical_code` of a whole column, as an object array (``None`` when missing).

    A land-use column of 200 000 rows holds a few dozen distinct values: each is tidied
    once and spread back with the factorised codes.
    """
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    tidy = np.array([canonical_code(u, kind) for u in uniques] + [None], dtype=object)
    return tidy[codes]  # the sentinel -1 picks the trailing None


def _naming(kind: str | None) -> tuple[Callable[[str], str], Callable[[str], str],
                                       Callable[[str], str]]:
    """(name in Vietnamese, name in English, colour) of a code of `kind`'s catalogue; a
    code the catalogue does not know is named as written, in grey."""
    if kind in ZONING_KINDS:
        functions = seeds.zoning_functions()

        def field(code: str, attr: str, default: str) -> str:
            f = functions.get(code)
            return getattr(f, attr) if f is not None else default

        return (lambda c: field(c, "name_vi", c), lambda c: field(c, "name_en", c),
                lambda c: field(c, "color", seeds.UNKNOWN_COLOR))
    cat = seeds.land_use_catalogue()
    return cat.name, lambda c: cat.name(c, "en"), cat.color


def area_table(codes_before: np.ndarray, area_before: np.ndarray,
               codes_after: np.ndarray, area_after: np.ndarray,
               kind: str | None = None) -> pd.DataFrame:
    """Total m² per code in each version and the change, largest change first.

    Columns ``code`` (``None`` for features without a code), ``name``, ``name_en``,
    ``color`` (from `kind`'s catalogue, see the module doc: the official colour of a
    land-use code's main part, a zoning function's drawing colour; grey when unknown),
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
    name_vi, name_en, color = _naming(kind)
    table["name"] = [name_vi(c) if c else "" for c in table["code"]]
    table["name_en"] = [name_en(c) if c else "" for c in table["code"]]
    table["color"] = [color(c) if c else seeds.UNKNOWN_COLOR for c in table["code"]]
    order = np.lexsort((table["code"].fillna("").to_numpy(dtype=str),
                        -np.abs(table["delta_m2"].to_numpy())))
    table = table.iloc[order].reset_index(drop=True)
    return table[["code", "name", "name_en", "color", "before_m2", "after_m2", "delta_m2"]]
