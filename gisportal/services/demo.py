"""Build, validate and publish the demo province through the real pipeline.

The generator (:mod:`gisportal.demo`) makes synthetic layers; this module writes them
out as a planner would send them — parcels as a GeoPackage with the field names of
the national cadastral database, the plan as FlatGeobuf, boundaries as GeoJSON in
WGS 84 — and ingests each file with :func:`gisportal.services.ingest.ingest_file`. So the demo
exercises reading, field mapping, CRS transformation, validation and publishing
exactly as real uploads do. Parcels and plan are written in the district's own survey
zone, the CRS the generated frames carry (EPSG:9218 for former Đắk Nông and Bình
Thuận, EPSG:5899 for former Lâm Đồng), declared in the files as offices declare it; the
store reads that declaration and reprojects to its grid. Commune codes are the real
former communes', as ``seeds/communes.csv`` lists them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gisportal.base import seeds
from gisportal.base.errors import GisportalError
from gisportal.demo import iter_province
from gisportal.demo.annual import generate_annual_plan
from gisportal.demo.rand import rng_for
from gisportal.demo.zoning import PROJECTS, DemoProject, plan_frames
from gisportal.outputs.tiles.build import ensure_version_key
from gisportal.services import workflow
from gisportal.services.ingest import IngestResult, ingest_file
from gisportal.store.base import Store

__all__ = ["DEMO_USER", "build_demo", "DemoResult", "PARCEL_FIELD_NAMES"]

DEMO_USER = "demo"

#: Canonical parcel field → the name the national land database uses.
PARCEL_FIELD_NAMES = {"commune": "MaXa", "sheet": "SoHieuToBanDo", "parcel": "SoThuTuThua",
                      "area_m2": "DienTich", "land_use": "KyHieuMucDichSuDung",
                      "owner": "TenChu", "address": "DiaChiThua"}
PLAN_FIELD_NAMES = {"zone_id": "MaVung", "land_use": "MaLoaiDat", "commune": "MaXa"}


@dataclass
class DemoResult:
    district: str
    results: dict[str, IngestResult]


def _decision(code: str) -> dict[str, str] | None:
    """A clearly fictitious approval decision for districts whose plan is approved."""
    status = seeds.district_status().get(code)
    if status is None or status.plan_status != "approved":
        return None
    return {"number": f"DEMO-{code}/QĐ-UBND", "date": "2023-06-30",
            "authority": "Ủy ban nhân dân tỉnh Lâm Đồng (dữ liệu minh họa / demo data)"}


def _boundary_frame(d) -> gpd.GeoDataFrame:
    unit = seeds.district(d.code)
    rows = [{"Cap": "district", "Ma": d.code, "Ten": unit.name, "geometry": d.boundary}]
    for c in d.communes.itertuples():
        rows.append({"Cap": "commune", "Ma": c.code, "Ten": c.name, "geometry": c.geometry})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=d.communes.crs).to_crs(4326)


#: The year of the demo's annual land-use plans (kế hoạch sử dụng đất hằng năm).
ANNUAL_YEAR = 2026

#: From this many districts on, a worker process builds the layers' tiles while this
#: one generates and ingests the next district (see `_TileWorker`); for fewer, starting
#: the worker (about 2 s of imports) would cost more than the overlap saves.
TILE_WORKER_MIN_DISTRICTS = 3


#: Tile builds the worker may have queued (a district's three, and the parcels of the
#: next) before this process builds a plan's or annual plan's tiles itself.
_WORKER_BEHIND = 3


def build_demo(store: Store, *, parcels_per_district: int = 2000,
               districts: Sequence[str] | None = None, seed: int = 68,
               progress: Callable[[str, str], None] | None = None,
               tile_worker: bool | None = None) -> list[DemoResult]:
    """Generate the demo province and publish every layer of every district.

    ``progress(district, stage)`` is called as work advances (for a progress bar).
    Layers are published only when they validate without errors (the generator makes
    clean data, so any error here is a bug worth seeing).

    Why a tile worker: two thirds of the demo's time went into GDAL writing vector
    tiles, and the rest (generating, reading, validating, storing) is Python in one
    thread, so one core waited while the other worked. With ``tile_worker`` (default:
    from `TILE_WORKER_MIN_DISTRICTS` districts on) the parcels, plan and annual plan of a
    district are ingested as drafts, their tiles built by a worker process meanwhile,
    and each is published through `gisportal.services.workflow.publish` once its tiles
    are there; every layer is published when this returns, as without the worker. The
    boundary is published at once (its tiles are small): the other layers are checked
    against the published boundary. The two processes share the tiles so that neither
    waits long: a plan or annual plan is built here while the worker is a district
    behind, and at the end this process takes the builds the worker has not
    started.
    """
    codes = None if districts is None else [str(c) for c in districts]
    if tile_worker is None:
        tile_worker = codes is None or len(codes) >= TILE_WORKER_MIN_DISTRICTS
    out: list[DemoResult] = []
    with contextlib.ExitStack() as stack:
        # started first, so that its imports overlap the province layout
        worker = stack.enter_context(_TileWorker(store)) if tile_worker else None
        if worker is not None:
            # two processes for the tiles now: GDAL's pool of one thread per CPU in each
            # would only contend (the worker writes in one thread too)
            stack.enter_context(_gdal_threads("1"))
        generated = iter_province(parcels_per_district, seed=seed, districts=codes)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gisportal-demo-")))
        pending: list[_Pending] = []
        for d in generated:
            if progress:
                progress(d.code, "write")
            paths = _write_files(d, tmp, seed)
            results: dict[str, IngestResult] = {}
            status = seeds.district_status().get(d.code)
            for kind, path, meta in (
                ("boundary", paths["boundary"], {}),
                ("parcels", paths["parcels"], {"demo": True}),
                ("plan", paths["plan"], {"demo": True, "decision": _decision(d.code),
                                         "plan_status": status.plan_status if status
                                         else None}),
                ("annual_plan", paths["annual_plan"], {"demo": True}),
            ):
                if progress:
                    progress(d.code, kind)
                # Plans not yet approved are shown as what they are: drafts for comment.
                consultation = kind == "plan" and meta.get("decision") is None
                # the boundary at once; the plan and annual plan too when the worker is
                # a district behind (large districts: this keeps both processes busy)
                inline = worker is None or kind == "boundary" or (
                    kind != "parcels" and worker.backlog() > _WORKER_BEHIND)
                results[kind] = ingest_file(
                    store, path, kind, d.code, publish=inline, user=DEMO_USER, meta=meta,
                    consultation=consultation)
                if not inline:
                    pending.append(_Pending(results[kind], consultation,
                                            worker.submit(results[kind])))
            out.append(DemoResult(d.code, results))
            # publish what the worker has finished, without waiting for the rest
            while pending and pending[0].ready():
                pending.pop(0).publish(store)
        while pending:
            if not pending[0].ready() and pending[-1].steal():
                # the worker has not started the last one: this process builds it
                pending.pop().publish(store)
            else:
                pending.pop(0).publish(store)
        built = {r.district for r in out}
        for project in PROJECTS:
            if project.district in built:
                if progress:
                    progress(project.district, "project")
                _demo_project(store, project, tmp, seed)
    return out


def _demo_project(store: Store, p: DemoProject, tmp: Path, seed: int) -> None:
    """Create a demo planning project and publish its lots and red lines through the
    same services as a planner's upload (an adjusted one: its first version, then the
    adjustment, so the two can be compared)."""
    from gisportal.base import crs as vncrs
    from gisportal.services import projects
    from gisportal.store import projects as project_catalogue

    lon, lat = seeds.district(p.district).anchor_lonlat
    origin = tuple(float(v) for v in vncrs.from_lonlat(lon, lat))
    with contextlib.suppress(GisportalError):  # built before: the demo is run again
        project_catalogue.get(store.home, p.id)
        return
    projects.create(store.home, project_id=p.id, district=p.district, name=p.name,
                    level=p.level, scale=p.scale, status="approved", by=DEMO_USER)
    for version in (1, 2) if p.adjusted else (1,):
        lots, lines = plan_frames(p, origin, store.crs, seed, version=version)
        lots_path = tmp / f"{p.id}-o-quy-hoach-{version}.gpkg"
        lines_path = tmp / f"{p.id}-chi-gioi-{version}.gpkg"
        lots.to_file(lots_path, driver="GPKG")
        lines.to_file(lines_path, driver="GPKG")
        year = 2019 if version == 1 else 2024
        decision = {"number": f"DEMO-{p.id.split('-')[0]}-{version}/QĐ-UBND",
                    "date": f"{year}-06-30",
                    "authority": "Ủy ban nhân dân tỉnh Lâm Đồng (dữ liệu minh họa)"}
        for kind, path, meta in (("zoning_lots", lots_path, {"demo": True,
                                                            "decision": decision}),
                                 ("red_lines", lines_path, {"demo": True})):
            result = ingest_file(store, path, kind, None, project=p.id, publish=True,
                                 user=DEMO_USER, meta=meta)
            if not result.published:
                raise RuntimeError(f"demo project {p.id}: {kind} not published: "
                                   f"{result.not_published or result.report.summary()}")
    if p.adjusted:
        projects.update(store, p.id, by=DEMO_USER, status="adjusted")


def _write_files(d, tmp: Path, seed: int) -> dict[str, Path]:
    """Write district ``d``'s layers as an office would send them; their paths by kind."""
    base = tmp / d.code
    base.mkdir()
    parcels = d.parcels.rename(columns=PARCEL_FIELD_NAMES)
    ppath = base / f"thua_dat_{d.code}.gpkg"
    parcels.to_file(ppath, layer="thua_dat", driver="GPKG")
    plan = d.plan.rename(columns=PLAN_FIELD_NAMES)
    qpath = base / f"quy_hoach_{d.code}.fgb"
    plan.to_file(qpath, driver="FlatGeobuf")
    bpath = base / f"ranh_gioi_{d.code}.geojson"
    _boundary_frame(d).to_file(bpath, driver="GeoJSON")
    # This year's annual land-use plan: what residents check before buying land.
    apath = base / f"ke_hoach_{ANNUAL_YEAR}_{d.code}.gpkg"
    generate_annual_plan(d.plan, ANNUAL_YEAR, rng_for(seed, "annual", d.code),
                         commune_names=dict(zip(d.communes.code, d.communes.name,
                                                strict=True))
                         ).to_file(apath, driver="GPKG")
    return {"boundary": bpath, "parcels": ppath, "plan": qpath, "annual_plan": apath}


