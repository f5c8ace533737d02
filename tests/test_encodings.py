"""Tests for gisportal.pipeline.read.encodings: Vietnamese DBF text in UTF-8, cp1258, TCVN3, VNI.

The legacy byte strings below are written out by hand from the published tables
(TCVN3: xvnkb tcvn.h, VBKey mdlCodeTable.bas, GNU libiconv tcvn.h; VNI: xvnkb vni.h,
VBKey; Windows-1258: the Microsoft code page), not produced by the module's own
``encode``, so a wrong table entry fails here even if encode and decode agree.
"""

from __future__ import annotations

import random
import unicodedata

import pytest

from gisportal.base.errors import EncodingError
from gisportal.pipeline.read.encodings import (
    SUPPORTED,
    Detection,
    canonical_name,
    decode,
    decode_column,
    detect,
    encode,
    fix_mojibake,
    raw_samples,
    vietnamese_score,
)

# ------------------------------------------------------------------ reference bytes

# (text, TCVN3, VNI, Windows-1258 as Windows writes it, UTF-8)
PLACES = [
    ("Lâm Đồng",
     b"L\xa9m \xa7\xe5ng",
     b"La\xe2m \xd1o\xe0ng",
     b"L\xe2m \xd0\xf4\xccng",
     b"L\xc3\xa2m \xc4\x90\xe1\xbb\x93ng"),
    ("Đà Lạt",
     b"\xa7\xb5 L\xb9t",
     b"\xd1a\xf8 La\xeft",
     b"\xd0\xe0 La\xf2t",
     b"\xc4\x90\xc3\xa0 L\xe1\xba\xa1t"),
    ("Đức Trọng",
     b"\xa7\xf8c Tr\xe4ng",
     b"\xd1\xf6\xf9c Tro\xefng",
     b"\xd0\xfd\xecc Tro\xf2ng",
     b"\xc4\x90\xe1\xbb\xa9c Tr\xe1\xbb\x8dng"),
    ("Bảo Lộc",
     b"B\xb6o L\xe9c",
     b"Ba\xfbo Lo\xe4c",
     b"Ba\xd2o L\xf4\xf2c",
     b"B\xe1\xba\xa3o L\xe1\xbb\x99c"),
    ("Nguyễn Văn Hùng",
     b"Nguy\xd4n V\xa8n H\xefng",
     b"Nguye\xe3n Va\xean Hu\xf8ng",
     b"Nguy\xea\xden V\xe3n H\xf9ng",
     b"Nguy\xe1\xbb\x85n V\xc4\x83n H\xc3\xb9ng"),
    ("Đất trồng cây lâu năm",
     b"\xa7\xcat tr\xe5ng c\xa9y l\xa9u n\xa8m",
     b"\xd1a\xe1t tro\xe0ng ca\xe2y la\xe2u na\xeam",
     b"\xd0\xe2\xect tr\xf4\xccng c\xe2y l\xe2u n\xe3m",
     b"\xc4\x90\xe1\xba\xa5t tr\xe1\xbb\x93ng c\xc3\xa2y l\xc3\xa2u n\xc4\x83m"),
    ("Phường Lộc Phát",
     b"Ph\xad\xeang L\xe9c Ph\xb8t",
     b"Ph\xf6\xf4\xf8ng Lo\xe4c Pha\xf9t",
     b"Ph\xfd\xf5\xccng L\xf4\xf2c Ph\xe1t",
     b"Ph\xc6\xb0\xe1\xbb\x9dng L\xe1\xbb\x99c Ph\xc3\xa1t"),
]
ENCODING_COLUMN = {"tcvn3": 1, "vni": 2, "cp1258": 3, "utf-8": 4}

BASES = "aăâeêioôơuưy"
TONES = ("", "\u0300", "\u0309", "\u0303", "\u0301", "\u0323")
LOWER = [unicodedata.normalize("NFC", b + t) for b in BASES for t in TONES] + ["đ"]
UPPER = [c.upper() for c in LOWER]


def _cases() -> list[tuple[str, bytes, str]]:
    return [(row[0], row[col], enc) for row in PLACES for enc, col in ENCODING_COLUMN.items()]


# ------------------------------------------------------------------ decoding


