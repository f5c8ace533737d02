"""Formula injection: no CSV the product writes lets a spreadsheet run an uploaded text.

A district's file may name a column ``=1+1`` (or ``@SUM(A1)``, ``+cmd``, ``-2+3``); the
export package's ``fields.csv`` lists every exported column by name, and an office
opens it in Excel. Every CSV cell goes through `gisportal.base.csvsafe`, the one helper the
audit log's CSV uses too; the data files themselves keep the text exactly.
"""

from __future__ import annotations

import csv
import io
import zipfile

import pyogrio
import pytest

from gisportal.accounts import audit
from gisportal.base.csvsafe import csv_cell, csv_row
from gisportal.outputs import privacy
from gisportal.outputs.export import export_package
from gisportal.services.ingest import ingest_file
from tests.conftest import parcel_grid

FORMULA_COLUMN = "=1+1"
FORMULA_VALUE = "@SUM(A1)"


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                                  "=HYPERLINK(\"http://x\")"])
def test_formula_starts_become_text(text):
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value,cell", [
    (None, ""), ("Nguyễn Văn Hùng", "Nguyễn Văn Hùng"), ("1+1", "1+1"), (-5, "-5"),
    (-2.5, "-2.5"), (3, "3"), ({"a": "=x"}, '{"a": "=x"}'), (["-"], '["-"]'),
    ("a=b", "a=b"), ("", ""),
])
def test_other_cells_are_unchanged(value, cell):
    assert csv_cell(value) == cell


def test_csv_row_escapes_each_cell():
    assert csv_row(["=1", 2, None, "@x"]) == ["'=1", "2", "", "'@x"]


def test_audit_csv_uses_the_shared_helper(home):
    """The audit log's CSV escapes through `gisportal.base.csvsafe` (no copy of its own)."""
    assert not hasattr(audit, "_FORMULA_START") and not hasattr(audit, "_cell")
    audit.record(home, "=1+1", "login.failed", ip="10.0.0.1")
    out = io.StringIO(newline="")
    audit.write_csv(home, out)
    rows = list(csv.reader(io.StringIO(out.getvalue().lstrip("\ufeff"))))
    assert rows[1][3] == "'=1+1"


def test_export_fields_csv_escapes_a_formula_column_name(store, tmp_path):
    gdf = parcel_grid(2, 2)
    gdf[FORMULA_COLUMN] = [FORMULA_VALUE] * len(gdf)
    path = tmp_path / "thua_dat.gpkg"
    gdf.to_file(path, driver="GPKG")
    assert pyogrio.read_info(path)["fields"].tolist().count(FORMULA_COLUMN) == 1
    result = ingest_file(store, path, "parcels", "678", publish=True)
    assert result.published, result.report.summary()
    privacy.mark_public(store, result.version.id, [FORMULA_COLUMN], actor="test")
    out = tmp_path / "678.zip"
    export_package(store, "678", out)
    with zipfile.ZipFile(out) as zf:
        text = zf.read("fields.csv").decode("utf-8-sig")
        names = zf.namelist()
        gpkg = next(n for n in names if n.endswith(".gpkg"))
        zf.extract(gpkg, tmp_path / "x")
    rows = list(csv.reader(io.StringIO(text)))
    formula_rows = [r for r in rows if any(FORMULA_COLUMN in cell for cell in r)]
    assert formula_rows, text
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (cell, row)
    header = rows[0]
    row = dict(zip(header, formula_rows[0], strict=True))
    assert row["full_name"] == "'" + FORMULA_COLUMN  # shown as the text =1+1
    assert row["gisportal_column"] == "src:" + FORMULA_COLUMN  # no formula start: as is
    # The data file is not a CSV: the value is kept exactly as uploaded.
    frame = pyogrio.read_dataframe(tmp_path / "x" / gpkg, layer="parcels")
    column = next(c for c in frame.columns if FORMULA_COLUMN in c)
    assert set(frame[column]) == {FORMULA_VALUE}
