"""Decoding text: legacy-encoded DBF/DXF columns to NFC Unicode, and checking forced encodings.

The records arrive with shapefile and DXF text as latin-1 strings of raw bytes, because
GDAL's own decoding mangles Vietnamese (docs/design.md §5). Here those bytes, column names
included, are decoded with :mod:`gisportal.pipeline.read.encodings`, once per distinct value, in
the encoding the user forced, the format implies (a DXF header) or detection finds
(honouring a ``.cpg``). An encoding forced with ``--encoding`` that makes the text look
un-Vietnamese is refused or questioned; text of UTF-8 formats is only NFC-normalised.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import chain, zip_longest
from pathlib import Path

import numpy as np
import pandas as pd
from geopandas import GeoDataFrame

from gisportal.base.errors import EncodingError
from gisportal.pipeline.read import encodings
from gisportal.pipeline.read.encodings import Detection
from gisportal.pipeline.read.formats import read_head
from gisportal.pipeline.read.notes import Note

#: Forced encoding refused when it scores below this share of Vietnamese syllables...
FORCED_ENCODING_REFUSE_BELOW = 0.5
#: ...while another supported encoding scores above this.
FORCED_ENCODING_OTHER_ABOVE = 0.9
#: A forced encoding this far behind the best candidate gets a warning note.
FORCED_ENCODING_WARN_GAP = 0.25
#: How each encoding is named in messages and notes.
DISPLAY = {"utf-8": "UTF-8", "cp1258": "Windows-1258", "tcvn3": "TCVN3", "vni": "VNI"}


def canonical_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    try:
        return encodings.canonical_name(encoding)
    except EncodingError as exc:
        raise EncodingError(exc.what, where=f"--encoding {encoding}", fix=exc.fix,
                            code="ENCODING-UNKNOWN") from None


def cpg_name(cpg: str) -> str | None:
    try:
        return encodings.canonical_name(cpg)
    except EncodingError:
        return None


def text_columns(frame: GeoDataFrame) -> list[str]:
    geom = frame.geometry.name
    return [c for c in frame.columns if c != geom and
            (frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype))]


def _strings(series: pd.Series) -> list[str]:
    """The column's text values (missing ones as ""), fast for pandas' string dtype."""
    if isinstance(series.dtype, pd.StringDtype):
        return series.to_numpy(dtype=object, na_value="").tolist()
    return [v for v in series.tolist() if v.__class__ is str]  # binary/list fields: skip


@dataclass
class _Column:
    """A text column's distinct values, so each is decoded once."""

    name: str
    codes: np.ndarray
    uniques: list
    legacy: list[int]  # indexes of non-ASCII str uniques

    @classmethod
    def of(cls, name: str, series: pd.Series) -> _Column | None:
        if "\x00".join(_strings(series)).isascii():
            return None  # ASCII reads the same in every encoding: nothing to do
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        values = np.asarray(uniques, dtype=object).tolist()
        legacy = [i for i, v in enumerate(values) if v.__class__ is str and not v.isascii()]
        if not legacy:
            return None
        return cls(name, codes, values, legacy)

    def first_row(self, unique_index: int, index: pd.Index) -> int:
        return int(index[int(np.flatnonzero(self.codes == unique_index)[0])])

    def rebuilt(self, positions: list[int], texts: list[str], series: pd.Series) -> pd.Series:
        """The column with ``uniques[positions]`` replaced by ``texts``, row order kept."""
        values = np.empty(len(self.uniques) + 1, dtype=object)
        values[:-1] = self.uniques
        if positions:
            replacement = np.empty(len(texts), dtype=object)
            replacement[:] = texts
            values[np.asarray(positions)] = replacement
        values[-1] = None  # code -1: missing
        return pd.Series(values[self.codes], index=series.index, dtype=series.dtype,
                         name=series.name)