@pytest.mark.parametrize(("text", "raw", "encoding"), _cases())
def test_decode_published_bytes(text: str, raw: bytes, encoding: str) -> None:
    out = decode(raw, encoding)
    assert out == text
    assert unicodedata.is_normalized("NFC", out)


@pytest.mark.parametrize(("text", "raw", "encoding"), _cases())
def test_encode_gives_published_bytes(text: str, raw: bytes, encoding: str) -> None:
    assert encode(text, encoding) == raw


def test_cp1258_fully_decomposed_input_is_composed() -> None:
    # Some writers never use the precomposed Latin-1 letters: à as a + combining grave.
    raw = b"\xd0a\xcc La\xf2t"
    out = decode(raw, "cp1258")
    assert out == "Đà Lạt"
    assert unicodedata.is_normalized("NFC", out)
    assert len(out) == 6


def test_tcvn3_every_lowercase_byte_matches_the_published_table() -> None:
    # Byte by byte from the VN3 table: unmarked, grave, hook, tilde, acute, dot.
    rows = {
        "a": b"a\xb5\xb6\xb7\xb8\xb9", "ă": b"\xa8\xbb\xbc\xbd\xbe\xc6",
        "â": b"\xa9\xc7\xc8\xc9\xca\xcb", "e": b"e\xcc\xce\xcf\xd0\xd1",
        "ê": b"\xaa\xd2\xd3\xd4\xd5\xd6", "i": b"i\xd7\xd8\xdc\xdd\xde",
        "o": b"o\xdf\xe1\xe2\xe3\xe4", "ô": b"\xab\xe5\xe6\xe7\xe8\xe9",
        "ơ": b"\xac\xea\xeb\xec\xed\xee", "u": b"u\xef\xf1\xf2\xf3\xf4",
        "ư": b"\xad\xf5\xf6\xf7\xf8\xf9", "y": b"y\xfa\xfb\xfc\xfd\xfe",
    }
    for base, raw in rows.items():
        expected = "".join(unicodedata.normalize("NFC", base + t) for t in TONES)
        assert decode(raw, "tcvn3") == expected, base
    assert decode(b"\xae\xa1\xa2\xa3\xa4\xa5\xa6\xa7", "tcvn3") == "đĂÂÊÔƠƯĐ"


def test_vni_every_mark_matches_the_published_table() -> None:
    rows = {
        "a": b"a a\xf8 a\xfb a\xf5 a\xf9 a\xef", "ă": b"a\xea a\xe8 a\xfa a\xfc a\xe9 a\xeb",
        "â": b"a\xe2 a\xe0 a\xe5 a\xe3 a\xe1 a\xe4", "e": b"e e\xf8 e\xfb e\xf5 e\xf9 e\xef",
        "ê": b"e\xe2 e\xe0 e\xe5 e\xe3 e\xe1 e\xe4", "i": b"i \xec \xe6 \xf3 \xed \xf2",
        "o": b"o o\xf8 o\xfb o\xf5 o\xf9 o\xef", "ô": b"o\xe2 o\xe0 o\xe5 o\xe3 o\xe1 o\xe4",
        "ơ": b"\xf4 \xf4\xf8 \xf4\xfb \xf4\xf5 \xf4\xf9 \xf4\xef",
        "u": b"u u\xf8 u\xfb u\xf5 u\xf9 u\xef",
        "ư": b"\xf6 \xf6\xf8 \xf6\xfb \xf6\xf5 \xf6\xf9 \xf6\xef",
        "y": b"y y\xf8 y\xfb y\xf5 y\xf9 \xee",
    }
    for base, raw in rows.items():
        expected = " ".join(unicodedata.normalize("NFC", base + t) for t in TONES)
        assert decode(raw, "vni") == expected, base
    assert decode(b"\xf1 \xd1", "vni") == "đ Đ"


def test_vni_capitals_are_the_latin1_capitals_of_the_marks() -> None:
    assert decode(b"LA\xc2M \xd1O\xc0NG", "vni") == "LÂM ĐỒNG"
    assert decode(b"NGUYE\xc3N", "vni") == "NGUYỄN"
    assert decode(b"\xd2 \xce \xc6 \xd3 \xcd \xcc \xd4 \xd6", "vni") == "Ị Ỵ Ỉ Ĩ Í Ì Ơ Ư"


