"""The official style of each OGC API collection, linked from it as SLD 1.1 and QML:
a GIS client that reads the layer from /ogc gets the colours residents see, and Debian's
QGIS applies them to the features it fetched there."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from lxml import etree

from gisportal.base import seeds
from gisportal.web.app import create_app
from tests.qgis_client import inspect_layers
from tests.test_ogc_api import publish_district


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ogc-styles")
    publish_district(tmp / "home", tmp)
    return create_app({"home": str(tmp / "home")}).test_client()


def test_a_collection_links_its_style_as_sld_and_qml(client):
    doc = client.get("/ogc/collections/678-plan?f=json").get_json()
    styles = {link["type"]: link["href"] for link in doc["links"]
              if link["rel"] == "stylesheet"}
    assert set(styles) == {"application/vnd.ogc.sld+xml;version=1.1",
                           "application/vnd.qgis.qml"}
    sld = client.get(urlsplit(styles["application/vnd.ogc.sld+xml;version=1.1"]).path)
    assert sld.status_code == 200 and sld.headers["Content-Type"].startswith(
        "application/vnd.ogc.sld+xml")
    root = etree.fromstring(sld.data)
    odt = seeds.land_use_catalogue().color("ODT").upper()
    text = sld.data.decode("utf-8")
    assert root.tag.endswith("StyledLayerDescriptor") and "ODT" in text
    assert odt in text.upper()
    assert client.get("/ogc/collections/678-plan/styles/default.qml").status_code == 200
    assert client.get("/ogc/collections/678-khong-co/styles/default.sld").status_code == 404
    assert client.get("/ogc/collections/678-plan/styles/default.css").status_code == 404


def test_qgis_applies_the_collection_style_to_its_features(client, tmp_path):
    items = client.get("/ogc/collections/678-plan/items?f=json&limit=100")
    path = tmp_path / "plan.geojson"
    path.write_bytes(items.data)
    qml = tmp_path / "plan.qml"
    qml.write_bytes(client.get("/ogc/collections/678-plan/styles/default.qml").data)
    sld = tmp_path / "plan.sld"
    sld.write_bytes(client.get("/ogc/collections/678-plan/styles/default.sld").data)
    by_qml, by_sld = inspect_layers([{"uri": str(path), "qml": str(qml)},
                                     {"uri": str(path), "sld": str(sld)}])
    assert by_qml["qml_loaded"] and by_sld["sld_loaded"], (by_qml, by_sld)
    odt = seeds.land_use_catalogue().color("ODT").upper()
    categories = {c["value"]: c for c in by_qml["renderer"]["categories"]}
    assert categories["ODT"]["symbol"]["color"]["hex"] == odt
    rules = json.dumps(by_sld["renderer"])
    assert odt in rules.upper() and "ODT" in rules


_QGIS_OAPIF = r"""
import json, sys, urllib.request, tempfile, os
from qgis.core import QgsApplication, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
base = sys.argv[1]
layer = QgsVectorLayer(f"url={base}/ogc typename=678-plan", "plan", "OAPIF")
out = {"valid": layer.isValid(), "crs": layer.crs().authid(),
       "count": layer.featureCount(), "features": len(list(layer.getFeatures()))}
doc = json.load(urllib.request.urlopen(base + "/ogc/collections/678-plan?f=json"))
qml = next(l["href"] for l in doc["links"] if l["type"] == "application/vnd.qgis.qml")
path = os.path.join(tempfile.mkdtemp(), "plan.qml")
with open(path, "wb") as fh:
    fh.write(urllib.request.urlopen(qml).read())
message, ok = layer.loadNamedStyle(path)
r = layer.renderer()
out["style"] = bool(ok)
out["categories"] = {str(c.value()): c.symbol().color().name().upper()
                     for c in r.categories()} if r.type() == "categorizedSymbol" else {}
out["codes"] = sorted({str(f["land_use"]) for f in layer.getFeatures()})
print("QGIS-ANSWER " + json.dumps(out))
"""


def test_qgis_reads_a_collection_from_ogc_and_colours_it_by_its_linked_style(tmp_path):
    """Debian's QGIS opens /ogc with its own OGC API – Features provider (OAPIF), counts
    the features, and takes the style the collection links."""
    import subprocess
    import tempfile as tf
    from pathlib import Path

    from tests.browser import live_server
    from tests.qgis_client import QGIS_PYTHON, _env, require_qgis

    require_qgis()
    publish_district(tmp_path / "home", tmp_path)
    with live_server(tmp_path / "home") as base, tf.TemporaryDirectory() as qhome:
        run = subprocess.run([QGIS_PYTHON, "-c", _QGIS_OAPIF, base], capture_output=True,
                             text=True, env=_env(Path(qhome)), timeout=300)
    found = [line for line in run.stdout.splitlines() if line.startswith("QGIS-ANSWER ")]
    assert run.returncode == 0 and found, run.stderr[-2000:]
    got = json.loads(found[-1].removeprefix("QGIS-ANSWER "))
    assert got["valid"] and got["crs"] in ("EPSG:4326", "OGC:CRS84"), got
    assert got["features"] == 2 and got["codes"] == ["CLN", "ODT"], got
    cat = seeds.land_use_catalogue()
    assert got["style"] and got["categories"]["ODT"] == cat.color("ODT").upper()
    assert got["categories"]["CLN"] == cat.color("CLN").upper()