@dataclass
class _Pending:
    """A layer ingested as a draft, to be published once the worker built its tiles."""

    result: IngestResult
    consultation: bool
    tiles: Future[None] | None

    def ready(self) -> bool:
        return self.tiles is None or self.tiles.done()

    def steal(self) -> bool:
        """Take the tiles back from the worker if it has not started them (publishing
        then builds them here); whether it could."""
        return self.tiles is not None and self.tiles.cancel()

    def publish(self, store: Store) -> None:
        """Publish as `ingest_file` does with ``publish=True``: the same call, a refusal
        kept in ``not_published``."""
        if self.tiles is not None:
            # A failed build is not this layer's verdict: publish builds the tiles
            # itself and raises what is wrong, as it would have without the worker.
            with contextlib.suppress(Exception):
                self.tiles.result()
        try:
            done = workflow.publish(store, self.result.version.id, DEMO_USER,
                                    consultation=self.consultation)
        except GisportalError as err:
            self.result.not_published = err
        else:
            self.result.version, self.result.published = done.version, True
            self.result.changes = done.changes


@contextlib.contextmanager
def _gdal_threads(value: str) -> Iterator[None]:
    """GDAL_NUM_THREADS set to ``value`` for a while, then as it was."""
    import pyogrio

    before = pyogrio.get_gdal_config_option("GDAL_NUM_THREADS")
    pyogrio.set_gdal_config_options({"GDAL_NUM_THREADS": value})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"GDAL_NUM_THREADS": before})


