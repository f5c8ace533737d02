"""Numbers, areas, shares and dates as Vietnamese readers write them (and English ones).

Vietnamese groups thousands with a dot and writes the decimal comma (``1.234,5``), the
reverse of English (``1,234.5``); a certificate's reader who sees ``1,234`` m² takes it
for one and a quarter square metres. Dates are day first (``15/03/2024``); the English
pages spell the month (``15 Mar 2024``) because ``03/15`` and ``15/03`` are both read
somewhere and a resident must not have to guess.

Rounding is half up on the decimal value as written (``2.675`` → ``2,68``), as a
surveyor rounds, not Python's round-half-even on the binary float. Missing values
(``None``, NaN) print as an em dash, so a page never shows ``nan``.

Pure functions of base: every output (the parcel sheet, its PDF, later the other
pages) formats through here, so a page cannot mix conventions.
"""

from __future__ import annotations

import math
from datetime import date as _date
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["MISSING", "number", "area_m2", "share", "date", "length_m"]

#: What a missing value prints as.
MISSING = "—"

_SEPARATORS = {"vi": (".", ","), "en": (",", ".")}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
              "Nov", "Dec")


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def number(value: float | int | None, decimals: int = 0, lang: str = "vi", *,
           grouping: bool = True) -> str:
    """``1234.5`` → ``1.234,5`` (vi) or ``1,234.5`` (en), with `decimals` digits.

    ``grouping=False`` leaves out the thousands separator: coordinates are printed
    ``1312345,67``, as on certificates, and so that a resident can type them back into
    the X/Y look-up (which reads a decimal comma, not a grouping dot).
    """
    if _missing(value):
        return MISSING
    try:
        exact = Decimal(repr(value) if isinstance(value, float) else str(value))
        rounded = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0,0"
    text = f"{rounded:,.{decimals}f}" if grouping else f"{rounded:.{decimals}f}"
    group, point = _SEPARATORS.get(lang, _SEPARATORS["vi"])
    return text.translate(str.maketrans({",": group, ".": point}))


def area_m2(value: float | int | None, lang: str = "vi", decimals: int = 1) -> str:
    """``115.2`` → ``115,2 m²`` (vi), ``115.2 m²`` (en)."""
    return MISSING if _missing(value) else f"{number(value, decimals, lang)} m²"


def length_m(value: float | int | None, lang: str = "vi", decimals: int = 2) -> str:
    """``12.345`` → ``12,35 m`` (vi), ``12.35 m`` (en)."""
    return MISSING if _missing(value) else f"{number(value, decimals, lang)} m"


def share(fraction: float | None, lang: str = "vi", decimals: int = 1) -> str:
    """A fraction of one as a percentage: ``0.125`` → ``12,5 %`` (vi), ``12.5%`` (en).

    Vietnamese writes a space before the sign (TCVN's style for units); English does not.
    """
    if _missing(fraction):
        return MISSING
    text = number(Decimal(repr(float(fraction))) * 100, decimals, lang)  # type: ignore[arg-type]
    return f"{text} %" if lang != "en" else f"{text}%"


def date(value: _date | datetime | str | None, lang: str = "vi") -> str:
    """``2024-03-15`` → ``15/03/2024`` (vi) or ``15 Mar 2024`` (en).

    Accepts a date, a datetime (its own date: convert it to the reader's time zone
    first) or an ISO date text (decisions carry their date as typed by a planner); a
    text that is no ISO date comes back unchanged rather than failing a page.
    """
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            value = _date.fromisoformat(value.strip()[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value.date()
    if lang == "en":
        return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"
    return f"{value.day:02d}/{value.month:02d}/{value.year}"