def _decode_batch(values: list[str], enc: str) -> list[str] | None:
    """Decode many latin-1 strings in one call; None if any of them fails.

    Joining on NUL (which no DBF or DXF string contains: GDAL ends strings there) lets
    the decoder and NFC run once in C over the whole column, three times faster than
    value by value on 200 000 distinct owner names.
    """
    try:
        raw = "\x00".join(values).encode("latin-1")
    except UnicodeEncodeError:
        raw = None
    if raw is not None:
        try:
            out = encodings.decode(raw, enc).split("\x00")
        except EncodingError:
            return None
        if len(out) == len(values):
            return out
    try:
        return encodings.decode_column(values, enc)  # type: ignore[return-value]
    except EncodingError:
        return None


def _first_failure(values: list[str], enc: str) -> tuple[int, EncodingError] | None:
    for i, v in enumerate(values):
        try:
            encodings.decode(v.encode("latin-1"), enc)
        except EncodingError as exc:
            return i, exc
    return None


def _all_raw(values: list[str]) -> bool:
    try:
        "".join(values).encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _is_raw(value: str) -> bool:
    """True for a latin-1 string of raw bytes; DXF ``\\U+XXXX`` escapes are real text."""
    return max(value) <= "\xff"


def _samples(names: list[str], columns: list[_Column]) -> list[bytes]:
    """Distinct non-ASCII raw values, interleaved so every column has a say."""
    limit = getattr(encodings, "MAX_SAMPLES", 2000)
    per_column = [[col.uniques[i] for i in col.legacy[:limit]] for col in columns]
    mixed = (v for v in chain(names, chain.from_iterable(zip_longest(*per_column)))
             if v is not None and not v.isascii() and _is_raw(v))
    picked: dict[str, None] = {}
    for v in mixed:
        picked.setdefault(v, None)
        if len(picked) >= limit:
            break
    return encodings.raw_samples(picked)


def decode_legacy_text(frame: GeoDataFrame, *, label: str, forced: str | None,
                       implied: str | None, cpg: str | None,
                       notes: list[Note]) -> tuple[GeoDataFrame, str | None, Detection | None]:
    """Decode raw-byte text (DBF, DXF) and column names; return the encoding used.

    Order of authority: the user's ``encoding``, then what the format implies (a DXF
    code page), then detection (which honours a .cpg naming a supported encoding).
    """
    geom = frame.geometry.name
    text_cols = text_columns(frame)
    names = [c for c in frame.columns if c != geom]
    legacy_names = [c for c in names if not c.isascii() and _is_raw(c)]
    columns = [col for c in text_cols if (col := _Column.of(c, frame[c])) is not None]
    if not text_cols and not legacy_names:
        return frame, None, None

    detection: Detection | None = None
    if forced is not None:
        enc = forced
    elif implied is not None:
        enc = implied
    else:
        detection = encodings.detect(_samples(legacy_names, columns), cpg=cpg)
        enc = detection.encoding

    renamed: dict[str, str] = {}
    if legacy_names:
        decoded_names = _decode_batch(legacy_names, enc)
        if decoded_names is None:
            i, exc = _first_failure(legacy_names, enc)  # type: ignore[misc]
            raise _decode_error(label, f"the name of column {legacy_names[i]!r}", None, enc,
                                legacy_names, columns, exc, forced is not None)
        renamed = dict(zip(legacy_names, decoded_names, strict=True))

    new_columns: dict[str, pd.Series] = {}
    for col in columns:
        values = [col.uniques[i] for i in col.legacy]
        if _all_raw(values):
            raw_idx = list(range(len(values)))
            raw_values = values
        else:  # DXF \U+XXXX escapes arrive as real text: keep those values as they are
            raw_idx = [k for k, v in enumerate(values) if _is_raw(v)]
            raw_values = [values[k] for k in raw_idx]
        decoded = _decode_batch(raw_values, enc) if raw_values else []
        col_enc = enc
        if decoded is None:
            failure = _first_failure(raw_values, enc)
            assert failure is not None
            k, exc = failure
            shown = renamed.get(col.name, col.name)
            if forced is not None:
                row = col.first_row(col.legacy[raw_idx[k]], frame.index)
                raise _decode_error(label, f"column {shown!r}", row, enc, legacy_names,
                                    columns, exc, True)
            # A detected (or format-implied) encoding that does not fit one column:
            # columns edited in another tool can differ. Detect that column alone.
            own = encodings.detect(encodings.raw_samples(raw_values[:5000]))
            decoded = _decode_batch(raw_values, own.encoding) if own.encoding != enc else None
            if decoded is None:
                row = col.first_row(col.legacy[raw_idx[k]], frame.index)
                raise _decode_error(label, f"column {shown!r}", row, enc, legacy_names,
                                    columns, exc, False)
            col_enc = own.encoding
            notes.append(Note(
                "READ-ENCODING-COLUMN", "warning",
                f"Cột {shown!r} dùng bảng mã {DISPLAY[col_enc]}, khác với phần còn lại của "
                f"tệp ({DISPLAY[enc]}); đã đọc theo {DISPLAY[col_enc]}.",
                f"Column {shown!r} is in {DISPLAY[col_enc]}, unlike the rest of the file "
                f"({DISPLAY[enc]}); it was decoded as {DISPLAY[col_enc]}."))
        positions = [col.legacy[k] for k in raw_idx]
        texts = list(decoded)
        if len(raw_idx) != len(values):
            escaped = sorted(set(range(len(values))) - set(raw_idx))
            positions += [col.legacy[k] for k in escaped]
            texts += [unicodedata.normalize("NFC", values[k]) for k in escaped]
        new_columns[col.name] = col.rebuilt(positions, texts, frame[col.name])

    if forced is not None:
        _check_forced(label, forced, legacy_names, columns, frame.index, renamed, notes)

    for name, series in new_columns.items():
        frame[name] = series
    if renamed:
        frame = frame.rename(columns=renamed)
    return frame, enc, detection


