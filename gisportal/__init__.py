"""gisportal: land-use planning publisher for Vietnamese provinces (Lâm Đồng first).

The package reads as the data flow (docs/design.md, "The house"): ``base`` (errors,
text, settings, seeds, CRS, models) → ``pipeline`` (read, normalise, validation,
repair) → ``store`` (versions, catalogue, the data home) → ``outputs`` (tiles, export,
OGC, compare, privacy) → ``accounts`` → ``services`` (ingest, publish workflow,
decisions, look-up, search, demo) → ``jobs`` → ``web`` and ``cli``. No module imports
from a later floor. This file holds only the version, so ``import gisportal.<module>``
loads nothing else (no Flask for the CLI and the job worker).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gisportal")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
