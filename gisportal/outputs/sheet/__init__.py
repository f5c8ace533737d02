"""The parcel information sheet (phiếu thông tin thửa đất): content, map, PDF.

`build_sheet` makes the one content both answers show; `render_pdf` lays out the page's
HTML as a PDF with no network access. The web layer (`gisportal.web.sheet`) only
renders the template and answers.
"""

from gisportal.outputs.sheet.content import SheetContent, build_sheet, today_in_vietnam
from gisportal.outputs.sheet.pdf import render_pdf
from gisportal.outputs.sheet.strings import TEXT

__all__ = ["TEXT", "SheetContent", "build_sheet", "render_pdf", "today_in_vietnam"]
