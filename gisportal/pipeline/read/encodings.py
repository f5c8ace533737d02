"""Vietnamese text encodings of Shapefile DBF attributes: decode, encode, detect.

Cadastral DBFs from Vietnamese land offices come in four encodings:

* **UTF-8** (recent exports);
* **Windows-1258** (``cp1258``): precomposed â ă ê ô ơ ư đ plus *combining* tone
  marks, so "ồ" is two bytes (ô + combining grave) and must be normalised to NFC;
* **TCVN3** (TCVN 5712:1993 "VN3", the ABC keyboard and the ``.VnTime`` fonts): one
  byte per accented *lowercase* letter in 0xA1-0xFE.  The only capitals it has are
  Ă Â Ê Ô Ơ Ư Đ; the ``.VnTimeH`` "capital" fonts draw capitals from the very same
  bytes as the lowercase letters, so "ĐỒNG" typed in ``.VnTimeH`` is stored exactly
  like "Đồng"'s letters and capitals with tone marks cannot be recovered;
* **VNI-Windows** (``vni``): an ASCII base letter followed by a mark byte that carries
  the hat/breve and the tone together ("ấ" = ``a`` + ``á``), plus a few stand-alone
  letters (ơ ư đ and the accented i's and ỵ).

No PyPI package decodes TCVN3 and VNI reliably, so the tables live here.  GDAL cannot
be trusted with them (it even drops the last character of every Windows-1258 string,
see docs/design.md §5), so the reader reads every DBF text field as latin-1, which
keeps the raw bytes (``s.encode("latin-1")`` gives them back), and calls
:func:`decode_column` with the encoding from the ``.cpg`` file, the user's
``--encoding`` or :func:`detect`.

Detection scores each candidate decoding by the share of words that are well-formed
Vietnamese syllables (:func:`vietnamese_score`): the right encoding gives "Lâm Đồng",
the wrong ones give "L©m §ång" or "Laâm Ñoàng", which are not syllables.

Everything returned is NFC Unicode.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from gisportal.base.errors import EncodingError

__all__ = [
    "SUPPORTED",
    "Detection",
    "canonical_name",
    "decode",
    "decode_column",
    "detect",
    "encode",
    "fix_mojibake",
    "raw_samples",
    "vietnamese_score",
]

#: The encodings gisportal reads, in the order preferred when detection ties.
SUPPORTED: tuple[str, ...] = ("utf-8", "cp1258", "tcvn3", "vni")

#: How each encoding is called in messages.
_DISPLAY = {"utf-8": "UTF-8", "cp1258": "Windows-1258", "tcvn3": "TCVN3", "vni": "VNI"}

#: Order in which ties are broken (UTF-8 first: it is the modern default).
_TIE_ORDER = ("utf-8", "cp1258", "vni", "tcvn3")

_FIX = (
    "Give the right encoding with --encoding (utf-8, cp1258, tcvn3 or vni), "
    "or put a .cpg file naming it next to the .dbf"
)

# ---------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------

_ALIASES: dict[str, str] = {
    # UTF-8
    "utf-8": "utf-8", "utf8": "utf-8", "utf": "utf-8", "65001": "utf-8", "cp65001": "utf-8",
    "unicode": "utf-8",
    # Windows-1258
    "cp1258": "cp1258", "cp-1258": "cp1258", "windows-1258": "cp1258", "windows1258": "cp1258",
    "win-1258": "cp1258", "win1258": "cp1258", "1258": "cp1258", "ansi-1258": "cp1258",
    "ansi1258": "cp1258", "vietnamese": "cp1258",
    # TCVN3 / ABC
    "tcvn3": "tcvn3", "tcvn-3": "tcvn3", "tcvn": "tcvn3", "abc": "tcvn3", "vn3": "tcvn3",
    "tcvn5712": "tcvn3", "tcvn-5712": "tcvn3", "tcvn-5712-1993": "tcvn3", "vntime": "tcvn3",
    ".vntime": "tcvn3",
    # VNI
    "vni": "vni", "vni-windows": "vni", "vniwindows": "vni", "vni-win": "vni", "vniwin": "vni",
}


def _alias_key(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def canonical_name(name: str) -> str:
    """Return the canonical gisportal name (one of :data:`SUPPORTED`) for an encoding name.

    Users type encodings many ways ("UTF8", "windows-1258", "ABC", "VNI-Windows"), and
    ``.cpg`` files add more ("ANSI 1258", "65001"); everything downstream compares
    against :data:`SUPPORTED`, so names are folded once here.  Latin-1 and cp1252 are
    refused on purpose: they are never the right answer for Vietnamese text (ArcGIS
    writes "1252" into ``.cpg`` files even for TCVN3 data).

    Parameters
    ----------
    name
        Any spelling, case-insensitive; spaces and underscores count as hyphens.

    Returns
    -------
    str
        ``"utf-8"``, ``"cp1258"``, ``"tcvn3"`` or ``"vni"``.

    Raises
    ------
    EncodingError
        If the name is not a supported Vietnamese encoding; ``fix`` lists the names.
    """
    key = _alias_key(str(name))
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith("ansi-") and key[5:] in _ALIASES:
        return _ALIASES[key[5:]]
    raise EncodingError(
        f"'{name}' is not a supported Vietnamese text encoding",
        where="encoding",
        fix="Use one of: utf-8, cp1258 (windows-1258), tcvn3 (abc, vn3), vni (vni-windows)",
    )


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------

#: Unicode combining tone marks, in the column order of the tables below.
_TONE_MARKS = ("", "\u0300", "\u0309", "\u0303", "\u0301", "\u0323")
#: Names of those tones (index-aligned), used by the syllable checker.
_TONE_NAMES = ("level", "grave", "hook", "tilde", "acute", "dot")

# TCVN3 (TCVN 5712:1993 VN3), one byte per letter, in hex.
# Columns: unmarked, grave (huyền), hook (hỏi), tilde (ngã), acute (sắc), dot (nặng).
# Checked against three independent published tables, which agree byte for byte:
#   * xvnkb, tcvn.h (Dao Hai Lam, 2002; lamdao/xvnkb on GitHub),
#   * VBKey, Modules/mdlCodeTable.bas, TCVN3_TABLE (khiemdoan/VBKey on GitHub),
#   * GNU libiconv, lib/tcvn.h (TCVN-5712, upper half), also the X-TrueType
#     TCVNtoUCS2.c table shipped with XFree86.
_TCVN3_TABLE = """
    a   61  B5  B6  B7  B8  B9
    ă   A8  BB  BC  BD  BE  C6
    â   A9  C7  C8  C9  CA  CB
    e   65  CC  CE  CF  D0  D1
    ê   AA  D2  D3  D4  D5  D6
    i   69  D7  D8  DC  DD  DE
    o   6F  DF  E1  E2  E3  E4
    ô   AB  E5  E6  E7  E8  E9
    ơ   AC  EA  EB  EC  ED  EE
    u   75  EF  F1  F2  F3  F4
    ư   AD  F5  F6  F7  F8  F9
    y   79  FA  FB  FC  FD  FE
    đ   AE
    Ă   A1
    Â   A2
    Ê   A3
    Ô   A4
    Ơ   A5
    Ư   A6
    Đ   A7
