"""Administrative levels and GSO codes: the one answer to "is this unit a district?".

Boundary files name a unit's level in many ways — ``district``, ``Huyện``, ``HUYEN``,
``Thị xã``, GADM's ``TYPE_2``/``ENGTYPE_2`` values, level numbers — and the GSO code's
length says it too (province 2 digits, district 3, commune 5). The words are data
(``layers/boundary.json``, ``levels``); this module is the only code that reads them,
so the boundary checks, the validation context and anything else that asks "which
units of this file are districts" give the same answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from gisportal.base.resources import data_dir
from gisportal.base.text import fold

__all__ = ["LEVELS", "GSO_CODE_LENGTH", "LevelVocabulary", "level_vocabulary", "gso_code",
           "level_of_code", "looks_like_gadm", "canonical_levels"]

#: The canonical levels, from the top.
LEVELS = ("province", "district", "commune")

#: Length of a GSO code at each level (Quyết định 124/2004/QĐ-TTg and its successors).
GSO_CODE_LENGTH = {"province": 2, "district": 3, "commune": 5}

_LEVEL_BY_LENGTH = {n: level for level, n in GSO_CODE_LENGTH.items()}
_PUNCTUATION = re.compile(r"[.,;:_()\[\]/\\'\"-]+")
_INTEGRAL = re.compile(r"^(\d+)\.0*$")
#: GADM identifiers: VNM.23_1 (province), VNM.23.4_1 (district), VNM.23.4.7_1 (commune).
_GADM = re.compile(r"^[A-Z]{3}(\.\d+)+_\d+$")


def _key(value: str) -> str:
    """A level word as compared: folded, punctuation as spaces, ``"2.0"`` as ``"2"``."""
    text = fold(str(value))
    whole = _INTEGRAL.match(text)
    if whole:
        return whole.group(1)
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def gso_code(value: object) -> str | None:
    """A code as text: stripped, ``672.0`` (a DBF number) as ``672``; None when blank."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    whole = _INTEGRAL.match(text)
    if whole:
        text = whole.group(1)
    return text or None


def level_of_code(code: object) -> str | None:
    """The level a GSO code's length gives (``"672"`` → district), None if not GSO-shaped."""
    text = gso_code(code)
    if text is None or not text.isdigit():
        return None
    return _LEVEL_BY_LENGTH.get(len(text))


def looks_like_gadm(code: object) -> bool:
    """Whether ``code`` is a GADM identifier such as ``VNM.23.4_1`` (not a GSO code)."""
    text = gso_code(code)
    return bool(text) and bool(_GADM.match(text))


@dataclass(frozen=True)
class LevelVocabulary:
    """The words for each level, as read from ``layers/boundary.json``."""

    #: folded word → canonical level
    words: dict[str, str]
    #: folded word → level when the code does not decide (see :meth:`canonical`)
    by_code: dict[str, str]
    #: the words as written in the data file, by canonical level, and the by-code words
    #: under "by_code" (for messages)
    listed: dict[str, tuple[str, ...]]

    def canonical(self, value: object, code: object = None) -> str | None:
        """The canonical level of ``value``, None when the word is not in the vocabulary.

        Words that name several levels ("thành phố", "city", "town") take the level of
        the GSO code's length when ``code`` is a GSO code, else their listed default:
        in a district boundary layer a "thành phố" is a provincial city (Đà Lạt, Bảo
        Lộc), a district-level unit.
        """
        key = _key(value)
        if key in self.words:
            return self.words[key]
        if key in self.by_code:
            return level_of_code(code) or self.by_code[key]
        return None

    def accepted(self, lang: str = "en") -> str:
        """The accepted words, grouped by level, for an error message."""
        parts = [f"{level}: {', '.join(self.listed[level])}" for level in LEVELS]
        by_code = ", ".join(self.listed["by_code"])
        parts.append(f"{by_code} (theo độ dài mã GSO)" if lang == "vi"
                     else f"{by_code} (by the GSO code's length)")
        return "; ".join(parts)


@cache
def level_vocabulary() -> LevelVocabulary:
    """The shipped vocabulary; a word listed under two levels is a data error."""
    with open(data_dir("layers") / "boundary.json", encoding="utf-8") as fh:
        doc = json.load(fh)["levels"]
    words: dict[str, str] = {}
    for level in LEVELS:
        for word in (level, *doc.get(level, ())):
            key = _key(word)
            if words.get(key, level) != level:
                raise ValueError(f"layers/boundary.json levels: {word!r} is listed under "
                                 f"{words[key]} and {level}")
            words[key] = level
    by_code = {}
    for word, default in doc.get("by_code", {}).items():
        if default not in LEVELS or _key(word) in words:
            raise ValueError(f"layers/boundary.json levels.by_code: {word!r} → {default!r}")
        by_code[_key(word)] = default
    listed = {level: tuple(doc.get(level, ())) for level in LEVELS}
    listed["by_code"] = tuple(doc.get("by_code", {}))
    return LevelVocabulary(words, by_code, listed)


def canonical_levels(levels: Iterable[object] | None, codes: Iterable[object]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The canonical level of each unit, and which units name a level that is unknown.

    ``levels`` are the values of the level column (None: the file has none) and
    ``codes`` the unit codes, row by row. A unit with no level value takes its GSO
    code's level (None when the code is not GSO-shaped either); a unit whose level
    value is not in the vocabulary keeps None and is marked unknown. Each distinct
    (value, code length) pair is looked up once: a layer has a handful.
    """
    vocab = level_vocabulary()
    code_list = [gso_code(c) for c in codes]
    values = [None] * len(code_list) if levels is None else [
        None if v is None or (not isinstance(v, str) and pd.isna(v)) or not str(v).strip()
        else v for v in levels]
    out = np.empty(len(code_list), dtype=object)
    unknown = np.zeros(len(code_list), dtype=bool)
    memo: dict[tuple[str, str | None], str | None] = {}
    for i, (value, code) in enumerate(zip(values, code_list, strict=True)):
        if value is None:
            out[i] = level_of_code(code)
            continue
        by_length = level_of_code(code)
        memo_key = (str(value), by_length)
        if memo_key not in memo:
            memo[memo_key] = vocab.canonical(value, code)
        out[i] = memo[memo_key]
        unknown[i] = out[i] is None
    return out, unknown
