"""Layer models are data; field matching maps real-world column names."""

import pytest

from gisportal.base.errors import UsageError
from gisportal.base.models import KINDS, layer_model, match_fields


@pytest.mark.parametrize("kind", KINDS)
def test_models_load(kind):
    m = layer_model(kind)
    assert m.kind == kind
    assert m.geometry == ("line" if kind == "red_lines" else "polygon")
    assert all(k in m.field_names for k in m.key)


def test_unknown_kind_is_a_usage_error():
    with pytest.raises(UsageError) as e:
        layer_model("roads")
    assert "parcels" in e.value.fix


@pytest.mark.parametrize("columns", [
    ["MaXa", "SoHieuToBanDo", "SoThuTuThua", "DienTich", "KyHieuMucDichSuDung"],
    ["MAXA", "SHBANDO", "SHTHUA", "DTICH", "MDSD"],
    ["MA_XA", "TO_BD", "THUA", "DIENTICH", "KH_MDSD"],
    ["maxa", "soto", "sothua", "dientich", "maloaidat"],
])
def test_real_field_names_map_to_parcel_fields(columns):
    m = match_fields(layer_model("parcels"), columns)
    assert list(m.mapped) [:5] == ["commune", "sheet", "parcel", "area_m2", "land_use"]
    assert list(m.mapped.values()) == columns
    assert m.unmapped_source == []


def test_personal_columns_are_marked_and_unknown_columns_kept():
    cols = ["SoTo", "SoThua", "LoaiDat", "TenChu", "SoCMND", "SoHieuGCN", "GhiChuRieng"]
    m = match_fields(layer_model("parcels"), cols)
    assert set(m.personal_source) == {"TenChu", "SoCMND", "SoHieuGCN"}
    assert m.unmapped_source == ["GhiChuRieng"]
    assert "commune" in m.missing


def test_overrides_win_and_are_checked():
    m = match_fields(layer_model("parcels"), ["A", "B", "C"], {"sheet": "A", "parcel": "B",
                                                                "land_use": "C"})
    assert m.mapped == {"sheet": "A", "parcel": "B", "land_use": "C"}
    with pytest.raises(UsageError) as e:
        match_fields(layer_model("parcels"), ["A"], {"sheet": "Z"})
    assert "A" in e.value.fix
    with pytest.raises(UsageError):
        match_fields(layer_model("parcels"), ["A"], {"nonsense": "A"})