"""

# Bytes that VN3 leaves free but the full TCVN 5712 "VN1" set uses for capitals with
# tone marks (and five combining tones at B0-B4).  Keyboard drivers and the .VnTime
# fonts never produce them, but VN1-aware converters do, so they are decoded rather
# than rejected.  Same sources as above (libiconv tcvn.h and TCVNtoUCS2.c agree).
# The VN1 capitals in the C0 control range (0x01-0x17) are NOT decoded: those bytes
# stay control characters.
_TCVN1_EXTRA = """
    80 À  81 Ả  82 Ã  83 Á  84 Ạ  85 Ặ  86 Ậ  87 È
    88 Ẻ  89 Ẽ  8A É  8B Ẹ  8C Ệ  8D Ì  8E Ỉ  8F Ĩ
    90 Í  91 Ị  92 Ò  93 Ỏ  94 Õ  95 Ó  96 Ọ  97 Ộ
    98 Ờ  99 Ở  9A Ỡ  9B Ớ  9C Ợ  9D Ù  9E Ủ  9F Ũ
    AF Ằ  BA Ẳ  BF Ẵ  C0 Ắ  C1 Ầ  C2 Ẩ  C3 Ẫ  C4 Ấ
    C5 Ề  CD Ể  D9 Ễ  DA Ế  DB Ồ  E0 Ổ  F0 Ỗ  FF Ố
