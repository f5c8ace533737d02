"""First map paint of the district page, labels on, on a 200 000-parcel district.

Builds (or reuses, ``--home``) a data home where the demo district is published with
``--parcels`` parcels (plan, boundary, annual plan, parcels: the real pipeline, tiles
included), serves it with ``gisportal serve --workers 1`` (waitress) on 127.0.0.1, and
opens the district page in Debian's headless Chromium (``/usr/bin/chromium``, through
Playwright), a fresh browser context per run (no cache).

**First map paint** is what the page itself records (gp/labels.js): the
``performance.now()`` — milliseconds since navigation start — of the first animation
frame after a vector tile holding features was drawn into its canvas, with the label
pass over the tiles loaded by then done on that frame (``data-gp-first-paint`` on
``<html>`` and the performance mark ``gp-first-paint``).

Measured, ``--runs`` times each (median, range, load), at desktop 1280×800 and phone
390×844 (device pixel ratio 2):

* the district view (the page's own view: the district fitted; commune and town names);
* a z18 view of the densest part of the district (``#18/lat/lon``: parcel tiles cut out
  of z16, parcel and sheet numbers, plan codes), labels on and, alternately in the same
  loop, off (``window.gpNoLabels``): what the labels cost;
* the label pass itself (ms of the slowest pass after the view settled, and how many
  labels it placed).

Then the page's weight (HTML + the scripts and styles it names, bytes) with ``--small``
and ``--parcels`` parcels: it must be the same. And, for the choice of technique, the
server-side cost of the alternative (label points computed at tile build:
``shapely.point_on_surface`` over every parcel).

Target: first paint under 1.5 s. The machine has 2 cores shared with other people's
test runs: read the load printed beside each figure.

Usage::

    python bench/bench_map_paint.py [--parcels 200000] [--small 2000] [--runs 3]
                                    [--home DIR] [--small-home DIR]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._measure import load_now, print_peers  # noqa: E402
from bench.bench_lookup import Server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORTS = {"desktop 1280×800": {"viewport": {"width": 1280, "height": 800}},
             "phone 390×844": {"viewport": {"width": 390, "height": 844},
                               "device_scale_factor": 2, "is_mobile": True,
                               "has_touch": True}}
DISTRICT = "678"


def build_home(home: Path, parcels: int) -> float:
    """Publish the demo district with `parcels` parcels into `home` (skipped when it is
    there already); seconds taken."""
    from gisportal.services.demo import build_demo
    from gisportal.store import open_store

    t0 = time.perf_counter()
    with open_store(home, crs="EPSG:5899") as store:
        if store.published(DISTRICT, "parcels") is None:
            build_demo(store, parcels_per_district=parcels, districts=[DISTRICT])
    return time.perf_counter() - t0


def dense_point(home: Path) -> tuple[float, float]:
    """(lat, lon) of the parcel nearest the middle of the densest 500 m cell."""
    import numpy as np

    from gisportal.base.crs import to_lonlat
    from gisportal.store import open_store

    with open_store(home, crs="EPSG:5899") as store:
        gdf = store.read(store.published(DISTRICT, "parcels").id, columns=["parcel"])
    c = gdf.geometry.representative_point()
    cells = np.floor(c.x.values / 500).astype(int) * 100000 + np.floor(
        c.y.values / 500).astype(int)
    vals, counts = np.unique(cells, return_counts=True)
    best = vals[counts.argmax()]
    inside = c[cells == best]
    pt = inside.iloc[len(inside) // 2]
    lon, lat = to_lonlat(pt.x, pt.y)
    return float(lat), float(lon)


def point_on_surface_seconds(home: Path) -> float:
    """What label points computed on the server would cost per build (all parcels)."""
    import shapely

    from gisportal.store import open_store

    with open_store(home, crs="EPSG:5899") as store:
        gdf = store.read(store.published(DISTRICT, "parcels").id, columns=["parcel"])
    t0 = time.perf_counter()
    shapely.point_on_surface(gdf.geometry.values)
    return time.perf_counter() - t0


def page_weight(base: str) -> tuple[int, int]:
    """(bytes of the district page's HTML + scripts + styles, number of assets)."""
    with urllib.request.urlopen(f"{base}/districts/{DISTRICT}", timeout=60) as r:
        html = r.read()
    total = len(html)
    assets = set(re.findall(rb'(?:<script[^>]*\ssrc|<link[^>]*\shref)="(/static/[^"]+)"', html))
    for a in assets:
        with urllib.request.urlopen(base + a.decode(), timeout=60) as r:
            total += len(r.read())
    return total, len(assets)


def paint(browser, url: str, ctx_opts: dict, labels: bool) -> dict[str, float]:
    """One visit in a fresh context: the page's first-paint time and its label passes."""
    ctx = browser.new_context(**ctx_opts)
    try:
        page = ctx.new_page()
        if not labels:
            page.add_init_script("window.gpNoLabels = true;")
        page.goto(url)
        page.wait_for_function("() => document.documentElement.dataset.gpFirstPaint",
                               timeout=60_000)
        first = float(page.evaluate("document.documentElement.dataset.gpFirstPaint"))
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        # The pass over the settled view (all tiles in): timed again three times.
        passes = page.evaluate("""async () => {
            const out = [];
            for (let i = 0; i < 3; i++) {
                window.gpLabels.pending = false; GP.labels.redraw();
                await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                out.push(window.gpLabels.lastMs);
            }
            return [Math.max(...out), window.gpLabels.drawn.length];
        }""")
        return {"first": first, "pass_ms": float(passes[0]), "labels": float(passes[1])}
    finally:
        ctx.close()


def ms(values: list[float]) -> str:
    return (f"{statistics.median(values):7.0f} ms (range {min(values):.0f}–{max(values):.0f}, "
            f"n={len(values)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--small", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--home", type=Path, help="data home to (re)use for --parcels")
    ap.add_argument("--small-home", type=Path, help="data home to (re)use for --small")
    args = ap.parse_args()
    if args.runs < 3:
        raise SystemExit("--runs must be 3 or more (median of at least 3)")
    from playwright.sync_api import sync_playwright

    print_peers()
    print(f"chromium: {CHROMIUM}")
    with tempfile.TemporaryDirectory(prefix="bench-map-paint-") as tmp:
        big = args.home or Path(tmp) / f"home{args.parcels}"
        small = args.small_home or Path(tmp) / f"home{args.small}"
        for home, n in ((small, args.small), (big, args.parcels)):
            print(f"data home with {n} parcels: {build_home(home, n):.1f} s "
                  f"(0 when reused) — {home}")
        lat, lon = dense_point(big)
        print(f"label points on the server instead (shapely.point_on_surface, "
              f"{args.parcels} parcels): {point_on_surface_seconds(big):.2f} s per build")
        weights = {}
        for home, n in ((small, args.small), (big, args.parcels)):
            server = Server(home, 1, Path(tmp) / f"serve-{n}.log")
            try:
                weights[n] = page_weight(server.url)
            finally:
                server.stop()
        for n, (size, count) in weights.items():
            print(f"district page weight, {n:>7} parcels: {size:,} bytes "
                  f"(HTML + {count} scripts/styles)")
        same = len({w[0] for w in weights.values()}) == 1
        print(f"  same for both sizes: {'yes' if same else 'NO'}")

        server = Server(big, 1, Path(tmp) / "serve-paint.log")
        try:
            district_url = f"{server.url}/districts/{DISTRICT}"
            z18_url = f"{district_url}#18/{lat:.6f}/{lon:.6f}"
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=FLAGS)
                try:
                    paint(browser, district_url, VIEWPORTS["desktop 1280×800"], True)  # warm
                    print(f"\nfirst map paint, {args.parcels} parcels, labels on "
                          f"(server: {server.label}; ms since navigation start):")
                    for name, opts in VIEWPORTS.items():
                        for view, url in (("district view", district_url),
                                          ("z18 dense view", z18_url)):
                            rows: dict[str, list[float]] = {"on": [], "off": [], "pass": [],
                                                            "n": []}
                            before = load_now()
                            for _ in range(args.runs):  # on, off, on, off…: same machine
                                r = paint(browser, url, opts, True)
                                rows["on"].append(r["first"])
                                rows["pass"].append(r["pass_ms"])
                                rows["n"].append(r["labels"])
                                rows["off"].append(paint(browser, url, opts, False)["first"])
                            after = load_now()
                            print(f"  {name:17} {view:15} labels on {ms(rows['on'])}; "
                                  f"off {ms(rows['off'])}")
                            pass_ms = statistics.median(rows["pass"])
                            print(f"  {'':33} label pass {pass_ms:.1f} ms "
                                  f"(max {max(rows['pass']):.1f}), "
                                  f"{statistics.median(rows['n']):.0f} labels; "
                                  f"load {before:.2f}→{after:.2f} on 2 CPUs")
                finally:
                    browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
