"""Open files in real QGIS (PyQGIS, offscreen) and report what a GIS user would see.

QGIS is Debian's (``python3-qgis``, ``qgis-providers``), built for Debian's
``/usr/bin/python3``, not for the interpreter running the tests (pyenv's, with the
project installed). So each call runs one small script in a subprocess of
``/usr/bin/python3`` with ``QT_QPA_PLATFORM=offscreen`` (no display), feeding it a JSON
request on stdin and reading a JSON answer on stdout. The script uses nothing but QGIS,
so it never imports gisportal.

`inspect_layers` opens each layer the way QGIS's browser does (``QgsVectorLayer(uri,
name, "ogr")``, which applies the default style a GeoPackage holds in ``layer_styles``
and a ``.qml`` beside a Shapefile) and returns its CRS (``authid``), the renderer it got
(categories with their colours and labels, or the rules an SLD made), its labelling
(enabled, and the field a simple labelling writes), the field aliases, and points
transformed to WGS 84 by QGIS's own coordinate transform.

`require_qgis` skips a test, with the reason, only when ``/usr/bin/python3`` has no
``qgis`` module (CI installs it: ``.ci/run``).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

#: Debian's interpreter, the one Debian's PyQGIS is built for.
QGIS_PYTHON = "/usr/bin/python3"

_SCRIPT = r"""
import json, os, sys
from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform,
                       QgsPointXY, QgsProject, QgsVectorLayer)

def color(c):
    return {"hex": c.name().upper(), "alpha": c.alpha()}

def symbol_info(symbol):
    if symbol is None:
        return None
    layers = []
    for i in range(symbol.symbolLayerCount()):
        sl = symbol.symbolLayer(i)
        props = sl.properties()
        layers.append({"class": sl.layerType(), "fill": color(sl.color()),
                       "stroke": color(sl.strokeColor()),
                       "props": {k: str(v) for k, v in props.items()}})
    return {"color": color(symbol.color()), "layers": layers}

def renderer_info(r):
    if r is None:
        return None
    out = {"type": r.type()}
    if r.type() == "categorizedSymbol":
        out["attribute"] = r.classAttribute()
        out["categories"] = [
            {"value": c.value(), "label": c.label(), "render": c.renderState(),
             "symbol": symbol_info(c.symbol())} for c in r.categories()]
    elif r.type() == "RuleRenderer":
        out["rules"] = [
            {"label": rule.label(), "filter": rule.filterExpression(),
             "else": rule.isElse(), "symbol": symbol_info(rule.symbol())}
            for rule in r.rootRule().descendants()]
    elif r.type() == "singleSymbol":
        out["symbol"] = symbol_info(r.symbol())
    return out

def labels_info(layer):
    labeling = layer.labeling()
    out = {"enabled": bool(layer.labelsEnabled()),
           "type": labeling.type() if labeling is not None else None}
    if labeling is not None and labeling.type() == "simple":
        settings = labeling.settings()
        out["field"] = settings.fieldName
        out["is_expression"] = bool(settings.isExpression)
    return out

request = json.load(sys.stdin)
app = QgsApplication([], False)
app.initQgis()
answers = []
wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
for item in request:
    layer = QgsVectorLayer(item["uri"], "layer", "ogr")
    answer = {"uri": item["uri"], "valid": layer.isValid()}
    if layer.isValid():
        if item.get("sld"):
            message, ok = layer.loadSldStyle(item["sld"])
            answer["sld_loaded"] = bool(ok)
            answer["sld_message"] = message
        if item.get("qml"):
            message, ok = layer.loadNamedStyle(item["qml"])
            answer["qml_loaded"] = bool(ok)
            answer["qml_message"] = message
        crs = layer.crs()
        answer.update({
            "authid": crs.authid(), "crs_valid": crs.isValid(),
            "crs_description": crs.description(),
            "feature_count": layer.featureCount(),
            "fields": [f.name() for f in layer.fields()],
            "aliases": {f.name(): f.alias() for f in layer.fields() if f.alias()},
            "renderer": renderer_info(layer.renderer()),
            "labels": labels_info(layer),
        })
        if item.get("points"):
            tr = QgsCoordinateTransform(crs, wgs84, QgsProject.instance())
            pts = [tr.transform(QgsPointXY(x, y)) for x, y in item["points"]]
            answer["lonlat"] = [[p.x(), p.y()] for p in pts]
        if layer.dataProvider().isSaveAndLoadStyleToDatabaseSupported():
            # (count of this layer's styles, ids, names, ...): this layer's come first.
            related, _ids, names = layer.listStylesInDatabase()[:3]
            answer["styles_in_database"] = list(names[:related])
    answers.append(answer)
print("QGIS-ANSWER " + json.dumps(answers))
sys.stdout.flush()
# QGIS 3.22 offscreen may crash in exitQgis() (SIGSEGV in Qt's teardown): the answer is
# out, so leave without running the exit handlers.
os._exit(0)
"""


@functools.cache
def qgis_missing() -> str | None:
    """Why QGIS cannot be used here, or None when ``/usr/bin/python3`` imports it."""
    if not os.access(QGIS_PYTHON, os.X_OK):
        return f"{QGIS_PYTHON} not found (QGIS is Debian's python3-qgis: .ci/run installs it)"
    run = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True,
                         env=_env(Path(tempfile.gettempdir())), timeout=120)
    if run.returncode != 0:
        return (f"{QGIS_PYTHON} has no qgis module (apt-get install python3-qgis "
                "qgis-providers, as .ci/run does)")
    return None


def require_qgis() -> None:
    """Skip the calling test, saying why, when QGIS is not installed."""
    reason = qgis_missing()
    if reason:
        pytest.skip(reason)


def _env(home: Path) -> dict[str, str]:
    """A clean environment: offscreen Qt, and a home of its own so that QGIS's profile
    and settings never land in the user's."""
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(home),
            "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime)}


def inspect_layers(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open each item in QGIS and describe it (module docstring).

    Each item: ``uri`` (a file, or ``file.gpkg|layername=plan``), optional ``points``
    (``[[x, y], ...]`` in the layer's CRS, returned as ``lonlat``), ``sld`` or ``qml``
    (a style file loaded after opening).
    """
    require_qgis()
    with tempfile.TemporaryDirectory(prefix="gisportal-qgis-") as home:
        run = subprocess.run([QGIS_PYTHON, "-c", _SCRIPT], input=json.dumps(items),
                             capture_output=True, text=True, env=_env(Path(home)),
                             timeout=300)
    answer = [line for line in run.stdout.splitlines() if line.startswith("QGIS-ANSWER ")]
    if run.returncode != 0 or not answer:
        raise AssertionError(f"QGIS failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    return json.loads(answer[-1].removeprefix("QGIS-ANSWER "))