"""
_TCVN1_COMBINING = {0xB0: "\u0300", 0xB1: "\u0309", 0xB2: "\u0303", 0xB3: "\u0301", 0xB4: "\u0323"}

# VNI-Windows, written as the bytes look in latin-1 (how VNI text shows up when read
# with the wrong font).  Columns as for TCVN3.  Capitals are exactly the latin-1
# upper case of these strings ("aø" -> "AØ", "ñ" -> "Ñ"), which the code derives.
# Checked against two independent published tables, which agree:
#   * xvnkb, vni.h (Dao Hai Lam, 2002; lamdao/xvnkb on GitHub), lower and upper case,
#   * VBKey, Modules/mdlCodeTable.bas, VNI_WINDOWS_TABLE (khiemdoan/VBKey on GitHub).
_VNI_TABLE = """
    a   a   aø  aû  aõ  aù  aï
    ă   aê  aè  aú  aü  aé  aë
    â   aâ  aà  aå  aã  aá  aä
    e   e   eø  eû  eõ  eù  eï
    ê   eâ  eà  eå  eã  eá  eä
    i   i   ì   æ   ó   í   ò
    o   o   oø  oû  oõ  où  oï
    ô   oâ  oà  oå  oã  oá  oä
    ơ   ô   ôø  ôû  ôõ  ôù  ôï
    u   u   uø  uû  uõ  uù  uï
    ư   ö   öø  öû  öõ  öù  öï
    y   y   yø  yû  yõ  yù  î
    đ   ñ
