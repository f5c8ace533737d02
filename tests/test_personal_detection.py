"""Recognising personal data by its values (gisportal/pipeline/validation/personal.py).

Columns are built as real commune cadastres hold them: owners' names with and without
diacritics and in capitals, K'Ho and Mạ names of Lâm Đồng, couples ("Ông … và bà …"),
CMND/CCCD numbers (also as numbers that lost their leading zero), phone numbers written
every which way, birth years and dates. And what must never be flagged: land-use names,
hamlets, streets named after people, notes, areas, coordinates, survey years.
"""

from __future__ import annotations

import time
import unicodedata

import numpy as np
import pandas as pd
import pytest

from gisportal.base.findings import rules
from gisportal.pipeline.validation import personal as pv

FAMILIES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
            "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Lâm", "Mai"]
MIDDLES = ["Văn", "Thị", "Đức", "Minh", "Ngọc", "Hữu"]
GIVEN = ["Hùng", "Lan", "Trọng", "Tuấn", "Hoa", "Nam", "Bình", "Thảo", "Sơn", "Hằng", "Phúc"]


def owner_names(n: int) -> list[str]:
    """n names as an owner column holds them: mostly distinct, some owners twice."""
    return [f"{FAMILIES[i % 20]} {MIDDLES[(i // 20) % 6]} {GIVEN[(i // 7) % 11]}"
            for i in range(n)]


def fold_ascii(text: str) -> str:
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in text if not unicodedata.combining(c))


def pattern_of(values, name: str = "x") -> str | None:
    found = pv.detect_personal(values, name)
    return None if found is None else found.pattern


# --------------------------------------------------------------------------- personal


@pytest.mark.parametrize("values", [
    owner_names(40),
    [fold_ascii(v) for v in owner_names(40)],                      # typed without diacritics
    [v.upper() for v in owner_names(40)],                          # in capitals
    [fold_ascii(v).upper() for v in owner_names(40)],
    [unicodedata.normalize("NFD", v) for v in owner_names(40)],    # decomposed
    ["K' Brăng", "K'Brêu", "Ka Điệp", "Ka Nhi", "K'Tôn", "Liêng Hót Ha Thuyên",
     "K’ Điểu", "Kơ Să Ha Kiên", "Touneh Han Đăm", "Ka Hồng"],     # K'Ho, Mạ, Churu
    ["Ông Nguyễn Văn An và bà Trần Thị Bích", "Hộ ông Lê Văn Cường", "Bà Đỗ Thị Mai",
     "Nguyễn Văn Dũng, Trần Thị Én", "Hộ gia đình Phạm Văn Giang", "Ông: Vũ Đức Hải"],
])
def test_person_names_are_recognised(values):
    assert pattern_of(values) == "person_name"


def test_a_real_owner_column_mixes_organisations_and_blanks():
    """A third of the values are names: enough (30 %), as in a commune with state land."""
    values = (owner_names(30) + ["UBND xã Hiệp An"] * 30 + ["Công ty TNHH Cà phê Lâm Viên"] * 20
              + [None, "", "  "] * 10)
    found = pv.detect_personal(values, "chu")
    assert found is not None and found.pattern == "person_name"
    assert found.sampled == 80 and found.matched == 30  # blanks are not values


@pytest.mark.parametrize("values,pattern", [
    (["068095001234", "068195001235", "068 095 001 236", "079301000017"], "id_number"),
    ([f"25{i:07d}" for i in range(50)], "id_number"),                   # 9-digit CMND
    (pd.Series([68095001234, 68195001235, 79301000017], dtype="int64"), "id_number"),
    (["0912345678", "0987 654 321", "+84 263 3822 123", "ĐT: 0905.123.456",
      "(0263) 3 822 124"], "phone"),
    (["a.nguyen@gmail.com", "lan.tran@yahoo.com.vn", "hung@lamdong.gov.vn"], "email"),
    (["12/03/1965", "01-01-1970", "1982-05-06", "3/4/1990", "5/6/1951", "30.12.1948"],
     "birth_date"),
    (pd.to_datetime(["1965-03-12", "1970-01-01", "1982-05-06", "1990-04-03", "1951-06-05"]),
     "birth_date"),
    ([1965, 1970, 1982, 1990, 1951, 1977, 1948, 2001], "birth_year"),
    ([1965.0, 1970.0, None, 1990.0, 1951.0, 1977.0], "birth_year"),      # a DBF number field
    (["1965", "1970", "1982", "1990", "1951", "1977"], "birth_year"),
])
def test_identity_numbers_phones_mails_and_births_are_recognised(values, pattern):
    assert pattern_of(values) == pattern


# --------------------------------------------------------------------------- not personal


