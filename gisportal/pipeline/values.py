"""Reading the values of planning tables as drawings write them (part of normalising).

A zoning plan's table of indicators is typed by hand in CAD or Excel and reaches us as
text: floors as a range (``3-5``, ``3÷5``, ``≤5``), building density with or without a
percent sign or as a fraction (``60%``, ``60``, ``0,6``), a right of way as its
cross-section (``5-10,5-5`` is 20.5 m), counts with Vietnamese thousands separators
(``1.200`` people) and decimal commas everywhere. A field of ``layers/<kind>.json`` says
how it is read (``"parse": {"as": "range" | "percent" | "sum" | "count"}``, see
:data:`gisportal.base.models.PARSERS`) and which values mean the same (``vocabulary``);
:func:`gisportal.pipeline.normalise.normalise` applies them. Every function here works
on the *distinct* values of a column (a few dozen in a plan of thousands of lots) and
never raises: what cannot be read is marked bad and becomes an ATTR-TYPE finding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gisportal.base import seeds
from gisportal.base.models import name_key

__all__ = ["Parsed", "parse_column", "parse_range", "parse_sum", "parse_count",
           "parse_number", "resolve_vocabulary", "vocabulary_known"]

_NUMBER = r"\d+(?:[.,]\d+)?"
#: "3-5", "3 - 5", "3÷5", "3–5", "3~5", "3 đến 5", "3 to 5" (after _dashes)
_RANGE = re.compile(rf"^({_NUMBER})\s*-\s*({_NUMBER})$")
_AT_MOST = re.compile(rf"^(?:≤|<=|=<|<|tối đa|toi da|max\.?|không quá|khong qua)\s*({_NUMBER})$")
_AT_LEAST = re.compile(rf"^(?:≥|>=|=>|>|tối thiểu|toi thieu|min\.?|từ|tu)\s*({_NUMBER})$")
_SINGLE = re.compile(rf"^(-?{_NUMBER})$")  # a negative value is read, for the checks
#: Words a value may carry after its number: floors, metres, people, percent.
_UNIT = re.compile(r"\s*(?:tầng|tang|t|m|mét|met|người|nguoi|ng|lần|lan|%)\.?$")
_SECTION_PART = re.compile(rf"^{_NUMBER}$")
#: A cross-section's *name* on a drawing (mặt cắt 1-1, A-A): two equal parts, no width.
_SECTION_NAME = re.compile(r"^(\w{1,3})\s*-\s*\1$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:[.,\s]\d{3})+$")


def _dashes(text: str) -> str:
    """Every way drawings write "to" between two numbers, as ``-``."""
    text = text.strip().lower()
    for sep in ("÷", "–", "—", "~", " đến ", " den ", " to "):
        text = text.replace(sep, "-")
    return text


def parse_number(text: str) -> float | None:
    """``"2,5"`` → 2.5 (a Vietnamese decimal comma), ``"24m"`` → 24; None if not a number."""
    t = _UNIT.sub("", text.strip().lower()).strip()
    if not _SINGLE.match(t):
        return None
    return float(t.replace(",", "."))


def parse_range(text: str) -> tuple[float | None, float | None] | None:
    """(low, high) of a range as drawings write floors; None when it is not one.

    ``"3-5"`` → (3, 5), ``"≤5"`` → (None, 5), ``"≥3"`` → (3, None), ``"5"`` → (None, 5):
    a single number is the maximum, as a table's "tầng cao" column means it.
    """
    t = _UNIT.sub("", _dashes(text)).strip()
    if m := _RANGE.match(t):
        return float(m.group(1).replace(",", ".")), float(m.group(2).replace(",", "."))
    if m := _AT_MOST.match(t):
        return None, float(m.group(1).replace(",", "."))
    if m := _AT_LEAST.match(t):
        return float(m.group(1).replace(",", ".")), None
    if m := _SINGLE.match(t):
        return None, float(m.group(1).replace(",", "."))
    return None


def parse_sum(text: str) -> float | None:
    """The total of a cross-section: ``"5-10,5-5"`` → 20.5, ``"5+10.5+5"`` → 20.5,
    ``"24m"`` → 24. None for text that is not one, and for a section's name (``1-1``)."""
    t = text.strip().strip("()[]").strip()
    if _SECTION_NAME.match(t):
        return None
    t = _UNIT.sub("", t.lower()).strip()
    parts = [p.strip() for p in re.split(r"[-+÷–—]", t)]
    if not parts or not all(_SECTION_PART.match(p) for p in parts):
        return None
    return float(sum(float(p.replace(",", ".")) for p in parts))


def parse_count(text: str) -> float | None:
    """``"1.200"`` or ``"1 200 người"`` → 1200 (thousands separators); else a number."""
    t = _UNIT.sub("", text.strip().lower()).strip()
    if _THOUSANDS.match(t):
        return float(re.sub(r"[.,\s]", "", t))
    return parse_number(t)