def test_vni_mark_case_follows_the_base_letter() -> None:
    # PROPER() in a spreadsheet turns "AÁP" into "Aáp"; it still means "Ấp".
    assert decode(b"A\xe1p", "vni") == "Ấp"
    assert decode(b"a\xc1p", "vni") == "ấp"


def test_vni_longest_match_first() -> None:
    # ô alone is ơ; ô followed by the acute byte is ớ, not ơ + stray mark.
    assert decode(b"\xf4", "vni") == "ơ"
    assert decode(b"m\xf4\xf9i", "vni") == "mới"
    assert decode(b"ng\xf6\xf4\xf8i", "vni") == "người"


def test_vni_stray_mark_raises() -> None:
    with pytest.raises(EncodingError) as exc:
        decode(b"H\xf9", "vni")  # acute byte after H: no vowel to sit on
    assert "VNI" in exc.value.what
    assert "0xF9" in exc.value.what and "position 1" in exc.value.what
    assert exc.value.position == 1


def test_vni_byte_outside_the_table_raises() -> None:
    with pytest.raises(EncodingError, match="0xA9"):
        decode(b"L\xa9m", "vni")


def test_tcvn3_vnTimeH_capitals_are_not_recoverable() -> None:
    # "LÂM ĐỒNG" typed with a .VnTimeH font: Â and Đ have real capitals, Ồ does not.
    assert decode(b"L\xa2M \xa7\xe5NG", "tcvn3") == "LÂM ĐồNG"


def test_tcvn3_vn1_capitals_and_combining_marks_decode() -> None:
    # Positions VN3 leaves free hold VN1 capitals (libiconv tcvn.h): 0xC4 is Ấ.
    assert decode(b"\xc4p", "tcvn3") == "Ấp"
    assert decode(b"\x80", "tcvn3") == "À"
    # VN1 combining tones 0xB0-0xB4 compose with the letter before them.
    out = decode(b"a\xb3", "tcvn3")
    assert out == "á" and unicodedata.is_normalized("NFC", out)


def test_ascii_is_identical_in_every_encoding() -> None:
    for enc in SUPPORTED:
        assert decode(b"Thua 12/3 - LUC", enc) == "Thua 12/3 - LUC"
        assert encode("Thua 12/3 - LUC", enc) == b"Thua 12/3 - LUC"


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("encoding", ["utf-8", "cp1258", "vni"])
def test_every_letter_round_trips(encoding: str) -> None:
    for char in LOWER + UPPER + list("aeiouyAEIOUYdD"):
        raw = encode(char, encoding)
        out = decode(raw, encoding)
        assert out == char, (encoding, char, raw)
        assert unicodedata.is_normalized("NFC", out)
    word = "".join(LOWER + UPPER)
    assert decode(encode(word, encoding), encoding) == word


def test_tcvn3_lowercase_and_its_capitals_round_trip() -> None:
    for char in LOWER + list("ĂÂÊÔƠƯĐ") + list("aeiouyAEIOUYdD"):
        raw = encode(char, "tcvn3")
        assert len(raw) == 1
        assert decode(raw, "tcvn3") == char


def test_tcvn3_toned_capitals_encode_as_the_lowercase_byte() -> None:
    assert encode("Ấ", "tcvn3") == b"\xca" == encode("ấ", "tcvn3")
    assert encode("ĐỒNG", "tcvn3") == b"\xa7\xe5NG"
    assert decode(encode("Ồ", "tcvn3"), "tcvn3") == "ồ"
    for upper, lower in zip(UPPER, LOWER, strict=True):
        assert decode(encode(upper, "tcvn3"), "tcvn3") in (upper, lower)


def test_encode_accepts_decomposed_input() -> None:
    decomposed = unicodedata.normalize("NFD", "Lâm Đồng")
    assert encode(decomposed, "tcvn3") == b"L\xa9m \xa7\xe5ng"


@pytest.mark.parametrize(("text", "encoding"), [
    ("€", "tcvn3"), ("中", "cp1258"), ("ç", "vni"), ("Ω", "tcvn3"), ("ñ", "vni"),
])
def test_unencodable_character_raises(text: str, encoding: str) -> None:
    with pytest.raises(EncodingError) as exc:
        encode(f"Xa {text}", encoding)
    assert "position 3" in exc.value.what
    assert exc.value.fix


