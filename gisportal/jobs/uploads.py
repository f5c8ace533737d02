"""Receiving an uploaded layer: saved by `gisportal.base.files` (a safe name, streamed
under a size limit), then checked to be a GIS file before a job is queued for it (the same
sniffing the reader uses, :func:`gisportal.pipeline.read.formats.sniff`), so a planner who picked
the wrong file hears it at once rather than from a failed job.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gisportal.pipeline.read.upload import gis_kind

__all__ = ["check_gis_file", "remove_folder"]

def check_gis_file(path: Path, label: str) -> str:
    """The sniffed format of a saved upload, or the reader's own refusal."""
    return gis_kind(path, label)


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