"""


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _table_rows(table: str) -> Iterable[tuple[str, list[str]]]:
    for line in table.strip().splitlines():
        letter, *cells = line.split()
        yield letter, cells


def _build_tcvn3() -> tuple[dict[int, str], dict[str, int]]:
    """Byte -> text for decoding, and letter -> byte for encoding."""
    decode_map: dict[int, str] = {}
    encode_map: dict[str, int] = {}
    for letter, cells in _table_rows(_TCVN3_TABLE):
        for mark, cell in zip(_TONE_MARKS, cells, strict=False):
            char = _nfc(letter + mark)
            byte = int(cell, 16)
            encode_map[char] = byte
            if byte >= 0x80:
                decode_map[byte] = char
    # VN3 has no accented capitals beyond Ă Â Ê Ô Ơ Ư Đ: .VnTimeH fonts draw the
    # others from the lowercase bytes, so that is how they are written.  See encode().
    for char, byte in list(encode_map.items()):
        upper = char.upper()
        if byte >= 0x80 and upper != char and upper not in encode_map:
            encode_map[upper] = byte
    pairs = _TCVN1_EXTRA.split()
    for code, char in zip(pairs[::2], pairs[1::2], strict=True):
        decode_map[int(code, 16)] = char
    decode_map.update(_TCVN1_COMBINING)
    decode_map[0xA0] = "\u00a0"
    encode_map["\u00a0"] = 0xA0
    return decode_map, encode_map


_TCVN3_DECODE, _TCVN3_ENCODE = _build_tcvn3()
#: str.translate table over latin-1 text: each raw byte's char -> Unicode.
_TCVN3_TRANSLATE = {byte: char for byte, char in _TCVN3_DECODE.items()}


def _build_vni() -> tuple[dict[str, str], dict[str, str]]:
    """Latin-1 byte sequence -> letter for decoding, and letter -> sequence for encoding.

    Decoding accepts a mark byte of either case after a base of either case (the
    letter takes the case of the base): spreadsheets' PROPER() turns "AÁP" (ẤP) into
    "Aáp", and that still means "Ấp".
    """
    decode_map: dict[str, str] = {}
    encode_map: dict[str, str] = {}
    for letter, cells in _table_rows(_VNI_TABLE):
        for mark, seq in zip(_TONE_MARKS, cells, strict=False):
            lower = _nfc(letter + mark)
            upper = lower.upper()
            encode_map[lower] = seq
            encode_map[upper] = seq.upper()
            if len(seq) == 1:
                decode_map[seq] = lower
                decode_map[seq.upper()] = upper
            else:
                base, tail = seq[0], seq[1:]
                for tail_variant in {tail, tail.upper()}:
                    decode_map[base + tail_variant] = lower
                    decode_map[base.upper() + tail_variant] = upper
    return decode_map, encode_map


_VNI_DECODE, _VNI_ENCODE = _build_vni()
# Longest match first: two-byte sequences before single letters, then any one char.
_VNI_TOKEN = re.compile(
    "|".join(re.escape(k) for k in sorted(_VNI_DECODE, key=len, reverse=True)) + "|.",
    re.DOTALL,
)

# ---------------------------------------------------------------------------------------
# Decode / encode
# ---------------------------------------------------------------------------------------


def _preview(data: bytes) -> str:
    text = data.decode("latin-1")
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _decode_error(encoding: str, data: bytes, pos: int, why: str) -> EncodingError:
    byte = data[pos] if 0 <= pos < len(data) else None
    byte_txt = f"byte 0x{byte:02X}" if byte is not None else "the end of the text"
    err = EncodingError(
        f"Text is not valid {_DISPLAY[encoding]}: {byte_txt} at position {pos} {why}",
        where=f"value {_preview(data)}",
        fix=_FIX,
    )
    # Machine-readable details for callers that add the field and row.
    err.encoding = encoding  # type: ignore[attr-defined]
    err.position = pos  # type: ignore[attr-defined]
    err.byte = byte  # type: ignore[attr-defined]
    return err


def _decode_tcvn3(data: bytes) -> str:
    text = data.decode("latin-1")
    if text.isascii():
        return text
    # Every byte >= 0x80 is in the table (VN3 + VN1 extras + NBSP), so this cannot fail.
    return _nfc(text.translate(_TCVN3_TRANSLATE))


def _decode_vni(data: bytes) -> str:
    text = data.decode("latin-1")
    if text.isascii():
        return text
    out: list[str] = []
    for match in _VNI_TOKEN.finditer(text):
        token = match.group()
        char = _VNI_DECODE.get(token)
        if char is not None:
            out.append(char)
        elif token < "\x80" or token == "\u00a0":
            out.append(token)
        else:
            raise _decode_error(
                "vni", data, match.start(),
                "is neither a VNI letter nor a mark that fits the letter before it",
            )
    return _nfc("".join(out))


def decode(data: bytes, encoding: str) -> str:
    """Decode raw DBF bytes to NFC Unicode text.

    Parameters
    ----------
    data
        The raw bytes of one text value (the reader gets them back with
        ``value.encode("latin-1")``).
    encoding
        Any name :func:`canonical_name` accepts.

    Returns
    -------
    str
        NFC text: Windows-1258's decomposed tone marks and TCVN VN1 combining marks are
        composed so that search, comparison and export see one form.

    Raises
    ------
    EncodingError
        When the bytes are impossible in that encoding (invalid UTF-8, a byte
        Windows-1258 leaves undefined, a VNI mark with no letter to sit on).  The
        message names the encoding, the byte and its position, and suggests
        ``--encoding``; the exception also carries ``encoding``, ``position`` and
        ``byte`` attributes.  TCVN3 decoding never fails: every byte is defined.
    """
    enc = canonical_name(encoding)
    data = bytes(data)
    if enc == "utf-8":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _decode_error("utf-8", data, exc.start, "cannot start or continue a "
                                "UTF-8 character (the text looks like a legacy "
                                "8-bit encoding)") from None
        return _nfc(text)
    if enc == "cp1258":
        try:
            text = data.decode("cp1258")
        except UnicodeDecodeError as exc:
            raise _decode_error("cp1258", data, exc.start,
                                "is undefined in Windows-1258") from None
        return _nfc(text)
    if enc == "tcvn3":
        return _decode_tcvn3(data)
    return _decode_vni(data)


def _encode_error(encoding: str, text: str, pos: int) -> EncodingError:
    char = text[pos]
    return EncodingError(
        f"Character {char!r} (U+{ord(char):04X}) at position {pos} cannot be written "
        f"in {_DISPLAY[encoding]}",
        where=f"text {text[:60]!r}",
        fix="Export as UTF-8 instead, or remove the character",
    )


def _encode_cp1258_char(char: str) -> bytes | None:
    try:
        return char.encode("cp1258")
    except UnicodeEncodeError:
        pass
    # Windows-1258 has â ă ê ô ơ ư precomposed but no toned letters beyond a few
    # Latin-1 ones: write the toneless letter and then the combining tone byte.
    parts = unicodedata.normalize("NFD", char)
    tones = [c for c in parts if c in _TONE_MARKS[1:]]
    base = _nfc("".join(c for c in parts if c not in _TONE_MARKS[1:]))
    try:
        return base.encode("cp1258") + "".join(tones).encode("cp1258")
    except UnicodeEncodeError:
        return None


def encode(text: str, encoding: str) -> bytes:
    """Encode Unicode text in one of the supported encodings (inverse of :func:`decode`).

    Used by tests and by exports to offices whose software only reads legacy DBFs.

    Parameters
    ----------
    text
        Any Unicode text; it is NFC-normalised first.
    encoding
        Any name :func:`canonical_name` accepts.

    Returns
    -------
    bytes
        Windows-1258 output uses a precomposed byte when one exists ("á" is 0xE1) and
        otherwise the toneless letter plus a combining tone byte, like Windows does.
        TCVN3 has no capitals with tone marks (nor capitals beyond Ă Â Ê Ô Ơ Ư Đ):
        such a capital is written as its lowercase byte, which is what the
        ``.VnTimeH`` fonts display as that capital; decoding gives the lowercase letter
        back.

    Raises
    ------
    EncodingError
        For a character the encoding cannot represent.
    """
    enc = canonical_name(encoding)
    text = _nfc(text)
    if enc == "utf-8":
        return text.encode("utf-8")
    out = bytearray()
    for pos, char in enumerate(text):
        if char < "\x80":
            out += char.encode("ascii")
            continue
        if enc == "cp1258":
            chunk = _encode_cp1258_char(char)
            if chunk is None:
                raise _encode_error(enc, text, pos)
            out += chunk
        elif enc == "tcvn3":
            byte = _TCVN3_ENCODE.get(char)
            if byte is None:
                raise _encode_error(enc, text, pos)
            out.append(byte)
        else:
            seq = _VNI_ENCODE.get(char)
            if seq is None:
                if char != "\u00a0":
                    raise _encode_error(enc, text, pos)
                seq = char
            out += seq.encode("latin-1")
    return bytes(out)


# ---------------------------------------------------------------------------------------
# Vietnamese syllables
# ---------------------------------------------------------------------------------------

_INITIALS = (
    "ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "qu", "th", "tr",
    "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "q", "r", "s", "t", "v", "x", "",
)
#: Initials written only before a front vowel (e, ê, i, y) and ones never written there.
_FRONT_ONLY = frozenset({"k", "gh", "ngh"})
_NEVER_FRONT = frozenset({"c", "ng", "q", "qu"})
_FRONT = frozenset("eêiy")

# Vowel nucleus -> finals it takes ("-" = none).  Semivowel endings (i y o u a) are
# listed as finals.  Permissive on rare rhymes: the aim is to tell real Vietnamese
# from the garbage a wrong decoding produces, and from English, not to spell-check.
_RHYMES_BY_NUCLEUS = {
    "a": "- c ch m n ng nh p t i y o u",
    "ă": "c k m n ng p t",  # k: Central Highlands names (Đắk Lắk)
    "â": "c m n ng p t u y",
    "e": "- c m n ng p t o",
    "ê": "- c ch m n nh p t u",
    "i": "- c ch m n nh p t u",
    "o": "- c m n ng p t i",
    "ô": "- c m n ng p t i",
    "ơ": "- m n p t i",
    "u": "- c m n ng p t i",
    "ư": "- c m n ng t i u",
    "y": "-",
    "ia": "-",
    "iê": "c m n ng p t u",
    "yê": "m n ng t u",
    "ua": "-",
    "uô": "c m n ng t i",
    "ưa": "-",
    "ươ": "c m n ng p t i u",
    "oa": "- c ch m n ng nh p t i y o",
    "oă": "c m n ng t",
    "oe": "- c m n ng t o",
    "oo": "c ng",
    "uâ": "n ng t y",
    "uê": "- ch n nh",
    "uy": "- ch n nh p t u a",
    "uyê": "n t",
    "uơ": "-",
}
_STOP_FINALS = frozenset({"c", "ch", "k", "p", "t"})
_VOWELS = frozenset("aăâeêioôơuưy")


def _strip_marks(text: str) -> str:
    """Remove every diacritic, đ -> d: how Vietnamese looks in unaccented data."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return bare.replace("đ", "d").replace("Đ", "D")


