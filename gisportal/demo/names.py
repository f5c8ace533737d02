"""Synthetic Vietnamese names: land holders and the organisations holding public land.

Everything is drawn from small built-in lists, so no real person's data is ever
used; the combinations merely look plausible. All text is NFC, the form the portal
stores and emits.
"""

from __future__ import annotations

import unicodedata

import numpy as np

__all__ = [
    "organisation_owner",
    "person_names",
]


def _nfc(words: str) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFC", w) for w in words.split())


# family names with rough national frequencies (percent)
_FAMILY = _nfc("Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý")
_FAMILY_WEIGHT = np.array([38, 11, 9.5, 7, 5, 4, 4.5, 4, 3, 2, 2, 1.5, 1.5, 1.3, 1, 0.5])
_MIDDLE_M = _nfc("Văn Văn Văn Hữu Đức Công Quang Minh Thanh Ngọc Xuân Đình Tấn Quốc")
_MIDDLE_F = _nfc("Thị Thị Thị Thị Ngọc Thu Thanh Kim Mỹ Hồng Bích Diệu")
_GIVEN_M = _nfc(
    "Hùng Dũng Minh Tuấn Hải Nam Long Phúc Thắng Sơn Bình Cường Đạt Hiếu Khánh Lâm "
    "Quân Tài Trung Vinh Hòa Lộc Phát Tâm Thành Toàn Hậu Nghĩa Quý Tiến Thái Vũ"
)
_GIVEN_F = _nfc(
    "Lan Hoa Hương Mai Hạnh Ngọc Trang Thảo Linh Hà Nga Yến Thủy Vân Loan Hằng Nhung "
    "Phương Diệu Liên Tuyết Oanh Thơ Huyền"
)
# K'Ho naming: men "K'" + name, women "Ka" + name (e.g. K'Brêu, Ka Thị)
_KHO_M = _nfc("Brêu Sơn Điệp Dũng Tiến Ha Bre Kră Bình Thuận Ting Măng Lơ Ngọc")
_KHO_F = _nfc("Thị Hoa Sim Bé Mai Dim Hương Đen Lan Nhơ Jú Bri")

def person_names(rng: np.random.Generator, n: int, kho_share: float = 0.08) -> np.ndarray:
    """``n`` synthetic personal names (Kinh, and K'Ho for a ``kho_share`` of them).

    Returned as an object array of NFC strings, e.g. ``"Nguyễn Văn Hùng"``,
    ``"Trần Thị Mai"``, ``"K'Brêu"``, ``"Ka Thị"``.
    """
    female = rng.random(n) < 0.45
    kho = rng.random(n) < kho_share
    family = rng.choice(len(_FAMILY), n, p=_FAMILY_WEIGHT / _FAMILY_WEIGHT.sum())
    mid_m = rng.integers(0, len(_MIDDLE_M), n)
    mid_f = rng.integers(0, len(_MIDDLE_F), n)
    giv_m = rng.integers(0, len(_GIVEN_M), n)
    giv_f = rng.integers(0, len(_GIVEN_F), n)
    kho_m = rng.integers(0, len(_KHO_M), n)
    kho_f = rng.integers(0, len(_KHO_F), n)
    out = np.empty(n, dtype=object)
    for i in range(n):
        if kho[i]:
            out[i] = f"Ka {_KHO_F[kho_f[i]]}" if female[i] else f"K'{_KHO_M[kho_m[i]]}"
        elif female[i]:
            out[i] = f"{_FAMILY[family[i]]} {_MIDDLE_F[mid_f[i]]} {_GIVEN_F[giv_f[i]]}"
        else:
            out[i] = f"{_FAMILY[family[i]]} {_MIDDLE_M[mid_m[i]]} {_GIVEN_M[giv_m[i]]}"
    return out


_ORGANISATION = {
    "DGT": "UBND {commune}",
    "SON": "UBND {commune}",
    "DKV": "UBND {commune}",
    "DGD": "Trường Tiểu học {place}",
    "DYT": "Trạm Y tế {commune}",
    "TON": "Giáo xứ {place}",
    "RPH": "Ban quản lý rừng phòng hộ {district}",
    "RDD": "Ban quản lý rừng đặc dụng {district}",
    "RSX": "Công ty TNHH MTV Lâm nghiệp {district}",
}


def organisation_owner(code: str, commune: str, place: str, district: str) -> str | None:
    """The organisation holding public land of ``code`` (None when people hold it).

    ``commune`` is the full commune name (``"Xã Phú Hòa"``), ``place`` the bare name
    (``"Phú Hòa"``), ``district`` the district name without its prefix.
    """
    template = _ORGANISATION.get(code)
    if template is None:
        return None
    return template.format(commune=commune, place=place, district=district)
