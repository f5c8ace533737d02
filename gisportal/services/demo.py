"""Build, validate and publish the demo province through the real pipeline.

The generator (:mod:`gisportal.demo`) makes synthetic layers; this module writes them
out as a planner would send them — parcels as a GeoPackage with the field names of
the national cadastral database, the plan as FlatGeobuf, boundaries as GeoJSON in
WGS 84 — and ingests each file with :func:`gisportal.services.ingest.ingest_file`. So the demo
exercises reading, field mapping, CRS transformation, validation and publishing
exactly as real uploads do. Parcels and plan are written in the district's own survey
zone, the CRS the generated frames carry (EPSG:9218 for former Đắk Nông and Bình
Thuận, EPSG:5899 for former Lâm Đồng), declared in the files as offices declare it; the
store reads that declaration and reprojects to its grid. Commune codes are the real
former communes', as ``seeds/communes.csv`` lists them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gisportal.base import seeds
from gisportal.demo import generate_province
from gisportal.demo.annual import generate_annual_plan
from gisportal.demo.rand import rng_for
from gisportal.services.ingest import IngestResult, ingest_file
from gisportal.store.base import Store

__all__ = ["DEMO_USER", "build_demo", "DemoResult", "PARCEL_FIELD_NAMES"]

DEMO_USER = "demo"

#: Canonical parcel field → the name the national land database uses.
PARCEL_FIELD_NAMES = {"commune": "MaXa", "sheet": "SoHieuToBanDo", "parcel": "SoThuTuThua",
                      "area_m2": "DienTich", "land_use": "KyHieuMucDichSuDung",
                      "owner": "TenChu", "address": "DiaChiThua"}
PLAN_FIELD_NAMES = {"zone_id": "MaVung", "land_use": "MaLoaiDat", "commune": "MaXa"}


@dataclass
class DemoResult:
    district: str
    results: dict[str, IngestResult]


def _decision(code: str) -> dict[str, str] | None:
    """A clearly fictitious approval decision for districts whose plan is approved."""
    status = seeds.district_status().get(code)
    if status is None or status.plan_status != "approved":
        return None
    return {"number": f"DEMO-{code}/QĐ-UBND", "date": "2023-06-30",
            "authority": "Ủy ban nhân dân tỉnh Lâm Đồng (dữ liệu minh họa / demo data)"}


def _boundary_frame(d) -> gpd.GeoDataFrame:
    unit = seeds.district(d.code)
    rows = [{"Cap": "district", "Ma": d.code, "Ten": unit.name, "geometry": d.boundary}]
    for c in d.communes.itertuples():
        rows.append({"Cap": "commune", "Ma": c.code, "Ten": c.name, "geometry": c.geometry})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=d.communes.crs).to_crs(4326)


#: The year of the demo's annual land-use plans (kế hoạch sử dụng đất hằng năm).
ANNUAL_YEAR = 2026


def build_demo(store: Store, *, parcels_per_district: int = 2000,
               districts: Sequence[str] | None = None, seed: int = 68,
               progress: Callable[[str, str], None] | None = None) -> list[DemoResult]:
    """Generate the demo province and publish every layer of every district.

    ``progress(district, stage)`` is called as work advances (for a progress bar).
    Layers are published only when they validate without errors (the generator makes
    clean data, so any error here is a bug worth seeing).
    """
    out: list[DemoResult] = []
    generated = generate_province(parcels_per_district, seed=seed, districts=districts)
    with tempfile.TemporaryDirectory(prefix="gisportal-demo-") as tmp:
        for d in generated:
            if progress:
                progress(d.code, "write")
            base = Path(tmp) / d.code
            base.mkdir()
            parcels = d.parcels.rename(columns=PARCEL_FIELD_NAMES)
            ppath = base / f"thua_dat_{d.code}.gpkg"
            parcels.to_file(ppath, layer="thua_dat", driver="GPKG")
            plan = d.plan.rename(columns=PLAN_FIELD_NAMES)
            qpath = base / f"quy_hoach_{d.code}.fgb"
            plan.to_file(qpath, driver="FlatGeobuf")
            bpath = base / f"ranh_gioi_{d.code}.geojson"
            _boundary_frame(d).to_file(bpath, driver="GeoJSON")
            # This year's annual land-use plan: what residents check before buying land.
            apath = base / f"ke_hoach_{ANNUAL_YEAR}_{d.code}.gpkg"
            generate_annual_plan(d.plan, ANNUAL_YEAR, rng_for(seed, "annual", d.code),
                                 commune_names=dict(zip(d.communes.code, d.communes.name,
                                                        strict=True))
                                 ).to_file(apath, driver="GPKG")
            results: dict[str, IngestResult] = {}
            status = seeds.district_status().get(d.code)
            for kind, path, meta in (
                ("boundary", bpath, {}),
                ("parcels", ppath, {"demo": True}),
                ("plan", qpath, {"demo": True, "decision": _decision(d.code),
                                 "plan_status": status.plan_status if status else None}),
                ("annual_plan", apath, {"demo": True}),
            ):
                if progress:
                    progress(d.code, kind)
                # Plans not yet approved are shown as what they are: drafts for comment.
                results[kind] = ingest_file(
                    store, path, kind, d.code, publish=True, user=DEMO_USER, meta=meta,
                    consultation=kind == "plan" and meta.get("decision") is None)
            out.append(DemoResult(d.code, results))
    return out


def demo_summary(results: list[DemoResult]) -> pd.DataFrame:
    """One row per district and kind: version, features, published, errors."""
    rows = []
    for r in results:
        for kind, res in r.results.items():
            rows.append({"district": r.district, "kind": kind, "version": res.version.id,
                         "features": res.version.feature_count, "published": res.published,
                         "errors": res.report.count("error"),
                         "warnings": res.report.count("warning")})
    return pd.DataFrame(rows)
