"""The approval decision of a land-use plan: number, date, authority and signed PDF.

A 2021–2030 district plan becomes law by a decision of the provincial People's
Committee ("Quyết định số 1234/QĐ-UBND ngày 30/6/2023 của UBND tỉnh Lâm Đồng"). A plan
version is published only once its decision is entered (:mod:`gisportal.services.workflow`), and
residents see the decision on every look-up and parcel sheet.

The decision is kept in the plan version's meta under the stable key ``decision``::

    {"number": "1234/QĐ-UBND", "date": "2023-06-30", "authority": "UBND tỉnh Lâm Đồng",
     "pdf_sha256": "<hex>", "pdf_name": "QD-1234.pdf"}

(:func:`gisportal.services.lookup._plan_info` reads ``number``, ``date`` and ``authority``; the
demo province writes the same keys without a PDF). The signed PDF is stored once by
content in the decision area (`gisportal.store.home.DataHome.decision_area`: the data
home's ``decisions/`` folder, or ``<prefix>/decisions/`` in S3), key ``<sha256>.pdf``,
written atomically; the same PDF attached twice is stored once.

Input is checked the way a clerk would: the number must look like a Vietnamese decision
number but spacing, dashes and a missing "Đ" are forgiven; the date may be written
``2023-06-30``, ``30/6/2023`` or "ngày 30 tháng 6 năm 2023" but not lie in the future
nor before the plan period; the PDF must be a PDF (magic bytes ``%PDF-``, ``%%EOF`` at
its end), not a photo or a renamed program, and under ``max_decision_bytes``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

from gisportal.base.errors import InputError, NotFoundError, StoreError, UsageError
from gisportal.base.files import safe_file_name, save_stream
from gisportal.base.settings import load_settings
from gisportal.base.text import human_size, nfc
from gisportal.store.base import Store, Version
from gisportal.store.home import DataHome, scratch_prefix

__all__ = [
    "DECIDED_KINDS",
    "DECISION_KEY",
    "PLAN_PERIOD",
    "Decision",
    "AttachResult",
    "attach_decision",
    "decision_of",
    "parse_authority",
    "parse_date",
    "parse_number",
    "pdf_key",
    "pdf_path",
    "store_pdf",
]

#: The key of the version meta that holds the decision.
DECISION_KEY = "decision"
#: The planning period the decisions approve: none can be dated before its first year.
PLAN_PERIOD = (2021, 2030)
#: Vietnam's time zone (no daylight saving), for "not in the future".
VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")

#: "%PDF-1.7" must start within this many bytes (what PDF readers tolerate).
_HEADER_WINDOW = 1024
#: "%%EOF" must appear within this many bytes of the end (incremental saves, signatures
#: and trailing newlines put a little after the last one).
_TRAILER_WINDOW = 2048
_SHA256 = re.compile(r"[0-9a-f]{64}")

_NUMBER = re.compile(
    r"(?P<n>[0-9]{1,6})(?:/(?P<year>[0-9]{4}))?/QĐ-(?P<issuer>[0-9A-Za-zĐđ]+(?:-[0-9A-Za-zĐđ]+)*)")
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_DATE_ISO = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_DATE_VN = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})")
_DATE_WORDS = re.compile(r"(?:ngày\s*)?([0-9]{1,2})\s*tháng\s*([0-9]{1,2})\s*năm\s*([0-9]{4})",
                         re.IGNORECASE)

#: What a file that is not a PDF most likely is, by its first bytes.
_NOT_PDF = (
    (b"MZ", "a Windows program (.exe)"),
    (b"\x7fELF", "a program"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG photo"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"PK\x03\x04", "a zip archive or a Word/Excel document (.docx, .xlsx)"),
    (b"\xd0\xcf\x11\xe0", "a Word/Excel document (.doc, .xls)"),
    (b"{\\rtf", "an RTF document"),
    (b"Rar!", "a RAR archive"),
)
_IMAGES = ("PNG", "JPEG", "GIF", "TIFF")


#: Layers approved by a decision: a district's land-use plan, and a planning project's
#: lots (the decision approving a construction or urban plan approves its drawing; its red
#: lines are published with it, under the same decision).
DECIDED_KINDS: tuple[str, ...] = ("plan", "zoning_lots")
#: The earliest decision year of a construction or urban plan still in force: general
#: plans of towns approved in the late 1990s are still the plan of some (their
#: adjustments cite them), unlike land-use plans, which have a period.
PROJECT_DECISIONS_SINCE = 1995


@dataclass(frozen=True)
class Decision:
    """An approval decision as stored in a plan version's meta."""

    number: str
    date: str
    authority: str
    pdf_sha256: str | None = None
    pdf_name: str | None = None

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        """"1234/QĐ-UBND ngày 30/06/2023 của UBND tỉnh Lâm Đồng", as decisions are cited."""
        y, m, d = self.date.split("-")
        return f"{self.number} ngày {d}/{m}/{y} của {self.authority}"