class _TileWorker:
    """One process that builds the tiles of stored versions (`ensure_version_key`, what
    publishing calls), on its own store of the same home.

    Started with "spawn", as the tile writer's own processes are (a fork of a threaded
    process can deadlock); GDAL writes in one thread there, since this process keeps the
    other core busy.
    """

    def __init__(self, store: Store) -> None:
        self._broken = False
        self._submitted: list[Future[None]] = []
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init, initargs=(dict(store.home.settings), store.crs))
        self._pool.submit(int)  # start it now: its imports overlap the province layout

    def submit(self, result: IngestResult) -> Future[None] | None:
        """Build the tiles of the version ``result`` stored; None for a version that
        cannot be published (validation errors: publishing refuses it before tiles)."""
        if result.report.has_errors or self._broken:
            return None
        try:
            future = self._pool.submit(_worker_tiles, result.version.id)
        except BrokenProcessPool:
            # the worker died (or could not start: a script without the
            # ``if __name__ == "__main__"`` guard "spawn" needs); publishing builds the
            # tiles itself, as without a worker
            self._broken = True
            return None
        self._submitted.append(future)
        return future

    def backlog(self) -> int:
        """Builds submitted and not finished yet."""
        self._submitted = [f for f in self._submitted if not f.done()]
        return len(self._submitted)

    def __enter__(self) -> _TileWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


#: The tile worker's store (set by `_worker_init` in the worker process).
_WORKER_STORE: Store | None = None


def _worker_init(settings: dict, crs: str) -> None:
    global _WORKER_STORE
    import pyogrio

    from gisportal.store.home import DataHome

    pyogrio.set_gdal_config_options({"GDAL_NUM_THREADS": "1"})
    _WORKER_STORE = DataHome(settings).open_store(crs)


def _worker_tiles(version_id: int) -> None:
    assert _WORKER_STORE is not None, "worker not initialised"
    store = _WORKER_STORE
    ensure_version_key(store, store.home, store.version(version_id))


def demo_summary(results: list[DemoResult]) -> pd.DataFrame:
    """One row per district and kind: version, features, published, errors."""
    rows = []
    for r in results:
        for kind, res in r.results.items():
            rows.append({"district": r.district, "kind": kind, "version": res.version.id,
                         "features": res.version.feature_count, "published": res.published,
                         "errors": res.report.count("error"),
                         "warnings": res.report.count("warning")})
    return pd.DataFrame(rows)
