"""The district map's composition as the page receives it (no browser): base maps,
hatchings, the legend's codes, place labels, and the policy's image hosts.

The browser half (what is drawn, what is requested) is tests/test_browser_map.py.
"""

from __future__ import annotations

import json
import re

import pytest

from gisportal.base import seeds
from gisportal.services.demo import build_demo
from gisportal.store import open_store
from gisportal.web import maps, security
from gisportal.web.app import create_app


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("map-comp")
    store = open_store(home, crs="EPSG:5899")
    build_demo(store, parcels_per_district=300, districts=["678"])
    store.close()
    return home


def _config(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="gp-config">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))["config"]


def _enable(monkeypatch, ids: set[str]) -> None:
    comp = maps.composition("district")
    enabled = {**comp, "basemaps": [{**b, "enabled": b["id"] in ids} for b in comp["basemaps"]]}
    original = maps.composition
    monkeypatch.setattr(maps, "composition",
                        lambda name: enabled if name == "district" else original(name))


def test_shipped_compositions_enable_no_base_map_and_the_policy_names_no_host(home):
    for name in ("district", "province"):
        assert not any(b.get("enabled") for b in maps.composition(name).get("basemaps", []))
    ids = {b["id"] for b in maps.composition("district")["basemaps"]}
    assert {"osm", "esri_imagery"} <= ids  # a street map and satellite imagery, ready
    client = create_app({"home": str(home)}).test_client()
    resp = client.get("/districts/678")
    assert _config(resp.get_data(as_text=True))["basemaps"] == []
    img = re.search(r"img-src ([^;]*)", resp.headers["Content-Security-Policy"]).group(1)
    assert img.split() == ["'self'", "data:", "blob:"]


def test_an_enabled_base_map_reaches_the_page_and_only_its_host_the_policy(home, monkeypatch):
    _enable(monkeypatch, {"esri_imagery"})
    client = create_app({"home": str(home)}).test_client()
    resp = client.get("/districts/678?lang=en")
    config = _config(resp.get_data(as_text=True))
    assert [b["id"] for b in config["basemaps"]] == ["esri_imagery"]
    b = config["basemaps"][0]
    assert b["name"] == "Satellite imagery (Esri World Imagery)" and "Esri" in b["attribution"]
    assert b["url"].startswith("https://server.arcgisonline.com/")
    img = re.search(r"img-src ([^;]*)", resp.headers["Content-Security-Policy"]).group(1)
    assert img.split()[3:] == ["https://server.arcgisonline.com"]
    assert security.basemap_sources() == ("https://server.arcgisonline.com",)


def test_codes_sharing_a_colour_get_distinct_hatchings_plain_colours_none():
    patterns = maps.code_patterns()
    cat = seeds.land_use_catalogue()
    by_colour: dict[tuple[int, int, int], list[str]] = {}
    for lu in cat:
        by_colour.setdefault(maps._rgb(lu.color), []).append(lu.code)
    # A colour of its own: a plain fill.
    assert "CLN" not in patterns and "ODT" not in patterns
    # #FAAAA0 (TMD, SKN, …) and #FFAAA0 (DGD, DYT, …) look the same: among the current
    # codes of such a group, at most one is plain and no two share a hatching.
    group = [lu.code for lu in cat if lu.status == "current"
             and lu.color in ("#FAAAA0", "#FFAAA0")]
    assert len(group) > 10
    plain = [c for c in group if c not in patterns]
    assert len(plain) == 1
    hatchings = [json.dumps(patterns[c], sort_keys=True) for c in group if c in patterns]
    assert len(hatchings) == len(set(hatchings))
    for p in patterns.values():
        assert 256 % p["size"] == 0  # hatches run on across tiles


