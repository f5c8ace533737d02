"""The validation report of a job, saved next to its upload for the review page.

Three files in the upload area under ``<job id>/`` (``uploads/<job id>/`` of the data
home, or of the S3 prefix in production mode): ``report.json`` (the
``validate --format json`` document: summary, read, findings), ``report.geojson`` (one
feature per located finding, for the review map) and ``report.html`` (the
self-contained page of ``validate --format html``). Each is put atomically (a
temporary name renamed in a folder, one PUT to S3), so the review page never serves
half a report, whichever node serves it.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd

from gisportal.base.findings import Report
from gisportal.outputs.report_html import MAX_LAYER_FEATURES_ON_MAP, report_html
from gisportal.store.home import DataHome

__all__ = ["write", "MAX_LAYER_FEATURES_ON_MAP"]


def write(home: Path, job_id: int, report: Report,
          layer: gpd.GeoDataFrame | None = None) -> dict[str, str]:
    """Write the three report files; their paths relative to the data home.

    `layer` (the checked features, in any CRS) is drawn under the findings on the HTML
    map when it is small enough; None leaves it out.
    """
    area = DataHome.at(home).upload_area
    texts = {
        "json": ("report.json", json.dumps(report.to_dict(), ensure_ascii=False, indent=1)),
        "geojson": ("report.geojson", json.dumps(report.to_geojson(), ensure_ascii=False)),
        "html": ("report.html", report_html(report, layer)),
    }
    out = {}
    for which, (name, text) in texts.items():
        key = DataHome.upload_key(job_id, name)
        area.put_bytes(key, text.encode("utf-8"))
        out[which] = DataHome.upload_relative(key)
    return out
