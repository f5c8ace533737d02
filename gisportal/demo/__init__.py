"""A deterministic generator of a plausible synthetic Lâm Đồng for the demo portal.

Districts are grown around the real district anchor points (no real boundary is
copied), cut into communes, surveyed into cadastral parcels (dense towns, fields,
forest plots, roads and rivers) and given a 2021–2030 land-use plan. Everything is
returned as GeoDataFrames in EPSG:5899; nothing is written anywhere.
"""

from .generate import DemoDistrict, generate_district, generate_province, province_outline

__all__ = ["DemoDistrict", "generate_district", "generate_province", "province_outline"]
