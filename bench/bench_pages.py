"""Page weight of the district map: the same for 2 000 and for 200 000 parcels.

A district page must not embed its layers (docs/design.md §3): parcels, plan and boundaries
go out as vector tiles, so the HTML of ``/districts/<code>`` should weigh the same
whatever the size of the district, and well under 0.5 MB. This bench publishes the same
demo district at two sizes in two data homes (the real pipeline), fetches the page
through the app (Flask's test client: bytes, not time, so no socket is needed)
``--runs`` times (default 3), and prints the median of its bytes for each with the range
of the runs (a page whose size changes from one request to the next would show here), as
a ratio, with the gzip size a compressing proxy would send. Then it fetches every asset
the page loads from the app itself — scripts, styles, and the images and fonts those
styles point at — and prints their total (these are cached by the browser after the
first page).

Usage::

    python bench/bench_pages.py [--small 2000] [--large 200000] [--district 678]
                                [--home-small DIR] [--home-large DIR] [--runs 3]

Building the 200 000-parcel district takes about a minute; ``--home-large DIR`` keeps it
(built there only if its parcels are not published yet; bench_lookup.py's ``--home``
holds the same district).
"""

from __future__ import annotations

import argparse
import gzip
import posixpath
import re
import tempfile
import time
from pathlib import Path

from gisportal.base import seeds
from gisportal.store import open_store
from gisportal.web.app import create_app

try:
    from bench._measure import Measurement, collect, print_peers
except ModuleNotFoundError:  # run as a script without the repository on sys.path
    from _measure import Measurement, collect, print_peers

#: Target from the issue: the page of any district weighs at most this much.
TARGET_BYTES = 512 * 1024

_REF = re.compile(r'<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"]+)"', re.I)
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


def ensure_district(home: Path, district: str, parcels: int) -> int:
    """Publish the demo district with `parcels` parcels in `home` unless it is there."""
    with open_store(home, crs=seeds.province()["crs"]) as store:
        version = store.published(district, "parcels")
        if version is None:
            from gisportal.services.demo import build_demo

            print(f"building district {district} with {parcels} parcels in {home} ...",
                  flush=True)
            started = time.perf_counter()
            build_demo(store, parcels_per_district=parcels, districts=[district])
            print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
            version = store.published(district, "parcels")
        return version.feature_count


def page(home: Path, district: str) -> tuple[bytes, object]:
    """The district page's bytes, and a test client on the same app for its assets."""
    client = create_app({"home": str(home)}).test_client()
    r = client.get(f"/districts/{district}")
    if r.status_code != 200:
        raise SystemExit(f"/districts/{district} answered {r.status_code}")
    return r.data, client


def assets(html: str, client) -> dict[str, int]:
    """Bytes of every same-site asset the page loads, styles' url() references included."""
    sizes: dict[str, int] = {}
    todo = [u for u in _REF.findall(html) if u.startswith("/") and not u.startswith("//")]
    while todo:
        url = todo.pop().split("#")[0].split("?")[0]
        if url in sizes:
            continue
        r = client.get(url)
        if r.status_code != 200:
            raise SystemExit(f"the page loads {url}, which answers {r.status_code}")
        sizes[url] = len(r.data)
        if url.endswith(".css"):
            for ref in _CSS_URL.findall(r.get_data(as_text=True)):
                if ref.startswith(("data:", "http:", "https:", "//", "#")):
                    continue
                todo.append(ref if ref.startswith("/") else
                            posixpath.normpath(posixpath.join(posixpath.dirname(url), ref)))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--district", default="678", help="GSO code (default: Đức Trọng)")
    parser.add_argument("--home-small", type=Path)
    parser.add_argument("--home-large", type=Path)
    parser.add_argument("--runs", type=int, default=3,
                        help="requests of each page; the median counts (default 3)")
    args = parser.parse_args()
    print_peers()
    with tempfile.TemporaryDirectory(prefix="gisportal-bench-pages-") as tmp:
        homes = {args.small: args.home_small or Path(tmp) / "small",
                 args.large: args.home_large or Path(tmp) / "large"}
        pages: dict[int, tuple[int, bytes, object, Measurement, Measurement]] = {}
        for n, home in homes.items():
            features = ensure_district(home, args.district, n)
            bodies: list[bytes] = []
            clients: list[object] = []

            def fetch(home: Path = home, bodies: list[bytes] = bodies,
                      clients: list[object] = clients) -> float:
                body, client = page(home, args.district)
                bodies.append(body)
                clients.append(client)
                return len(body)

            size = collect(fetch, args.runs)
            zipped = Measurement(tuple(len(gzip.compress(b)) for b in bodies),
                                 size.load_before, size.load_after)
            pages[n] = (features, bodies[-1], clients[-1], size, zipped)
        print(f"/districts/{args.district}: {'parcels':>8} {'HTML bytes':>11} "
              f"{'gzip':>8}   (median of {args.runs} requests [range])")
        for features, _, _, size, zipped in pages.values():
            print(f"{'':{len(args.district) + 12}} {features:>8} {size.median:>11.0f} "
                  f"{zipped.median:>8.0f}   [{size.min:.0f}–{size.max:.0f}] "
                  f"[{zipped.min:.0f}–{zipped.max:.0f}]")
        small_m, large_m = pages[args.small][3], pages[args.large][3]
        n_small, n_large = pages[args.small][0], pages[args.large][0]
        large, client = pages[args.large][1], pages[args.large][2]
        print(f"large page: {large_m.text('bytes', 0)}")
        small, ratio = pages[args.small][1], large_m.median / small_m.median
        print(f"ratio {n_large:,} / {n_small:,} parcels: {ratio:.3f}x  (target: 1.0x, each "
              f"<= {TARGET_BYTES / 2**20:.1f} MB: "
              f"{'met' if max(len(small), len(large)) <= TARGET_BYTES else 'NOT met'})")
        sizes = assets(large.decode("utf-8"), client)
        total = sum(sizes.values())
        print(f"\nassets the page loads from the app ({len(sizes)} files, cached by the "
              f"browser after the first visit):")
        for url, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
            print(f"  {size:>9}  {url}")
        print(f"  {total:>9}  total; with the HTML {total + len(large)} bytes "
              f"({(total + len(large)) / 2**20:.2f} MB) for a first visit")


if __name__ == "__main__":
    main()
