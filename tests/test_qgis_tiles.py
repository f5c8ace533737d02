"""The published vector tiles in desktop GIS: TileJSON and a Mapbox GL style that Debian's
QGIS 3.22 opens as a vector tile connection, with the official land-use colours.

A demo district is served over real HTTP (`tests.browser.live_server`); QGIS (PyQGIS,
offscreen, in Debian's own Python: `tests.qgis_client`) opens the plan's tiles by the
XYZ template, converts the portal's style with its own Mapbox GL converter, and renders
the district's centre: the picture must be coloured by land use, not QGIS's default.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gisportal.base import seeds
from gisportal.services.demo import build_demo
from gisportal.store import open_store
from tests.browser import live_server
from tests.qgis_client import QGIS_PYTHON, _env, require_qgis

_SCRIPT = r"""
import json, sys, urllib.request
from collections import Counter
from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform,
                       QgsMapBoxGlStyleConverter, QgsMapRendererSequentialJob, QgsMapSettings,
                       QgsProject, QgsRectangle, QgsVectorTileLayer)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor
app = QgsApplication([], False)
app.initQgis()
base = sys.argv[1]
tj = json.load(urllib.request.urlopen(base + "/tiles/678/plan.json"))
uri = (f"type=xyz&url={tj['tiles'][0]}&zmin={tj['minzoom']}&zmax={tj['maxzoom']}"
       f"&styleUrl={base}/tiles/678/style.json")
layer = QgsVectorTileLayer(uri, "plan")
style = json.load(urllib.request.urlopen(base + "/tiles/678/style.json"))
conv = QgsMapBoxGlStyleConverter()
result = conv.convert(style)
renderer = conv.renderer()
fill = next(s for s in renderer.styles() if s.styleName() == "plan-fill")
props = fill.symbol().symbolLayer(0).dataDefinedProperties()
expressions = [props.property(k).expressionString() for k in props.propertyKeys()]
layer.setRenderer(renderer)
w, s, e, n = tj["bounds"]
cx, cy = (w + e) / 2, (s + n) / 2
ct = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                            QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
ms = QgsMapSettings()
ms.setLayers([layer])
ms.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
ms.setExtent(ct.transformBoundingBox(QgsRectangle(cx - 0.03, cy - 0.03, cx + 0.03, cy + 0.03)))
ms.setOutputSize(QSize(256, 256))
ms.setBackgroundColor(QColor(255, 255, 255))
job = QgsMapRendererSequentialJob(ms)
job.start()
job.waitForFinished()
img = job.renderedImage()
colours = Counter(QColor(img.pixel(x, y)).name() for y in range(0, 256, 2)
                  for x in range(0, 256, 2))
print("QGIS-ANSWER " + json.dumps({
    "valid": layer.isValid(), "crs": layer.crs().authid(),
    "zoom": [layer.sourceMinZoom(), layer.sourceMaxZoom()],
    "result": int(result), "warnings": list(conv.warnings()),
    "styles": [s.styleName() for s in renderer.styles()],
    "expressions": expressions, "colours": colours.most_common(12),
    "pixels": sum(colours.values())}))
"""


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    home = tmp_path_factory.mktemp("qgis-tiles") / "home"
    with open_store(home, crs="EPSG:5899") as store:
        build_demo(store, parcels_per_district=150, districts=["678"])
    return home


def test_tilejson_and_style_describe_the_published_tiles(district):
    with live_server(district) as base:
        tj = json.load(urllib.request.urlopen(f"{base}/tiles/678/plan.json"))
        style = json.load(urllib.request.urlopen(f"{base}/tiles/678/style.json"))
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/tiles/672/plan.json")
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"] == [f"{base}/tiles/678/plan/{{z}}/{{x}}/{{y}}.pbf"]
    assert tj["minzoom"] < tj["maxzoom"] and tj["vector_layers"][0]["id"] == "plan"
    assert set(tj["vector_layers"][0]["fields"]) >= {"land_use"}
    lon, lat = seeds.district("678").anchor_lonlat
    w, s, e, n = tj["bounds"]
    assert w < lon < e and s < lat < n
    assert missing.value.code == 404
    assert style["version"] == 8 and set(style["sources"]) == {"plan", "parcels", "boundary",
                                                               "annual_plan"}
    fill = next(layer for layer in style["layers"] if layer["id"] == "plan-fill")
    colours = fill["paint"]["fill-color"]
    odt = colours[colours.index(["ODT"]) + 1]
    assert odt == seeds.land_use_catalogue().color("ODT")


def test_qgis_opens_the_tiles_with_the_official_colours(district):
    require_qgis()
    with live_server(district) as base, \
            tempfile.TemporaryDirectory(prefix="gisportal-qgis-") as qhome:
        run = subprocess.run([QGIS_PYTHON, "-c", _SCRIPT, base], capture_output=True,
                             text=True, env=_env(Path(qhome)), timeout=300)
    found = [line for line in run.stdout.splitlines() if line.startswith("QGIS-ANSWER ")]
    assert run.returncode == 0 and found, run.stderr[-2000:]
    got = json.loads(found[-1].removeprefix("QGIS-ANSWER "))
    assert got["valid"] and got["crs"] == "EPSG:3857"
    assert got["result"] == 0 and not got["warnings"], got["warnings"]
    assert {"plan-fill", "parcels-line-0", "boundary-line-0"} <= set(got["styles"])
    odt = seeds.land_use_catalogue().color("ODT").lower()
    assert any(f"IN ('ODT') THEN '{odt}'" in e for e in got["expressions"]), got["expressions"]
    # The rendered centre of the district is coloured by land use: several colours
    # cover large parts of it, and none of them is the converter's grey fallback.
    big = [c for c, n in got["colours"] if n > got["pixels"] * 0.03]
    coloured = [c for c in big if len({c[1:3], c[3:5], c[5:7]}) > 1]  # not a grey
    assert len(coloured) >= 3, got["colours"]
