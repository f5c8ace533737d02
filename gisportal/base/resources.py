"""Where the data that ships with gisportal lives: ``layers/``, ``maps/``, ``seeds/``.

In a source checkout (and an editable install) they are top-level folders of the
repository; a wheel carries them inside the package as ``gisportal/_data/<name>``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # gisportal/, not gisportal/base/


@cache
def data_dir(name: str) -> Path:
    """Return the folder ``name`` (``"layers"``, ``"maps"`` or ``"seeds"``)."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"gisportal data folder {name!r} not found next to the package ({_PACKAGE}); "
        "reinstall gisportal"
    )
