"""The ministry package as GIS staff open it in QGIS (Debian's 3.22, offscreen).

Two districts are published with the demo generator and exported as the ministry gets
them (national field names): Lâm Hà (676), surveyed in VN-2000 / TM-3 107°45′
(EPSG:5899), and Bắc Bình (596, former Bình Thuận), surveyed in 108°30′ (EPSG:9218).
Each file is then opened in real QGIS through `tests.qgis_client` — as a user opens it,
with nothing but the file — and what QGIS shows is checked: the CRS it recognises, where
it puts the coordinates, and the style it applies by itself.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pyproj
import pytest
import shapely

from gisportal.base.seeds import UNKNOWN_COLOR, land_use_catalogue
from gisportal.outputs.export import export_package
from gisportal.outputs.styles import style_qml, style_sld
from gisportal.services.demo import build_demo
from gisportal.store import open_store
from tests.qgis_client import inspect_layers, qgis_missing

pytestmark = pytest.mark.skipif(qgis_missing() is not None, reason=qgis_missing() or "")

#: District → the EPSG code of the zone its surveys (and its package) are in.
ZONES = {"676": 5899, "596": 9218}
KINDS = ("parcels", "plan", "boundary", "annual_plan")


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    """District → the folder its default package was unpacked into (Shapefiles too)."""
    home = tmp_path_factory.mktemp("qgis-home")
    out = tmp_path_factory.mktemp("qgis-packages")
    folders = {}
    with open_store(home, crs="EPSG:5899") as store:
        build_demo(store, parcels_per_district=150, districts=list(ZONES))
        for district in ZONES:
            path = out / f"{district}.zip"
            export_package(store, district, path)
            folder = out / district
            with zipfile.ZipFile(path) as zf:
                zf.extractall(folder)
            for kind in KINDS:
                with zipfile.ZipFile(folder / "shapefile" / f"{kind}_{district}.zip") as zf:
                    zf.extractall(folder / "shp")
            folders[district] = folder
    return folders


def _first_vertices(path: str, layer: str | None = None, n: int = 5) -> np.ndarray:
    frame = pyogrio.read_dataframe(path, layer=layer, max_features=n)
    return shapely.get_coordinates(frame.geometry.values)[:n]


def _metres_off(lonlat: list[list[float]], xy: np.ndarray, epsg: int) -> float:
    """Largest distance between QGIS's lon/lat and PROJ's EPSG pipeline, in metres."""
    lon0, lat0 = pyproj.Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326",
                                             always_xy=True).transform(*xy.T)
    lon, lat = np.array(lonlat).T
    return float(np.max(pyproj.Geod(ellps="WGS84").inv(lon, lat, lon0, lat0)[2]))


# --------------------------------------------------------------------------- CRS


@pytest.mark.parametrize("district", list(ZONES))
def test_qgis_recognises_every_file_by_its_epsg_code(packages, district):
    folder, epsg = packages[district], ZONES[district]
    items, vertices = [], []
    for kind in KINDS:
        shp = folder / "shp" / f"{kind}_{district}.shp"
        gpkg = folder / f"{district}.gpkg"
        for uri, path, layer in ((str(shp), str(shp), None),
                                 (f"{gpkg}|layername={kind}", str(gpkg), kind)):
            xy = _first_vertices(path, layer)
            items.append({"uri": uri, "points": xy.tolist()})
            vertices.append(xy)
    answers = inspect_layers(items)
    for answer, xy in zip(answers, vertices, strict=True):
        assert answer["valid"], answer["uri"]
        # Not a custom CRS: the EPSG one, whose transformation QGIS takes from its database.
        assert answer["authid"] == f"EPSG:{epsg}", answer["uri"]
        assert _metres_off(answer["lonlat"], xy, epsg) < 0.01, answer["uri"]


@pytest.mark.parametrize("district", list(ZONES))
def test_the_towgs84_prj_lands_within_millimetres_in_qgis_pyproj_and_gdal(
        packages, district, tmp_path):
    """The alternative .prj, for software without the EPSG database, copied over the
    Shapefile's as docs/export.md says: every reader puts the parcels where PROJ's
    EPSG pipeline does (QGIS 3.22 shows it as a custom CRS: the reason it is not the
    default)."""
    folder, epsg = packages[district], ZONES[district]
    stem = f"parcels_{district}"
    for suffix in (".shp", ".shx", ".dbf", ".cpg"):
        shutil.copy(folder / "shp" / f"{stem}{suffix}", tmp_path / f"{stem}{suffix}")
    towgs84 = (folder / "shapefile" / "towgs84" / f"{stem}.prj").read_text(encoding="ascii")
    assert "TOWGS84[-191.90441429,-39.30318279,-111.45032835," in towgs84
    (tmp_path / f"{stem}.prj").write_text(towgs84, encoding="ascii")
    xy = _first_vertices(str(tmp_path / f"{stem}.shp"))
    (answer,) = inspect_layers([{"uri": str(tmp_path / f"{stem}.shp"), "points": xy.tolist()}])
    assert answer["valid"] and answer["crs_valid"]
    assert _metres_off(answer["lonlat"], xy, epsg) < 0.01
    # pyproj reads it with the shift; GDAL finds the EPSG:6960 transformation in it.
    lon, lat = pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(towgs84), "EPSG:4326",
                                           always_xy=True).transform(*xy.T)
    assert _metres_off(np.column_stack([lon, lat]).tolist(), xy, epsg) < 0.01
    info = subprocess.run(["/usr/bin/ogrinfo", "-so", str(tmp_path / f"{stem}.shp"), stem],
                          capture_output=True, text=True, check=True,
                          env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}).stdout
    assert 'ID["EPSG",6960]' in info


def test_gdal_and_pyproj_identify_the_9218_prj(packages):
    prj = packages["596"] / "shp" / "parcels_596.prj"
    assert pyproj.CRS.from_wkt(prj.read_text(encoding="ascii")).to_epsg() == 9218
    run = subprocess.run(["/usr/bin/gdalsrsinfo", "-o", "epsg", str(prj)], capture_output=True,
                         text=True, check=True, env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    assert run.stdout.strip() == "EPSG:9218"


# --------------------------------------------------------------------------- styles


def _fill(symbol: dict) -> tuple[str, int]:
    fill = symbol["layers"][0]["fill"]
    return fill["hex"], fill["alpha"]


def _held_codes(path: str, layer: str | None, field: str) -> set[str]:
    cat = land_use_catalogue()
    values = pyogrio.read_dataframe(path, layer=layer, columns=[field],
                                    read_geometry=False)[field]
    return {cat.primary(v).code for v in values.dropna() if cat.primary(v) is not None}


def test_qgis_applies_the_geopackage_styles_with_the_official_colours(packages):
    gpkg = packages["676"] / "676.gpkg"
    answers = inspect_layers([{"uri": f"{gpkg}|layername={kind}"} for kind in KINDS])
    parcels, plan, boundary, annual = answers
    cat = land_use_catalogue()

    r = plan["renderer"]
    assert r["type"] == "categorizedSymbol" and '"KyHieuMucDichSuDung"' in r["attribute"]
    *codes, other = r["categories"]
    # One category per code the plan holds, in the official colour, labelled in Vietnamese.
    assert {c["value"] for c in codes} == _held_codes(str(gpkg), "plan", "KyHieuMucDichSuDung")
    assert len(codes) > 3
    for c in codes:
        assert _fill(c["symbol"])[0] == cat.color(c["value"]), c["value"]
        assert c["label"] == f"{c['value']} — {cat.get(c['value']).name_vi}"
    assert other["value"] == "" and _fill(other["symbol"])[0] == UNKNOWN_COLOR
    assert sorted(plan["styles_in_database"]) == ["gisportal_plan_en", "gisportal_plan_vi"]
    assert plan["aliases"]["KyHieuMucDichSuDung"] == "Mục đích sử dụng quy hoạch"

    r = parcels["renderer"]
    assert r["type"] == "categorizedSymbol"
    assert [c["value"] for c in r["categories"]] == ["DGT", "SON", "MNC", ""]
    assert _fill(r["categories"][-1]["symbol"])[1] == 0  # a parcel is an outline
    assert parcels["aliases"]["SoHieuToBanDo"] == "Số tờ bản đồ"
    assert parcels["aliases"]["MaDoiTuong"] == "Mã đối tượng"

    r = boundary["renderer"]
    assert [(c["value"], c["label"]) for c in r["categories"]] == [
        ("district", "Ranh giới huyện"), ("commune", "Ranh giới xã"), ("", "Ranh giới khác")]
    widths = [float(c["symbol"]["layers"][0]["props"]["outline_width"])
              for c in r["categories"][:2]]
    assert widths[0] > 2 * widths[1]  # the district line is the heavy one, as on the map

    r = annual["renderer"]
    assert r["type"] == "singleSymbol" and _fill(r["symbol"])[0] == "#7B1FA2"
    dashes = [layer["props"].get("use_custom_dash") for layer in r["symbol"]["layers"]]
    assert "1" in dashes  # the dashed outline of the web map


def test_qgis_applies_the_qml_beside_the_shapefile_and_reads_the_sld(packages):
    shp = packages["676"] / "shp" / "plan_676.shp"
    sld = packages["676"] / "shp" / "plan_676.sld"
    by_qml, by_sld = inspect_layers([{"uri": str(shp)}, {"uri": str(shp), "sld": str(sld)}])
    cat = land_use_catalogue()
    r = by_qml["renderer"]
    # Opened as it is, QGIS takes plan_676.qml: the Shapefile's short field name.
    assert r["type"] == "categorizedSymbol" and '"KH_MDSD"' in r["attribute"]
    held = _held_codes(str(shp), None, "KH_MDSD")
    assert {c["value"] for c in r["categories"]} == held | {""}
    assert by_qml["aliases"]["KH_MDSD"] == "Mục đích sử dụng quy hoạch"

    assert by_sld["sld_loaded"], by_sld["sld_message"]
    rules = by_sld["renderer"]["rules"]
    assert by_sld["renderer"]["type"] == "RuleRenderer" and len(rules) == len(held) + 1
    for rule in rules[:-1]:
        code = rule["label"].split(" — ")[0]
        assert code in held and _fill(rule["symbol"])[0] == cat.color(code)
        assert rule["filter"].startswith(f"KH_MDSD = '{code}'")
    # The catch-all rule is explicit (QGIS 3.22 would draw an ElseFilter over everything).
    assert rules[-1]["filter"].startswith("KH_MDSD IS NULL OR NOT")


def test_the_whole_catalogue_styles_in_qgis_in_both_languages(tmp_path):
    """What the OGC collections will link: every catalogue code, Vietnamese or English."""
    import geopandas as gpd

    cat = land_use_catalogue()
    frame = gpd.GeoDataFrame({"land_use": ["ONT+CLN", "LUC", "XYZ"]},
                             geometry=[shapely.box(0, 0, 1, 1)] * 3, crs="EPSG:5899")
    gpkg = tmp_path / "plan.gpkg"
    frame.to_file(gpkg, layer="plan", driver="GPKG")
    files = {}
    for lang in ("vi", "en"):
        files[lang] = tmp_path / f"plan_{lang}.qml"
        files[lang].write_text(style_qml("plan", lang), encoding="utf-8")
        (tmp_path / f"plan_{lang}.sld").write_text(style_sld("plan", lang), encoding="utf-8")
    answers = inspect_layers(
        [{"uri": f"{gpkg}|layername=plan", "qml": str(files[lang])} for lang in ("vi", "en")]
        + [{"uri": f"{gpkg}|layername=plan", "sld": str(tmp_path / "plan_en.sld")}])
    vi, en, sld = answers
    assert vi["qml_loaded"] and en["qml_loaded"] and sld["sld_loaded"]
    for answer, lang in ((vi, "vi"), (en, "en")):
        categories = answer["renderer"]["categories"]
        assert len(categories) == len(cat) + 1
        labels = {c["value"]: c["label"] for c in categories}
        assert labels["LUC"] == f"LUC — {cat.name('LUC', lang)}"
    assert len(sld["renderer"]["rules"]) == len(cat) + 1
    assert sld["renderer"]["rules"][0]["label"].endswith(cat.name(
        sld["renderer"]["rules"][0]["label"].split(" — ")[0], "en"))