def _decode_error(label: str, what_part: str, row: int | None, enc: str,
                  legacy_names: list[str], columns: list[_Column], exc: EncodingError,
                  forced: bool) -> EncodingError:
    guess = encodings.detect(_samples(legacy_names, columns))
    detail = exc.what.rstrip(".")
    where = f"{label}, {what_part}" + (f", row {row}" if row is not None else "")
    if forced:
        what = f"the text cannot be decoded as {DISPLAY[enc]} (the encoding given): {detail}"
    else:
        what = f"the text cannot be decoded as {DISPLAY[enc]}: {detail}"
    if guess.encoding != enc:
        fix = (f"The text looks like {DISPLAY[guess.encoding]}: try --encoding "
               f"{guess.encoding}" + (", or leave --encoding out" if forced else ""))
    else:
        fix = ("Give the right encoding with --encoding (utf-8, cp1258, tcvn3 or vni), or "
               "re-export the layer as UTF-8")
    return EncodingError(what, where=where, fix=fix, code="ENCODING-UNDECODABLE")


def _check_forced(label: str, forced: str, legacy_names: list[str], columns: list[_Column],
                  index: pd.Index, renamed: dict[str, str], notes: list[Note]) -> None:
    """Refuse or question an encoding the user forced when the text then looks wrong.

    Decoding legacy bytes rarely *fails* (TCVN3 defines every byte), so a wrong
    ``--encoding`` mostly yields garbage like "L©m §ång". Every candidate is scored by
    its share of real Vietnamese syllables: a forced encoding below 50% while another
    reaches 90% is an error (the issue asks for a precise message and a non-zero exit);
    a smaller gap is a warning for the report.
    """
    samples = _samples(legacy_names, columns)
    if not samples:
        return
    det = encodings.detect(samples)
    scores = det.scores
    own = scores.get(forced, 0.0)
    best_enc, best = max(((e, s) for e, s in scores.items() if e != forced),
                         key=lambda item: item[1])
    if own >= best - FORCED_ENCODING_WARN_GAP and not (
            own < FORCED_ENCODING_REFUSE_BELOW and best > FORCED_ENCODING_OTHER_ABOVE):
        return
    col = max(columns, key=lambda c: len(c.legacy), default=None)
    if col is not None:
        first = col.legacy[0]
        raw = col.uniques[first]
        row = col.first_row(first, index)
        where = f"{label}, column {renamed.get(col.name, col.name)!r}, row {row}"
    else:
        raw = legacy_names[0]
        where = f"{label}, column names"
    as_forced = encodings.decode(raw.encode("latin-1"), forced) if _is_raw(raw) else raw
    as_best = encodings.decode(raw.encode("latin-1"), best_enc) if _is_raw(raw) else raw
    if own < FORCED_ENCODING_REFUSE_BELOW and best > FORCED_ENCODING_OTHER_ABOVE:
        raise EncodingError(
            f"the text does not look Vietnamese when read as {DISPLAY[forced]} (the "
            f"encoding given): {own:.0%} of words are Vietnamese syllables, against "
            f"{best:.0%} as {DISPLAY[best_enc]} (e.g. {as_forced!r} instead of {as_best!r})",
            where=where,
            fix=f"Use --encoding {best_enc}, or leave --encoding out to detect it",
            code="ENCODING-WRONG")
    notes.append(Note(
        "READ-ENCODING-DOUBTFUL", "warning",
        f"Văn bản đọc theo bảng mã {DISPLAY[forced]} (đã chỉ định) không giống tiếng Việt: "
        f"{own:.0%} từ là âm tiết tiếng Việt, so với {best:.0%} theo {DISPLAY[best_enc]} "
        f"(ví dụ {as_forced!r} thay vì {as_best!r}). Hãy kiểm tra --encoding.",
        f"The text read as {DISPLAY[forced]} (the encoding given) does not look Vietnamese: "
        f"{own:.0%} of words are Vietnamese syllables, against {best:.0%} as "
        f"{DISPLAY[best_enc]} (e.g. {as_forced!r} instead of {as_best!r}). Check "
        "--encoding."))


