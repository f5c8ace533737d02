"""Shared measuring harness of the benches: medians of several runs, their spread, the load.

Why: a figure measured once, or the best of N runs, cannot be reproduced by someone else
on a shared machine — the best run is the luckiest one, and nobody can tell how lucky.
The project's rule is the median of at least 3 runs, printed with its spread (the
range of the runs) and with the machine's load while they ran, so a reader can judge
whether a difference between two re-runs is the code or the machine. Compared
operations are run alternately in the same loop (a, b, a, b, ...) so both see the same
machine state, and their ratio is given as the median ratio with the range of the
per-run ratios.

Usage::

    m = measure(lambda: work(), runs=3)             # seconds of each run
    print(m.text("s"))        # 2.24 s (median of 3, 2.10–2.41 s, ±7 %; load 1.3→1.9 on 2 CPUs)
    a, b = alternate([read, check], runs=3)          # read, check, read, check, ...
    print(ratio(b, a).text())  # 3.1× (per run 3.0–3.3×)
    m = collect(lambda: run_child()["seconds"])      # the value a run reports itself
    print_peers("pyogrio", "gdal", "shapely")        # what the bench compared against
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace


def cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def load_now() -> float:
    """The 1-minute load average (runnable processes), NaN where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


@dataclass(frozen=True)
class Measurement:
    """Several runs of one measurement, with the load before the first and after the last.

    `samples` are in the unit the caller measured in (seconds for `measure`); `scaled`
    converts. The median is the figure; min, max and the spread say how far one run
    may land from it.
    """

    samples: tuple[float, ...]
    load_before: float = field(default_factory=load_now)
    load_after: float = field(default_factory=load_now)
    cpus: int = field(default_factory=cpus)

    @property
    def runs(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def spread(self) -> float:
        """max − min, in the samples' unit."""
        return self.max - self.min

    @property
    def spread_pct(self) -> float:
        """(max − min) as a percentage of the median; `text` prints ± half of it."""
        return 100 * self.spread / self.median if self.median else float("nan")

    def scaled(self, factor: float) -> Measurement:
        """The same runs in another unit (e.g. ×1000 for s → ms, or n / s for a rate)."""
        return replace(self, samples=tuple(s * factor for s in self.samples))

    def map(self, fn: Callable[[float], float]) -> Measurement:
        """The same runs through `fn` (e.g. features / seconds → a rate per run)."""
        return replace(self, samples=tuple(fn(s) for s in self.samples))

    def load_text(self) -> str:
        return load_text(self.load_before, self.load_after, self.cpus)

    def text(self, unit: str = "s", digits: int = 2) -> str:
        """E.g. ``2.24 s (median of 3, 2.10–2.41 s, ±7 %; load 1.3→1.9 on 2 CPUs)``."""
        u = f" {unit}" if unit else ""
        f = _fmt(digits)
        if self.runs == 1:
            return f"{f(self.median)}{u} (1 run; {self.load_text()})"
        return (f"{f(self.median)}{u} (median of {self.runs}, {f(self.min)}–{f(self.max)}{u}, "
                f"±{self.spread_pct / 2:.0f} %; {self.load_text()})")

    def short(self, unit: str = "s", digits: int = 2) -> str:
        """Median and range without the load, for tables that print the load once."""
        u = f" {unit}" if unit else ""
        f = _fmt(digits)
        return f"{f(self.median)}{u} [{f(self.min)}–{f(self.max)}]"

    def as_dict(self, digits: int = 4) -> dict[str, object]:
        """For the benches that print JSON."""
        return {"median": round(self.median, digits), "min": round(self.min, digits),
                "max": round(self.max, digits), "spread_pct": round(self.spread_pct, 1),
                "runs": self.runs, "samples": [round(s, digits) for s in self.samples],
                "load": [round(self.load_before, 2), round(self.load_after, 2)],
                "cpus": self.cpus}


def _fmt(digits: int) -> Callable[[float], str]:
    """Thousands separated by a thin space for big numbers (60 000), else `digits` places."""
    def f(x: float) -> str:
        if abs(x) >= 10_000:
            return f"{x:,.0f}".replace(",", " ")
        return f"{x:.{digits}f}"
    return f


def load_text(before: float, after: float, n_cpus: int | None = None) -> str:
    return f"load {before:.1f}→{after:.1f} on {n_cpus or cpus()} CPUs"


@dataclass(frozen=True)
class Ratio:
    """a / b: the ratio of the medians, and the range of the per-run ratios.

    The per-run ratios exist when a and b were measured alternately, run i of one next
    to run i of the other; they show how much of a difference the machine alone makes.
    """

    median: float
    per_run: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.per_run) if self.per_run else self.median

    @property
    def max(self) -> float:
        return max(self.per_run) if self.per_run else self.median

    def text(self, digits: int = 2) -> str:
        if not self.per_run:
            return f"{self.median:.{digits}f}×"
        return (f"{self.median:.{digits}f}× (per run {self.min:.{digits}f}–"
                f"{self.max:.{digits}f}×)")

    def as_dict(self, digits: int = 3) -> dict[str, object]:
        return {"median": round(self.median, digits),
                "per_run": [round(r, digits) for r in self.per_run]}


