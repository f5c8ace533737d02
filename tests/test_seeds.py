"""The shipped reference facts: complete, consistent, and usable offline."""

import collections
import csv
import datetime
import re
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


def _name_defects(name: str) -> list[str]:
    """What is wrong with a land-use name as a resident would read it: editorial marks
    of the reference table ("(, …)", "(nước)"), stray or doubled spaces, separators
    out of place, unbalanced brackets, text not in NFC (the loader normalises, so the
    file is read raw here)."""
    found = []
    if name != name.strip():
        found.append("leading/trailing space")
    if re.search(r"\s{2,}|[\t\r\n\u00a0]", name):
        found.append("doubled or odd space")
    if re.search(r"\(\s*[,;]|\(\s|\s\)|\(\)", name):
        found.append("editorial bracket")
    if re.search(r"\s[,;:]|[,;]{2}|[,;]\S", name):
        found.append("separator out of place")
    if name.count("(") != name.count(")"):
        found.append("unbalanced bracket")
    if not unicodedata.is_normalized("NFC", name):
        found.append("not NFC")
    return found


def test_name_defects_are_found():
    """The check below can fail: the kinds of defect the seed once had."""
    for bad in ("Đất công trình năng lượng (, chiếu sáng công cộng)",
                "Đất khu vui chơi, giải trí công cộng (, sinh hoạt cộng đồng)",
                " Đất tôn giáo", "Đất tín ngưỡng ", "Đất  chợ dân sinh",
                "Đất chợ dân sinh ,chợ đầu mối", "Public recreation (and community land",
                unicodedata.normalize("NFD", "Đất xây dựng cơ sở xã hội")):
        assert _name_defects(bad), bad
    assert _name_defects("Đất nghĩa trang, nhà tang lễ, cơ sở hỏa táng; đất cơ sở lưu "
                         "giữ tro cốt") == []


