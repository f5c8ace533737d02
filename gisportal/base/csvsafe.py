"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Every CSV the product writes (the export package's ``fields.csv``, the audit log) holds
text that came from outside: column names of an uploaded file, typed user names. Excel
and LibreOffice run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=HYPERLINK(...)`` leaks data, ``=cmd|...`` ran commands in old versions), and a
leading tab or carriage return hides such a start from a naive check. OWASP's advice,
followed here: such a cell gets a leading ``'``, which spreadsheets show as text and
hide. Numbers are numbers (``-5`` stays ``-5``): only text is escaped.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_START", "csv_cell", "csv_row"]

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """`value` as the text of one CSV cell, formula starts escaped with ``'``.

    None is an empty cell; a dict or list is its JSON; ints and floats are written as
    numbers, unescaped (``str(-5)`` is a number, not a formula).
    """
    if value is None:
        return ""
    if isinstance(value, numbers.Number):  # int, float, numpy's, Decimal; bool too
        return str(value)
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_row(values: Iterable[Any]) -> list[str]:
    """Each value as :func:`csv_cell` writes it, ready for ``csv.writer.writerow``."""
    return [csv_cell(v) for v in values]
