"""Which columns a layer exports, under which names, and their Shapefile short names.

A published version holds the layer model's canonical fields (``sheet``, ``parcel``...)
and every attribute of the uploaded file as a ``src:<name>`` column. By default the
package carries what the public may see (the allow-list of `gisportal.outputs.privacy`): the
public canonical fields — under their gisportal names, or with ``national_names`` under
the names of the national land database (``SoHieuToBanDo``...) — plus the source
attributes a planner marked public (a note column, say), under their source names; any
other uploaded column may hold personal data under a name no one foresaw, and stays
out. With ``include_personal`` (an official transfer that must carry them) the package
carries everything: every canonical field, personal ones included, and every source
attribute no canonical field took, so nothing the district sent is lost. Source
attributes a canonical field took are never repeated.

Shapefile field names have at most 10 characters. The rule, also written into the
package's ``fields.csv``:

1. a national name longer than 10 characters takes the short name Vietnamese cadastral
   Shapefiles use (`SHORT_NAMES`: ``SoHieuToBanDo`` → ``SHBANDO``...; and
   ``object_type`` its national name ``MaDoiTuong``); each short name is a known alias
   in ``layers/``, so such a Shapefile reads back into gisportal;
2. any other name loses its diacritics (``đ`` → ``d``), characters other than letters,
   digits and ``_`` become ``_``, and it is cut to 10 characters;
3. a name already taken (ignoring case) ends in ``_2``, ``_3``... within 10 characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gisportal.base.models import LayerModel, layer_model, match_fields
from gisportal.outputs import privacy
from gisportal.pipeline.normalise import SOURCE_PREFIX

__all__ = ["NATIONAL_NAMES", "SHORT_NAMES", "SHAPEFILE_NAME_LENGTH", "ExportField",
           "export_fields", "shapefile_names", "unique_names"]

#: Canonical field → name in the national land database (and in the files districts
#: send), per layer kind. Each is also an alias in ``layers/<kind>.json``.
NATIONAL_NAMES: Mapping[str, Mapping[str, str]] = {
    "parcels": {"commune": "MaXa", "sheet": "SoHieuToBanDo", "parcel": "SoThuTuThua",
                "area_m2": "DienTich", "land_use": "KyHieuMucDichSuDung",
                "address": "DiaChiThua", "object_type": "MaDoiTuong", "owner": "TenChu",
                "owner_id": "SoGiayTo", "owner_address": "DiaChiChu", "owner_birth": "NamSinh",
                "owner_contact": "SoDienThoai", "certificate": "SoHieuGCN"},
    "plan": {"zone_id": "MaVung", "land_use": "KyHieuMucDichSuDung", "commune": "MaXa",
             "name": "TenVung", "area_m2": "DienTich", "object_type": "MaDoiTuong"},
    "boundary": {"level": "CapHC", "code": "MaDVHC", "name": "TenDVHC",
                 "object_type": "MaDoiTuong"},
    # item_id is gisportal's key of a project (the file's OBJECTID, or its row): the
    # national model has no such field, so it keeps its name.
    "annual_plan": {"year": "NamKeHoach", "name": "TenCongTrinh", "code": "MaDuAn",
                    "land_use": "KyHieuMucDichSuDung", "area_m2": "DienTich",
                    "decision": "SoQuyetDinh", "commune": "MaXa", "object_type": "MaDoiTuong"},
    # A planning project's layers (đồ án quy hoạch xây dựng, đô thị): named as the
    # consultants' indicator tables and the Ministry of Construction's data name them
    # (Ký hiệu lô, Chức năng, Diện tích, Mật độ XD, Tầng cao, Hệ số SDĐ, Dân số; Tên
    # đường, Lộ giới, Mặt cắt, Loại chỉ giới), each an alias in layers/<kind>.json.
    "zoning_lots": {"lot_code": "KyHieuLo", "function": "ChucNang", "area_m2": "DienTich",
                    "density_pct": "MatDoXD", "floors_min": "TangCaoMin",
                    "floors_max": "TangCaoMax", "far": "HeSoSDD", "population": "DanSo"},
    "red_lines": {"line_id": "MaChiGioi", "road_name": "TenDuong", "width_m": "LoGioi",
                  "cross_section": "MatCat", "line_type": "LoaiChiGioi"},
    # The project's boundary (ranh giới lập quy hoạch), a layer the package builds from
    # the project catalogue (`gisportal.outputs.export.project`); `name` is the
    # project_area model's field, the others are the catalogue's facts.
    "project_area": {"project_id": "MaDoAn", "name": "TenDoAn", "level": "CapQuyHoach",
                     "scale": "TyLe", "status": "TrangThai", "decision": "SoQuyetDinh",
                     "area_m2": "DienTich"},
}

#: Names longer than 10 characters → the short name cadastral Shapefiles use.
SHORT_NAMES: Mapping[str, str] = {
    "SoHieuToBanDo": "SHBANDO",
    "SoThuTuThua": "SHTHUA",
    "KyHieuMucDichSuDung": "KH_MDSD",
    "TenCongTrinh": "TEN_CT",
    "SoQuyetDinh": "SO_QD",
    "LoaiChiGioi": "LoaiChiGio",  # the short alias red-line Shapefiles use
    "CapQuyHoach": "CapQH",
    # gisportal's name of the object-type code has 11 characters: its Shapefile name is
    # the national one, which fits and reads back as an alias.
    "object_type": "MaDoiTuong",
}

SHAPEFILE_NAME_LENGTH = 10

#: Names the GeoPackage table or a GeoJSON reader use themselves.
_RESERVED = frozenset({"fid", "geom", "geometry"})
_NOT_WORD = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class ExportField:
    """One exported column.

    Attributes
    ----------
    column
        Its column in the stored version (``sheet``, ``src:GhiChu``).
    name
        Its name in the GeoPackage and the GeoJSON.
    shapefile
        Its name in the Shapefile (at most 10 characters).
    origin
        ``"model"`` for a canonical field, ``"source"`` for an attribute of the upload.
    type
        ``integer``, ``real``, ``text``, ``boolean`` or ``date``.
    personal
        Personal data (exported only on request).
    meaning_vi, meaning_en
        What it holds, for ``fields.csv``.
    """

    column: str
    name: str
    shapefile: str
    origin: str
    type: str
    personal: bool
    meaning_vi: str
    meaning_en: str


def _value_type(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "real"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date"
    return "text"


def _read_fields(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The field mapping the upload was read with, as its version's meta keeps it."""
    fields = (meta.get("read") or {}).get("fields") if isinstance(meta, Mapping) else None
    return fields if isinstance(fields, Mapping) and "mapped" in fields else None


