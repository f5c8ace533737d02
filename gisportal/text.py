"""Vietnamese text helpers: NFC everywhere, and a diacritic-insensitive search key."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["nfc", "fold", "human_size"]

_SPACES = re.compile(r"\s+")


def nfc(value: str) -> str:
    """Return ``value`` in Unicode NFC, the one form gisportal stores and emits.

    Windows-1258 sources and some keyboards produce decomposed accents; two strings
    that look identical must compare equal, so everything is composed on the way in.
    """
    return unicodedata.normalize("NFC", value)


def fold(value: str) -> str:
    """Search key: lower case, accents removed, ``đ`` → ``d``, spaces collapsed.

    "Đà Lạt", "da lat" and "ĐÀ  LẠT" all fold to ``"da lat"``. ``đ`` has no
    decomposition in Unicode, so NFD alone would leave it; it is mapped by hand.
    """
    text = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _SPACES.sub(" ", text).strip().casefold()


def human_size(n: float) -> str:
    """A byte count for messages: ``"512 bytes"``, ``"1.5 MiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} bytes"  # pragma: no cover
