"""The shipped reference facts: complete, consistent, and usable offline."""

import csv
import unicodedata
from datetime import date

import pytest

from gisportal.base import seeds
from gisportal.base.resources import data_dir


def test_land_use_catalogue_has_every_code_with_a_colour():
    cat = seeds.land_use_catalogue()
    assert len(cat) == 77
    for lu in cat:
        assert lu.color.startswith("#") and len(lu.color) == 7, lu.code
        assert unicodedata.is_normalized("NFC", lu.name_vi)
        assert lu.status in {"current", "legacy", "aggregate", "tracking"}


def test_official_colours_and_documented_fallbacks():
    cat = seeds.land_use_catalogue()
    assert cat.get("ODT").color == "#FFA0FF"
    assert cat.get("ODT").color_verified
    cnt = cat.get("CNT")
    assert not cnt.color_verified
    assert cnt.color_source == "fallback:NKH"
    assert cnt.color == cat.get("NKH").color
    for lu in cat:
        if not lu.color_verified:
            assert cat.get(lu.color_source.removeprefix("fallback:")).color_verified


def test_combined_codes_are_split_and_checked_part_by_part():
    cat = seeds.land_use_catalogue()
    assert cat.split("ONT+CLN") == ["ONT", "CLN"]
    assert cat.split(" ont + cln ") == ["ONT", "CLN"]
    assert cat.split("ODT;TMD") == ["ODT", "TMD"]
    assert cat.unknown_parts("ONT+XYZ") == ["XYZ"]
    assert cat.unknown_parts("ONT+CLN") == []
    assert cat.primary("XYZ+CLN").code == "CLN"
    assert cat.name("ONT+CLN") == "Đất ở tại nông thôn + Đất trồng cây lâu năm"
    assert cat.color("QQQ") == seeds.UNKNOWN_COLOR


def test_legacy_codes_name_their_replacement():
    cat = seeds.land_use_catalogue()
    for lu in cat:
        if lu.status == "legacy" and lu.replaced_by:
            assert cat.get(lu.replaced_by).status == "current", lu.code
    assert cat.get("BHK").replaced_by == "HNK"


def test_meridians_cover_all_63_provinces():
    ms = seeds.meridians()
    assert len(ms) == 63
    assert len({m.province for m in ms}) == 63
    assert seeds.meridian_for("Lâm Đồng").epsg == 5899
    assert seeds.meridian_for("lam dong").meridian_deg == 107.75
    with pytest.raises(KeyError):
        seeds.meridian_for("Atlantis")


def test_districts_are_a_dated_hierarchy():
    before = seeds.districts(date(2024, 12, 31))
    assert [d.code for d in before] == [str(c) for c in range(672, 684)]
    merged = seeds.districts(date(2025, 3, 1))
    assert [d.code for d in merged] == [str(c) for c in range(672, 681)] + ["682"]
    assert seeds.district("682", date(2025, 3, 1)).name == "Huyện Đạ Huoai"
    assert seeds.district("682").name == "Huyện Đạ Tẻh"
    assert seeds.districts(date(2025, 8, 1)) == []
    d = seeds.district("678")
    assert d.parent == "68" and d.communes["total"] == 15
    assert d.key == "678@"
    with pytest.raises(KeyError):
        seeds.district("999")


def test_status_table_matches_design_notes():
    st = seeds.district_status()
    assert set(st) == {str(c) for c in range(672, 684)}
    assert {c for c, s in st.items() if s.plan_status == "approved"} == {"676", "683"}
    assert {c for c, s in st.items() if s.cadastre_status == "digitised"} == {"672", "678", "679"}
    assert st["676"].portal_status == "approved"
    assert st["673"].portal_status == "in_correction"
    assert st["674"].portal_status == "under_appraisal"


def test_seed_files_are_nfc_utf8():
    for path in data_dir("seeds").iterdir():
        if path.suffix in {".csv", ".json"}:
            text = path.read_text(encoding="utf-8")
            assert unicodedata.is_normalized("NFC", text), path.name
    with open(data_dir("seeds") / "land_use_codes.csv", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header[:2] == ["code", "group"]