def normalise_utf8_text(frame: GeoDataFrame) -> GeoDataFrame:
    """NFC-normalise text of UTF-8 formats (macOS and some tools write decomposed)."""
    changed: dict[str, pd.Series] = {}
    for name in text_columns(frame):
        series = frame[name]
        if unicodedata.is_normalized("NFC", "\x00".join(_strings(series))):
            continue
        col = _Column.of(name, series)
        if col is None:
            continue
        joined = "\x00".join(col.uniques[i] for i in col.legacy)
        texts = unicodedata.normalize("NFC", joined).split("\x00")
        changed[name] = col.rebuilt(col.legacy, texts, series)
    for name, series in changed.items():
        frame[name] = series
    renamed = {c: unicodedata.normalize("NFC", c) for c in frame.columns
               if isinstance(c, str) and not unicodedata.is_normalized("NFC", c)}
    return frame.rename(columns=renamed) if renamed else frame


def _dxf_header(path: Path) -> tuple[str | None, str | None]:
    """($ACADVER, $DWGCODEPAGE) from an ASCII DXF header, None when absent."""
    head = read_head(path, 2 * 1024**2)
    ver = re.search(rb"\$ACADVER\s*\r?\n\s*1\s*\r?\n([^\r\n]*)", head)
    page = re.search(rb"\$DWGCODEPAGE\s*\r?\n\s*3\s*\r?\n([^\r\n]*)", head)
    return (ver.group(1).decode("ascii", "replace").strip() if ver else None,
            page.group(1).decode("ascii", "replace").strip() if page else None)


def dxf_implied_encoding(path: Path) -> str | None:
    """The encoding a DXF's header fixes: UTF-8 from AutoCAD 2007 on, or ANSI_1258."""
    version, codepage = _dxf_header(path)
    if version and re.fullmatch(r"AC\d{4}", version) and version >= "AC1021":
        return "utf-8"
    if codepage and codepage.upper().replace("-", "_") in ("ANSI_1258", "1258"):
        return "cp1258"
    return None  # ANSI_1252 & co.: Vietnamese drawings lie here (TCVN3 fonts); detect
