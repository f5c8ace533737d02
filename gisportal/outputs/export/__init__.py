"""Export packages for the ministries' national planning portals (``gisportal export``).

:func:`export_package` writes one zip holding a district's published layers as a
GeoPackage (VN-2000 TM-3), zipped Shapefiles (UTF-8, ``.prj`` with the datum shift),
RFC 7946 GeoJSON (WGS 84), ISO 19139 metadata, ``fields.csv`` and ``manifest.json``.
:func:`export_project_package` writes the same for a planning project (its lots, red
lines and boundary), with its approving decision and documents (PDFs), for the Ministry
of Construction's portal. The CLI and the staff download (``web/export.py``) are thin
wrappers over them.
"""

from gisportal.outputs.export.package import ExportResult, LayerExport, check_output, export_package
from gisportal.outputs.export.project import export_project_package

__all__ = ["ExportResult", "LayerExport", "check_output", "export_package",
           "export_project_package"]
