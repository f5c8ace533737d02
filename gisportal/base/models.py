"""Layer models (``layers/<kind>.json``) and the mapping of a file's fields onto them.

A model lists the canonical fields of a layer kind, the names those fields carry in
real files (aliases), their types, and which ones are required or personal. Matching
is by a folded name (case, accents, ``_``/spaces/dots ignored) so ``SO_TO``, ``SoTo``
and ``số tờ`` all meet ``sheet``. Adding an alias is a data change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from gisportal.base.errors import UsageError
from gisportal.base.resources import data_dir
from gisportal.base.text import fold

__all__ = ["Field", "LayerModel", "FieldMapping", "layer_model", "KINDS", "match_fields",
           "name_key", "GEOMETRIES", "PARSERS"]

KINDS = ("parcels", "plan", "boundary", "annual_plan", "zoning_lots", "red_lines",
         "project_area")
FIELD_TYPES = ("str", "int", "float", "code")
#: Geometry a layer kind holds: polygons (parcels, zones, lots) or lines (red lines).
GEOMETRIES = ("polygon", "line")
#: How a field's text is read before its type (see gisportal.pipeline.normalise):
#: "range" ("3-5", "3÷5", "≤5": the upper end; the lower end fills the field named
#: ``low``), "percent" ("60%", or a column of fractions ≤ 1), "sum" ("5-10,5-5": a
#: cross-section read as its total width; ``fills`` names the field it fills where that
#: has no value of its own) and "count" ("1.200": thousands separators).
PARSERS = ("range", "percent", "sum", "count")


@dataclass(frozen=True)
class Field:
    """A canonical field of a layer kind."""

    name: str
    type: str
    required: bool = False
    personal: bool = False
    aliases: tuple[str, ...] = ()
    label: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    #: "row": when the file has no such column, fill it from the source row number
    default: str | None = None
    #: How the text is read before the type: {"as": one of PARSERS, "low"/"fills": field}
    parse: Mapping[str, str] | None = None
    #: Values that mean the same thing: canonical value → the spellings files use
    #: (matched folded: case, accents, spaces and punctuation ignored), or the name of a
    #: seeded catalogue that resolves them ("zoning_functions")
    vocabulary: Mapping[str, tuple[str, ...]] | str | None = None


@dataclass(frozen=True)
class LayerModel:
    """What a layer of one kind must hold, as read from ``layers/<kind>.json``."""

    kind: str
    title: Mapping[str, str]
    description: str
    geometry: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    thresholds: Mapping[str, float]
    #: Kind-wide reading options, e.g. ``closed_lines_as_polygons`` (lots drawn in CAD)
    options: Mapping[str, Any] = field(default_factory=dict)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def threshold(self, name: str) -> float:
        """The threshold `name` of ``layers/<kind>.json``: the one place tolerances live
        (validation, repair and compare all read them here; no copy in code)."""
        try:
            return float(self.thresholds[name])
        except KeyError:
            raise UsageError(f"layers/{self.kind}.json has no threshold {name!r}",
                             where=f"layers/{self.kind}.json",
                             fix=f'add "{name}" under "thresholds"',
                             code="MODEL-THRESHOLD-MISSING") from None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def personal_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.personal)


def name_key(name: str) -> str:
    """A name folded for matching: ``Mã_Lô``, ``MALO`` and ``ma lo`` all give ``malo``.

    The one folding of column names and of vocabulary values (a function written
    ``Đất ở mới`` or ``DAT O MOI``), so both are matched the same way.
    """
    return re.sub(r"[^0-9a-z]", "", fold(name))


_name_key = name_key


@cache
def layer_model(kind: str) -> LayerModel:
    """Load the model of ``kind``; UsageError naming the known kinds otherwise."""
    if kind not in KINDS:
        raise UsageError(f"unknown layer kind {kind!r}", where="--kind",
                         fix=f"use one of: {', '.join(KINDS)}")
    with open(data_dir("layers") / f"{kind}.json", encoding="utf-8") as fh:
        doc = json.load(fh)
    fields = []
    for f in doc["fields"]:
        if f["type"] not in FIELD_TYPES:
            raise ValueError(f"layers/{kind}.json: field {f['name']}: unknown type {f['type']}")
        parse = f.get("parse")
        if parse is not None and parse.get("as") not in PARSERS:
            raise ValueError(f"layers/{kind}.json: field {f['name']}: unknown parse {parse}")
        vocabulary = f.get("vocabulary")
        fields.append(Field(name=f["name"], type=f["type"], required=bool(f.get("required")),
                            personal=bool(f.get("personal")), aliases=tuple(f.get("aliases", ())),
                            label=f.get("label", {}), note=f.get("note", ""),
                            default=f.get("default"), parse=parse,
                            vocabulary=vocabulary if vocabulary is None or isinstance(
                                vocabulary, str) else
                            {k: tuple(v) for k, v in vocabulary.items()}))
    if doc["geometry"] not in GEOMETRIES:
        raise ValueError(f"layers/{kind}.json: unknown geometry {doc['geometry']}")
    names = {f.name for f in fields}
    for f in fields:
        for target in (f.parse or {}).values():
            if target not in PARSERS and target not in names:
                raise ValueError(f"layers/{kind}.json: field {f.name}: parse names an unknown "
                                 f"field {target!r}")
    return LayerModel(kind=doc["kind"], title=doc["title"], description=doc["description"],
                      geometry=doc["geometry"], key=tuple(doc["key"]), fields=tuple(fields),
                      thresholds=doc.get("thresholds", {}), options=doc.get("options", {}))


@dataclass
class FieldMapping:
    """Which source column became which canonical field.

    ``personal_source`` starts as the columns whose *names* say they are personal (the
    aliases of personal fields); validation adds the columns whose *values* look
    personal (`gisportal.pipeline.validation.personal`), with its evidence in
    ``suspected_personal``. `to_dict` hands out these very containers, not copies: the
    report records what reading found before the checks run, and what the checks add
    must reach the version's meta all the same.
    """

    mapped: dict[str, str]  # canonical -> source column
    unmapped_source: list[str]  # source columns no canonical field took
    missing: list[str]  # canonical fields with no source column
    personal_source: list[str]  # source columns holding personal data
    #: column -> why its values look personal ({"pattern", "share", "matched", "sampled"})
    suspected_personal: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"mapped": self.mapped, "unmapped_source": self.unmapped_source,
                "missing": self.missing, "personal_source": self.personal_source,
                "suspected_personal": self.suspected_personal}


def match_fields(model: LayerModel, columns: Sequence[str],
                 overrides: Mapping[str, str] | None = None) -> FieldMapping:
    """Map source ``columns`` onto ``model``'s fields.

    ``overrides`` (canonical → source column) wins over alias matching; an override
    naming a column the file does not have is a UsageError listing the columns.
    Each source column is used at most once; canonical names match before aliases,
    and aliases in the order the model lists them.
    """
    overrides = dict(overrides or {})
    by_key: dict[str, str] = {}
    for col in columns:
        by_key.setdefault(_name_key(col), col)
    mapped: dict[str, str] = {}
    used: set[str] = set()
    for canon, src in overrides.items():
        if canon not in model.field_names:
            raise UsageError(f"unknown field {canon!r} in a field override", where="--field",
                             fix=f"fields of {model.kind}: {', '.join(model.field_names)}")
        if src not in columns:
            raise UsageError(f"the file has no column {src!r}", where=f"--field {canon}={src}",
                             fix=f"columns in the file: {', '.join(columns)}")
        mapped[canon] = src
        used.add(src)
    for f in model.fields:
        if f.name in mapped:
            continue
        for candidate in (f.name, *f.aliases):
            col = by_key.get(_name_key(candidate))
            if col is not None and col not in used:
                mapped[f.name] = col
                used.add(col)
                break
    personal_keys = {_name_key(a) for f in model.fields if f.personal for a in (f.name, *f.aliases)}
    personal = [c for c in columns if _name_key(c) in personal_keys]
    for f in model.fields:
        if f.personal and f.name in mapped and mapped[f.name] not in personal:
            personal.append(mapped[f.name])
    return FieldMapping(
        mapped=mapped,
        unmapped_source=[c for c in columns if c not in used],
        missing=[f.name for f in model.fields if f.name not in mapped],
        personal_source=personal,
    )
