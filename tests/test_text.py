import unicodedata

from gisportal.base.text import fold, nfc


def test_nfc_composes_decomposed_accents():
    decomposed = unicodedata.normalize("NFD", "Lâm Đồng")
    assert decomposed != "Lâm Đồng"
    assert nfc(decomposed) == "Lâm Đồng"


def test_fold_is_diacritic_and_case_insensitive():
    assert fold("Đà Lạt") == "da lat"
    assert fold("ĐỨC  TRỌNG") == "duc trong"
    assert fold(unicodedata.normalize("NFD", "Bảo Lộc")) == "bao loc"
    assert fold("đ") == "d"
