"""Vietnamese (and English) numbers, areas, shares and dates: `gisportal.base.formats`."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from gisportal.base import formats


@pytest.mark.parametrize("value,decimals,vi,en", [
    (1234.5, 1, "1.234,5", "1,234.5"),
    (1234567.891, 2, "1.234.567,89", "1,234,567.89"),
    (0, 0, "0", "0"),
    (999.95, 1, "1.000,0", "1,000.0"),
    (2.675, 2, "2,68", "2.68"),  # half up on the decimal as written, not banker's
    (0.125, 2, "0,13", "0.13"),
    (-1234.5, 0, "-1.235", "-1,235"),
    (-0.04, 1, "0,0", "0.0"),  # no "-0,0"
    (12, 2, "12,00", "12.00"),
])
def test_number_in_both_languages(value, decimals, vi, en):
    assert formats.number(value, decimals, "vi") == vi
    assert formats.number(value, decimals, "en") == en


def test_number_without_grouping_reads_back_in_the_xy_lookup():
    """Coordinates go ungrouped: "1312345,68" is what a certificate shows and what the
    X/Y look-up (which reads a decimal comma) takes back."""
    text = formats.number(1312345.675, 2, "vi", grouping=False)
    assert text == "1312345,68"
    assert float(text.replace(",", ".")) == pytest.approx(1312345.68)
    assert formats.number(561775.8, 2, "en", grouping=False) == "561775.80"


@pytest.mark.parametrize("missing", [None, math.nan, float("nan")])
def test_missing_values_print_as_a_dash_never_nan(missing):
    for text in (formats.number(missing, 1), formats.area_m2(missing), formats.share(missing),
                 formats.length_m(missing)):
        assert text == formats.MISSING
    assert formats.date(None) == formats.MISSING


def test_area_share_and_length():
    assert formats.area_m2(115.2) == "115,2 m²"
    assert formats.area_m2(115.2, "en") == "115.2 m²"
    assert formats.area_m2(12345.67) == "12.345,7 m²"
    assert formats.share(0.125) == "12,5 %"
    assert formats.share(0.125, "en") == "12.5%"
    assert formats.share(1.0) == "100,0 %"
    assert formats.share(0.00049) == "0,0 %"
    assert formats.length_m(20.004) == "20,00 m"
    assert formats.length_m(1234.5, "en") == "1,234.50 m"


@pytest.mark.parametrize("value", [date(2024, 3, 15), datetime(2024, 3, 15, 23, 59),
                                   "2024-03-15", " 2024-03-15T08:00:00+07:00"])
def test_dates_day_first_in_vietnamese_month_spelled_in_english(value):
    assert formats.date(value, "vi") == "15/03/2024"
    assert formats.date(value, "en") == "15 Mar 2024"


def test_a_date_typed_otherwise_comes_back_unchanged():
    """A decision date a planner typed as "30.6.2023" is shown as typed, not a 500."""
    assert formats.date("30.6.2023") == "30.6.2023"
    assert formats.date(date(2025, 7, 1)) == "01/07/2025"
    assert formats.date(date(2025, 12, 1), "en") == "1 Dec 2025"