def export_fields(kind: str, dtypes: Mapping[str, Any], meta: Mapping[str, Any], *,
                  national_names: bool = False,
                  include_personal: bool = False) -> list[ExportField]:
    """The exported columns of a stored version, in package order.

    Parameters
    ----------
    kind
        Layer kind (its model says which fields are canonical and personal).
    dtypes
        Stored column → dtype (the version's columns; the geometry may be among them).
    meta
        The version's meta: ``read.fields`` says which source columns the canonical
        fields took and which hold personal data, ``public_source`` which ones a planner
        marked public. Versions stored without ``read.fields`` are matched again by
        name, as ingest matches them.
    national_names, include_personal
        See the module docstring.
    """
    model: LayerModel = layer_model(kind)
    sources = [c[len(SOURCE_PREFIX):] for c in dtypes if c.startswith(SOURCE_PREFIX)]
    read = _read_fields(meta)
    if read is None:
        matched = match_fields(model, sources)
        taken, personal_src = set(matched.mapped.values()), set(matched.personal_source)
    else:
        taken = set(read["mapped"].values())
        personal_src = set(read.get("personal_source") or ())
    national = NATIONAL_NAMES.get(kind, {}) if national_names else {}
    public = privacy.public_columns_for(kind, meta)

    planned: list[tuple[str, str, str, str, bool, str, str]] = []
    for f in model.fields:
        if f.name not in dtypes or not (include_personal or public.allows(f.name)):
            continue
        planned.append((f.name, national.get(f.name, f.name), "model",
                        _value_type(dtypes[f.name]), f.personal,
                        f.label.get("vi", f.name), f.label.get("en", f.name)))
    for name in sources:
        column = SOURCE_PREFIX + name
        # A column recognised as personal that a planner confirmed public is not.
        personal = name in personal_src and not public.allows(column)
        if name in taken or not (include_personal or public.allows(column)):
            continue
        planned.append((column, name, "source", _value_type(dtypes[column]), personal,
                        f"Thuộc tính gốc «{name}» của tệp tải lên",
                        f"source attribute {name!r} as uploaded"))

    full = unique_names([p[1] for p in planned])
    short = shapefile_names(full)
    return [ExportField(column=c, name=n, shapefile=s, origin=o, type=t, personal=p,
                        meaning_vi=vi, meaning_en=en)
            for (c, _, o, t, p, vi, en), n, s in zip(planned, full, short, strict=True)]


def _taken_name(base: str, taken: set[str], limit: int | None) -> str:
    """`base`, or `base` ending in ``_2``, ``_3``... (within `limit`), not yet taken."""
    candidate, n = base, 2
    while candidate.lower() in taken or candidate.lower() in _RESERVED:
        suffix = f"_{n}"
        stem = base if limit is None else base[:limit - len(suffix)]
        candidate, n = stem + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


def unique_names(names: Iterable[str]) -> list[str]:
    """`names` made unique ignoring case (SQLite and DBF do), later ones renamed."""
    taken: set[str] = set()
    return [_taken_name(name, taken, None) for name in names]


def _ascii_word(name: str) -> str:
    """`name` without diacritics, as letters, digits and ``_`` (never empty)."""
    text = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _NOT_WORD.sub("_", text)
    return text if text and not text[0].isdigit() else "f_" + text


def shapefile_names(names: Sequence[str]) -> list[str]:
    """Shapefile names (≤ 10 characters, unique ignoring case) for `names`, by the rule
    of the module docstring."""
    taken: set[str] = set()
    out = []
    for name in names:
        base = SHORT_NAMES.get(name) or _ascii_word(name)[:SHAPEFILE_NAME_LENGTH]
        out.append(_taken_name(base, taken, SHAPEFILE_NAME_LENGTH))
    return out
