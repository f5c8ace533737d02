"""Type coercion of source columns onto the layer model's fields."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gisportal.pipeline.normalise import _coerce


def test_numbers_from_text_with_comma_decimals_and_junk():
    vals = pd.Series(["12", " 13 ", "12,5", "12a", "", None], dtype="string")
    got, bad = _coerce(vals, "float")
    assert list(got.astype(object).where(got.notna(), None)) == [12.0, 13.0, 12.5, None, None,
                                                                  None]
    assert bad.tolist() == [False, False, False, True, False, False]


def test_int_field_refuses_fractions():
    got, bad = _coerce(pd.Series([1.0, 2.5, None]), "int")
    assert got.tolist()[0] == 1 and pd.isna(got.tolist()[1])
    assert bad.tolist() == [False, True, False]


def test_codes_from_dbf_numbers_lose_the_decimal_point():
    got, _ = _coerce(pd.Series([24778.0, np.nan, 5.5]), "str")
    assert got.tolist()[0] == "24778" and pd.isna(got.tolist()[1]) and got.tolist()[2] == "5.5"


def test_land_use_codes_are_upper_cased_without_spaces():
    got, _ = _coerce(pd.Series([" ont + cln", "ODT", " "], dtype="string"), "code")
    assert got.tolist()[:2] == ["ONT+CLN", "ODT"] and pd.isna(got.tolist()[2])