# ------------------------------------------------------------------ wrong encoding


def test_tcvn3_read_as_utf8_names_byte_position_and_fix() -> None:
    with pytest.raises(EncodingError) as exc:
        decode(b"L\xa9m \xa7\xe5ng", "utf-8")
    err = exc.value
    assert err.code == "ENCODING-INVALID"
    assert "UTF-8" in err.what
    assert "0xA9" in err.what and "position 1" in err.what
    assert "--encoding" in err.fix
    assert "L©m" in err.where
    assert (err.encoding, err.position, err.byte) == ("utf-8", 1, 0xA9)
    assert "--encoding" in str(err)


def test_tcvn3_read_as_vni_gives_text_that_is_not_vietnamese() -> None:
    # "Nguyễn Hiệp Kiều" in TCVN3 happens to use only bytes VNI accepts.
    raw = b"Nguy\xd4n Hi\xd6p Ki\xd2u"
    assert decode(raw, "tcvn3") == "Nguyễn Hiệp Kiều"
    wrong = decode(raw, "vni")
    assert wrong != "Nguyễn Hiệp Kiều"
    assert vietnamese_score(wrong) < 0.4
    assert vietnamese_score(decode(raw, "tcvn3")) == 1.0


def test_cp1258_undefined_byte_raises() -> None:
    with pytest.raises(EncodingError, match=r"0x81 at position 2"):
        decode(b"ab\x81", "cp1258")


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(("alias", "name"), [
    ("utf8", "utf-8"), ("UTF-8", "utf-8"), ("utf_8", "utf-8"), ("65001", "utf-8"),
    ("windows-1258", "cp1258"), ("Windows_1258", "cp1258"), ("CP1258", "cp1258"),
    ("1258", "cp1258"), ("ANSI 1258", "cp1258"),
    ("tcvn3", "tcvn3"), ("TCVN", "tcvn3"), ("abc", "tcvn3"), ("VN3", "tcvn3"),
    ("vni", "vni"), ("VNI-Windows", "vni"), ("vni windows", "vni"),
])
def test_canonical_name_aliases(alias: str, name: str) -> None:
    assert canonical_name(alias) == name


@pytest.mark.parametrize("name", ["latin1", "latin-1", "cp1252", "ANSI 1252", "iso-8859-1",
                                  "viscii", "", "klingon"])
def test_canonical_name_rejects_other_encodings(name: str) -> None:
    with pytest.raises(EncodingError) as exc:
        canonical_name(name)
    for supported in SUPPORTED:
        assert supported in exc.value.fix


def test_decode_rejects_unknown_encoding_name() -> None:
    with pytest.raises(EncodingError):
        decode(b"abc", "latin-1")


# ------------------------------------------------------------------ syllables


@pytest.mark.parametrize("text", [
    "Lâm Đồng", "Đà Lạt", "Nguyễn Văn Hùng", "Đất trồng cây lâu năm", "người", "khuya",
    "quỳnh", "giữ gìn", "nghiêng", "thuở", "hoà hòa thuý thúy", "LÂM ĐỒNG",
    "Nguyen Van Hung", "ban thanh", "Lam Dong", "Đắk",
])
def test_valid_vietnamese_scores_one(text: str) -> None:
    assert vietnamese_score(text) == 1.0


@pytest.mark.parametrize("text", [
    "street", "road land park", "L©m §ång", "Laâm Ñoàng", "Lẫâm", "LÃ¢m",
    "Làt",        # a stop final only takes the acute or dot tone
    "Lẫm̀",       # two tone marks
    "Ǹam",        # tone mark on a consonant
    "ká",         # k only before e, ê, i, y
])
def test_invalid_words_score_zero(text: str) -> None:
    assert vietnamese_score(text) == 0.0


def test_score_is_a_share_of_words_ignoring_numbers_and_punctuation() -> None:
    assert vietnamese_score("Thửa 12, tờ 3 - street") == pytest.approx(2 / 3)
    assert vietnamese_score("12/3 - 45") == 0.0
    assert vietnamese_score("") == 0.0


# ------------------------------------------------------------------ detection

