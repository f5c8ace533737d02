"""Reference facts the demo generator needs, read from the shipped ``seeds/`` folder.

Districts, land-use codes and the province box are read here with plain ``json``/``csv``;
the communes of each district and the survey zone come from the shared loader
(:mod:`gisportal.base.seeds`), the one place that knows ``communes.csv`` and the zones,
so that the demo's communes carry exactly the codes validation checks against.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from gisportal.base import seeds as base_seeds

__all__ = ["CommuneSeed", "DistrictSeed", "districts_on", "fold", "land_use_codes",
           "province_bbox_lonlat", "province_crs", "survey_crs"]

#: the day the 30 plan districts (12 of former Lâm Đồng, 8 of Đắk Nông, 10 of Bình
#: Thuận) were last all valid together
DEMO_DAY = date(2024, 12, 31)
#: name prefix → commune kind
_KINDS = (("Phường ", "phuong"), ("Thị trấn ", "thi_tran"), ("Xã ", "xa"))


@dataclass(frozen=True)
class CommuneSeed:
    """A real former commune: GSO code, NFC name, kind (from the name's prefix) and the
    name without its prefix (``place``: ``"Liên Nghĩa"``, ``"7"`` for ``"Phường 7"``)."""

    code: str
    name: str
    kind: str
    place: str


def _commune_seed(code: str, name: str) -> CommuneSeed:
    name = _nfc(name.strip())
    for prefix, kind in _KINDS:
        if name.startswith(prefix):
            return CommuneSeed(code, name, kind, name.removeprefix(prefix))
    raise ValueError(f"commune {code} {name!r}: no Phường/Thị trấn/Xã prefix")


def fold(text: str) -> str:
    """A name folded for matching spellings: no case, diacritics, spaces or apostrophes
    (the seat ``Mađaguôi`` is the commune ``Thị trấn Ma Đa Guôi``, ``Đắk Buk So`` is
    ``Xã Đắk Búk So``)."""
    bare = "".join(ch for ch in unicodedata.normalize("NFD", text)
                   if not unicodedata.combining(ch))
    return "".join(ch for ch in bare.replace("đ", "d").replace("Đ", "D").casefold()
                   if ch.isalnum())


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
        ``"city"``, ``"town"`` (thị xã) or ``"district"``.
    communes
        The district's real former communes (``seeds/communes.csv``), in code order.
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
    communes: tuple[CommuneSeed, ...]
    seat_towns: tuple[str, ...]
    anchor_lonlat: tuple[float, float]
    area_km2: float

    def _count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.communes)

    @property
    def n_xa(self) -> int:
        """Rural communes (xã)."""
        return self._count("xa")

    @property
    def n_phuong(self) -> int:
        """Wards (phường)."""
        return self._count("phuong")

    @property
    def n_thi_tran(self) -> int:
        """Towns (thị trấn)."""
        return self._count("thi_tran")

    @property
    def n_communes(self) -> int:
        """Total number of communes (xã + phường + thị trấn)."""
        return len(self.communes)


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
    so the demo picks one day rather than one list: on 2024-12-31 these are the 30
    districts the 2021–2030 plans were made for (former Lâm Đồng 672–683, Đắk Nông
    660–667, Bình Thuận 593–602). Their communes are the real former ones of
    ``seeds/communes.csv`` (the ``communes`` counts of ``admin_units.json`` are not
    used: the list is what validation checks codes against).
    """
    with open(_seeds_dir() / "admin_units.json", encoding="utf-8") as fh:
        units = json.load(fh)["units"]
    found = []
    for unit in units:
        if unit.get("level") != "district" or not _valid_on(unit, day):
            continue
        code = str(unit["code"])
        listed = sorted(base_seeds.communes_of(code).values(), key=lambda c: c.code)
        found.append(
            DistrictSeed(
                code=code,
                name=_nfc(unit["name"]),
                kind=unit.get("type", "district"),
                communes=tuple(_commune_seed(c.code, c.name) for c in listed),
                seat_towns=tuple(_nfc(t) for t in unit.get("seat_towns") or ()),
                anchor_lonlat=(float(unit["anchor_lonlat"][0]), float(unit["anchor_lonlat"][1])),
                area_km2=float(unit["area_km2"]),
            )
        )
    return tuple(sorted(found, key=lambda d: d.code))


def survey_crs(district_code: str) -> str:
    """The CRS a district's offices survey in (``"EPSG:9218"`` for former Đắk Nông and
    Bình Thuận, ``"EPSG:5899"`` for former Lâm Đồng): the demo delivers its layers there."""
    return base_seeds.survey_zone(district_code).crs


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
