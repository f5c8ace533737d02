"""Columns whose *values* look like personal data, whatever the column is called.

Aliases (``TenChu``, ``SoCMND``…) catch the personal columns of files that use known
names; real cadastral exports also carry ``tenchusdd``, ``namsinh``, ``x_1`` or a
``ghichu2`` someone filled with owners' names. The public output is an allow-list
(`gisportal.outputs.privacy`), so such a column is withheld anyway; this check says so to the
planner (rule ``ATTR-PERSONAL-SUSPECTED``, a warning), and records the column in the
report's ``read.fields.personal_source`` (with its evidence in
``read.fields.suspected_personal``), so that marking it public later needs an explicit
confirmation.

What counts, on the folded text (lower case, no diacritics, so ``NGUYEN VAN HUNG`` and
``Nguyễn Văn Hùng`` are alike):

- ``person_name``: a common Vietnamese family name (Nguyễn, Trần, Lê… Trương, Lâm, Tô,
  Đoàn, Vương, Trịnh…) followed by 1–3 syllables, or a K'Ho / Mạ / Churu name (``K'
  Brăng``, ``K'Brêu``, ``Ka Điệp``, ``Kơ Să Ha Kiên``, ``Liêng Hót Ha …``, ``Touneh …``),
  optionally after ``Ông``/``Bà``/``Hộ ông``, and two such names joined by ``và`` or a
  comma (a couple);
- ``id_number``: 9 digits (CMND) or 12 digits (CCCD: province 001–096, then a century
  and sex digit 0–3), spaces and dashes ignored; in a number column also the 11 digits of
  a CCCD whose leading zero a spreadsheet dropped;
- ``phone``: a Vietnamese mobile or landline number (0 or +84 …) anywhere in the value;
- ``email``: an e-mail address anywhere in the value;
- ``birth_date``: a date (dd/mm/yyyy, dd-mm-yyyy, yyyy-mm-dd, or a date column) of the
  years 1900–2015;
- ``birth_year``: a whole number 1900–2015.

When: a column is *likely personal* when at least `SHARE` (30 %) of its non-empty
values in a sample of at most `SAMPLE_SIZE` (2 000) match one pattern — not a majority,
because a real owner column also holds organisations ("UBND xã…", "Công ty…") and
blanks — with these guards against look-alikes:

- names: a value starting with a word of a place or a thing, with its diacritics
  (Đường, Thôn, Tổ, Xã, Phường, Buôn…, UBND, Công ty, Trường…), is not a person —
  "Đường Trần Phú" folds to a family name first, and is a street; without diacritics
  "Duong Tran Phu" is a street when a whole person's name follows the first word (Mr
  Dương Văn Hùng is "duong" + "van hung", not a name); at most `PLACE_SHARE_MAX` (10 %)
  of the values may be places (an address column's bare "Trần Phú" is a street too);
  the column's name must not say it holds places (``duong``, ``diachi``, ``diadanh``,
  ``thon``…); and the names must differ from each other (at least 3 distinct, and
  `DISTINCT_NAMES` of the matches): "Cao su" (rubber) in a crop column matches the
  pattern on every row but is one value;
- birth years: at least `YEAR_SHARE` (50 %) of the values, at least 3 distinct years
  spanning 10 years or more (a survey year repeated on every row is not a birth year);
- only columns that no canonical field took are examined: a column read into ``sheet``
  or ``parcel`` is what its name says, and one read into a personal field is personal
  already.

Cost: the sample is drawn evenly across the column after one ``notna`` pass, and every
test is a vectorised pandas string operation on its distinct values, so a 200 000-row
layer costs what a 2 000-row one does (5–15 ms per column).

Certificate-issue dates spread over decades, or a column of bare street names under a
meaningless name (``x_2``), can look personal: the finding is a warning, the column
stays withheld (as every unmarked column is), and a planner who checked it confirms it
public (`gisportal.outputs.privacy.mark_public` with ``confirm_personal``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gisportal.base.findings import Finding
from gisportal.pipeline.normalise import SOURCE_PREFIX, NormalisedLayer
from gisportal.pipeline.validation.context import ValidationContext

__all__ = ["PATTERNS", "SAMPLE_SIZE", "SHARE", "YEAR_SHARE", "PLACE_SHARE_MAX", "Suspicion",
           "check_personal", "detect_personal", "sample_values"]

#: At most this many non-empty values of a column are looked at.
SAMPLE_SIZE = 2000
#: Share of the sampled values that must match a pattern.
SHARE = 0.30
#: Share for birth years: a column of whole numbers needs most of them in 1900–2015.
YEAR_SHARE = 0.50
#: Largest share of place words (Đường, Thôn…) a column of names may have.
PLACE_SHARE_MAX = 0.10
#: Share of the matched names that must be distinct: "Cao su" (rubber) on every row of a
#: crop column matches the name pattern but is one value; owners' names differ.
DISTINCT_NAMES = 0.02
#: Years a birth year or date of birth of a land user can have.
BIRTH_YEARS = (1900, 2015)

#: Pattern code → (Vietnamese, English) description, for the finding's message.
PATTERNS: dict[str, tuple[str, str]] = {
    "person_name": ("họ tên người", "person names"),
    "id_number": ("số CMND/CCCD", "identity card numbers"),
    "phone": ("số điện thoại", "phone numbers"),
    "email": ("địa chỉ thư điện tử", "e-mail addresses"),
    "birth_date": ("ngày sinh", "dates of birth"),
    "birth_year": ("năm sinh", "birth years"),
}

# Common family names (folded), from the national frequency lists, plus those of Lâm
# Đồng's peoples written as a first word (Ka, Kơ, Kră, Liêng, Touneh, Cil, Ya, Ro).
_FAMILIES = (
    "nguyen", "tran", "le", "pham", "hoang", "huynh", "phan", "vu", "vo", "dang", "bui", "do",
    "ho", "ngo", "duong", "ly", "dinh", "truong", "lam", "mai", "cao", "ha", "to", "luu",
    "doan", "vuong", "trinh", "quach", "luong", "la", "chau", "thai", "ta", "kieu", "tang",
    "thach", "hua", "phung", "giang", "nghiem", "lai", "mac", "dao", "trieu", "tieu", "khuc",
    "ka", "ko", "kra", "lieng", "touneh", "cil", "ya", "ro"
)
_SYL = r"[a-z]{1,7}"
_SP = r"\s+"
_PERSON = (rf"(?:(?:{'|'.join(_FAMILIES)})(?:{_SP}{_SYL}){{1,3}}"
           rf"|k'\s*{_SYL}(?:{_SP}(?:k'\s*)?{_SYL}){{0,3}})")
_TITLE = r"(?:(?:ho\s+(?:gia\s+dinh\s+)?)?(?:ong|ba)\s*:?\s*|ho\s+gia\s+dinh\s*:?\s*)?"
_NAME = re.compile(rf"{_TITLE}{_PERSON}(?:\s*(?:,|;|&|-|\s+va\s+|\s+and\s+)\s*"
                   rf"{_TITLE}{_PERSON})?")

#: First words (with diacritics) of addresses and places: a value starting with one is
#: not a person, and a column with many of them holds places ("Trần Phú" there is a
#: street). Compared with their diacritics: Đường is a street, Dương a family name.
_PLACE_WORDS = (
    "đường", "thôn", "tổ", "khu", "xã", "phường", "ấp", "buôn", "bon", "phố", "hẻm", "kiệt",
    "ngõ", "ngách", "quốc", "tỉnh", "thị", "huyện", "tiểu", "khối", "xóm", "làng", "số",
    "tp", "ql", "tl",
)
#: First words (with diacritics) of things and organisations: not a person either, but
#: common in an owner column ("UBND xã…", "Trường…"), so not places. Not "hồ": a lake,
#: but also the family name Hồ.
_THING_WORDS = (
    "ubnd", "công", "trường", "chùa", "nhà", "ban", "hợp", "đất", "lô", "rừng",
    "vườn", "ruộng", "bãi", "khe", "trạm", "thửa", "tờ", "đội", "dốc", "đèo", "suối",
    "sông", "núi", "đập", "chợ", "cầu", "đồi",
)
#: Place words typed without diacritics that no family name folds to.
_PLACE_WORDS_ASCII = (
    "thon", "khu", "xa", "phuong", "ap", "buon", "bon", "hem", "kiet", "ngach", "quoc",
    "tinh", "thi", "huyen", "tieu", "khoi", "xom", "lang", "so", "tp", "ql", "tl",
)
_PLACE = re.compile(rf"(?:{'|'.join(_PLACE_WORDS)})(?![^\W\d_])")
_NOT_A_NAME = re.compile(rf"(?:{'|'.join(_PLACE_WORDS + _THING_WORDS)})(?![^\W\d_])")
#: Without diacritics "Duong Tran Phu" may be Đường Trần Phú or a Mr Dương: it is the
#: street when a whole person's name follows (Dương Văn Hùng: "van hung" is not one).
_PLACE_ASCII = re.compile(rf"(?:{'|'.join(_PLACE_WORDS_ASCII)})(?![a-z0-9])"
                          rf"|(?:duong|pho|to|ngo|truong)\s+{_PERSON}$")
#: Column names (folded, letters and digits only) that say the column holds places.
_PLACE_COLUMNS = ("duong", "diachi", "diadanh", "xudong", "thon", "vitri", "pho", "xom",
                  "khuvuc", "tenxa", "tenhuyen", "tenvung")

_CCCD = r"0\d\d[0-3]\d{8}"
_ID = re.compile(rf"\d{{9}}|{_CCCD}")
_PHONE = re.compile(r"(?<![\d+])(?:\+?84[ .\-]?|0)(?:[35789](?:[ .\-]?\d){8}"
                    r"|2(?:[ .\-]?\d){9})(?!\d)")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+", re.IGNORECASE)
#: dd/mm/yyyy (also with - or .) or yyyy-mm-dd (perhaps with a time): day, month, year.
_DATE = re.compile(r"(?:(?P<d1>\d{1,2})[/.\-](?P<m1>\d{1,2})[/.\-](?P<y1>\d{4})"
                   r"|(?P<y2>\d{4})[/.\-](?P<m2>\d{1,2})[/.\-](?P<d2>\d{1,2})(?:[ T].*)?)")
_YEAR = re.compile(r"\d{4}")
_SEPARATORS = re.compile(r"[\s\-]")  # not dots: "541230.845" is a coordinate


def _fold_table() -> dict[int, int | None]:
    """One `str.translate` table doing `gisportal.base.text.fold`'s work (lower case, no
    diacritics, đ → d) on composed and decomposed text alike, apostrophes made one:
    a single pass over the sample instead of four."""
    table: dict[int, int | None] = {c: None for c in range(0x0300, 0x0370)}  # combining
    for c in [*range(0x41, 0x5B), *range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        base = unicodedata.normalize("NFD", chr(c))[0].lower()
        if base.isascii() and base.isalpha() and base != chr(c):
            table[c] = ord(base)
    table.update({ord("đ"): ord("d"), ord("Đ"): ord("d")})
    table.update({ord(a): ord("'") for a in "’ʼ`´‘"})
    return table


_FOLD = _fold_table()


@dataclass(frozen=True)
class Suspicion:
    """Why a column looks personal: the pattern its values match, and how many do."""

    column: str
    pattern: str
    matched: int
    sampled: int

    @property
    def share(self) -> float:
        return self.matched / self.sampled if self.sampled else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "share": round(self.share, 3),
                "matched": self.matched, "sampled": self.sampled}


def sample_values(values: pd.Series | pd.DataFrame | np.ndarray | list,
                  size: int = SAMPLE_SIZE) -> pd.Series:
    """At most `size` non-missing values, spread evenly over the column (deterministic:
    the same file gives the same finding), in column order, with their own dtype."""
    if isinstance(values, pd.DataFrame):  # two source columns of one name: the first
        values = values.iloc[:, 0]
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    present = np.flatnonzero(series.notna().to_numpy(dtype=bool))
    if len(present) > size:
        present = present[np.linspace(0, len(present) - 1, size).round().astype(np.int64)]
    return series.iloc[present].reset_index(drop=True)


#: Python-backed strings: on a sample of 2 000 the regular expressions run fastest so.
_TEXT = "string[python]"


def _as_text(sample: pd.Series) -> pd.Series:
    """The sampled values as stripped NFC text; whole numbers without ``.0``."""
    if pd.api.types.is_datetime64_any_dtype(sample.dtype):
        return sample.dt.strftime("%Y-%m-%d").astype(_TEXT)
    if pd.api.types.is_numeric_dtype(sample.dtype) and not pd.api.types.is_bool_dtype(
            sample.dtype):
        arr = sample.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2.0**53)
        text = [str(int(v)) if w else repr(float(v)) for v, w in zip(arr, whole, strict=True)]
        return pd.Series(text, dtype=_TEXT)
    text = [v if isinstance(v, str)
            else str(int(v)) if isinstance(v, float) and v.is_integer()
            else v.isoformat()[:10] if hasattr(v, "isoformat")
            else bytes(v).decode("utf-8", "replace") if isinstance(v, bytes | bytearray)
            else str(v)
            for v in sample.tolist()]
    return pd.Series(text, dtype=_TEXT).str.strip().str.normalize("NFC")


def _column_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.translate(_FOLD))


def _date_years(text: pd.Series) -> pd.Series:
    """The year of each value that is a valid date (else NaN)."""
    parts = text.str.extract("^" + _DATE.pattern + "$").apply(
        lambda c: pd.to_numeric(c, errors="coerce").astype(float))
    day, month = parts["d1"].fillna(parts["d2"]), parts["m1"].fillna(parts["m2"])
    year = parts["y1"].fillna(parts["y2"])
    return year.where(day.between(1, 31) & month.between(1, 12))


def _years_spread(years: pd.Series, count: int) -> bool:
    """Birth years differ: at least 3 distinct ones over 10 years or more (only asked
    when `count`, the values holding them, is 5 or more; fewer cannot show it)."""
    years = years.dropna()
    if count < 5:
        return True
    return years.nunique() >= 3 and float(years.max() - years.min()) >= 10


def _mask(hit: pd.Series) -> np.ndarray:
    return hit.fillna(False).to_numpy(dtype=bool)


def detect_personal(values: pd.Series | np.ndarray | list, name: str = "") -> Suspicion | None:
    """Whether a column's values look personal (see the module docstring), and why.

    `values` is the whole column (any dtype); `name` its source name, which only the
    place guard of names reads. None when nothing personal shows. Each distinct value
    of the sample is tested once (a code or note column has a few dozen), and patterns
    that cannot reach their share are not tried: a column of names is never parsed as
    dates, one of numbers never folded for names.
    """
    sample = sample_values(values)
    numeric = pd.api.types.is_numeric_dtype(sample.dtype) and not pd.api.types.is_bool_dtype(
        sample.dtype)
    text = _as_text(sample)
    codes, uniques = pd.factorize(text[text != ""])
    weight = np.bincount(codes, minlength=len(uniques))
    n = int(weight.sum())
    if n == 0:
        return None
    text = pd.Series(np.asarray(uniques, dtype=object), dtype=_TEXT)
    lo, hi = BIRTH_YEARS
    found: list[tuple[float, int, str, int]] = []  # (share, priority on a tie, pattern, count)

    def count(hit: np.ndarray) -> int:
        return int(weight[hit].sum())

    def consider(pattern: str, hit: np.ndarray, priority: int, share: float = SHARE) -> None:
        matched = count(hit)
        if matched >= share * n:
            found.append((matched / n, priority, pattern, matched))

    digits = _mask(text.str.contains(r"\d", regex=True))
    if count(digits) >= SHARE * n:
        compact = text if numeric else text.str.replace(_SEPARATORS, "", regex=True)
        ids = _mask(compact.str.fullmatch(_ID.pattern))
        if numeric:  # a CCCD read as a number lost its leading zero
            ids |= _mask(("0" + compact).str.fullmatch(_CCCD))
        consider("id_number", ids, 5)
        if not numeric:  # a number is neither a phone number written out nor a date
            consider("phone", _mask(text.str.contains(_PHONE.pattern, regex=True)), 4)
            years = _date_years(text)
            dates = _mask(years.between(lo, hi))
            if _years_spread(years[dates], count(dates)):
                consider("birth_date", dates, 2)
        years = pd.to_numeric(text.where(text.str.fullmatch(_YEAR.pattern)),
                              errors="coerce").astype(float)
        is_year = _mask(years.between(lo, hi))
        if _years_spread(years[is_year], count(is_year)):
            consider("birth_year", is_year, 1, YEAR_SHARE)
    at = _mask(text.str.contains("@", regex=False))
    if count(at) >= SHARE * n:
        consider("email", at & _mask(text.str.contains(_EMAIL.pattern, regex=True)), 3)
    key = _column_key(name)
    if (n - count(digits) >= SHARE * n and not numeric
            and not any(word in key for word in _PLACE_COLUMNS)):
        folded = text.str.translate(_FOLD)
        lower = text.str.lower()
        ascii_only = _mask(text.str.isascii())
        ascii_place = ascii_only & _mask(folded.str.match(_PLACE_ASCII.pattern))
        place = ascii_place | (~ascii_only & _mask(lower.str.match(_PLACE.pattern)))
        not_a_name = ascii_place | (~ascii_only & _mask(lower.str.match(_NOT_A_NAME.pattern)))
        names = _mask(folded.str.fullmatch(_NAME.pattern)) & ~not_a_name
        named = count(names)
        distinct = folded[names].str.replace(r"\s+", " ", regex=True).nunique()
        if count(place) <= PLACE_SHARE_MAX * n and distinct >= max(
                min(3, named), DISTINCT_NAMES * named):
            consider("person_name", names, 6)
    if not found:
        return None
    _, _, pattern, matched = max(found)
    return Suspicion(column=name, pattern=pattern, matched=matched, sampled=n)


def check_personal(norm: NormalisedLayer, ctx: ValidationContext) -> list[Finding]:
    """ATTR-PERSONAL-SUSPECTED for each unmapped source column whose values look personal.

    Also records the column in ``norm.mapping`` (``personal_source`` and
    ``suspected_personal``), which the report and the version's meta share.
    """
    mapping = norm.mapping
    out: list[Finding] = []
    for column in list(mapping.unmapped_source):
        stored = SOURCE_PREFIX + column
        if column in mapping.personal_source or stored not in norm.frame.columns:
            continue
        found = detect_personal(norm.frame[stored], column)
        if found is None:
            continue
        vi, en = PATTERNS[found.pattern]
        mapping.personal_source.append(column)
        mapping.suspected_personal[column] = found.to_dict()
        out.append(Finding("ATTR-PERSONAL-SUSPECTED", params={
            "column": column, "pattern": found.pattern, "pattern_vi": vi, "pattern_en": en,
            "share_pct": round(100 * found.share), "matched": found.matched,
            "sampled": found.sampled}))
    return out