@pytest.mark.parametrize("name,values", [
    ("loaidat", ["Đất trồng lúa", "Đất ở tại nông thôn", "Đất trồng cây lâu năm",
                 "Đất rừng sản xuất", "Đất giao thông"] * 8),
    ("thon", ["Thôn 3", "Thôn 5", "Tổ 7", "Xã Hiệp An", "Thôn Phú Hội"] * 8),
    ("ghichu", ["Đường Trần Phú", "Đường Lê Lợi", "Đường Nguyễn Trãi", "Đường Phan Đình Phùng",
                "Đường Hai Bà Trưng", "Đường Hùng Vương", "Đường Ngô Quyền"] * 6),
    ("ghichu", ["Duong Tran Phu", "Duong Le Loi", "Duong Nguyen Trai", "Duong Ngo Quyen",
                "DUONG PHAN DINH PHUNG"] * 8),                        # the same, in ASCII
    ("tenduong", ["Trần Phú", "Lê Lợi", "Nguyễn Trãi", "Phan Đình Phùng", "Ngô Quyền",
                  "Hùng Vương", "Lý Thường Kiệt", "Trần Hưng Đạo"] * 5),  # a street column
    ("diachi2", ["Nguyễn Văn Cừ", "Lê Hồng Phong", "Trần Quốc Toản", "Phạm Ngũ Lão"] * 10),
    ("ghichu", ["Ghi chú 1", "Đang tranh chấp", "Đã đo lại năm 2023", "Hồ chứa nước Đạ Tẻh",
                "Giáp suối", "Cao su", "Thửa đất công ích", None] * 5),
    ("caytrong", ["Cao su"] * 30 + ["Lâm nghiệp"] * 20 + ["Cà phê"] * 10),
    ("dtpl", [523.4, 1995.0, 2001.0, 150.2, 19.95, 880.0, 1234.5, 2010.0]),
    ("toado_y", [541230.845, 541231.112, 541232.5, 541233.004]),
    ("mathua", ["247780010023", "247780010024", "247780010025"]),  # parcel codes, 12 digits
    ("objectid", list(range(1, 5000))),
    ("nam_do", [2019] * 40),                                         # the survey year
    ("namcap", [2004, 2005, 2006, 2007, 2008, 2009, 2010, 2011]),    # years close together
    ("sohieu", [f"CS {i:05d}" for i in range(40)]),
    ("empty", [None, "", " "] * 5),
])
def test_look_alikes_are_not_flagged(name, values):
    assert pv.detect_personal(values, name) is None


def test_bare_street_names_look_like_people_unless_the_column_says_streets():
    """"Trần Phú" is a street and a man: only the column's name tells them apart, so a
    column called "x_2" of bare street names is withheld (and a planner confirms it)."""
    streets = ["Trần Phú", "Lê Lợi", "Nguyễn Trãi", "Phan Đình Phùng", "Ngô Quyền"] * 4
    assert pattern_of(streets, "x_2") == "person_name"
    assert pattern_of(streets, "TenDuong") is None


# --------------------------------------------------------------------------- sampling


def test_sample_is_even_and_bounded():
    values = pd.Series([None if i % 2 else f"v{i}" for i in range(100_000)], dtype=object)
    sample = pv.sample_values(values)
    assert len(sample) == pv.SAMPLE_SIZE and sample.notna().all()
    assert sample.iloc[0] == "v0" and sample.iloc[-1] == "v99998"  # first and last taken


def test_two_hundred_thousand_rows_cost_milliseconds():
    n = 200_000
    columns = {
        "names": pd.Series([f"{FAMILIES[i % 20]} {MIDDLES[i % 6]} {GIVEN[i % 11]} {GIVEN[i % 7]}"
                            for i in range(n)], dtype=object),
        "ids": pd.Series([f"068{i:09d}" for i in range(n)], dtype=object),
        "notes": pd.Series([f"Ghi chú {i % 50}" if i % 3 else None for i in range(n)],
                           dtype=object),
        "numbers": pd.Series(np.random.default_rng(1).integers(1, 3000, n)),
        "areas": pd.Series(np.random.default_rng(2).uniform(50, 5000, n)),
    }
    expected = {"names": "person_name", "ids": "id_number", "notes": None, "numbers": None,
                "areas": None}
    for name, values in columns.items():
        pv.detect_personal(values, name)  # warm the regular expressions
        start = time.perf_counter()
        found = pv.detect_personal(values, name)
        elapsed = time.perf_counter() - start
        assert (found and found.pattern) == expected[name]
        assert elapsed < 0.15, (name, elapsed)  # ~5–15 ms measured; a full pass is seconds


# --------------------------------------------------------------------------- the rule


def test_rule_is_in_the_catalogue_with_both_languages():
    rule = rules()["ATTR-PERSONAL-SUSPECTED"]
    assert rule.severity == "warning" and rule.family == "privacy"
    assert "{column}" in rule.vi and "{column}" in rule.en
    assert "không được công bố" in rule.vi and "withheld from the public" in rule.en
    assert set(pv.PATTERNS) == {"person_name", "id_number", "phone", "email", "birth_date",
                                "birth_year"}
