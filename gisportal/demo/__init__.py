"""A deterministic generator of a plausible synthetic Lâm Đồng for the demo portal.

The province since 2025-07-01 (former Lâm Đồng, Đắk Nông and Bình Thuận): its 30 plan
districts are grown around their real seats (no real boundary is copied; Phú Quý an
island), cut into their real former communes, surveyed into cadastral parcels (dense
towns, fields, forest plots, roads and rivers) and given a 2021–2030 land-use plan.
Each district is returned as GeoDataFrames in the zone its offices survey in (EPSG:5899,
TM-3 107°45′, for former Lâm Đồng; EPSG:9218, 108°30′, for former Đắk Nông and Bình
Thuận); nothing is written anywhere.
"""

from .generate import (
    DemoDistrict,
    generate_district,
    generate_province,
    iter_province,
    province_outline,
)

__all__ = ["DemoDistrict", "generate_district", "generate_province", "iter_province",
           "province_outline"]