@dataclass
class Parsed:
    """A column read by a parser: values, the low end of ranges, what could not be read."""

    values: np.ndarray  # float, NaN where missing or unreadable
    low: np.ndarray  # float, the lower end of a range (NaN elsewhere)
    bad: np.ndarray  # bool: present but unreadable
    #: percent: how many values were fractions made percents (0 when none)
    fractions: int = 0


def _texts(values: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """Codes and distinct texts of a column (numbers spelled as text, missing None)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts: list[str | None] = []
    for v in np.asarray(uniques, dtype=object):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            texts.append(None)
        elif isinstance(v, float | np.floating):
            texts.append(repr(float(v)))
        else:
            texts.append(str(v))
    return codes, texts


def parse_column(values: pd.Series, how: str) -> Parsed:
    """Read a source column with the parser ``how`` (``range``, ``percent``, ``sum``,
    ``count``). Numbers stay numbers; text is read value by distinct value."""
    n = len(values)
    out = np.full(n, np.nan)
    low = np.full(n, np.nan)
    bad = np.zeros(n, dtype=bool)
    codes, texts = _texts(values)
    if not texts:
        return Parsed(out, low, bad)
    val = np.full(len(texts) + 1, np.nan)  # the last slot: code -1, missing
    lo = np.full(len(texts) + 1, np.nan)
    wrong = np.zeros(len(texts) + 1, dtype=bool)
    percent_sign = np.zeros(len(texts) + 1, dtype=bool)
    for k, text in enumerate(texts):
        if text is None or not text.strip():
            continue
        got: float | None
        if how == "range":
            pair = parse_range(text)
            got = None if pair is None else pair[1]
            if pair is not None and pair[0] is not None:
                lo[k] = pair[0]
            if pair is not None and pair[0] is not None and got is None:
                continue  # "≥3": a lower bound only, not a bad value
        elif how == "sum":
            got = parse_sum(text)
        elif how == "count":
            got = parse_count(text)
        else:  # percent
            percent_sign[k] = "%" in text
            got = parse_number(text)
        if got is None or not np.isfinite(got):
            wrong[k] = True
        else:
            val[k] = got
    fractions = 0
    if how == "percent":
        # A column whose every value (without a % sign) is at most 1 holds fractions:
        # 0.6 is 60 %. One value of 1 among 40, 60, 80 is 1 %, not 100 %.
        plain = np.isfinite(val) & ~percent_sign
        if plain.any() and (val[plain] <= 1).all() and (val[plain] > 0).any():
            val[plain] *= 100
            fractions = int(np.isin(codes, np.flatnonzero(plain)).sum())
    out = val[codes]
    low = lo[codes]
    bad = wrong[codes]
    return Parsed(out, low, bad, fractions)


def vocabulary_known(vocabulary: Mapping[str, tuple[str, ...]] | str) -> set[str]:
    """The canonical values of a vocabulary (codes of a catalogue)."""
    if isinstance(vocabulary, str):
        return {f.code for f in _catalogue(vocabulary)}
    return set(vocabulary)


def _catalogue(name: str):
    if name != "zoning_functions":
        raise ValueError(f"unknown vocabulary catalogue {name!r}")
    return seeds.zoning_functions()


def resolve_vocabulary(values: pd.Series, vocabulary: Mapping[str, tuple[str, ...]] | str,
                       *, by_parts: bool = False) -> pd.Series:
    """Text values replaced by their canonical value where the vocabulary knows them.

    Matching folds case, accents, spaces and punctuation (``name_key``). Unknown values
    are kept as written, for the checks to report. With ``by_parts`` (a DXF layer
    name such as ``QH_DAT-O-MOI`` or ``QH-ODM``), a value not known whole is tried part
    by part from the right, split at ``_``, ``-``, ``.`` and spaces.
    """
    if isinstance(vocabulary, str):
        cat = _catalogue(vocabulary)
        known = {f.code for f in cat}

        def lookup(text: str) -> str | None:
            return text if text in known else cat.resolve(text)
    else:
        keys = {name_key(s): canon for canon, spellings in vocabulary.items()
                for s in (canon, *spellings)}

        def lookup(text: str) -> str | None:
            return keys.get(name_key(text))

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:
        return values
    taken = np.empty(len(uniques) + 1, dtype=object)
    for k, v in enumerate(np.asarray(uniques, dtype=object)):
        text = str(v)
        got = lookup(text)
        if got is None and by_parts:
            parts = [p for p in re.split(r"[_\-.\s]+", text) if p]
            for size in range(len(parts) - 1, 0, -1):  # longest tail first
                got = lookup(" ".join(parts[-size:]))
                if got is not None:
                    break
        taken[k] = got if got is not None else text
    taken[-1] = None
    return pd.Series(taken[codes], index=values.index, dtype="string")