COMMUNES = [
    "Phường 1", "Xã Tà Nung", "Xã Xuân Thọ", "Xã Xuân Trường", "Thị trấn Liên Nghĩa",
    "Xã Hiệp An", "Xã Hiệp Thạnh", "Xã Phú Hội", "Xã Tân Hội", "Xã Ninh Gia", "Xã Đà Loan",
    "Xã Tà Năng", "Xã Bình Thạnh", "Xã Đạ Đờn", "Xã Lộc Châu", "Phường Lộc Phát",
    "Phường B'Lao", "Xã Đại Lào", "Thị trấn Di Linh", "Xã Gia Hiệp", "Xã Tam Bố",
    "Thị trấn Đinh Văn", "Xã Mê Linh", "Thị trấn Lạc Dương", "Xã Đạ Sar",
]
OWNERS = [
    "Nguyễn Văn Hùng", "Trần Thị Mai", "Lê Văn Tám", "Phạm Thị Hương", "Hoàng Văn Đức",
    "Vũ Thị Lan", "Đặng Quốc Bảo", "Bùi Thị Thu Hà", "Đỗ Minh Tuấn", "Hồ Thị Ngọc Ánh",
    "Ngô Quang Vinh", "Dương Văn Lợi", "Lý Thị Kim Liên", "Trương Công Định", "Võ Thị Thuỷ",
    "Huỳnh Thị Diệu", "Lương Văn Cường", "Mai Xuân Thưởng", "Cao Thị Yến",
]
LAND_USE = [
    "Đất trồng cây lâu năm", "Đất chuyên trồng lúa nước", "Đất ở tại nông thôn",
    "Đất ở tại đô thị", "Đất trồng cây hằng năm khác", "Đất rừng sản xuất",
    "Đất rừng phòng hộ", "Đất nuôi trồng thủy sản", "Đất xây dựng trụ sở cơ quan",
    "Đất giao thông", "Đất thủy lợi", "Đất nghĩa trang, nghĩa địa", "Đất cơ sở tôn giáo",
    "Đất sông, ngòi, kênh, rạch, suối", "Đất bằng chưa sử dụng",
]


@pytest.mark.parametrize("encoding", SUPPORTED)
@pytest.mark.parametrize("column", [COMMUNES, OWNERS, LAND_USE], ids=["communes", "owners",
                                                                      "land_use"])
def test_detect_realistic_columns(encoding: str, column: list[str]) -> None:
    samples = [encode(value, encoding) for value in column]
    found = detect(samples)
    assert isinstance(found, Detection)
    assert found.encoding == encoding, found.reason
    assert found.confidence > 0.8, found
    assert set(found.scores) == set(SUPPORTED)
    assert found.scores[encoding] == max(found.scores.values())
    assert "no .cpg" in found.reason
    assert 1 <= len(found.examples) <= 5
    for raw, text in found.examples:
        assert decode(raw.encode("latin-1"), encoding) == text
        assert not text.isascii()


@pytest.mark.parametrize("encoding", SUPPORTED)
def test_detect_published_bytes(encoding: str) -> None:
    samples = [row[ENCODING_COLUMN[encoding]] for row in PLACES]
    found = detect(samples)
    assert found.encoding == encoding, found.reason
    assert found.confidence > 0.8


def test_detect_reason_names_winner_and_runner_up() -> None:
    found = detect([encode(v, "tcvn3") for v in OWNERS])
    assert found.reason.startswith("no .cpg; 100% of words are Vietnamese syllables as TCVN3")
    assert found.reason.count("%") == 2


@pytest.mark.parametrize(("cpg", "encoding"), [
    ("UTF-8", "utf-8"), ("65001", "utf-8"), ("1258", "cp1258"), ("ANSI 1258\r\n", "cp1258"),
])
def test_detect_honours_cpg(cpg: str, encoding: str) -> None:
    found = detect([encode(v, encoding) for v in OWNERS], cpg=cpg)
    assert found.encoding == encoding
    assert found.confidence == 1.0
    assert ".cpg" in found.reason


def test_detect_treats_cpg_1252_as_a_hint_only() -> None:
    found = detect([encode(v, "tcvn3") for v in LAND_USE], cpg="ANSI 1252")
    assert found.encoding == "tcvn3"
    assert "1252" in found.reason and "ignored" in found.reason


