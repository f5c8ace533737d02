"""The export package of a planning project (issue 15): ``gisportal export --project``,
``export_project_package`` and the staff download, opened as the Ministry of
Construction's staff open it — GDAL's ``ogrinfo``, Debian's QGIS offscreen, the ISO 19139
schemas, ``sha256`` of every member — and every refusal.

One module-wide home (`tests.test_projects_web.build_town`): Đức Trọng's parcels, the
zoning plan of Liên Nghĩa with its lots (one with a personal column nobody marked
public) and red lines published under decision 1234/QĐ-UBND with its PDF, a document
(the explanatory report), and a second project whose lots are only a draft.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from gisportal.base.seeds import UNKNOWN_COLOR, zoning_functions
from gisportal.cli.main import cli
from gisportal.outputs.export import export_project_package
from gisportal.outputs.export.metadata import NS
from gisportal.store import open_store
from gisportal.store import projects as catalogue
from tests.qgis_client import inspect_layers
from tests.test_export import GMD_XSD, _ogrinfo
from tests.test_projects import PDF, PID
from tests.test_projects_web import DRAFT, build_town

#: The project's layers in the package, with their feature counts (lots_frame: 3 lots,
#: lines_frame: a red line and a building line; the boundary is one feature).
COUNTS = {"zoning_lots": 3, "red_lines": 2, "project_area": 1}
LOTS_NATIONAL = ["KyHieuLo", "ChucNang", "DienTich", "MatDoXD", "TangCaoMax", "TangCaoMin",
                 "HeSoSDD", "DanSo"]
LINES_NATIONAL = ["MaChiGioi", "TenDuong", "LoGioi", "MatCat", "LoaiChiGioi"]
#: The lots' investor column: suspected personal, never marked public, so never exported.
INVESTOR = "Ông Nguyễn Văn B"
DOC_PDF = PDF.replace(b"1 0 obj", b"2 0 obj")  # build_town's explanatory report


@pytest.fixture(scope="module")
def town(tmp_path_factory) -> Path:
    home, _ = build_town(tmp_path_factory.mktemp("export-projects"))
    return home


@pytest.fixture(scope="module")
def package(town, tmp_path_factory):
    """The default package of the published project (national names) and its result."""
    out = tmp_path_factory.mktemp("export-projects-out") / "du_an.zip"
    with open_store(town, crs="EPSG:5899") as store:
        result = export_project_package(store, PID, out)
    return out, result


@pytest.fixture(scope="module")
def unpacked(package, tmp_path_factory) -> Path:
    """The package unpacked, each Shapefile zip into ``shp/``."""
    out, _ = package
    folder = tmp_path_factory.mktemp("export-projects-unpacked")
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
    for kind in COUNTS:
        with zipfile.ZipFile(folder / "shapefile" / f"{kind}_{PID}.zip") as zf:
            zf.extractall(folder / "shp")
    return folder


def _manifest(out: Path) -> dict:
    with zipfile.ZipFile(out) as zf:
        return json.loads(zf.read("manifest.json"))


# --------------------------------------------------------------------------- contents


def test_package_members_and_manifest(package):
    out, result = package
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
    expected = {f"{PID}.gpkg", "fields.csv", "manifest.json", "decision/QD-1234.pdf",
                "documents/thuyet_minh.pdf"}
    for kind in COUNTS:
        expected |= {f"shapefile/{kind}_{PID}.zip", f"shapefile/towgs84/{kind}_{PID}.prj",
                     f"geojson/{kind}_{PID}.geojson", f"metadata/{kind}_{PID}.xml"}
    assert names == expected
    manifest = _manifest(out)
    assert manifest["project"]["id"] == PID
    assert manifest["project"]["name"] == "Quy hoạch phân khu đô thị Liên Nghĩa"
    assert (manifest["project"]["level"], manifest["project"]["scale"]) == ("zoning", "1/2000")
    assert manifest["district"]["code"] == "678"
    assert manifest["crs"].startswith("EPSG:5899")
    assert {layer["kind"]: layer["feature_count"] for layer in manifest["layers"]} == COUNTS
    fields = {layer["kind"]: layer["fields"] for layer in manifest["layers"]}
    assert fields["zoning_lots"] == LOTS_NATIONAL
    assert fields["red_lines"] == LINES_NATIONAL
    assert fields["project_area"][:2] == ["MaDoAn", "TenDoAn"]
    decision = manifest["decision"]
    assert (decision["number"], decision["date"]) == ("1234/QĐ-UBND", "2019-06-30")
    assert decision["pdf"] == "decision/QD-1234.pdf"
    [doc] = manifest["documents"]
    assert (doc["kind"], doc["title"], doc["path"]) == (
        "report", "Thuyết minh tổng hợp", "documents/thuyet_minh.pdf")
    assert result.project == PID and result.warnings == []
    assert [layer.kind for layer in result.layers] == list(COUNTS)


def test_manifest_hashes_match_every_file_and_the_pdfs_are_the_stored_ones(package, town):
    out, _ = package
    manifest = _manifest(out)
    with zipfile.ZipFile(out) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(members) - {"manifest.json"}
    for path, entry in listed.items():
        assert entry["size"] == len(members[path]), path
        assert entry["sha256"] == hashlib.sha256(members[path]).hexdigest(), path
    # The PDFs are the signed decision and the report, byte for byte, under the sha256
    # gisportal keeps them by.
    assert members["decision/QD-1234.pdf"] == PDF
    assert listed["decision/QD-1234.pdf"]["sha256"] == manifest["decision"]["pdf_sha256"]
    assert members["documents/thuyet_minh.pdf"] == DOC_PDF
    [doc] = catalogue.get(town, PID).documents
    assert listed["documents/thuyet_minh.pdf"]["sha256"] == doc["pdf_sha256"]


def test_no_personal_column_leaves_and_english_names_on_request(package, town, tmp_path):
    out, _ = package
    with zipfile.ZipFile(out) as zf:
        everything = b"".join(zf.read(n) for n in zf.namelist())
        inner = b"".join(zipfile.ZipFile(io.BytesIO(zf.read(n))).read(m)
                         for n in zf.namelist() if n.endswith(".zip")
                         for m in zipfile.ZipFile(io.BytesIO(zf.read(n))).namelist())
    for blob in (everything, inner):
        assert INVESTOR.encode() not in blob and b"ChuDauTu" not in blob
    english = tmp_path / "en.zip"
    with open_store(town, crs="EPSG:5899") as store:
        export_project_package(store, PID, english, national_names=False)
    fields = {layer["kind"]: layer["fields"] for layer in _manifest(english)["layers"]}
    assert fields["zoning_lots"][:3] == ["lot_code", "function", "area_m2"]
    assert fields["red_lines"] == ["line_id", "road_name", "width_m", "cross_section",
                                   "line_type"]
    assert _manifest(english)["options"]["national_names"] is False


# --------------------------------------------------------------------------- GDAL


def test_gdal_ogrinfo_reads_every_layer_in_epsg_5899(unpacked):
    gpkg = unpacked / f"{PID}.gpkg"
    for kind, count in COUNTS.items():
        summary = _ogrinfo("-so", str(gpkg), kind)
        assert f"Feature Count: {count}" in summary, summary
        assert 'ID["EPSG",5899]' in summary
        shp = unpacked / "shp" / f"{kind}_{PID}.shp"
        summary = _ogrinfo("-so", str(shp), f"{kind}_{PID}")
        assert f"Feature Count: {count}" in summary, summary
        assert 'ID["EPSG",5899]' in summary and "BOUNDCRS" not in summary
    lot = _ogrinfo("-q", str(gpkg), "zoning_lots", "-where", "KyHieuLo = 'OM-01'")
    for text in ("ChucNang (String) = ODM", "MatDoXD (Real) = 60", "TangCaoMax (Integer64) = 5",
                 "TangCaoMin (Integer64) = 3", "HeSoSDD (Real) = 2.4"):
        assert text in lot, lot
    red = _ogrinfo("-q", str(unpacked / "shp" / f"red_lines_{PID}.shp"), f"red_lines_{PID}",
                   "-where", "LoaiChiGio = 'red_line'")
    assert "TenDuong (String) = Đường Thống Nhất" in red and "LoGioi (Real) = 12" in red
    area = _ogrinfo("-q", str(gpkg), "project_area")
    assert f"MaDoAn (String) = {PID}" in area and "SoQuyetDinh (String) = 1234/QĐ-UBND" in area
    assert "CapQuyHoach (String) = Quy hoạch phân khu" in area
    # The boundary is the union of the lots (area_from_lots): 140 m × 120 m.
    assert re.search(r"DienTich \(Real\) = 16800(\.0+)?\b", area), area


def test_geopackage_holds_the_project_styles(unpacked):
    with sqlite3.connect(unpacked / f"{PID}.gpkg") as db:
        rows = db.execute("SELECT f_table_name, styleName, useAsDefault, styleQML "
                          "FROM layer_styles ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (kind, f"gisportal_{kind}_{lang}", int(lang == "vi"))
        for kind in COUNTS for lang in ("vi", "en")]
    lots_qml = rows[0][3]
    # The legend lists the functions the lots hold, and labels name the GeoPackage's field.
    assert re.findall(r'<category value="([^"]*)"', lots_qml) == ["ODM", "CX", "GT", ""]
    assert 'fieldName="KyHieuLo"' in lots_qml and 'labelsEnabled="1"' in lots_qml


# --------------------------------------------------------------------------- QGIS


def _by_value(answer: dict) -> dict:
    return {c["value"]: c for c in answer["renderer"]["categories"]}


def test_qgis_opens_every_layer_in_epsg_5899_with_the_function_colours(unpacked):
    gpkg = unpacked / f"{PID}.gpkg"
    items = [{"uri": f"{gpkg}|layername={kind}"} for kind in COUNTS]
    items += [{"uri": str(unpacked / "shp" / f"{kind}_{PID}.shp")} for kind in COUNTS]
    answers = inspect_layers(items)
    for answer, kind in zip(answers, [*COUNTS, *COUNTS], strict=True):
        assert answer["valid"], answer
        assert answer["authid"] == "EPSG:5899", answer["uri"]
        assert answer["feature_count"] == COUNTS[kind], answer["uri"]
    functions = zoning_functions()
    for lots in (answers[0], answers[3]):  # GeoPackage (layer_styles), Shapefile (.qml)
        renderer = lots["renderer"]
        assert renderer["type"] == "categorizedSymbol" and renderer["attribute"] == "ChucNang"
        cats = _by_value(lots)
        for code in ("ODM", "CX", "GT"):
            assert cats[code]["symbol"]["color"]["hex"] == functions.color(code), code
            assert cats[code]["label"].startswith(f"{code} — ")
        assert cats[""]["symbol"]["color"]["hex"] == UNKNOWN_COLOR.upper()
        assert lots["labels"]["enabled"] and lots["labels"]["field"] == "KyHieuLo"
        assert lots["aliases"]["KyHieuLo"] == "Ký hiệu ô (lô) quy hoạch"
    for lines in (answers[1], answers[4]):
        cats = _by_value(lines)
        red, building = cats["red_line"]["symbol"], cats["building_line"]["symbol"]
        assert red["color"]["hex"] == "#D7191C"
        assert red["layers"][0]["class"] == "SimpleLine"
        assert red["layers"][0]["props"]["use_custom_dash"] == "0"
        assert building["color"]["hex"] == "#2B6CB0"
        assert building["layers"][0]["props"]["use_custom_dash"] == "1"
    assert lines["renderer"]["attribute"] == "LoaiChiGio"  # the Shapefile's short name
    area = answers[2]["renderer"]
    assert area["type"] == "singleSymbol"
    assert [layer["class"] for layer in area["symbol"]["layers"]] == ["SimpleFill", "SimpleLine"]


# --------------------------------------------------------------------------- metadata


@pytest.fixture(scope="module")
def iso19139() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(GMD_XSD)))


@pytest.mark.parametrize("kind", list(COUNTS))
def test_metadata_is_valid_iso19139_titled_by_the_project_citing_the_decision(
        package, iso19139, kind):
    out, _ = package
    with zipfile.ZipFile(out) as zf:
        record = etree.fromstring(zf.read(f"metadata/{kind}_{PID}.xml"))
    assert iso19139.validate(record), iso19139.error_log
    citation = "gmd:identificationInfo/gmd:MD_DataIdentification/gmd:citation/gmd:CI_Citation/"
    [title] = record.xpath(citation + "gmd:title/gco:CharacterString/text()", namespaces=NS)
    assert title.startswith("Quy hoạch phân khu đô thị Liên Nghĩa — ")
    assert record.xpath("//gmd:topicCategory/gmd:MD_TopicCategoryCode/text()",
                        namespaces=NS) == ["planningCadastre"]
    assert record.xpath(citation + "gmd:identifier/gmd:MD_Identifier/gmd:code/"
                        "gco:CharacterString/text()", namespaces=NS) == ["1234/QĐ-UBND"]
    [authority] = record.xpath(citation + "gmd:identifier/gmd:MD_Identifier/gmd:authority/"
                               "gmd:CI_Citation/gmd:title/gco:CharacterString/text()",
                               namespaces=NS)
    assert authority == "Quyết định số 1234/QĐ-UBND ngày 2019-06-30 của UBND tỉnh Lâm Đồng"
    box = {tag: float(record.xpath(f"//gmd:{tag}/gco:Decimal/text()", namespaces=NS)[0])
           for tag in ("westBoundLongitude", "eastBoundLongitude", "southBoundLatitude",
                       "northBoundLatitude")}
    assert 108.3 < box["westBoundLongitude"] < box["eastBoundLongitude"] < 108.33
    assert 11.69 < box["southBoundLatitude"] < box["northBoundLatitude"] < 11.70
    assert record.xpath("//gmd:referenceSystemInfo//gmd:code/gco:CharacterString/text()",
                        namespaces=NS) == ["5899"]


def test_lot_metadata_names_the_functions_from_qcvn(package):
    out, _ = package
    with zipfile.ZipFile(out) as zf:
        record = etree.fromstring(zf.read(f"metadata/zoning_lots_{PID}.xml"))
    blocks = record.xpath("//gmd:descriptiveKeywords/gmd:MD_Keywords[gmd:thesaurusName]",
                          namespaces=NS)
    [block] = blocks
    words = block.xpath("gmd:keyword/gco:CharacterString/text()", namespaces=NS)
    functions = zoning_functions()
    assert sorted(words) == sorted(f"{functions.get(c).name_vi} ({c})"
                                   for c in ("ODM", "CX", "GT"))
    [thesaurus] = block.xpath("gmd:thesaurusName/gmd:CI_Citation/gmd:title/"
                              "gco:CharacterString/text()", namespaces=NS)
    assert "QCVN 01:2021/BXD" in thesaurus


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def run(town):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--home", str(town), *args], catch_exceptions=False)

    return invoke


def test_cli_exports_a_project_and_prints_the_path_last(run, tmp_path):
    out = tmp_path / "pkg.zip"
    res = run("export", "--project", PID, "--out", str(out))
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[-1] == str(out)
    assert lines[0].startswith("zoning_lots: version ") and "3 features, 8 fields" in lines[0]
    assert lines[2] == "project_area: from the catalogue, 1 features, 7 fields"
    assert {layer["kind"] for layer in _manifest(out)["layers"]} == set(COUNTS)
    english = tmp_path / "en.zip"
    assert run("export", "--project", PID, "--out", str(english), "--english-names"
               ).exit_code == 0
    assert _manifest(english)["layers"][0]["fields"][0] == "lot_code"


@pytest.mark.parametrize("args, code, message", [
    (("--project", DRAFT), 1, f"planning project {DRAFT} has no published layer to export"),
    (("--project", "678-khong-co-2000"), 1, "there is no planning project '678-khong-co-2000'"),
    (("--project", "Không phải mã"), 1, "is not a planning project id"),
    (("--project", PID, "--district", "678"), 2, "export needs one of --district and --project"),
    ((), 2, "export needs one of --district and --project"),
    (("--project", PID, "--kind", "plan"), 2, "--kind and --version choose a district's"),
])
def test_cli_refuses_in_one_line_and_writes_nothing(run, tmp_path, args, code, message):
    out = tmp_path / "pkg.zip"
    res = run("export", *args, "--out", str(out))
    assert res.exit_code == code, res.output
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("gisportal: error: ") and message in line, line
    assert list(tmp_path.iterdir()) == []


def test_a_missing_pdf_is_a_warning_and_the_package_stays_whole(town, tmp_path):
    """A document whose PDF left the decision area (a restore gone wrong): the package is
    still written, the manifest says the document has no file, the CLI warns."""
    home = tmp_path / "home"
    shutil.copytree(town, home)
    [doc] = catalogue.get(home, PID).documents
    (home / "decisions" / f"{doc['pdf_sha256']}.pdf").unlink()
    out = tmp_path / "pkg.zip"
    res = CliRunner().invoke(cli, ["--home", str(home), "export", "--project", PID,
                                   "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "warning: document «Thuyết minh tổng hợp»: its PDF" in res.stderr
    manifest = _manifest(out)
    assert manifest["documents"][0]["path"] is None
    assert manifest["decision"]["pdf"] == "decision/QD-1234.pdf"
    with zipfile.ZipFile(out) as zf:
        assert not [n for n in zf.namelist() if n.startswith("documents/")]


# --------------------------------------------------------------------------- styles


def test_the_styles_are_the_project_pages():
    """The exported styles and the project page draw from one file, maps/project.json:
    the page's config carries it, its script reads it, the QML/SLD's strokes are its."""
    import gisportal
    from gisportal.outputs.styles import _project_styles, layer_style

    script = (Path(gisportal.__file__).parent / "static" / "js" / "project.js").read_text(
        encoding="utf-8")
    assert "styles.zoning_lots" in script and "styles.red_lines" in script
    assert "styles.project_area" in script and "#d7191c" not in script
    lines = layer_style("red_lines", "vi")
    red = next(c for c in lines.categories if c.value == "red_line")
    assert red.stroke.color == _project_styles()["red_lines"]["red_line"]["color"].upper()
    assert red.stroke.width_px == _project_styles()["red_lines"]["red_line"]["weight"]


@pytest.mark.parametrize("kind", ["zoning_lots", "red_lines"])
def test_the_packages_shapefile_reads_back_into_gisportal_by_its_field_names(unpacked, kind):
    """Every national and Shapefile name is an alias the layer model knows: a consultant
    who edits the package's Shapefile can upload it again without --field."""
    import pyogrio

    from gisportal.base.models import layer_model, match_fields
    from gisportal.outputs.export.names import NATIONAL_NAMES, SHORT_NAMES

    columns = list(pyogrio.read_info(unpacked / "shp" / f"{kind}_{PID}.shp")["fields"])
    mapped = match_fields(layer_model(kind), columns).mapped
    assert mapped == {canonical: SHORT_NAMES.get(national, national)
                      for canonical, national in NATIONAL_NAMES[kind].items()}
    assert len(mapped) == len(layer_model(kind).fields)