@dataclass(frozen=True)
class AttachResult:
    """What `attach_decision` did, for the audit record: the version and the decision
    it had before (None when it had none)."""

    version: Version
    decision: Decision
    previous: Decision | None
    pdf_stored: bool


# --------------------------------------------------------------------------- fields


def parse_number(text: Any) -> str:
    """The decision number in its usual spelling, e.g. ``1234/QĐ-UBND``.

    Forgiven: surrounding text "Số:" , spaces around ``/`` and ``-``, en dashes,
    ``QD``/``Qđ`` for ``QĐ``, decomposed accents. Kept as written: the issuer
    (``UBND``, ``BTNMT``, ``TTg``...). A year part is allowed (``45/2023/QĐ-UBND``).

    Raises
    ------
    UsageError
        Empty, or not shaped like ``<number>/QĐ-<issuer>``.
    """
    raw = nfc(str(text or "")).strip()
    value = _DASHES.sub("-", raw)
    value = re.sub(r"^(?:số|so)\s*:?\s*", "", value, flags=re.IGNORECASE)
    value = re.sub(r"\s*([/-])\s*", r"\1", value)
    value = re.sub(r"/Q[DĐ]-", "/QĐ-", value, flags=re.IGNORECASE)
    if not value:
        raise UsageError("the decision number is missing", where="decision number",
                         fix="Enter the number as printed on the decision, e.g. 1234/QĐ-UBND")
    if not _NUMBER.fullmatch(value) or len(value) > 60:
        raise UsageError(f"{raw!r} does not look like a decision number", where="decision number",
                         fix="Write it as on the decision: number/QĐ-issuer, e.g. "
                             "1234/QĐ-UBND or 45/2023/QĐ-UBND", code="DECISION-NUMBER")
    return value


def parse_date(value: Any, *, today: dt.date | None = None,
               earliest: int | None = None) -> str:
    """The decision date as ISO ``YYYY-MM-DD``.

    Accepts a `datetime.date`, ``2023-06-30``, ``30/6/2023`` (also with ``.`` or ``-``,
    day first as Vietnamese write it) and "ngày 30 tháng 6 năm 2023".

    Raises
    ------
    UsageError
        Not a date, a date in the future (Vietnam time), or before the plan period.
    """
    today = today or dt.datetime.now(VIETNAM_TZ).date()
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        day = value
    else:
        text = nfc(str(value or "")).strip()
        if not text:
            raise UsageError("the decision date is missing", where="decision date",
                             fix="Enter the date printed on the decision, e.g. 30/06/2023")
        day = None
        for pattern, order in ((_DATE_ISO, (0, 1, 2)), (_DATE_VN, (2, 1, 0)),
                               (_DATE_WORDS, (2, 1, 0))):
            m = pattern.fullmatch(text)
            if m:
                parts = [int(g) for g in m.groups()]
                try:
                    day = dt.date(parts[order[0]], parts[order[1]], parts[order[2]])
                except ValueError:
                    raise UsageError(f"{text!r} is not a real date", where="decision date",
                                     fix="Check the day and the month (day first: "
                                         "30/06/2023)", code="DECISION-DATE") from None
                break
        if day is None:
            raise UsageError(f"{text!r} is not a date", where="decision date",
                             fix="Write it as 30/06/2023 or 2023-06-30", code="DECISION-DATE")
    if day > today:
        raise UsageError(f"the decision date {day.isoformat()} is in the future",
                         where="decision date",
                         fix="Enter the date the decision was signed; a plan is published "
                             "after its approval", code="DECISION-DATE")
    if earliest is not None:
        if day < dt.date(earliest, 1, 1):
            raise UsageError(f"the decision date {day.isoformat()} is before {earliest}",
                             where="decision date",
                             fix="Check the year: plans approved before then are not in "
                                 "force", code="DECISION-DATE")
        return day.isoformat()
    first = dt.date(PLAN_PERIOD[0], 1, 1)
    if day < first:
        raise UsageError(
            f"the decision date {day.isoformat()} is before the "
            f"{PLAN_PERIOD[0]}–{PLAN_PERIOD[1]} plan period", where="decision date",
            fix=f"A plan for {PLAN_PERIOD[0]}–{PLAN_PERIOD[1]} is approved in "
                f"{PLAN_PERIOD[0]} or later: check the year", code="DECISION-DATE")
    return day.isoformat()