def test_legend_lists_the_district_codes_with_their_hatching(home):
    client = create_app({"home": str(home)}).test_client()
    html = client.get("/districts/678").get_data(as_text=True)
    config = _config(html)
    with open_store(home, crs="EPSG:5899") as store:
        plan = store.read(store.published("678", "plan").id, columns=["land_use"])
    present = set(plan["land_use"].unique())
    assert set(config["legend"]) == present
    items = re.findall(r'<li data-code="(\w+)" data-color="#\w+"(?: data-pattern="([\w-]+)")?',
                       html)
    assert {c for c, _ in items} == present
    for code, pattern in items:
        p = config["patterns"].get(code)
        assert pattern == (f"{p['kind']}-{p['angle']}-{p['size']}" if p else "")


def test_place_labels_are_inside_their_commune_and_few(home):
    import numpy as np
    import shapely

    from gisportal.base.crs import to_lonlat

    client = create_app({"home": str(home)}).test_client()
    config = _config(client.get("/districts/678").get_data(as_text=True))
    labels = config["place_labels"]
    with open_store(home, crs="EPSG:5899") as store:
        b = store.read(store.published("678", "boundary").id)
    communes = b[b["level"] == "commune"]
    by_name = dict(zip(communes["name"], communes.geometry, strict=True))
    named = [p for p in labels if p["kind"] == "commune"]
    assert {p["text"] for p in named} == set(by_name)
    for p in named:
        lonlat = shapely.transform(by_name[p["text"]], lambda xy: np.column_stack(
            to_lonlat(xy[:, 0], xy[:, 1])))
        assert lonlat.contains(shapely.Point(p["lon"], p["lat"])), p["text"]
    towns = [p for p in labels if p["kind"] == "town"]
    assert towns and all(p["max_zoom"] < 15 for p in towns)
    assert len(labels) < 100  # names of places, never one per parcel


def test_province_page_gets_the_same_base_map_config_as_a_district_page(home, monkeypatch):
    """One way for both pages (`maps.base_map_config`): the same own base (name, the
    district map's style), the administrator's base maps (none as shipped), and tile
    sources of the published boundary and plan, each held to its district's bounds;
    the province page keeps the plan's ribbons out of its wide views."""
    client = create_app({"home": str(home)}).test_client()
    province = _config(client.get("/").get_data(as_text=True))
    district = _config(client.get("/districts/678").get_data(as_text=True))
    for conf in (province, district):
        assert conf["basemaps"] == []
        assert conf["own_base"] == district["own_base"]
        assert {(t["district"], t["kind"]) for t in conf["base_tiles"]} == {
            ("678", "boundary"), ("678", "plan")}
    assert district["own_base"]["style"] == maps.composition("district")["own_base"]["style"]
    by_kind = {t["kind"]: t for t in province["base_tiles"]}
    assert by_kind["plan"]["min_zoom"] == 11 and by_kind["boundary"]["min_zoom"] == 4
    assert {t["kind"]: t["min_zoom"] for t in district["base_tiles"]}["plan"] == 6
    (s, w), (n, e) = by_kind["boundary"]["bounds"]
    d = seeds.district("678")
    assert s < d.anchor_lonlat[1] < n and w < d.anchor_lonlat[0] < e
    # Enabled for the province map only: its page lists it, the district page does not.
    comp = maps.composition("province")
    enabled = {**comp, "basemaps": [{**b, "enabled": b["id"] == "osm"}
                                    for b in comp["basemaps"]]}
    original = maps.composition
    monkeypatch.setattr(maps, "composition",
                        lambda name: enabled if name == "province" else original(name))
    resp = client.get("/?lang=en")
    conf = _config(resp.get_data(as_text=True))
    assert [b["id"] for b in conf["basemaps"]] == ["osm"]
    assert conf["basemaps"][0]["name"] == "Street map (OpenStreetMap)"
    assert conf["own_base"]["name"] == "Own base (works offline)"
    img = re.search(r"img-src ([^;]*)", resp.headers["Content-Security-Policy"]).group(1)
    assert img.split()[3:] == ["https://tile.openstreetmap.org"]
    assert _config(client.get("/districts/678").get_data(as_text=True))["basemaps"] == []