def test_a_project_of_a_district_surveyed_in_108_30_is_exported_in_epsg_9218(tmp_path):
    """Phan Thiết (593, former Bình Thuận) surveys in TM-3 108°30′: its project's package
    is in EPSG:9218, and gives back the consultant's coordinates (stored on the
    province's 5899 grid in between)."""
    import geopandas as gpd
    import numpy as np
    import pyogrio
    import shapely
    from pyproj import Transformer

    from gisportal.services import projects, workflow
    from gisportal.services.decisions import attach_decision
    from gisportal.services.ingest import ingest_file

    x0, y0 = Transformer.from_crs(4326, 9218, always_xy=True).transform(108.100, 10.930)
    lots = gpd.GeoDataFrame(
        {"KyHieuLo": ["TM-01", "CX-01"], "ChucNang": ["TM", "CX"]},
        geometry=[shapely.box(x0, y0, x0 + 60, y0 + 40),
                  shapely.box(x0 + 60, y0, x0 + 100, y0 + 40)], crs="EPSG:9218")
    path = tmp_path / "lo_pt.gpkg"
    lots.to_file(path, driver="GPKG")
    out = tmp_path / "pt.zip"
    with open_store(tmp_path / "home", crs="EPSG:5899") as store:
        projects.create(store.home, project_id="593-ham-tien-500", district="593",
                        name="Quy hoạch chi tiết khu dịch vụ Hàm Tiến", level="detailed",
                        scale="1/500", status="approved", by="planner")
        version = ingest_file(store, path, "zoning_lots", None, project="593-ham-tien-500"
                              ).version
        attach_decision(store, version.id, number="55/QĐ-UBND", date="2020-03-02",
                        authority="UBND tỉnh Bình Thuận", pdf=PDF, pdf_name="QD-55.pdf")
        workflow.publish(store, version.id, "planner")
        result = export_project_package(store, "593-ham-tien-500", out)
    assert result.district == "593" and result.warnings == []
    manifest = _manifest(out)
    assert manifest["crs"].startswith("EPSG:9218")
    assert [x["kind"] for x in manifest["layers"]] == ["zoning_lots", "project_area"]
    folder = tmp_path / "pkg"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
    gpkg = folder / "593-ham-tien-500.gpkg"
    assert 'ID["EPSG",9218]' in _ogrinfo("-so", str(gpkg), "zoning_lots")
    back = pyogrio.read_dataframe(gpkg, layer="zoning_lots").sort_values("KyHieuLo")
    assert back.crs.to_epsg() == 9218
    assert np.abs(shapely.get_coordinates(back.geometry.values)[:5]
                  - shapely.get_coordinates(lots.geometry.values[[1, 0]])[:5]).max() < 1e-3
