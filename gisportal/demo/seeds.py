"""Reference facts the demo generator needs, read from the shipped ``seeds/`` folder.

Kept deliberately small (plain ``json``/``csv``): a shared seed loader will replace it,
and until then the generator must not depend on anything but the files themselves.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

__all__ = ["DistrictSeed", "districts_on", "land_use_codes", "province_bbox_lonlat",
           "province_crs"]

#: the day the 12 pre-2025 districts were last all valid together
DEMO_DAY = date(2024, 12, 31)


def _seeds_dir() -> Path:
    """Folder holding the seed files.

    An installed wheel carries them in ``gisportal/_data/seeds`` (see pyproject's
    force-include); a source checkout has them at the repository root.
    """
    installed = Path(__file__).resolve().parents[1] / "_data" / "seeds"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "seeds"


@dataclass(frozen=True)
class DistrictSeed:
    """What the generator needs to know about one real district.

    Attributes
    ----------
    code, name
        GSO code (``"672"``) and full Vietnamese name (``"Thành phố Đà Lạt"``).
    kind
        ``"city"`` or ``"district"``: cities have wards (phường), not towns.
    n_xa, n_phuong, n_thi_tran
        Commune counts by type; their sum is the number of communes to generate.
    seat_towns
        Names of the towns (thị trấn) or the city, the first one being the seat.
    anchor_lonlat
        A point inside the real district (WGS 84, lon/lat): where the synthetic
        district is grown from and where its seat town is placed.
    area_km2
        Area of the real district: the synthetic one gets roughly the same.
    """

    code: str
    name: str
    kind: str
    n_xa: int
    n_phuong: int
    n_thi_tran: int
    seat_towns: tuple[str, ...]
    anchor_lonlat: tuple[float, float]
    area_km2: float

    @property
    def n_communes(self) -> int:
        """Total number of communes (xã + phường + thị trấn)."""
        return self.n_xa + self.n_phuong + self.n_thi_tran


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _valid_on(unit: dict, day: date) -> bool:
    start = unit.get("valid_from")
    end = unit.get("valid_to")
    return (start is None or date.fromisoformat(start) <= day) and (
        end is None or date.fromisoformat(end) >= day
    )


@lru_cache(maxsize=4)
def districts_on(day: date = DEMO_DAY) -> tuple[DistrictSeed, ...]:
    """Districts of the province valid on ``day``, sorted by code.

    The administrative units are a dated hierarchy (codes are reused after mergers),
    so the demo picks one day rather than one list: on 2024-12-31 these are the 12
    districts 672–683 the 2021–2030 plans were made for.
    """
    with open(_seeds_dir() / "admin_units.json", encoding="utf-8") as fh:
        units = json.load(fh)["units"]
    found = []
    for unit in units:
        if unit.get("level") != "district" or not _valid_on(unit, day):
            continue
        counts = unit["communes"]
        found.append(
            DistrictSeed(
                code=str(unit["code"]),
                name=_nfc(unit["name"]),
                kind=unit.get("type", "district"),
                n_xa=int(counts.get("xa", 0)),
                n_phuong=int(counts.get("phuong", 0)),
                n_thi_tran=int(counts.get("thi_tran", 0)),
                seat_towns=tuple(_nfc(t) for t in unit.get("seat_towns") or ()),
                anchor_lonlat=(float(unit["anchor_lonlat"][0]), float(unit["anchor_lonlat"][1])),
                area_km2=float(unit["area_km2"]),
            )
        )
    return tuple(sorted(found, key=lambda d: d.code))


@lru_cache(maxsize=1)
def land_use_codes() -> frozenset[str]:
    """All land-use codes of the catalogue (current, legacy and aggregate)."""
    with open(_seeds_dir() / "land_use_codes.csv", encoding="utf-8", newline="") as fh:
        return frozenset(row["code"] for row in csv.DictReader(fh))


@lru_cache(maxsize=1)
def province_crs() -> str:
    """The province's storage CRS (VN-2000 / TM-3 of its central meridian)."""
    with open(_seeds_dir() / "province.json", encoding="utf-8") as fh:
        return str(json.load(fh)["crs"])


@lru_cache(maxsize=1)
def province_bbox_lonlat() -> tuple[float, float, float, float]:
    """The province's box (west, south, east, north) in WGS 84 degrees.

    The portal rejects features outside it, so the synthetic province stays inside.
    """
    with open(_seeds_dir() / "province.json", encoding="utf-8") as fh:
        west, south, east, north = json.load(fh)["bbox_lonlat"]
    return float(west), float(south), float(east), float(north)
