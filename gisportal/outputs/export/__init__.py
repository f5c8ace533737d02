"""Export packages for the ministry's national planning portal (``gisportal export``).

:func:`export_package` writes one zip holding a district's published layers as a
GeoPackage (VN-2000 TM-3), zipped Shapefiles (UTF-8, ``.prj`` with the datum shift),
RFC 7946 GeoJSON (WGS 84), ISO 19139 metadata, ``fields.csv`` and ``manifest.json``.
The CLI and the staff download (``web/export.py``) are thin wrappers over it.
"""

from gisportal.outputs.export.package import ExportResult, LayerExport, check_output, export_package

__all__ = ["ExportResult", "LayerExport", "check_output", "export_package"]