def _build_rhymes() -> tuple[dict[str, frozenset[int]], frozenset[str]]:
    rhymes: dict[str, set[int]] = {}
    for nucleus, finals in _RHYMES_BY_NUCLEUS.items():
        for final in finals.split():
            rhyme = nucleus + ("" if final == "-" else final)
            rhymes.setdefault(rhyme, set()).add(len(nucleus))
    full = {rhyme: frozenset(lengths) for rhyme, lengths in rhymes.items()}
    return full, frozenset(_strip_marks(r) for r in full)


_RHYMES, _BARE_RHYMES = _build_rhymes()
_BARE_INITIALS = tuple(dict.fromkeys(_strip_marks(i) for i in _INITIALS))
_TONE_BY_MARK = dict(zip(_TONE_MARKS[1:], _TONE_NAMES[1:], strict=True))


def _initial_fits(initial: str, rhyme: str) -> bool:
    first = _strip_marks(rhyme[:1]) if rhyme else ""
    front = first in {"e", "i", "y"}
    if initial in _FRONT_ONLY and not front:
        return False
    if initial in _NEVER_FRONT and front:
        return False
    return not (initial == "q" and not rhyme.startswith("u"))


@lru_cache(maxsize=65536)
def _is_syllable(word: str) -> bool:
    """True if ``word`` (letters only) is a well-formed Vietnamese syllable."""
    word = word.lower()
    parts = unicodedata.normalize("NFD", word)
    if parts.isascii():
        # Unaccented data ("Nguyen", "Lam Dong"): compare with the bare rhymes.
        for initial in _BARE_INITIALS:
            if word.startswith(initial):
                rhyme = word[len(initial):]
                if rhyme in _BARE_RHYMES and _initial_fits(initial, rhyme):
                    return True
        return False
    letters = 0
    tone: str | None = None
    tone_at = -1
    kept: list[str] = []
    for char in parts:
        if unicodedata.combining(char):
            if letters == 0:
                return False
            if char in _TONE_BY_MARK:
                if tone is not None:
                    return False  # two tone marks
                tone, tone_at = _TONE_BY_MARK[char], letters - 1
                continue
        else:
            letters += 1
        kept.append(char)
    base = _nfc("".join(kept))
    if len(base) != letters:
        return False  # a mark that does not compose: not a Vietnamese letter
    for initial in _INITIALS:
        if not base.startswith(initial):
            continue
        rhyme = base[len(initial):]
        lengths = _RHYMES.get(rhyme)
        if lengths is None or not _initial_fits(initial, rhyme):
            continue
        for length in lengths:
            final = rhyme[length:]
            if tone is None:
                if final in _STOP_FINALS:
                    continue  # stop finals take only the acute or dot tone
                return True
            start = len(initial)
            if not start <= tone_at < start + length or base[tone_at] not in _VOWELS:
                continue
            if final in _STOP_FINALS and tone not in ("acute", "dot"):
                continue
            return True
    return False


