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