def ratio(a: Measurement, b: Measurement) -> Ratio:
    """median(a) / median(b), with the per-run ratios a[i] / b[i] when the runs pair up."""
    per_run = tuple(x / y for x, y in zip(a.samples, b.samples, strict=True)) \
        if a.runs == b.runs else ()
    return Ratio(a.median / b.median, per_run)


def _check_runs(runs: int) -> None:
    if runs < 1:
        raise ValueError("runs must be at least 1")


def measure(fn: Callable[[], object], runs: int = 3, warmup: int = 0) -> Measurement:
    """Wall seconds of `runs` calls of `fn`, after `warmup` untimed calls."""
    return alternate([fn], runs, warmup)[0]


def collect(fn: Callable[[], float], runs: int = 3, warmup: int = 0) -> Measurement:
    """`runs` values that `fn` returns itself (a child process's own timing, a p95, ...)."""
    return alternate_values([fn], runs, warmup)[0]


def alternate(fns: Sequence[Callable[[], object]], runs: int = 3,
              warmup: int = 0) -> list[Measurement]:
    """Wall seconds of each of `fns`, called in turn (a, b, a, b, ...) `runs` times."""
    def timer(fn: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start
        return run
    return alternate_values([timer(fn) for fn in fns], runs, warmup)


def alternate_values(fns: Sequence[Callable[[], float]], runs: int = 3,
                     warmup: int = 0) -> list[Measurement]:
    """The values each of `fns` returns, called in turn `runs` times; one load window."""
    _check_runs(runs)
    for _ in range(warmup):
        for fn in fns:
            fn()
    before = load_now()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for out, fn in zip(samples, fns, strict=True):
            out.append(float(fn()))
    after = load_now()
    return [Measurement(tuple(s), before, after) for s in samples]


class Runs:
    """Accumulates per-run values of several named figures measured in one loop.

    For benches whose one run yields many figures (a run of a server yields its
    throughput, p50 and p95 at once): ``runs.add("p95", x)`` in each run, then
    ``runs["p95"]`` is a Measurement over the window from `Runs()` to `close()`.
    """

    def __init__(self) -> None:
        self.before = load_now()
        self.after: float | None = None
        self.values: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(float(value))

    def close(self) -> Runs:
        self.after = load_now()
        return self

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def __getitem__(self, name: str) -> Measurement:
        after = self.after if self.after is not None else load_now()
        return Measurement(tuple(self.values[name]), self.before, after)


def machine_line() -> str:
    """One line saying where the figures come from: CPUs and the load right now."""
    la = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"machine: {cpus()} CPUs, load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
            f"(1, 5, 15 min) at {time.strftime('%Y-%m-%d %H:%M:%S')}")


def _run_version(cmd: list[str]) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].strip() if done.returncode == 0 and text else None


def peer_versions(*names: str, pygeoapi_python: str | os.PathLike[str] | None = None
                  ) -> dict[str, str]:
    """Versions of what a bench compares against, by name.

    Known names: ``pyogrio``, ``gdal`` (the GDAL pyogrio is built with, which
    gisportal reads and writes through), ``shapely`` (with its GEOS), ``geopandas``,
    ``ogr2ogr`` (Debian's command, ``--version``), ``pygeoapi`` (imported by
    `pygeoapi_python`, the interpreter of its own virtualenv), ``wrk``, ``gunicorn``,
    ``waitress``, ``python``. A peer that cannot be found says so rather than vanish.
    """
    out: dict[str, str] = {}
    for name in names:
        value: str | None
        if name == "pyogrio":
            import pyogrio
            value = pyogrio.__version__
        elif name == "gdal":
            import pyogrio
            value = f"{pyogrio.__gdal_version_string__} (of pyogrio)"
        elif name == "shapely":
            import shapely
            value = f"{shapely.__version__} (GEOS {shapely.geos_version_string})"
        elif name in ("geopandas", "gunicorn", "waitress"):
            from importlib.metadata import PackageNotFoundError, version
            try:
                value = version(name)
            except PackageNotFoundError:
                value = None
        elif name == "ogr2ogr":
            exe = shutil.which("ogr2ogr")
            value = _run_version([exe, "--version"]) if exe else None
            if value and exe:
                value = f"{value} ({exe})"
        elif name == "pygeoapi":
            value = _run_version([str(pygeoapi_python), "-c",
                                  "import pygeoapi; print(pygeoapi.__version__)"]) \
                if pygeoapi_python else None
        elif name == "wrk":
            exe = shutil.which("wrk")
            # `wrk -v` prints its version and exits 1.
            value = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout \
                .strip().splitlines()[0] if exe else None
        elif name == "python":
            import platform
            value = platform.python_version()
        else:
            raise ValueError(f"unknown peer {name!r}")
        out[name] = value or "not found"
    return out


def print_peers(*names: str, pygeoapi_python: str | os.PathLike[str] | None = None) -> None:
    """Print the machine line and the peers' versions, so the output says what it compared."""
    print(machine_line())
    if names:
        versions = peer_versions(*names, pygeoapi_python=pygeoapi_python)
        print("peers: " + "; ".join(f"{k} {v}" for k, v in versions.items()))