def test_detect_ignores_cpg_that_cannot_decode_the_values() -> None:
    found = detect([encode(v, "tcvn3") for v in LAND_USE], cpg="UTF-8")
    assert found.encoding == "tcvn3"
    assert "UTF-8" in found.reason


def test_detect_pure_ascii() -> None:
    found = detect([b"Lam Dong", b"Thua 12", b"", b"LUC"])
    assert found == Detection("utf-8", 1.0, found.scores, [], found.reason)
    assert "ASCII" in found.reason
    assert detect([]).encoding == "utf-8"


def test_detect_random_garbage_has_low_confidence() -> None:
    rng = random.Random(20240501)
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(5, 30)))
               for _ in range(80)]
    found = detect(samples)
    assert found.confidence < 0.3, found


def test_detect_mixed_encodings_has_lower_confidence() -> None:
    mixed = ([encode(v, "tcvn3") for v in OWNERS[:8]]
             + [encode(v, "vni") for v in OWNERS[8:16]])
    found = detect(mixed)
    assert found.confidence < detect([encode(v, "tcvn3") for v in OWNERS]).confidence
    assert found.confidence < 0.7


def test_detect_caps_the_number_of_samples() -> None:
    samples = [encode(f"Thửa số {i} xã Lộc Châu", "vni") for i in range(10_000)]
    found = detect(samples)
    assert found.encoding == "vni"


def test_detect_ties_prefer_an_encoding_that_decodes_then_the_preference_order() -> None:
    # A no-break space reads the same in cp1258, TCVN3 and VNI: cp1258 wins the tie.
    assert detect([b"Lot\xa0A"]).encoding == "cp1258"
    # Nothing decodes to Vietnamese; UTF-8 and VNI cannot decode it at all, so lose.
    assert detect([b"\xff\xfe\xfd"]).encoding == "cp1258"


def test_detect_accepts_a_generator() -> None:
    found = detect(encode(v, "cp1258") for v in LAND_USE)
    assert found.encoding == "cp1258"


# ------------------------------------------------------------------ columns


def test_raw_samples_distinct_bytes() -> None:
    values = ["L\xa9m", None, "L\xa9m", "", "abc"]
    assert raw_samples(values) == [b"L\xa9m", b"abc"]


def test_decode_column_large() -> None:
    names = [f"{OWNERS[i % len(OWNERS)]} {i}" for i in range(490)] + [f"Lot {i}" for i in range(10)]
    distinct = [(name, encode(name, "vni").decode("latin-1")) for name in names]
    values: list[str | None] = []
    expected: list[str | None] = []
    for i in range(200_000):
        if i % 97 == 0:
            values.append(None)
            expected.append(None)
        else:
            text, raw = distinct[i % 500]
            values.append(raw)
            expected.append(text)
    out = decode_column(values, "vni")
    assert out == expected


def test_decode_column_keeps_none_and_ascii() -> None:
    assert decode_column([None, "abc", "L\xa9m"], "tcvn3") == [None, "abc", "Lâm"]


def test_decode_column_error_names_the_row() -> None:
    with pytest.raises(EncodingError) as exc:
        decode_column(["abc", None, "L\xa9m"], "utf-8")
    assert "row 2" in exc.value.where
    assert "row 2" in str(exc.value)


def test_decode_column_refuses_text_that_is_not_raw_bytes() -> None:
    with pytest.raises(EncodingError, match="latin-1"):
        decode_column(["Lâm Đồng"], "tcvn3")


# ------------------------------------------------------------------ mojibake


@pytest.mark.parametrize(("garbled", "encoding"), [
    ("L©m §ång", "tcvn3"),
    ("Laâm Ñoàng", "vni"),
    ("L\xc3\xa2m \xc4\x90\xe1\xbb\x93ng", "utf-8"),
    ("Lâm ÐôÌng", "cp1258"),
])
def test_fix_mojibake(garbled: str, encoding: str) -> None:
    assert fix_mojibake(garbled) == ("Lâm Đồng", encoding)


@pytest.mark.parametrize("text", ["Lâm Đồng", "Cà Mau", "Café", "Lam Dong", "", "12/3"])
def test_fix_mojibake_leaves_good_text_alone(text: str) -> None:
    assert fix_mojibake(text) == (text, None)