def test_land_use_names_are_clean_in_both_languages():
    """Every name of seeds/land_use_codes.csv, Vietnamese and English, read as the file
    holds it: no editorial marks, spaces or separators out of place, NFC. The names of a
    code in force are those of Thông tư 08/2024/TT-BTNMT (seeds/README.md): no brackets
    at all, and never the 2018 wording the reference table kept for a few codes."""
    with open(data_dir("seeds") / "land_use_codes.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 77
    for r in rows:
        for col in ("name_vi", "name_en"):
            assert r[col] and not _name_defects(r[col]), (r["code"], col, r[col],
                                                          _name_defects(r[col]))
        assert re.match(r"(Nhóm đất|Đất|Núi đá) ", r["name_vi"]), r
        assert not re.search(r"[&/]", r["name_en"]), r  # "and", as the Vietnamese "và"
        if r["status"] == "current":
            assert "(" not in r["name_vi"], r
    current = [r["name_vi"] for r in rows if r["status"] == "current"]
    assert len(current) == len(set(current))
    names = {r["code"]: r["name_vi"] for r in rows}
    assert names["DXH"] == "Đất xây dựng cơ sở xã hội"  # 2018: "… cơ sở dịch vụ xã hội"
    assert names["DTT"] == "Đất xây dựng cơ sở thể dục, thể thao"
    assert names["DRA"] == "Đất công trình xử lý chất thải"  # 2018: "Đất bãi thải, …"
    assert names["DNL"] == "Đất công trình năng lượng, chiếu sáng công cộng"
    assert names["DBV"] == ("Đất công trình hạ tầng bưu chính, viễn thông, công nghệ "
                            "thông tin")
    assert names["DCH"] == "Đất chợ dân sinh, chợ đầu mối"


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
    # The plan districts: the 12 of former Lâm Đồng and the 18 of former Bình Thuận
    # (593–602) and Đắk Nông (660–667) that joined it on 2025-07-01.
    others = [str(c) for c in range(593, 603)] + [str(c) for c in range(660, 668)]
    before = seeds.districts(date(2024, 12, 31))
    assert [d.code for d in before] == others + [str(c) for c in range(672, 684)]
    assert {d.parent for d in before if d.code in others} == {"60", "67"}
    merged = seeds.districts(date(2025, 3, 1))  # the 28 of the merger
    assert [d.code for d in merged] == others + [str(c) for c in range(672, 681)] + ["682"]
    assert {d.code for d in merged} == set(seeds.former_districts())
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
    assert set(st) == {d.code for d in seeds.districts()}
    # The August 2023 table is of former Lâm Đồng; of the other 18 no fact is known.
    assert {c for c, s in st.items() if s.plan_status == "unknown"} == {
        d.code for d in seeds.districts() if d.parent != "68"}
    assert st["593"].portal_status == "unknown" and st["593"].cadastre_status is None
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


# -- the province from 2025-07-01: units, lineage, former districts and their zones ------


def test_todays_province_has_124_units_of_three_levels():
    units = seeds.current_units()
    assert len(units) == 124
    levels = collections.Counter(u.level for u in units.values())
    assert levels == {"commune": 103, "ward": 20, "special_zone": 1}
    assert {u.valid_from for u in units.values()} == {seeds.MERGER_DATE}
    assert set(levels) <= set(seeds.UNIT_LEVELS)
    from gisportal.web.i18n import TEXT  # every level has its name on the pages

    assert all(f"level_{level}" in TEXT for level in seeds.UNIT_LEVELS)
    (phu_quy,) = (u for u in units.values() if u.level == "special_zone")
    assert phu_quy.name == "Đặc khu Phú Quý"


def test_every_unit_is_made_of_former_communes_of_the_three_provinces():
    parts = seeds.lineage()
    assert len(parts) == 335
    assert {p.unit for p in parts} == set(seeds.current_units())
    assert collections.Counter(p.province for p in parts) == {"68": 141, "60": 123, "67": 71}
    former = seeds.former_districts()
    assert {p.district for p in parts} == set(former)  # each former district has communes
    for p in parts:
        assert former[p.district].province == p.province, p
        assert p.share in ("full", "partial")
        assert p.level in seeds.UNIT_LEVELS


def test_a_former_commune_leads_to_its_current_unit_and_back():
    """Phường 7 of Đà Lạt, as older certificates name it, is in today's ward Lang Biang -
    Đà Lạt; that ward lists it among the former communes it was made of."""
    (ward,) = seeds.current_units_of_former("24769")
    assert (ward.code, ward.name, ward.level) == ("24846", "Phường Lang Biang - Đà Lạt", "ward")
    parts = seeds.former_parts_of("24846")
    assert ("24769", "Phường 7", "672", "68", "full") in {
        (p.code, p.name, p.district, p.province, p.share) for p in parts}
    assert seeds.current_units_of_former("99999") == ()
    assert seeds.former_parts_of("99999") == ()


def test_a_former_commune_split_in_two_leads_to_both_units():
    split = [code for code, n in collections.Counter(
        p.code for p in seeds.lineage()).items() if n > 1]
    assert len(split) == 2
    for code in split:
        units = seeds.current_units_of_former(code)
        assert len(units) == 2 and units[0] != units[1]
        assert {p.share for p in seeds.lineage() if p.code == code} == {"partial"}


def test_former_districts_carry_the_zone_of_their_province():
    """Former Lâm Đồng surveyed in TM-3 107°45′ (EPSG:5899); former Đắk Nông and Bình
    Thuận in 108°30′ (EPSG:9218) — the same as the national table of meridians says for
    the province."""
    former = seeds.former_districts()
    assert len(former) == 28
    by_province = collections.Counter(d.province for d in former.values())
    assert by_province == {"60": 10, "67": 8, "68": 10}
    for d in former.values():
        meridian = seeds.meridian_for(d.province_name.removeprefix("Tỉnh "))
        assert (d.meridian_deg, d.epsg) == (meridian.meridian_deg, meridian.epsg), d
        assert d.valid_to == seeds.MERGER_DATE - datetime.timedelta(days=1)
    assert (former["593"].short_name, former["593"].epsg) == ("Phan Thiết", 9218)
    assert (former["678"].short_name, former["678"].epsg) == ("Đức Trọng", 5899)
    assert "offshore" in former["602"].note


def test_the_new_seeds_are_nfc_text():
    for unit in seeds.current_units().values():
        assert unicodedata.is_normalized("NFC", unit.name)
    for part in seeds.lineage():
        assert unicodedata.is_normalized("NFC", part.name)
