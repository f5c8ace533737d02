"""Labels after a pan on a 200 000-parcel district: our canvas labels against a MapLibre
GL symbol layer inside Leaflet, for the choice issue 14 asks to make by measured speed.

Builds (or reuses, ``--home``) a data home where the demo district is published with
``--parcels`` parcels (the real pipeline, tiles included), serves it with ``gisportal
serve --workers 1`` (waitress) on 127.0.0.1, and opens the district page in Debian's
headless Chromium (``/usr/bin/chromium``, through Playwright), a fresh browser context
per run (no cache). Each run opens the page on a view of the same zoom one and a half
screens to the east, lets it settle, then pans to the measured view (``setView``, no
animation: every tile of the new view is new) and times, from the pan:

* **canvas** — the product as it ships (gp/labels.js): until the label pass that
  follows the last tile of the layers labelled at that zoom, plan and (z18) parcels
  (``gpLabels.lastAt``); also that pass alone (``gpLabels.lastMs``) and the labels it
  placed;
* **maplibre** — the same page with its canvas labels off (``window.gpNoLabels``) and a
  MapLibre GL map inside Leaflet (``@maplibre/maplibre-gl-leaflet``) drawing only two
  symbol layers from the same archives (``/tiles/<district>/{plan,parcels}/…``, which
  MapLibre takes as 512-px tiles: one zoom below VectorGrid's for the same view,
  overzoomed past the archive's last zoom): the plan's codes from z15, the parcels'
  number and sheet from z18, white halo, MapLibre's own collision detection, no fade;
  until MapLibre's ``idle`` (all its tiles in, labels placed and drawn); also the
  labels it placed (``queryRenderedFeatures``).

Views: the parcel numbers at z18 and the plan codes at z15 and z16, around the densest
500 m of the district, desktop 1280×800. Canvas and MapLibre alternate in one loop (a,
b, a, b…), both in one browser started with a WebGL that works headless (SwiftShader:
``--use-angle=swiftshader --enable-unsafe-swiftshader``; the bench prints the renderer
the page got); the canvas labels are also timed in the browser as the other benches
start it (``--disable-gpu``), for reference.

MapLibre is loaded from ``bench/vendor/`` (versions and licences in its README), served
to the page by Playwright under the page's own origin (``/bench-vendor/…``): the app
never serves it, and the page keeps its Content-Security-Policy (MapLibre's CSP build
and its worker file are used for that).

The machine has 2 cores shared with other people's test runs: read the load printed
beside each figure. SwiftShader draws WebGL on the CPU; a phone's GPU does not, so the
MapLibre figures here are not what a GPU would give (see docs/design.md, "Labels").

Usage::

    python bench/bench_labels.py [--parcels 200000] [--runs 3] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._measure import Runs, print_peers  # noqa: E402
from bench.bench_lookup import Server  # noqa: E402
from bench.bench_map_paint import DISTRICT, build_home, dense_point  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
VENDOR = Path(__file__).resolve().parent / "vendor"
COMMON = ["--no-sandbox", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: WebGL without a GPU: ANGLE over SwiftShader (Chromium refuses it unless told).
GL_FLAGS = [*COMMON, "--use-angle=swiftshader", "--use-gl=angle",
            "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
#: The flags of tests/browser.py and bench_map_paint.py.
NO_GPU_FLAGS = [*COMMON, "--disable-gpu"]
#: What bench/vendor/ holds (its README: where from, licences).
VENDORED = {"maplibre-gl": "5.20.0", "@maplibre/maplibre-gl-leaflet": "0.1.4"}
VIEWPORT = {"viewport": {"width": 1280, "height": 800}}
#: (name, Leaflet zoom): what each view labels.
VIEWS = (("parcel numbers z18", 18), ("plan codes z15", 15), ("plan codes z16", 16))
#: How far east of the measured view the page opens: 1.5 screens, so every tile is new.
PAN_SCREENS = 1.5

#: The MapLibre style: the two labelled layers of maps/district.json as symbol layers.
#: Leaflet zoom z is MapLibre zoom z − 1 (512-px convention), and MapLibre takes vector
#: tiles as 512-px tiles only ("vector tile sources must have a tileSize of 512"): for
#: the same view it asks the same archives one zoom lower than VectorGrid does (a
#: quarter as many tiles, each holding four times the features), overzoomed past the
#: archive's last zoom as VectorGrid's are. No "glyphs": MapLibre then draws the glyphs
#: locally (TinySDF), as canvas text is drawn from the system's fonts. The plan's codes
#: are the last layer: MapLibre places the top layer's symbols first, as gp/labels.js
#: places the codes (priority 2) before the parcel numbers (3).
STYLE_JS = """(base, district, zooms) => ({
  version: 8,
  sources: {
    plan: {type: "vector", minzoom: zooms.plan[0], maxzoom: zooms.plan[1],
           tiles: [base + "/tiles/" + district + "/plan/{z}/{x}/{y}.pbf"]},
    parcels: {type: "vector", minzoom: zooms.parcels[0],
              maxzoom: zooms.parcels[1],
              tiles: [base + "/tiles/" + district + "/parcels/{z}/{x}/{y}.pbf"]}
  },
  layers: [
    {id: "parcel-numbers", type: "symbol", source: "parcels", "source-layer": "parcels",
     minzoom: 17,
     layout: {"text-field": ["concat", ["to-string", ["get", "parcel"]], "\\n", "tờ ",
                             ["to-string", ["get", "sheet"]]],
              "text-font": ["sans-serif"], "text-size": 11},
     paint: {"text-color": "#333333", "text-halo-color": "rgba(255,255,255,0.92)",
             "text-halo-width": 1.75}},
    {id: "plan-codes", type: "symbol", source: "plan", "source-layer": "plan", minzoom: 14,
     layout: {"text-field": ["get", "land_use"], "text-font": ["sans-serif Bold"],
              "text-size": 12},
     paint: {"text-color": "#1f1f1f", "text-halo-color": "rgba(255,255,255,0.92)",
             "text-halo-width": 1.75}}
  ]
})"""

#: Adds the MapLibre layer to the page's Leaflet map; resolves once it is idle.
ADD_MAPLIBRE_JS = """async ([base, district, zooms]) => {
  maplibregl.setWorkerUrl(base + "/bench-vendor/maplibre-gl/maplibre-gl-csp-worker.js");
  const style = (""" + STYLE_JS + """)(base, district, zooms);
  const layer = L.maplibreGL({style: style, interactive: false, padding: 0,
                              fadeDuration: 0, pane: "overlayPane"}).addTo(gpMap);
  window.gpBenchGL = layer;
  const gl = layer.getMaplibreMap();
  await new Promise(r => gl.once("idle", r));
  return true;
}"""

#: Pans to the view; resolves with the times (ms from the pan) the technique reports.
PAN_CANVAS_JS = """async ([lat, lon, z]) => {
  const m = gpMap, st = gpLabels;
  // The layers labelled at this zoom (the plan's codes from z15, the parcels' numbers
  // from z18): their last tile is what the labels wait for.
  const conf = GP.config.config;
  const layers = Object.keys(conf.labels).filter(id => (conf.labels[id].min_zoom || 0) <= z)
    .map(id => window[conf.layers[id]]).filter(l => l && m.hasLayer(l));
  const loaded = layers.map(l => new Promise(r => {
    l.once("load", r); setTimeout(r, 60000);
  }));
  const t0 = performance.now();
  m.setView([lat, lon], z, {animate: false});
  await Promise.all(loaded);
  const tiles = performance.now() - t0;
  const passes = st.passes;
  await new Promise(r => { (function poll() {
    if (st.passes > passes) { r(); } else { requestAnimationFrame(poll); } })(); });
  return {total: st.lastAt - t0, tiles: tiles, pass: st.lastMs, labels: st.drawn.length};
}"""

PAN_MAPLIBRE_JS = """async ([lat, lon, z]) => {
  const m = gpMap, gl = gpBenchGL.getMaplibreMap();
  const t0 = performance.now();
  m.setView([lat, lon], z, {animate: false});
  gpBenchGL._update();  // the layer's throttled move handler, run now
  await new Promise(r => { (function wait() {
    gl.once("idle", () => {
      const c = gl.getCenter();
      if (Math.abs(c.lat - lat) < 1e-6 && Math.abs(c.lng - lon) < 1e-6 && gl.areTilesLoaded()) {
        r();
      } else { wait(); gl.triggerRepaint(); }
    }); })(); });
  const t1 = performance.now();
  const placed = gl.queryRenderedFeatures({layers: ["parcel-numbers", "plan-codes"]}).length;
  return {total: t1 - t0, labels: placed};
}"""

RENDERER_JS = """() => {
  const c = document.createElement("canvas"), gl = c.getContext("webgl2");
  if (!gl) { return null; }
  const ext = gl.getExtension("WEBGL_debug_renderer_info");
  return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
}"""


def zooms() -> dict[str, list[int]]:
    from gisportal.outputs.tiles.build import ZOOMS

    return {k: list(v) for k, v in ZOOMS.items()}


def route_vendor(page) -> None:
    """Serve bench/vendor/ to the page under its own origin (the app never sees it)."""
    types = {".js": "text/javascript", ".css": "text/css"}

    def handler(route) -> None:
        rel = route.request.url.split("/bench-vendor/", 1)[1].split("?")[0]
        path = (VENDOR / rel).resolve()
        if VENDOR not in path.parents or not path.is_file():
            route.fulfill(status=404, body="")
            return
        route.fulfill(status=200, body=path.read_bytes(),
                      content_type=types.get(path.suffix, "application/octet-stream"))

    page.route("**/bench-vendor/**", handler)


def east_of(lat: float, lon: float, z: int) -> tuple[float, float]:
    """(lat, lon) PAN_SCREENS viewport widths east of (lat, lon) at Leaflet zoom z."""
    metres_per_px = 156543.03392 * math.cos(math.radians(lat)) / 2 ** z
    dx = PAN_SCREENS * VIEWPORT["viewport"]["width"] * metres_per_px
    return lat, lon + dx / (111_320 * math.cos(math.radians(lat)))


def run_once(browser, base: str, technique: str, lat: float, lon: float, z: int) -> dict:
    """One fresh context: open east of the view, settle, pan, time the labels."""
    ctx = browser.new_context(**VIEWPORT)
    try:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        if technique == "maplibre":
            page.add_init_script("window.gpNoLabels = true;")
            route_vendor(page)
        slat, slon = east_of(lat, lon, z)
        page.goto(f"{base}/districts/{DISTRICT}#{z}/{slat:.6f}/{slon:.6f}")
        page.wait_for_function("() => document.documentElement.dataset.gpFirstPaint",
                               timeout=120_000)
        page.wait_for_load_state("networkidle", timeout=120_000)
        if technique == "maplibre":
            page.add_style_tag(url=f"{base}/bench-vendor/maplibre-gl/maplibre-gl.css")
            page.add_script_tag(url=f"{base}/bench-vendor/maplibre-gl/maplibre-gl-csp.js")
            page.add_script_tag(
                url=f"{base}/bench-vendor/maplibre-gl-leaflet/leaflet-maplibre-gl.js")
            page.evaluate(ADD_MAPLIBRE_JS, [base, DISTRICT, zooms()])
            page.wait_for_load_state("networkidle", timeout=120_000)
        page.wait_for_timeout(300)
        out = page.evaluate(PAN_CANVAS_JS if technique == "canvas" else PAN_MAPLIBRE_JS,
                            [lat, lon, z])
        if errors:
            raise SystemExit(f"{technique}: page errors: {errors}")
        return out
    finally:
        ctx.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--home", type=Path, help="data home to (re)use")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.runs < 3:
        raise SystemExit("--runs must be 3 or more (median of at least 3)")
    from playwright.sync_api import sync_playwright

    print_peers()
    print(f"chromium: {CHROMIUM}; from bench/vendor/: "
          + ", ".join(f"{k} {v}" for k, v in VENDORED.items()))
    report: dict[str, object] = {"parcels": args.parcels}
    with tempfile.TemporaryDirectory(prefix="bench-labels-") as tmp:
        home = args.home or Path(tmp) / f"home{args.parcels}"
        print(f"data home with {args.parcels} parcels: {build_home(home, args.parcels):.1f} s "
              f"(0 when reused) — {home}")
        lat, lon = dense_point(home)
        server = Server(home, 1, Path(tmp) / "serve.log")
        try:
            with sync_playwright() as p:
                gl_browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                               args=GL_FLAGS)
                plain = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=NO_GPU_FLAGS)
                try:
                    page = gl_browser.new_page()
                    renderer = page.evaluate(RENDERER_JS)
                    page.close()
                    page = plain.new_page()
                    plain_renderer = page.evaluate(RENDERER_JS)
                    page.close()
                    print(f"WebGL 2 in the measuring browser ({' '.join(GL_FLAGS[-4:])}): "
                          f"{renderer or 'NONE'}")
                    print(f"WebGL 2 in the reference browser (--disable-gpu): "
                          f"{plain_renderer or 'none'}")
                    report["gl"] = renderer
                    if not renderer:
                        raise SystemExit("no WebGL 2 in headless Chromium: MapLibre cannot run")
                    # Warm the server's and the OS's caches of the archives.
                    for _, z in VIEWS:
                        run_once(gl_browser, server.url, "canvas", lat, lon, z)
                        run_once(gl_browser, server.url, "maplibre", lat, lon, z)
                    print(f"\nlabels after a pan, {args.parcels} parcels, desktop 1280×800 "
                          f"(server: {server.label}; ms from the pan; median [range], "
                          f"{args.runs} runs each, alternating):")
                    for name, z in VIEWS:
                        runs = Runs()
                        for _ in range(args.runs):
                            c = run_once(gl_browser, server.url, "canvas", lat, lon, z)
                            runs.add("canvas", c["total"])
                            runs.add("canvas tiles", c["tiles"])
                            runs.add("canvas pass", c["pass"])
                            runs.add("canvas labels", c["labels"])
                            m = run_once(gl_browser, server.url, "maplibre", lat, lon, z)
                            runs.add("maplibre", m["total"])
                            runs.add("maplibre labels", m["labels"])
                            r = run_once(plain, server.url, "canvas", lat, lon, z)
                            runs.add("canvas no-gpu", r["total"])
                            runs.add("canvas no-gpu pass", r["pass"])
                        runs.close()
                        ratio = runs["maplibre"].median / runs["canvas"].median
                        print(f"  {name}:")
                        print(f"    canvas labels   {runs['canvas'].short('ms', 0)} "
                              f"(tiles in at {runs['canvas tiles'].short('ms', 0)}, label pass "
                              f"{runs['canvas pass'].short('ms', 1)}, "
                              f"{runs['canvas labels'].median:.0f} labels)")
                        print(f"    MapLibre GL     {runs['maplibre'].short('ms', 0)} "
                              f"({runs['maplibre labels'].median:.0f} labels placed); "
                              f"MapLibre / canvas {ratio:.2f}×")
                        plain_ms = runs["canvas no-gpu"].short("ms", 0)
                        print(f"    canvas, --disable-gpu browser {plain_ms}"
                              f" (label pass {runs['canvas no-gpu pass'].short('ms', 1)})")
                        print(f"    {runs['canvas'].load_text()}")
                        report[name] = {k: runs[k].as_dict(1) for k in runs.values}
                finally:
                    gl_browser.close()
                    plain.close()
        finally:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