def parse_authority(text: Any) -> str:
    """The approving authority, e.g. "UBND tỉnh Lâm Đồng": NFC, spaces collapsed."""
    value = " ".join(nfc(str(text or "")).split())
    if not value:
        raise UsageError("the approving authority is missing", where="decision authority",
                         fix="Enter who signed the decision, e.g. UBND tỉnh Lâm Đồng")
    if len(value) < 3 or len(value) > 200 or not any(ch.isalpha() for ch in value):
        raise UsageError(f"{value!r} is not the name of an authority",
                         where="decision authority",
                         fix="Enter who signed the decision, e.g. UBND tỉnh Lâm Đồng",
                         code="DECISION-AUTHORITY")
    return value


# --------------------------------------------------------------------------- the PDF


def pdf_key(sha256: str) -> str:
    """The decision-area key of the PDF with this sha256 (``<sha>.pdf``).

    Raises
    ------
    NotFoundError
        Not 64 lowercase hex digits (a request path can name anything).
    """
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise NotFoundError(f"{sha256!r} is not a decision PDF id", where="decision PDF",
                            fix="Use the pdf_sha256 of a stored decision", code="PDF-UNKNOWN")
    return DataHome.decision_key(sha256)


def pdf_path(home: str | os.PathLike[str], sha256: str) -> Path:
    """Where the PDF with this sha256 is (or would be) stored in a folder decision area:
    ``decisions/<sha>.pdf`` (embedded mode; with S3 use `pdf_key` and the area)."""
    pdf_key(sha256)
    return DataHome.at(home).decision_file(sha256)


def _not_pdf(head: bytes, label: str) -> InputError:
    looks = next((what for magic, what in _NOT_PDF if head.startswith(magic)), None)
    if looks and any(kind in looks for kind in _IMAGES):
        fix = ("Scan the signed decision to PDF (scanners and phone scanner apps can save "
               "as PDF) and upload the PDF")
    else:
        fix = "Upload the signed decision as a PDF file (.pdf)"
    what = f"the file is {looks}, not a PDF" if looks else \
        "the file is not a PDF (it does not start with %PDF-)"
    return InputError(what, where=label, fix=fix, code="PDF-NOT-PDF")


def store_pdf(home: str | os.PathLike[str], pdf: bytes | BinaryIO | str | os.PathLike[str],
              *, name: str = "decision.pdf",
              max_bytes: int | None = None) -> tuple[str, bool]:
    """Check a decision PDF and store it by content; return (sha256, newly stored).

    The file is streamed to a temporary file in the node's scratch while it is hashed
    and measured, checked, flushed to disk, then put in the decision area as
    ``<sha256>.pdf`` (a rename into a folder area, a PUT to S3: atomic either way); if
    that PDF is stored already the copy is dropped. A reader never sees a partial PDF.

    Raises
    ------
    InputError
        Empty, over `max_bytes` (default: the ``max_decision_bytes`` setting), not a
        PDF (what it looks like instead is said), or cut off (no ``%%EOF``).
    """
    label = nfc(str(name or "decision.pdf"))
    max_bytes = int(load_settings()["max_decision_bytes"] if max_bytes is None else max_bytes)
    data_home = DataHome.at(home)
    area = data_home.decision_area
    tmp = data_home.scratch / f"{scratch_prefix('pdf')}{uuid.uuid4().hex}.pdf"
    if isinstance(pdf, bytes | bytearray):
        stream: BinaryIO = BytesIO(bytes(pdf))
        close = False
    elif isinstance(pdf, str | os.PathLike):
        stream = open(pdf, "rb")  # noqa: SIM115 - closed in the finally below
        close = True
    else:
        stream, close = pdf, False
    digest = hashlib.sha256()
    seen = {"head": b"", "tail": b""}

    def watch(chunk: bytes) -> None:
        if len(seen["head"]) < _HEADER_WINDOW:
            seen["head"] += chunk[:_HEADER_WINDOW - len(seen["head"])]
        seen["tail"] = (seen["tail"] + chunk)[-_TRAILER_WINDOW:]
        digest.update(chunk)

    def too_big() -> InputError:
        return InputError(
            f"the PDF is over the {human_size(max_bytes)} limit", where=label,
            fix="Scan at a lower resolution (200 dpi black and white is enough for a "
                "decision) or ask the administrator to raise max_decision_bytes "
                "(GISPORTAL_MAX_DECISION_BYTES)", code="PDF-TOO-BIG")

    try:
        size = save_stream(stream, tmp, max_bytes=max_bytes, label=label, too_big=too_big,
                           on_chunk=watch)
        if size == 0:
            raise InputError("the PDF is empty (0 bytes)", where=label,
                             fix="Upload the file again; the upload was cut off",
                             code="PDF-EMPTY")
        if not re.search(rb"%PDF-[12]\.[0-9]", seen["head"]):
            raise _not_pdf(seen["head"], label)
        if b"%%EOF" not in seen["tail"]:
            raise InputError("the PDF is cut off (it has no %%EOF end marker)",
                             where=label, fix="Upload the file again, or save it again "
                             "from the scanner or PDF software", code="PDF-TRUNCATED")
        sha = digest.hexdigest()
        key = pdf_key(sha)
        if area.exists(key):
            return sha, False
        area.put_file(key, tmp, move=True)
        return sha, True
    finally:
        tmp.unlink(missing_ok=True)
        if close:
            stream.close()


