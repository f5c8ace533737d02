"""Is this text Vietnamese? The checker behind tests/test_vietnamese.py and
tests/test_browser_vietnamese.py (issue 14: no English on a Vietnamese page).

A word passes when it carries Vietnamese diacritics, or is a valid Vietnamese syllable
written without them (onset + vowel nucleus + coda: "Lam", "Dong", "xa"), or is a
number or a code (``ODT``, ``EPSG:9218``, ``QĐ-UBND``, ``24958``), a single letter or
a unit (``m``, ``km``, ``ha``), or a name of the short `ALLOWED` list (Leaflet,
OpenStreetMap, gisportal …). A text is flagged when it has two failing words in a
row ("Search failed"), or one common English word (`ENGLISH`, a word that is not
Vietnamese as written: "No parcel here", "Look-up failed", "the", "map"), or a debug
tag in brackets (``[commune]``). One failing word alone (a commune's name of an
ethnic language, "Huoai") passes: a page may name a place as it is spelt.

The rule is deliberately blunt: it is meant to fail when an English sentence or
label reaches a Vietnamese page, and its self-test (tests/test_vietnamese.py) proves
that it does.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

__all__ = ["english_in", "is_vietnamese_word", "visible_texts", "ALLOWED", "ENGLISH"]

def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Names and symbols a Vietnamese page writes as they are (case-insensitive).
ALLOWED = _word_set("""
leaflet openstreetmap esri javascript gisportal geopackage shapefile geojson pmtiles
wgs vn tm epsg gso pdf csv json api ogc url km m cm mm ha kb mb gb vd
""")

#: Common English words: one of them flags a text even where it reads as a Vietnamese
#: syllable without diacritics ("the", "no", "map"). Words that are also bare
#: Vietnamese ("to" = big, as in "phóng to"; "in" = print; "an", "do", "on") are not in it.
ENGLISH = _word_set("""
the and of no not for with from this that these here there your you my by is are
was were be been has have had can could will would should please try again
search searching failed failure error errors found find look looking lookup click tap
map maps layer layers zoom parcel parcels commune communes district districts sheet
plan plans area areas land use status legend link view home back page show hide open
close print measure measurement measurements delete cancel finish create start last
path center centre perimeter distance distances location point points full screen exit
loading unknown approved appraisal published version versions decision compare before
after change changed changes added removed total none yet more less than only
meters kilometers hectares feet miles acres ft
""")

_VIETNAMESE_LETTERS = re.compile(
    "[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]",
    re.IGNORECASE)
#: A Vietnamese syllable without its diacritics: onset, vowel nucleus (with a glide),
#: coda. ``gi``/``qu`` are onsets of their own, ``đ`` is folded to ``d`` first.
_SYLLABLE = re.compile(r"(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnpqrstvx])?"
                       r"[aeiouy]{1,3}(ch|nh|ng|[cmnpt])?")
_WORDS = re.compile(r"[^\W_]+")
_CODE = re.compile(r"[A-ZĐ]{2,8}")
_DEBUG_TAG = re.compile(r"\[[a-z_][a-z0-9_ .-]*\]")


def _fold(word: str) -> str:
    text = unicodedata.normalize("NFD", word.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def is_vietnamese_word(word: str) -> bool:
    """Whether one word passes (module doc); words of `ENGLISH` never do, unless
    written in capitals as a code is (``CAN``)."""
    low = word.lower()
    if _CODE.fullmatch(word):  # a code in capitals: CAN (đất an ninh), ODT, UBND
        return True
    if low in ENGLISH:
        return False
    if any(c.isdigit() for c in word) or len(word) == 1 or low in ALLOWED:
        return True
    if _VIETNAMESE_LETTERS.search(word):
        return True
    return bool(_SYLLABLE.fullmatch(_fold(word)))


def english_in(text: str) -> str | None:
    """Why `text` is not Vietnamese (the words that fail), or None when it passes."""
    text = unicodedata.normalize("NFC", text or "")
    tag = _DEBUG_TAG.search(text)
    if tag:
        return f"debug tag {tag.group(0)}"
    run: list[str] = []
    for word in _WORDS.findall(text):
        if is_vietnamese_word(word):
            run = []
            continue
        run.append(word)
        if word.lower() in ENGLISH:  # (a code in capitals passed above)
            return f"English word {word!r}"
        if len(run) >= 2:
            return "English words " + " ".join(repr(w) for w in run)
    return None


#: Attributes whose text a reader sees or hears.
SHOWN_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt", "data-open", "data-closed")


class _Texts(HTMLParser):
    """Text nodes and shown attributes of an HTML page, outside scripts and styles and
    outside the language toggle (an element with ``hreflang``: "English" is its name)."""

    _HIDDEN = {"script", "style", "noscript", "template"}
    _VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
             "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, hidden)

    def _hidden(self) -> bool:
        return bool(self._stack) and self._stack[-1][1]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        hidden = self._hidden() or tag in self._HIDDEN or "hreflang" in a
        if not hidden:
            self.texts.extend(v for k, v in attrs if k in SHOWN_ATTRIBUTES and v)
        if tag not in self._VOID:
            self._stack.append((tag, hidden))

    def handle_startendtag(self, tag, attrs):
        if not self._hidden():
            self.texts.extend(v for k, v in attrs if k in SHOWN_ATTRIBUTES and v)

    def handle_endtag(self, tag):
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data):
        if not self._hidden() and data.strip():
            self.texts.append(" ".join(data.split()))


def visible_texts(html: str) -> list[str]:
    """What a reader of `html` sees or hears, text by text (module doc of `_Texts`)."""
    parser = _Texts()
    parser.feed(html)
    parser.close()
    return parser.texts