# Words are separated by white space and punctuation; symbols such as © or § are
# *not* separators, so "L©m" is one (invalid) word rather than two fragments.
_SEPARATORS = re.compile(r"[\s!-/:-@\[-`{-~\u2010-\u205e]+")


def _word_counts(text: str) -> tuple[int, int]:
    """(valid syllables, alphabetic words) in ``text``."""
    valid = total = 0
    for token in _SEPARATORS.split(_nfc(text)):
        if not token or any(c.isdigit() for c in token) or not any(c.isalpha() for c in token):
            continue
        total += 1
        if all(c.isalpha() or unicodedata.combining(c) for c in token) and _is_syllable(token):
            valid += 1
    return valid, total


def vietnamese_score(text: str) -> float:
    """Share of the alphabetic words in ``text`` that are valid Vietnamese syllables.

    A syllable is an initial consonant cluster, a vowel nucleus and a final from the
    Vietnamese inventory, with at most one tone mark, placed on a vowel of the nucleus
    (old "hòa" and new "hoà" placements both count), and with only the acute or dot
    tone before a stop final (c, ch, p, t).  Unaccented words count when they are
    syllables with their marks removed ("Nguyen", "ban", "thanh"), because a lot of
    data is typed without accents; "street" or "road" are not.

    Parameters
    ----------
    text
        Any text; case does not matter.

    Returns
    -------
    float
        0..1; 0.0 when there are no alphabetic words.  Tokens containing digits, and
        tokens without letters, are ignored.
    """
    valid, total = _word_counts(text)
    return valid / total if total else 0.0


# ---------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------

#: Most distinct non-ASCII samples looked at: plenty for a verdict, fast on 200 000 rows.
MAX_SAMPLES = 2000
#: Added to UTF-8's score for ranking when every sample is valid UTF-8 with multi-byte
#: sequences: legacy 8-bit Vietnamese is practically never valid UTF-8.
_UTF8_BONUS = 0.25


@dataclass(frozen=True)
class Detection:
    """The encoding chosen for a column or file, and why (for the validation report).

    Attributes
    ----------
    encoding
        One of :data:`SUPPORTED`.
    confidence
        0..1: high when the winner's text looks Vietnamese and it is well ahead of the
        runner-up; 1.0 when a ``.cpg`` named it or all text is ASCII.
    scores
        Per candidate: share of words that are Vietnamese syllables when decoded that
        way (0.0 when it could not decode the samples).
    examples
        Up to five (raw bytes shown as latin-1, decoded text) pairs with accents.
    reason
        One English sentence.
    from_cpg
        True when the ``.cpg`` file named the encoding and it was honoured: then the
        file said, and nothing was detected (the report says so).
    """

    encoding: str
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    examples: list[tuple[str, str]] = field(default_factory=list)
    reason: str = ""
    from_cpg: bool = False


def _cpg_encoding(cpg: str) -> str | None:
    text = cpg.strip().strip("\ufeff").strip()
    if not text:
        return None
    try:
        return canonical_name(text)
    except EncodingError:
        return None


def _try_decode(data: bytes, encoding: str) -> str | None:
    try:
        return decode(data, encoding)
    except EncodingError:
        return None