# --------------------------------------------------------------------------- on versions


def decision_of(version: Version) -> Decision | None:
    """The decision attached to a version, or None.

    Tolerant of what older code wrote: the demo province's decisions have no PDF, and a
    ``decision`` of ``None`` or without a number means none.
    """
    raw = version.meta.get(DECISION_KEY)
    if not isinstance(raw, Mapping) or not raw.get("number") or not raw.get("date"):
        return None
    return Decision(number=str(raw["number"]), date=str(raw["date"]),
                    authority=str(raw.get("authority") or ""),
                    pdf_sha256=raw.get("pdf_sha256"), pdf_name=raw.get("pdf_name"))


def attach_decision(store: Store, version_id: int, *, number: Any, date: Any, authority: Any,
                    pdf: bytes | BinaryIO | str | os.PathLike[str] | None = None,
                    pdf_name: str | None = None, home: str | os.PathLike[str] | None = None,
                    settings: dict[str, Any] | None = None,
                    today: dt.date | None = None) -> AttachResult:
    """Check a decision and attach it to a plan version (``meta["decision"]``).

    Only the catalogue changes (`Store.update_meta`), so this may run in the web
    process. Attaching again replaces the decision (a typo corrected); without a new
    `pdf`, the version's current PDF is kept.

    Parameters
    ----------
    pdf
        The signed decision: bytes, a binary file object (read in chunks) or a path.
        Required unless the version already has a PDF.
    home
        The data home for ``decisions/``; default the store's.

    Raises
    ------
    StoreError
        The version is not a plan, or has validation errors (it can never be
        published, so it cannot be approved).
    UsageError, InputError
        A field or the PDF is not acceptable (the message says which and why).
    """
    version = store.version(version_id)
    if version.kind not in DECIDED_KINDS:
        raise StoreError(f"version {version.id} is a {version.kind} layer; only a plan (or a "
                         "planning project's lots) has an approval decision",
                         where=f"version {version.id}",
                         fix="Attach the decision to the plan version it approves",
                         code="DECISION-NOT-PLAN")
    if version.has_errors:
        raise StoreError(f"version {version.id} has validation errors and can never be "
                         "published", where=f"district {version.district}, plan",
                         fix="Upload a corrected plan, then attach the decision to it",
                         code="DECISION-HAS-ERRORS")
    earliest = PROJECT_DECISIONS_SINCE if version.project is not None else None
    fields = (parse_number(number), parse_date(date, today=today, earliest=earliest),
              parse_authority(authority))
    previous = decision_of(version)
    folder = DataHome.at(home) if home is not None else store.home
    stored = False
    if pdf is not None:
        limit = int((settings or load_settings())["max_decision_bytes"])
        sha, stored = store_pdf(folder, pdf, name=pdf_name or "decision.pdf", max_bytes=limit)
        given = pdf_name or (Path(pdf).name if isinstance(pdf, str | os.PathLike) else None)
        name = safe_file_name(given, default="decision.pdf")
    elif previous is not None and previous.pdf_sha256:
        sha, name = previous.pdf_sha256, previous.pdf_name
    else:
        raise UsageError("the signed decision PDF is missing", where="decision PDF",
                         fix="Attach the scanned, signed decision as a PDF file",
                         code="DECISION-NO-PDF")
    decision = Decision(*fields, pdf_sha256=sha, pdf_name=name)
    updated = store.update_meta(version.id, {DECISION_KEY: decision.to_meta()})
    return AttachResult(updated, decision, previous, stored)
