"""Approval decisions: the fields a clerk types, the signed PDF, and the plan's meta.

PDFs are real bytes (a minimal PDF document, a PNG header, a Windows program header);
the store is a real GeoPackage store in a temporary data home.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import unicodedata

import geopandas as gpd
import pytest
import shapely

from gisportal.base.errors import InputError, NotFoundError, StoreError, UsageError
from gisportal.services import decisions
from gisportal.services import lookup as lk
from gisportal.services.decisions import (
    Decision,
    attach_decision,
    decision_of,
    parse_authority,
    parse_date,
    parse_number,
    pdf_path,
    store_pdf,
)
from tests.conftest import DUC_TRONG_XY

#: A minimal, well-formed PDF: header, one object, trailer, end marker.
PDF = (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
       b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
       b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
TODAY = dt.date(2024, 5, 1)


def leftovers(home) -> list[str]:
    folder = home / "decisions"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) \
        if folder.exists() else []


# -- the PDF -----------------------------------------------------------------------------------


def test_a_pdf_is_stored_once_by_its_sha256(home):
    sha, new = store_pdf(home, PDF, name="QĐ 1234.pdf")
    assert sha == hashlib.sha256(PDF).hexdigest() and new is True
    assert pdf_path(home, sha) == home / "decisions" / f"{sha}.pdf"
    assert pdf_path(home, sha).read_bytes() == PDF
    # The same document again, from a file object or a path, is not stored twice.
    assert store_pdf(home, io.BytesIO(PDF)) == (sha, False)
    copy = home / "copy.pdf"
    copy.write_bytes(PDF)
    assert store_pdf(home, copy) == (sha, False)
    assert [p.name for p in (home / "decisions").iterdir()] == [f"{sha}.pdf"]


def test_a_big_pdf_is_streamed_and_its_limit_is_exact(home):
    big = PDF.replace(b"trailer", b"%" + b"x" * (3 * 1024**2) + b"\ntrailer")
    sha, _ = store_pdf(home, io.BytesIO(big), max_bytes=len(big))
    assert pdf_path(home, sha).stat().st_size == len(big)
    with pytest.raises(InputError) as err:
        store_pdf(home, io.BytesIO(big), name="to.pdf", max_bytes=len(big) - 1)
    assert err.value.code == "PDF-TOO-BIG" and err.value.where == "to.pdf"
    assert "GISPORTAL_MAX_DECISION_BYTES" in err.value.fix
    assert leftovers(home) == []


@pytest.mark.parametrize("content,code,what", [
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\0" * 200, "PDF-NOT-PDF",
     "the file is a Windows program (.exe), not a PDF"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\0" * 200, "PDF-NOT-PDF",
     "the file is a PNG image, not a PDF"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\0" * 200, "PDF-NOT-PDF",
     "the file is a JPEG photo, not a PDF"),
    (b"PK\x03\x04" + b"\0" * 200, "PDF-NOT-PDF",
     "the file is a zip archive or a Word/Excel document (.docx, .xlsx), not a PDF"),
    (b"Quyet dinh 1234", "PDF-NOT-PDF", "the file is not a PDF (it does not start with %PDF-)"),
    (b"", "PDF-EMPTY", "the PDF is empty (0 bytes)"),
    (PDF[:-7], "PDF-TRUNCATED", "the PDF is cut off (it has no %%EOF end marker)"),
])
def test_what_is_not_a_pdf_is_refused_with_what_it_is(home, content, code, what):
    with pytest.raises(InputError) as err:
        store_pdf(home, content, name="quyet_dinh.pdf")
    assert (err.value.code, err.value.what, err.value.where) == (code, what, "quyet_dinh.pdf")
    assert err.value.fix
    assert leftovers(home) == [] and not list((home / "decisions").glob("*.pdf"))


def test_an_image_is_refused_with_the_advice_to_scan_to_pdf(home):
    with pytest.raises(InputError) as err:
        store_pdf(home, b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    assert "Scan the signed decision to PDF" in err.value.fix


def test_pdf_path_takes_only_a_sha256(home):
    for bad in ("../../etc/passwd", "ABC", "g" * 64, None):
        with pytest.raises(NotFoundError):
            pdf_path(home, bad)


# -- the fields -------------------------------------------------------------------------------


@pytest.mark.parametrize("typed,number", [
    ("1234/QĐ-UBND", "1234/QĐ-UBND"),
    ("  1234 / QĐ - UBND ", "1234/QĐ-UBND"),
    ("Số: 1234/QD-UBND", "1234/QĐ-UBND"),
    ("số 1234/qđ–UBND", "1234/QĐ-UBND"),
    (unicodedata.normalize("NFD", "1234/QĐ-UBND"), "1234/QĐ-UBND"),
    ("45/2023/QĐ-UBND", "45/2023/QĐ-UBND"),
    ("326/QĐ-TTg", "326/QĐ-TTg"),
    ("3020/QĐ-UBND-KT", "3020/QĐ-UBND-KT"),
])
def test_decision_numbers_are_forgiven_their_spelling(typed, number):
    assert parse_number(typed) == number


@pytest.mark.parametrize("typed", ["", "   ", "1234", "QĐ-UBND", "1234/UBND", "abc/QĐ-UBND",
                                   "1234/QĐ-", "1234/QĐ-UBND; DROP TABLE versions"])
def test_what_is_not_a_decision_number_is_refused(typed):
    with pytest.raises(UsageError) as err:
        parse_number(typed)
    assert err.value.where == "decision number" and "1234/QĐ-UBND" in err.value.fix


@pytest.mark.parametrize("typed,iso", [
    ("2023-06-30", "2023-06-30"),
    ("30/06/2023", "2023-06-30"),
    ("30/6/2023", "2023-06-30"),
    ("30.6.2023", "2023-06-30"),
    ("ngày 30 tháng 6 năm 2023", "2023-06-30"),
    ("Ngày 30 tháng 06 năm 2023", "2023-06-30"),
    (dt.date(2021, 1, 1), "2021-01-01"),
    ("2024-05-01", "2024-05-01"),  # today
])
def test_decision_dates_in_the_usual_spellings(typed, iso):
    assert parse_date(typed, today=TODAY) == iso


@pytest.mark.parametrize("typed,words", [
    ("2024-05-02", "in the future"),
    ("2020-12-31", "before the 2021–2030 plan period"),
    ("31/02/2023", "not a real date"),
    ("06/30/2023", "not a real date"),  # month first: refused rather than misread
    ("hôm qua", "is not a date"),
    ("", "missing"),
])
def test_impossible_decision_dates_are_refused(typed, words):
    with pytest.raises(UsageError) as err:
        parse_date(typed, today=TODAY)
    assert words in err.value.what and err.value.where == "decision date"


def test_the_future_is_judged_in_vietnam_time():
    today_vn = dt.datetime.now(decisions.VIETNAM_TZ).date()
    assert parse_date(today_vn.isoformat()) == today_vn.isoformat()
    with pytest.raises(UsageError):
        parse_date((today_vn + dt.timedelta(days=1)).isoformat())


def test_authority_is_nfc_and_tidy():
    assert parse_authority("  UBND   tỉnh Lâm Đồng ") == "UBND tỉnh Lâm Đồng"
    assert parse_authority(unicodedata.normalize("NFD", "Ủy ban nhân dân tỉnh Lâm Đồng")) \
        == unicodedata.normalize("NFC", "Ủy ban nhân dân tỉnh Lâm Đồng")
    for bad in ("", "  ", "12", "1234567"):
        with pytest.raises(UsageError):
            parse_authority(bad)


# -- on a plan version -------------------------------------------------------------------------


def _frame(n: int, **columns) -> gpd.GeoDataFrame:
    x0, y0 = DUC_TRONG_XY
    geoms = [shapely.box(x0 + 30 * i, y0, x0 + 30 * i + 30, y0 + 30) for i in range(n)]
    return gpd.GeoDataFrame({k: [v] * n for k, v in columns.items()}, geometry=geoms,
                            crs="EPSG:5899")


def add(store, kind: str, *, errors: bool = False):
    columns = {"plan": {"zone_id": "Z1", "land_use": "ODT"},
               "parcels": {"commune": "24778", "sheet": 1, "parcel": 7, "land_use": "ONT",
                           "area_m2": 900.0}}[kind]
    return store.add_version("678", kind, _frame(1 if kind == "parcels" else 3, **columns),
                             source_name=f"{kind}.gpkg", source_sha256="0" * 64,
                             created_by="planner1", has_errors=errors,
                             key_columns=["commune", "sheet", "parcel"] if kind == "parcels"
                             else [])


def test_attach_a_decision_to_a_plan_and_residents_see_it(home, store):
    plan = add(store, "plan")
    done = attach_decision(store, plan.id, number="Số 1234/QD-UBND", date="30/6/2023",
                           authority="UBND tỉnh Lâm Đồng", pdf=io.BytesIO(PDF),
                           pdf_name=r"C:\scan\QĐ 1234.pdf", today=TODAY)
    sha = hashlib.sha256(PDF).hexdigest()
    assert done.previous is None and done.pdf_stored is True
    assert done.version.meta["decision"] == {
        "number": "1234/QĐ-UBND", "date": "2023-06-30", "authority": "UBND tỉnh Lâm Đồng",
        "pdf_sha256": sha, "pdf_name": "QĐ 1234.pdf"}
    assert decision_of(store.version(plan.id)) == done.decision
    assert done.decision.label() == "1234/QĐ-UBND ngày 30/06/2023 của UBND tỉnh Lâm Đồng"
    assert pdf_path(home, sha).read_bytes() == PDF
    # The look-up (and so the parcel sheet) reads it from the published plan.
    store.publish(add(store, "parcels").id, by="t")
    store.publish(plan.id, by="t")
    answer = lk.lookup_key(store, "678", 1, 7, "24778")
    assert answer["plan"]["decision"] == "1234/QĐ-UBND"
    assert (answer["plan"]["date"], answer["plan"]["authority"]) == (
        "2023-06-30", "UBND tỉnh Lâm Đồng")


def test_correcting_a_decision_keeps_its_pdf_and_returns_the_old_one(home, store):
    plan = add(store, "plan")
    first = attach_decision(store, plan.id, number="1243/QĐ-UBND", date="2023-06-30",
                            authority="UBND tỉnh Lâm Đồng", pdf=PDF, today=TODAY)
    fixed = attach_decision(store, plan.id, number="1234/QĐ-UBND", date="2023-06-30",
                            authority="UBND tỉnh Lâm Đồng", today=TODAY)
    assert fixed.previous == first.decision and fixed.pdf_stored is False
    assert fixed.decision.pdf_sha256 == first.decision.pdf_sha256
    assert fixed.decision.pdf_name == "decision.pdf"
    assert store.version(plan.id).meta["decision"]["number"] == "1234/QĐ-UBND"


def test_a_decision_needs_its_pdf_a_plan_and_no_errors(home, store):
    plan = add(store, "plan")
    fields = {"number": "1234/QĐ-UBND", "date": "2023-06-30",
              "authority": "UBND tỉnh Lâm Đồng", "today": TODAY}
    with pytest.raises(UsageError) as err:
        attach_decision(store, plan.id, **fields)
    assert err.value.code == "DECISION-NO-PDF"
    with pytest.raises(StoreError) as err:
        attach_decision(store, add(store, "parcels").id, pdf=PDF, **fields)
    assert err.value.code == "DECISION-NOT-PLAN"
    with pytest.raises(StoreError) as err:
        attach_decision(store, add(store, "plan", errors=True).id, pdf=PDF, **fields)
    assert err.value.code == "DECISION-HAS-ERRORS"
    with pytest.raises(InputError):  # a bad PDF stops it before the meta changes
        attach_decision(store, plan.id, pdf=b"\x89PNG\r\n\x1a\n", **fields)
    with pytest.raises(UsageError):  # so does a bad field, before the PDF is stored
        attach_decision(store, plan.id, pdf=PDF, **{**fields, "date": "2030-01-01"})
    with pytest.raises(NotFoundError):
        attach_decision(store, 999, pdf=PDF, **fields)
    assert "decision" not in store.version(plan.id).meta
    assert not (home / "decisions").exists() or not list((home / "decisions").iterdir())


def test_decisions_written_by_older_code_are_read():
    from gisportal.store.base import Version

    def version(meta):
        return Version(1, "676", "plan", "published", "p.fgb", "0" * 64, 3, False,
                       "2023-07-01T00:00:00Z", "demo", None, None, meta)

    demo = {"number": "DEMO-676/QĐ-UBND", "date": "2023-06-30",
            "authority": "Ủy ban nhân dân tỉnh Lâm Đồng (dữ liệu minh họa / demo data)"}
    assert decision_of(version({"decision": demo})) == Decision(**demo)
    assert decision_of(version({"decision": None})) is None
    assert decision_of(version({})) is None
    assert decision_of(version({"decision": {"number": "", "date": ""}})) is None
