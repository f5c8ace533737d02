"""Vietnamese text helpers: NFC everywhere, and a diacritic-insensitive search key."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["nfc", "fold", "human_size"]

_SPACES = re.compile(r"\s+")
#: Letters with no Unicode decomposition that fold to ``d``: Vietnamese ``đ``/``Đ``, and
#: ``ð``/``Ð`` (LATIN ... ETH), which GADM and some fonts and keyboards put in its place.
_D = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D"})


def nfc(value: str) -> str:
    """Return ``value`` in Unicode NFC, the one form gisportal stores and emits.

    Windows-1258 sources and some keyboards produce decomposed accents; two strings
    that look identical must compare equal, so everything is composed on the way in.
    """
    return unicodedata.normalize("NFC", value)


def fold(value: str) -> str:
    """Search key: lower case, accents removed, ``đ`` → ``d``, spaces collapsed.

    "Đà Lạt", "da lat" and "ĐÀ  LẠT" all fold to ``"da lat"``. ``đ`` has no
    decomposition in Unicode, so NFD alone would leave it; it is mapped by hand, and so
    is its look-alike ``Ð``/``ð`` (eth, U+00D0/U+00F0): "ÐÀ LẠT" as GADM spells it
    must meet "Đà Lạt".
    """
    text = unicodedata.normalize("NFD", value.translate(_D))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _SPACES.sub(" ", text).strip().casefold()


def human_size(n: float) -> str:
    """A byte count for messages: ``"512 bytes"``, ``"1.5 MiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} bytes"  # pragma: no cover
