"""The plan year of an annual land-use plan: its plausible range and the year of a file.

An annual plan (kế hoạch sử dụng đất hằng năm) lists the works and projects of one year;
offices often send one file per year whose features carry no year at all, the year being
in the file's name or the approving decision. The planner then gives it once for the
whole file (``--year``, the upload form's year box, ``year=`` in ``POST /api/jobs``) and
`give_year` writes it into the features that have none, after normalising and before
validating, so the report says what was given (ANNUAL-YEAR-GIVEN) instead of a missing
required field. Features with their own year keep it: a consolidated file of several
years stays as it is, and a year that differs is reported (ANNUAL-YEAR-DIFFERS).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gisportal.base.errors import UsageError
from gisportal.base.findings import Finding
from gisportal.base.models import layer_model

__all__ = ["KIND", "check_year_option", "give_year", "year_bounds"]

#: The layer kind of annual plans.
KIND = "annual_plan"
#: Example rows named by a layer-wide finding.
_EXAMPLES = 5


def year_bounds() -> tuple[int, int]:
    """(first, last) plausible plan year, from ``layers/annual_plan.json`` (the one place
    the range lives: the option, the check and the demo all read it here)."""
    model = layer_model(KIND)
    return int(model.threshold("year_min")), int(model.threshold("year_max"))


def check_year_option(year: Any, kind: str) -> int | None:
    """The year given for a whole file as an int, None when none was given.

    Raises
    ------
    UsageError
        A year for another kind of layer, or one that is not a whole number within
        `year_bounds` (``26``, ``2026-2027``, ``năm 2026``).
    """
    if year is None or (isinstance(year, str) and not year.strip()):
        return None
    if kind != KIND:
        raise UsageError(f"a plan year is given for annual plans, not for a {kind} layer",
                         where="--year", fix="leave the year out, or upload the file with "
                         f"--kind {KIND}", code="YEAR-NOT-ANNUAL")
    first, last = year_bounds()
    try:
        number = int(str(year).strip())
    except ValueError:
        number = None
    if number is None or not first <= number <= last:
        raise UsageError(f"{str(year)[:40]!r} is not a plan year", where="--year",
                         fix=f"give the year of the annual plan as four digits, {first} to "
                             f"{last} (e.g. --year 2026)", code="YEAR-INVALID")
    return number


def give_year(norm, year: int) -> None:
    """Give ``year`` to the features of ``norm`` (a normalised annual plan) without one.

    Drops the ATTR-REQUIRED-MISSING / ATTR-NULL findings of the year that the given year
    answers, and adds ANNUAL-YEAR-GIVEN (how many features took it) and, when features
    carry other years, ANNUAL-YEAR-DIFFERS. The field mapping is not touched: no source
    column holds the year, and exports must not claim one did.
    """
    frame = norm.frame
    values = frame["year"]
    missing = values.isna().to_numpy(dtype=bool)
    if missing.any():
        frame["year"] = values.fillna(int(year)).astype("Int64")
    # ATTR-TYPE stays: a value that is not a year is the file's error, not a gap.
    norm.findings[:] = [f for f in norm.findings
                        if not (f.rule in ("ATTR-REQUIRED-MISSING", "ATTR-NULL")
                                and f.params.get("field") == "year")]
    if missing.any():
        norm.findings.append(Finding("ANNUAL-YEAR-GIVEN", params={
            "year": int(year), "count": int(missing.sum())}))
    own = frame["year"].to_numpy(dtype="float64", na_value=np.nan)
    differs = np.flatnonzero(~missing & np.isfinite(own) & (own != year))
    if len(differs):
        rows = frame["src_row"].to_numpy()[differs]
        years = sorted({int(v) for v in own[differs]})
        norm.findings.append(Finding("ANNUAL-YEAR-DIFFERS", params={
            "year": int(year), "count": int(len(differs)),
            "years": ", ".join(map(str, years[:10])) + (" …" if len(years) > 10 else ""),
            "examples": ", ".join(str(int(r)) for r in rows[:_EXAMPLES])
            + (" …" if len(rows) > _EXAMPLES else ""),
            "rows": [int(r) for r in rows[:_EXAMPLES]]}))
