"""What the public sees of a layer version: an allow-list, decided here and nowhere else.

Why an allow-list: districts export their cadastre from whatever software they have,
and personal data arrives under any column name — ``tenchusdd``, ``namsinh``, ``x_1`` —
that no alias list can foresee. Hiding only the columns known to be personal published
owners' names and birth years to anyone. So the rule is the other way round:

- the **canonical fields** of the layer model that are not marked ``personal``
  (``layers/<kind>.json``; the version's ``meta.personal_fields`` may add more) are
  public;
- a **source column** (stored as ``src:<name>``) is public only when a planner marked it
  public for that version (`mark_public`, kept in ``meta["public_source"]``). Every
  other source column is withheld: unmapped ones by default, and the ones a canonical
  field took because the canonical field already shows their value;
- what reading recognised as personal (by alias, or by content: see
  `gisportal.pipeline.validation.personal`, recorded in ``meta.read.fields.personal_source``)
  can be marked public only with an explicit confirmation.

Staff (a planner of the district or an admin in the web layer, the operator on the
command line) still see everything: that choice is the caller's, this module only says
what is public. Every public output — ``/api/lookup`` and the search box, the parcel
sheet, ``/ogc``, the vector tiles, comparisons, the default export — asks
`public_columns`, so one decision holds everywhere.

This module imports no web framework: the CLI, the jobs and the web layer all call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gisportal.base.errors import UsageError
from gisportal.base.models import layer_model, match_fields
from gisportal.base.text import nfc
from gisportal.pipeline.normalise import SOURCE_PREFIX, source_attributes
from gisportal.store.base import Store, Version, utc_now

__all__ = [
    "META_KEY",
    "PublicColumns",
    "SourceColumn",
    "carry_marks",
    "is_public",
    "mark_public",
    "public_attributes",
    "public_columns",
    "public_columns_for",
    "source_columns",
]

#: The version meta key holding the source columns marked public, and who did it when.
META_KEY = "public_source"


@dataclass(frozen=True)
class PublicColumns:
    """The allow-list of one version: what may leave the portal without sign-in."""

    kind: str
    #: Public canonical fields, in layer-model order (``commune``, ``sheet``...).
    canonical: tuple[str, ...]
    #: Source columns marked public, by their source names (without ``src:``).
    source: tuple[str, ...]

    @property
    def stored_source(self) -> tuple[str, ...]:
        """The public source columns as stored (``src:<name>``)."""
        return tuple(SOURCE_PREFIX + name for name in self.source)

    def allows(self, column: str) -> bool:
        """Whether a stored column (``sheet``, ``src:GhiChu``) may be shown publicly."""
        if column.startswith(SOURCE_PREFIX):
            return column[len(SOURCE_PREFIX):] in self.source
        return column in self.canonical

    def columns(self, present: Iterable[str] | None = None) -> list[str]:
        """The public stored columns, canonical first; only those in `present` if given."""
        wanted = [*self.canonical, *self.stored_source]
        if present is None:
            return wanted
        have = set(present)
        return [c for c in wanted if c in have]

    def attributes(self, row: Mapping[str, Any]) -> dict[str, str]:
        """The public source attributes of a stored feature, as text (see
        `gisportal.pipeline.normalise.source_attributes`)."""
        if not self.source:
            return {}
        allowed = set(self.source)
        return {k: v for k, v in source_attributes(row).items() if k in allowed}


def _read_fields(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    fields = (meta.get("read") or {}).get("fields") if isinstance(meta, Mapping) else None
    return fields if isinstance(fields, Mapping) else {}


def _taken(meta: Mapping[str, Any]) -> dict[str, str]:
    """Source column → the canonical field that took it, as reading decided."""
    mapped = _read_fields(meta).get("mapped")
    return {str(src): str(canon) for canon, src in mapped.items()} \
        if isinstance(mapped, Mapping) else {}


def _personal_source(kind: str, meta: Mapping[str, Any], names: Iterable[str]) -> set[str]:
    """Which of `names` are personal: what reading recorded (by alias or by content),
    and what the model's aliases say now (a version stored before an alias was added
    is covered too)."""
    names = list(names)
    recorded = {str(n) for n in _read_fields(meta).get("personal_source") or ()}
    return (recorded & set(names)) | set(match_fields(layer_model(kind), names).personal_source)


def public_columns_for(kind: str, meta: Mapping[str, Any] | None) -> PublicColumns:
    """The allow-list of a version of `kind` with this `meta` (see the module docstring).

    For callers that hold a version's meta but not the `Version` (the export reads
    both from the store separately).
    """
    model = layer_model(kind)
    meta = meta if isinstance(meta, Mapping) else {}
    personal = set(model.personal_fields) | {str(n) for n in meta.get("personal_fields") or ()}
    canonical = tuple(f.name for f in model.fields if f.name not in personal)
    marks = meta.get(META_KEY) if isinstance(meta.get(META_KEY), Mapping) else {}
    marked = [str(n) for n in marks.get("columns") or ()]
    if not marked:
        return PublicColumns(kind, canonical, ())
    taken = _taken(meta)
    confirmed = {str(n) for n in marks.get("confirmed_personal") or ()}
    personal_src = _personal_source(kind, meta, marked)
    source = tuple(dict.fromkeys(
        n for n in marked if n not in taken and (n not in personal_src or n in confirmed)))
    return PublicColumns(kind, canonical, source)


def public_columns(version: Version) -> PublicColumns:
    """The allow-list of `version`: public canonical fields and source columns marked
    public. Cheap (the version's meta only): callers ask on every request, so a mark
    made a moment ago holds at once."""
    return public_columns_for(version.kind, version.meta)


def is_public(version: Version, column: str) -> bool:
    """Whether the stored `column` of `version` may be shown to anyone."""
    return public_columns(version).allows(column)


def public_attributes(row: Mapping[str, Any], version: Version) -> dict[str, str]:
    """The source attributes of a feature of `version` that the public may see."""
    return public_columns(version).attributes(row)


@dataclass(frozen=True)
class SourceColumn:
    """One source column of a version and what the public sees of it, for a planner
    deciding what to mark public."""

    name: str
    #: The canonical field that took it (its value is shown there, if that is public).
    field: str | None
    #: Recognised as personal (by name or by its values).
    personal: bool
    #: Why its values look personal (`gisportal.pipeline.validation.personal`), when they do.
    suspected: Mapping[str, Any] | None
    #: Marked public and shown.
    public: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "field": self.field, "personal": self.personal,
                "suspected": dict(self.suspected) if self.suspected else None,
                "public": self.public}


def _stored_sources(store: Store, version: Version) -> list[str]:
    return [c[len(SOURCE_PREFIX):] for c in store.columns(version.id)
            if c.startswith(SOURCE_PREFIX)]


def source_columns(store: Store, version: Version) -> list[SourceColumn]:
    """Every source column of `version`, in stored order, with its public status."""
    names = _stored_sources(store, version)
    meta = version.meta or {}
    taken = _taken(meta)
    personal = _personal_source(version.kind, meta, names)
    suspected = _read_fields(meta).get("suspected_personal") or {}
    public = set(public_columns(version).source)
    return [SourceColumn(name, taken.get(name), name in personal,
                         suspected.get(name) if isinstance(suspected, Mapping) else None,
                         name in public) for name in names]


def _resolve(names: Sequence[str], sources: Sequence[str], version: Version) -> list[str]:
    """The stored source names `names` mean: exact, else the one equal ignoring case."""
    out, unknown = [], []
    folded: dict[str, list[str]] = {}
    for s in sources:
        folded.setdefault(s.casefold(), []).append(s)
    for raw in names:
        name = nfc(str(raw)).strip()
        if name.startswith(SOURCE_PREFIX):
            name = name[len(SOURCE_PREFIX):]
        if name in sources:
            out.append(name)
        elif len(folded.get(name.casefold(), [])) == 1:
            out.append(folded[name.casefold()][0])
        else:
            unknown.append(name or repr(raw))
    if unknown:
        raise UsageError(
            f"version {version.id} has no source column {', '.join(map(repr, unknown))}",
            where="public field",
            fix="name columns of the uploaded file: "
                + (", ".join(sources) if sources else "this version has none"),
            code="PUBLIC-FIELD-UNKNOWN")
    return list(dict.fromkeys(out))


def mark_public(store: Store, version_id: int, names: Sequence[str], actor: str, *,
                confirm_personal: bool = False, replace: bool = False) -> Version:
    """Mark source columns of a version public, so look-ups, ``/ogc`` and the default
    export show them; return the version with its new meta.

    Parameters
    ----------
    store
        The store holding the version.
    version_id
        Any version (a draft under review, or the published one: the change shows at
        the next request).
    names
        Source column names as uploaded (``GhiChu``; ``src:GhiChu`` and a name differing
        only in case are understood). Empty with ``replace`` withdraws every mark.
    actor
        Who marks them (user name), kept in the meta with the time.
    confirm_personal
        Mark columns recognised as personal data (by name or by their values) too: the
        planner has checked they are not. Without it such a name is refused.
    replace
        The marks become exactly `names`; otherwise `names` join the existing marks.

    Raises
    ------
    NotFoundError
        No such version.
    UsageError
        A name is not a source column of the version (``PUBLIC-FIELD-UNKNOWN``, naming
        the columns it has); a canonical field took the column (``PUBLIC-FIELD-MAPPED``:
        the field shows it, or it is personal); a column recognised as personal without
        `confirm_personal` (``PUBLIC-FIELD-PERSONAL``).
    """
    version = store.version(version_id)
    sources = _stored_sources(store, version)
    chosen = _resolve(names, sources, version)
    meta = version.meta or {}
    taken = _taken(meta)
    model = layer_model(version.kind)
    mapped = [n for n in chosen if n in taken]
    if mapped:
        fields = ", ".join(f"{n} → {taken[n]}" for n in mapped)
        markable = [s for s in sources if s not in taken]
        raise UsageError(
            f"column(s) {fields} were read into canonical fields: a public field shows its "
            "value already, and a personal one is never published",
            where=f"version {version.id}", code="PUBLIC-FIELD-MAPPED",
            fix="mark only columns no field took: "
                + (", ".join(markable) if markable else "this version has none")
                + (f" (personal fields: {', '.join(model.personal_fields)})"
                   if model.personal_fields else ""))
    personal = _personal_source(version.kind, meta, chosen)
    flagged = [n for n in chosen if n in personal]
    if flagged and not confirm_personal:
        suspected = _read_fields(meta).get("suspected_personal") or {}
        why = [f"{n} ({suspected[n].get('pattern')})" if isinstance(suspected, Mapping)
               and isinstance(suspected.get(n), Mapping) else f"{n} (name)" for n in flagged]
        raise UsageError(
            f"column(s) {', '.join(why)} look like personal data (Thông tin cá nhân) and are "
            "withheld from the public", where=f"version {version.id}",
            code="PUBLIC-FIELD-PERSONAL",
            fix="check the values; if they hold no personal data, confirm (confirm_personal, "
                "--confirm-personal) to publish them")
    marks = meta.get(META_KEY) if isinstance(meta.get(META_KEY), Mapping) else {}
    before = [] if replace else [str(n) for n in marks.get("columns") or ()]
    columns = list(dict.fromkeys([*before, *chosen]))
    confirmed = [] if replace else [str(n) for n in marks.get("confirmed_personal") or ()]
    confirmed = list(dict.fromkeys([*confirmed, *flagged]))
    history = [dict(h) for h in marks.get("history") or () if isinstance(h, Mapping)]
    history.append({"columns": chosen, "by": str(actor), "at": utc_now(),
                    "replace": bool(replace), "confirmed_personal": flagged})
    return store.update_meta(version.id, {META_KEY: {
        "columns": columns, "confirmed_personal": [n for n in confirmed if n in columns],
        "by": str(actor), "at": history[-1]["at"], "history": history}})


def carry_marks(store: Store, version_id: int, from_version: Version, actor: str) -> Version:
    """Keep on `version_id` the public marks of `from_version` whose columns it still has.

    Used by commune updates: the new version is the published layer with some communes
    replaced, so what the planner decided about its columns still holds. A column that
    was confirmed despite looking personal keeps that confirmation; one that now looks
    personal and was not confirmed loses its mark (the planner decides again).
    """
    marks = (from_version.meta or {}).get(META_KEY) or {}
    wanted = [str(n) for n in marks.get("columns") or ()]
    confirmed = {str(n) for n in marks.get("confirmed_personal") or ()}
    version = store.version(version_id)
    present = set(_stored_sources(store, version))
    for name in (n for n in wanted if n in present):
        try:
            version = mark_public(store, version_id, [name], actor,
                                  confirm_personal=name in confirmed)
        except UsageError:
            continue
    return version
