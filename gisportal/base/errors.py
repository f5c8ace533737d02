"""Errors that stop a run, each carrying what went wrong, where, and how to fix it.

Problems that do not stop a run (a bad feature, an odd value) are findings in the
validation report, not exceptions. An exception here means the input as a whole
cannot be used; the CLI prints it on one line and exits non-zero, the web layer turns
it into a 4xx answer with the same text.
"""

from __future__ import annotations


class GisportalError(Exception):
    """Base of every error gisportal raises on purpose.

    Parameters
    ----------
    what
        One sentence: what is wrong.
    where
        The file, layer, field, row or setting concerned (may be empty).
    fix
        One sentence: what the user can do about it (may be empty).
    code
        Stable machine-readable code, e.g. ``FILE-NOT-ZIP``.
    """

    code = "GISPORTAL-ERROR"
    #: exit status for the CLI; 2 means "the input could not be read" per the contract
    exit_code = 2
    #: HTTP status the web layer answers with
    http_status = 400

    def __init__(self, what: str, *, where: str = "", fix: str = "", code: str | None = None,
                 what_vi: str = "", fix_vi: str = ""):
        self.what = what
        self.where = where
        self.fix = fix
        #: The same in Vietnamese, for errors a resident meets on a public page; a page in
        #: Vietnamese shows these (or a generic Vietnamese sentence), never the English.
        self.what_vi = what_vi
        self.fix_vi = fix_vi
        if code:
            self.code = code
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as the CLI prints it: ``what (where). fix``."""
        text = self.what.rstrip(".")
        if self.where:
            text += f" [{self.where}]"
        text += "."
        if self.fix:
            fix = self.fix.rstrip(".")
            text += " " + fix[:1].upper() + fix[1:] + "."
        return text

    def to_dict(self) -> dict[str, str | None]:
        """JSON form for API answers: ``message`` as the CLI prints it (with the
        ``[where]`` tag, for staff and scripts), and for pages ``message_en`` without the
        tag and ``message_vi`` (None when the error has no Vietnamese text)."""
        return {"code": self.code, "what": self.what, "where": self.where, "fix": self.fix,
                "message": self.one_line(), "message_en": _sentence(self.what, self.fix),
                "message_vi": _sentence(self.what_vi, self.fix_vi) if self.what_vi else None}


def _sentence(what: str, fix: str) -> str:
    """``What. Fix.`` as a page shows it: no tag, each part a capitalised sentence."""
    parts = [p.strip().rstrip(".") for p in (what, fix) if p and p.strip()]
    return " ".join(p[:1].upper() + p[1:] + "." for p in parts)


class InputError(GisportalError):
    """The file or archive given cannot be read as a layer."""

    code = "INPUT-UNREADABLE"


class UnsafeArchiveError(InputError):
    """A zip archive is hostile or too large to unpack safely (zip-slip, bomb, size)."""

    code = "ARCHIVE-UNSAFE"


class EncodingError(InputError):
    """Attribute text cannot be decoded with the encoding chosen or detected."""

    code = "ENCODING-INVALID"


class CRSError(InputError):
    """The coordinate reference system is missing, unknown or does not fit the data."""

    code = "CRS-UNKNOWN"


class UsageError(GisportalError):
    """A command or API call was given arguments that do not fit together."""

    code = "USAGE"


class NotFoundError(GisportalError):
    """A district, version, sheet or parcel that was asked for does not exist."""

    code = "NOT-FOUND"
    exit_code = 1
    http_status = 404


class StoreError(GisportalError):
    """The store refused an operation (publishing a version with errors, a missing version)."""

    code = "STORE-REFUSED"
    exit_code = 1
    http_status = 409


def exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what caused it (``__cause__``, else ``__context__``), at most 20 deep.

    Libraries wrap the error that matters (a full disk inside a GDAL error, an
    allocation failure inside pyarrow's): callers look for it along this chain.
    """
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 20:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen
