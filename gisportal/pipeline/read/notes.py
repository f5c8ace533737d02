"""What the reader reports: the :class:`Note` and the note several reading steps write.

Every step of reading (record reading, damaged-record detection, text decoding, tidying)
records what it did or noticed as a :class:`Note` for the validation report. The dataclass
lives in this small module, apart from :mod:`gisportal.pipeline.read.sources`, so that those step
modules can use it without importing the entry module that imports them (no import
cycle); ``sources`` re-exports it. The "record is damaged" note lives here too because
both the fiona record reader and the shapefile damaged-record check write it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Note:
    """Something the reader did or inferred, for the validation report.

    Attributes
    ----------
    code
        Stable code, e.g. ``READ-DXF-CLOSED-AS-POLYGON``, ``READ-Z-DROPPED``,
        ``READ-LAYER-CHOSEN``, ``READ-RECORD-UNREADABLE``.
    severity
        ``"info"``, ``"warning"`` or ``"error"`` (an error blocks publishing).
    message_vi, message_en
        One sentence each, for the planner.
    row
        0-based row in the source when the note is about one record.
    """

    code: str
    severity: str
    message_vi: str
    message_en: str
    row: int | None = None


def unreadable_note(row: int, why: str) -> Note:
    return Note("READ-RECORD-UNREADABLE", "error",
                f"bản ghi bị hỏng và đã bị bỏ qua ({why})",
                f"the record is damaged and was left out ({why})", row=row)
