"""Comparing two versions of a layer (a plan adjustment, a corrected cadastre).

`compare_versions` pairs the features of two versions by key, then by geometry, and
says which were added, removed, reshaped, renumbered or had their land use changed
(for a planning project's lots: their function, and their indicators), with the m² per
land-use code (per function) before and after; `cached_comparison` keeps results for
the web pages; `default_pair` picks what residents see first (published now against
published before).
"""

from __future__ import annotations

from gisportal.outputs.compare.cache import cached_comparison
from gisportal.outputs.compare.engine import (
    DEFAULT_IOU_THRESHOLD,
    INDICATOR_FIELDS,
    compare_versions,
)
from gisportal.outputs.compare.pairs import (
    PUBLIC_STATUSES,
    check_pair,
    default_pair,
    layer_versions,
    parse_version_id,
    public_versions,
)
from gisportal.outputs.compare.result import (
    FLAGS,
    TYPE_COLORS,
    TYPES,
    Comparison,
    flags_of,
    types_of,
)

__all__ = ["DEFAULT_IOU_THRESHOLD", "FLAGS", "INDICATOR_FIELDS", "PUBLIC_STATUSES", "TYPES",
           "TYPE_COLORS", "Comparison", "cached_comparison", "check_pair", "compare_versions",
           "default_pair", "flags_of", "layer_versions", "parse_version_id",
           "public_versions", "types_of"]
