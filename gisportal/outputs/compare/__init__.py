"""Comparing two versions of a layer (a plan adjustment, a corrected cadastre).

`compare_versions` pairs the features of two versions by key, then by geometry, and
says which were added, removed, reshaped, renumbered or had their land use changed,
with the m² per land-use code before and after; `cached_comparison` keeps results for
the web pages; `default_pair` picks what residents see first (published now against
published before).
"""

from __future__ import annotations

from gisportal.outputs.compare.cache import cached_comparison
from gisportal.outputs.compare.engine import DEFAULT_IOU_THRESHOLD, compare_versions
from gisportal.outputs.compare.pairs import (
    PUBLIC_STATUSES,
    check_pair,
    default_pair,
    parse_version_id,
    public_versions,
)
from gisportal.outputs.compare.result import FLAGS, TYPE_COLORS, TYPES, Comparison

__all__ = ["DEFAULT_IOU_THRESHOLD", "FLAGS", "PUBLIC_STATUSES", "TYPES", "TYPE_COLORS",
           "Comparison", "cached_comparison", "check_pair", "compare_versions",
           "default_pair", "parse_version_id", "public_versions"]
