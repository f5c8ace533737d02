"""The validation report of a job, saved next to its upload for the review page.

Three files in ``uploads/<job id>/``: ``report.json`` (the ``validate --format json``
document: summary, read, findings), ``report.geojson`` (one feature per located
finding, for the review map) and ``report.html`` (the self-contained page of
``validate --format html``). Each is written to a temporary name and renamed, so the
review page never serves half a report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd

from gisportal.base.findings import Report
from gisportal.outputs.report_html import MAX_LAYER_FEATURES_ON_MAP, report_html
from gisportal.store.home import DataHome

__all__ = ["write", "MAX_LAYER_FEATURES_ON_MAP"]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write(home: Path, job_id: int, report: Report,
          layer: gpd.GeoDataFrame | None = None) -> dict[str, str]:
    """Write the three report files; their paths relative to the data home.

    `layer` (the checked features, in any CRS) is drawn under the findings on the HTML
    map when it is small enough; None leaves it out.
    """
    folder = DataHome.at(home).upload_folder(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "json": ("report.json", json.dumps(report.to_dict(), ensure_ascii=False, indent=1)),
        "geojson": ("report.geojson", json.dumps(report.to_geojson(), ensure_ascii=False)),
        "html": ("report.html", report_html(report, layer)),
    }
    out = {}
    for key, (name, text) in texts.items():
        _write_atomic(folder / name, text)
        out[key] = (folder / name).relative_to(home).as_posix()
    return out