def _score_candidates(
    samples: list[bytes],
) -> tuple[dict[str, float], dict[str, int], dict[str, int], dict[str, list[str | None]]]:
    """Per encoding: score, words, failed samples, decoded texts (None = failed)."""
    scores: dict[str, float] = {}
    words: dict[str, int] = {}
    failures: dict[str, int] = {}
    decoded: dict[str, list[str | None]] = {}
    for enc in SUPPORTED:
        valid = total = failed = 0
        texts: list[str | None] = []
        for sample in samples:
            text = _try_decode(sample, enc)
            texts.append(text)
            if text is None:
                failed += 1
                # An undecodable sample counts all its words as wrong.
                total += max(1, len(sample.split()))
                continue
            v, t = _word_counts(text)
            valid += v
            total += t
        if enc == "utf-8" and failed:
            score = 0.0  # one invalid sequence and the file is not UTF-8
        elif failed == len(samples):
            score = 0.0
        else:
            score = valid / total if total else 0.0
        scores[enc], words[enc], failures[enc], decoded[enc] = score, total, failed, texts
    return scores, words, failures, decoded


def _pct(value: float) -> str:
    return f"{round(value * 100)}%"


def _examples(samples: list[bytes], texts: list[str | None]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for raw, text in zip(samples, texts, strict=True):
        if text is not None and not text.isascii():
            out.append((raw.decode("latin-1"), text))
            if len(out) == 5:
                break
    return out


def detect(samples: Iterable[bytes], *, cpg: str | None = None) -> Detection:
    """Work out which encoding a column (or a whole DBF) of raw text is in.

    Parameters
    ----------
    samples
        Raw byte strings (see :func:`raw_samples`).  Only distinct samples with a byte
        >= 0x80 say anything about the encoding; at most :data:`MAX_SAMPLES` of them
        are used, so this stays fast on 200 000-row files.
    cpg
        Content of the ``.cpg`` file, if there is one ("UTF-8", "1258", "ANSI 1258",
        "65001"...).  A supported encoding there is honoured with confidence 1.0
        unless the samples cannot be decoded with it at all (a stale .cpg), in which
        case detection runs and the reason says so.  Anything else ("1252", "ANSI
        1252", which ArcGIS writes by default even for TCVN3 data) is only mentioned
        in the reason.

    Returns
    -------
    Detection
        Pure ASCII input gives UTF-8 with confidence 1.0.  Otherwise the candidate
        whose decoding has the highest share of Vietnamese syllables (weighted by
        word count) wins; valid UTF-8 gets a head start because legacy bytes are
        almost never valid UTF-8; ties go to an encoding that decodes every value,
        then to UTF-8, Windows-1258, VNI, TCVN3 in that order.
    """
    distinct: dict[bytes, None] = {}
    for sample in samples:
        if sample is None:
            continue
        sample = bytes(sample)
        if not sample.isascii() and sample not in distinct:
            distinct[sample] = None
            if len(distinct) >= MAX_SAMPLES:
                break
    useful = list(distinct)

    named = _cpg_encoding(cpg) if cpg is not None else None
    if cpg is None:
        prefix = "no .cpg"
    elif named is None:
        prefix = f".cpg says {cpg.strip()!r}, not a Vietnamese encoding, so it was ignored"
    else:
        prefix = f"the .cpg file names {_DISPLAY[named]}"

    if not useful:
        if named is not None:
            return Detection(named, 1.0, dict.fromkeys(SUPPORTED, 1.0), [],
                             f"{prefix}; all text is ASCII", from_cpg=True)
        return Detection("utf-8", 1.0, dict.fromkeys(SUPPORTED, 1.0), [],
                         f"{prefix}; all text is ASCII, which reads the same in every "
                         "supported encoding")

    scores, words, failures, decoded = _score_candidates(useful)

    if named is not None:
        if failures[named] < len(useful):
            bad = failures[named]
            note = (f"; {bad} of {len(useful)} distinct values cannot be decoded with it"
                    if bad else "")
            return Detection(named, 1.0, scores, _examples(useful, decoded[named]),
                             f"{prefix}{note}", from_cpg=True)
        prefix = (f"the .cpg file names {_DISPLAY[named]} but no value decodes as "
                  f"{_DISPLAY[named]}, so it was ignored")

    ranked_value = dict(scores)
    if failures["utf-8"] == 0:
        ranked_value["utf-8"] = scores["utf-8"] + _UTF8_BONUS
    # Ties: an encoding that decodes every value beats one that does not, then the
    # preference order (UTF-8, Windows-1258, VNI, TCVN3).
    ranking = sorted(
        SUPPORTED,
        key=lambda e: (-round(ranked_value[e], 9), failures[e] > 0, _TIE_ORDER.index(e)),
    )
    winner, runner_up = ranking[0], ranking[1]
    margin = max(0.0, ranked_value[winner] - ranked_value[runner_up])
    separation = min(1.0, margin / 0.3)
    size = min(1.0, 0.6 + 0.04 * words[winner])
    confidence = round(min(1.0, scores[winner]) * (0.4 + 0.6 * separation) * size, 3)

    pieces = [f"{_pct(scores[winner])} of words are Vietnamese syllables as "
              f"{_DISPLAY[winner]}", f"{_pct(scores[runner_up])} as {_DISPLAY[runner_up]}"]
    if winner == "utf-8" and failures["utf-8"] == 0:
        pieces.append("and every value is valid UTF-8")
    reason = f"{prefix}; {pieces[0]}, {', '.join(pieces[1:])}"
    return Detection(winner, confidence, scores, _examples(useful, decoded[winner]), reason)


# ---------------------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------------------


def _raw(value: str, index: int | None = None) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError as exc:
        where = f"row {index}" if index is not None else "value"
        raise EncodingError(
            "Text was already decoded: it has characters that are not raw bytes "
            f"(first {value[exc.start]!r} at position {exc.start})",
            where=where,
            fix="Read the DBF text fields with encoding latin-1 before decoding them",
        ) from None


def raw_samples(values: Iterable[str | None]) -> list[bytes]:
    """Turn latin-1 strings (one char per raw byte) into distinct byte samples.

    Parameters
    ----------
    values
        Text values as the reader gets them from GDAL with latin-1; ``None`` and empty
        values are skipped.

    Returns
    -------
    list of bytes
        Distinct, in first-seen order, ready for :func:`detect`.
    """
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return [_raw(value) for value in seen]


def decode_column(values: Sequence[str | None], encoding: str) -> list[str | None]:
    """Decode a whole column of latin-1 strings; ``None`` stays ``None``.

    Files have 200 000 rows but few distinct values, so each distinct value is decoded
    once and ASCII values are passed through untouched (ASCII is the same in all four
    encodings).

    Parameters
    ----------
    values
        Text values as read by GDAL with latin-1 (each character is one raw byte).
    encoding
        Any name :func:`canonical_name` accepts.

    Returns
    -------
    list
        NFC text for each value, in order, ``None`` where the value was ``None``.

    Raises
    ------
    EncodingError
        For the first value that cannot be decoded; ``where`` names its row (0-based)
        and the raw value.
    """
    enc = canonical_name(encoding)
    cache: dict[str, str] = {}
    out: list[str | None] = []
    append = out.append
    for index, value in enumerate(values):
        if value is None or value.isascii():
            append(value)
            continue
        text = cache.get(value)
        if text is None:
            raw = _raw(value, index)
            try:
                text = decode(raw, enc)
            except EncodingError as exc:
                exc.where = f"row {index}, {exc.where}"
                exc.args = (exc.one_line(),)
                raise
            cache[value] = text
        append(text)
    return out


# ---------------------------------------------------------------------------------------
# Mojibake
# ---------------------------------------------------------------------------------------

_CP1252_BYTES = {
    bytes([b]).decode("cp1252"): b
    for b in range(0x80, 0xA0)
    if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}


def _mojibake_bytes(text: str) -> bytes | None:
    out = bytearray()
    for char in text:
        code = ord(char)
        if code < 0x100:
            out.append(code)
        elif char in _CP1252_BYTES:
            out.append(_CP1252_BYTES[char])
        else:
            return None
    return bytes(out)


def fix_mojibake(text: str) -> tuple[str, str | None]:
    """Repair Vietnamese text that was decoded with cp1252/latin-1 by mistake.

    GeoPackages and CSVs converted from legacy DBFs often carry strings like
    "L©m §ång" (TCVN3), "Laâm Ñoàng" (VNI), "LÃ¢m Äá»“ng" (UTF-8) or Windows-1258
    bytes read as cp1252.  The text is turned back into the bytes it came from and
    each encoding is tried; a decoding is taken only if it is clearly more Vietnamese
    than the text as it stands (at least 60% syllables and 30 points better), so
    correct text is left alone.  One short value is weak evidence: text whose
    mojibake happens to look Vietnamese too ("Lê Vãn Tám") is left as it is.

    Parameters
    ----------
    text
        A Unicode string that may be mojibake.

    Returns
    -------
    tuple
        ``(fixed_text, encoding)`` or ``(text, None)`` when it does not look like
        mojibake.
    """
    raw = _mojibake_bytes(text)
    if raw is None or raw.isascii():
        return text, None
    before = vietnamese_score(text)
    best: tuple[float, str, str] | None = None
    for enc in ("utf-8", "cp1258", "vni", "tcvn3"):
        candidate = _try_decode(raw, enc)
        if candidate is None or candidate == text:
            continue
        score = vietnamese_score(candidate)
        if best is None or score > best[0]:
            best = (score, candidate, enc)
    if best is not None and best[0] >= 0.6 and best[0] >= before + 0.3:
        return best[1], best[2]
    return text, None
