"""What a look-up costs the database, and that costing less changed no answer.

A resident's look-up on PostgreSQL is one statement in the common case: the parcel (by
key or at the point) with the plan zones and annual-plan projects over it, and the
token that confirms the process's kept copy of the catalogue
(`Store.records_and_overlays`, `Store.published_snapshot`). These tests hold that
design to its promises:

- the answers are the GeoPackage store's, field for field, for every kind of look-up;
- a publish, a roll-back or a meta update made elsewhere (another store, another
  process) is in the next look-up of a process that kept the catalogue, also on the
  paths that send no parcel statement (a point outside every district, a district
  with nothing published);
- the statements are counted where psycopg sends them (every ``Cursor.execute``), not
  where the store's code thinks it sends them;
- `records_and_overlays` is, on both backends, what the separate `records` calls give.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from pyproj import Transformer

from gisportal.base import seeds
from gisportal.base.crs import to_lonlat
from gisportal.base.errors import NotFoundError, UsageError
from gisportal.services import lookup as lk
from gisportal.services.ingest import ingest_file
from gisportal.store import Store
from gisportal.store.base import Published, StalePublished
from tests.conftest import DUC_TRONG_XY, parcel_grid, use_database, write_shapefile_zip

X0, Y0 = DUC_TRONG_XY
CRS = "EPSG:5899"
REPO = Path(__file__).resolve().parents[1]
#: A point of Đà Lạt (672), where the tests publish nothing until they do.
DA_LAT_XY = Transformer.from_crs(4326, 5899, always_xy=True).transform(
    *seeds.district("672").anchor_lonlat)


def annual_2026() -> gpd.GeoDataFrame:
    """A road over the block's south-west parcels and a school where there is none."""
    return gpd.GeoDataFrame({
        "TEN_CT": ["Đường giao thông nông thôn", "Trường mầm non Hoa Sen"],
        "MA_DA": ["DA-01", "DA-02"], "MLD": ["DGT", "DGD"],
        "DIENTICH": [1200.0, 10000.0], "SO_QD": ["456/QĐ-UBND", "456/QĐ-UBND"],
    }, geometry=[shapely.box(X0 - 10, Y0 - 10, X0 + 30, Y0 + 20),
                 shapely.box(X0 + 300, Y0 + 300, X0 + 400, Y0 + 400)], crs=CRS)


def plan_file(tmp_path: Path, zones: dict[str, shapely.Geometry], name: str) -> Path:
    path = tmp_path / name
    gpd.GeoDataFrame({"MaLoaiDat": list(zones)}, geometry=list(zones.values()),
                     crs=CRS).to_file(path, driver="GPKG")
    return path


def publish_district(store: Store, tmp_path: Path) -> dict[str, int]:
    """Parcels 4×5 of 20 m × 25 m in 678, a plan of two zones splitting them (ODT west
    of x0 + 50 m, CLN east), the 2026 annual plan; the version ids by kind."""
    out = {}
    parcels = write_shapefile_zip(parcel_grid(), tmp_path / "thua.zip")
    out["parcels"] = ingest_file(store, parcels, "parcels", "678", publish=True).version.id
    plan = plan_file(tmp_path, {"ODT": shapely.box(X0 - 500, Y0 - 500, X0 + 50, Y0 + 600),
                                "CLN": shapely.box(X0 + 50, Y0 - 500, X0 + 600, Y0 + 600)},
                     "plan.gpkg")
    out["plan"] = ingest_file(store, plan, "plan", "678", publish=True, meta={"decision": {
        "number": "123/QĐ-UBND", "date": "2023-06-30",
        "authority": "UBND tỉnh Lâm Đồng"}}).version.id
    annual = write_shapefile_zip(annual_2026(), tmp_path / "kh_2026.zip")
    out["annual_plan"] = ingest_file(store, annual, "annual_plan", "678", year=2026,
                                     publish=True).version.id
    # A planning project over the block (its lots and red lines are overlays of the same
    # statement); the catalogue may be shared by both stores (GISPORTAL_DATABASE).
    from gisportal.base.errors import StoreError
    from gisportal.services import projects
    from tests.test_projects import PID, lines_frame, lots_frame

    with contextlib.suppress(StoreError):  # made by the other store, in their shared database
        projects.create(store.home, project_id=PID, district="678", name="Phân khu Liên Nghĩa",
                        level="zoning", scale="1/2000", status="approved", by="test")
    decision = {"number": "1234/QĐ-UBND", "date": "2019-06-30",
                "authority": "UBND tỉnh Lâm Đồng"}
    for kind, frame, meta in (("zoning_lots", lots_frame(), {"decision": decision}),
                              ("red_lines", lines_frame(), {})):
        path = tmp_path / f"{kind}.gpkg"
        frame.to_file(path, driver="GPKG")
        out[kind] = ingest_file(store, path, kind, None, project=PID, publish=True,
                                meta=meta).version.id
    return out


def latlon(x: float, y: float) -> tuple[float, float]:
    lon, lat = to_lonlat(x, y)
    return float(lat), float(lon)


#: Every kind of look-up: by key, lat/lon and X/Y with and without a district, a parcel
#: under two plan zones and a project, a point with no parcel (a zone and a project
#: there), a point outside every district, and the errors.
LOOKUPS: dict[str, Callable[[Store], dict[str, Any]]] = {
    "key, two zones": lambda s: lk.lookup_key(s, "678", 1, 3),
    "key with commune, a project": lambda s: lk.lookup_key(s, "678", 1, 1, "24778"),
    "key, staff": lambda s: lk.lookup_key(s, "678", 2, 4, public=False),
    "lat/lon": lambda s: lk.lookup_lonlat(s, *latlon(X0 + 10, Y0 + 10)),
    "lat/lon in a district": lambda s: lk.lookup_lonlat(s, *latlon(X0 + 50, Y0 + 30), "678"),
    "X/Y": lambda s: lk.lookup_xy(s, Y0 + 60, X0 + 70),
    "X/Y in a district": lambda s: lk.lookup_xy(s, Y0 + 60, X0 + 70, "678"),
    "X/Y in a zone": lambda s: lk.lookup_xy(s, Y0 + 60, X0 + 70, zone="5899"),
    "no parcel, in a district": lambda s: lk.lookup_lonlat(
        s, *latlon(X0 + 350, Y0 + 350), "678"),
    "no parcel": lambda s: lk.lookup_lonlat(s, *latlon(X0 + 350, Y0 + 350)),
    "no parcel, no zone": lambda s: lk.lookup_lonlat(s, *latlon(X0 + 2000, Y0 + 2000), "678"),
    "outside every district": lambda s: lk.lookup_lonlat(s, 21.0, 105.8),
    "no such parcel": lambda s: lk.lookup_key(s, "678", 9, 9),
    "no published parcels": lambda s: lk.lookup_key(s, "672", 1, 1),
}


def answer(store: Store, ask: Callable[[Store], dict[str, Any]]) -> str:
    """The answer (or the error) as canonical JSON, without the publish times (which
    differ between the two stores by when the test published)."""
    try:
        out: Any = ask(store)
    except (NotFoundError, UsageError) as exc:
        out = {"error": type(exc).__name__, "message": exc.one_line()}

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "published_at"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    return json.dumps(clean(out), sort_keys=True, ensure_ascii=False)


@pytest.fixture
def pg_dsn_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh migrated database as ``GISPORTAL_DATABASE`` (`tests.conftest.use_database`)."""
    return use_database(request, monkeypatch)


@pytest.fixture
def both(tmp_path: Path, pg_dsn_env: str) -> Iterator[dict[str, Store]]:
    """The same district published in a GeoPackage store and in a PostGIS store."""
    from gisportal.store.gpkg import GpkgStore
    from gisportal.store.postgis import PostgisStore

    stores: dict[str, Store] = {"gpkg": GpkgStore(tmp_path / "embedded", crs=CRS),
                                "postgis": PostgisStore(tmp_path / "production", crs=CRS,
                                                        dsn=pg_dsn_env)}
    ids = {name: publish_district(s, tmp_path / name) for name, s in stores.items()
           if (tmp_path / name).mkdir() is None}
    assert ids["gpkg"] == ids["postgis"]  # same ids: the answers can be compared whole
    yield stores
    for s in stores.values():
        s.close()


@pytest.fixture
def pg(both: dict[str, Store]) -> Store:
    return both["postgis"]


class Statements:
    """Every statement psycopg sends from this process while counting (the pool's
    liveness ping, an empty query, left out)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import psycopg

        self.sent: list[str] = []
        self.counting = False
        real = psycopg.Cursor.execute

        def execute(cursor, query, *args, **kwargs):
            text = query if isinstance(query, str) else str(getattr(query, "_obj", query))
            if self.counting and text.strip():
                self.sent.append(text)
            return real(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", execute)

    def of(self, ask: Callable[[], object]) -> int:
        self.sent.clear()
        self.counting = True
        try:
            ask()
        except (NotFoundError, UsageError):
            pass
        finally:
            self.counting = False
        return len(self.sent)


@pytest.mark.production
def test_every_kind_of_lookup_answers_alike_on_both_stores(both: dict[str, Store]) -> None:
    for name, ask in LOOKUPS.items():
        embedded, production = (answer(s, ask) for s in both.values())
        assert embedded == production, name
    # The set covers what it says: shares of two zones, a project, the empty answers.
    parcel = lk.lookup_key(both["postgis"], "678", 1, 1)
    assert {p["code"] for p in lk.lookup_key(both["postgis"], "678", 1, 3)["planned"]} == {
        "ODT", "CLN"}
    assert parcel["annual_plans"][0]["code"] == "DA-01" and parcel["annual_plans"][0]["share"]
    assert parcel["zoning"][0]["red_line"]["roads"][0]["name"] == "Đường Thống Nhất"
    nothing = lk.lookup_lonlat(both["postgis"], *latlon(X0 + 350, Y0 + 350))
    assert (nothing["reason"], nothing["district"]) == ("no_parcel", "678")
    assert [p["code"] for p in nothing["planned"]] == ["CLN"]
    assert [p["code"] for p in nothing["annual_plans"]] == ["DA-02"]
    assert lk.lookup_lonlat(both["postgis"], 21.0, 105.8)["reason"] == "outside_districts"


@pytest.mark.production
def test_a_lookup_is_one_statement(pg: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    statements = Statements(monkeypatch)
    for ask in LOOKUPS.values():  # layer facts, outlines, prepared statements
        statements.of(lambda ask=ask: ask(pg))
    costs = {name: statements.of(lambda ask=ask: ask(pg)) for name, ask in LOOKUPS.items()}
    # The catalogue, the parcel, its plan zones and its projects: one statement, which
    # also confirms the kept catalogue. A point outside every district, and a district
    # with nothing published, send no parcel statement: the confirmation is their one.
    assert costs == dict.fromkeys(LOOKUPS, 1), costs
    assert all("publish_generation" in s for s in statements.sent)


@pytest.mark.production
def test_a_publish_elsewhere_is_in_the_next_lookup(
        pg: Store, tmp_path: Path, pg_dsn_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process keeps the catalogue between look-ups; nothing but the token tells
    it that another store (another node) published: each change is in the very next
    look-up, on every path."""
    from gisportal.store.postgis import PostgisStore

    statements = Statements(monkeypatch)
    first = lk.lookup_key(pg, "678", 1, 3)
    old_plan = first["plan"]["version"]
    other = PostgisStore(tmp_path / "other-node", crs=CRS, dsn=pg_dsn_env)
    draft = ingest_file(other, plan_file(tmp_path, {"DGT": shapely.box(
        X0 - 500, Y0 - 500, X0 + 600, Y0 + 600)}, "plan2.gpkg"), "plan", "678",
        meta={"decision": {"number": "456/QĐ-UBND"}}).version
    # A draft is not the catalogue: the kept copy is still good (one statement).
    assert statements.of(lambda: lk.lookup_key(pg, "678", 1, 3)) == 1

    other.publish(draft.id, by="planner")
    cost = statements.of(lambda: lk.lookup_key(pg, "678", 1, 3))
    after = lk.lookup_key(pg, "678", 1, 3)
    assert after["plan"]["version"] == draft.id and after["plan"]["decision"] == "456/QĐ-UBND"
    assert [(p["code"], p["share"]) for p in after["planned"]] == [("DGT", 1.0)]
    # Found stale by the statement itself, the catalogue read again, asked again.
    assert cost == 3 and statements.of(lambda: lk.lookup_key(pg, "678", 1, 3)) == 1

    other.update_meta(draft.id, {"decision": {"number": "789/QĐ-UBND"}})
    assert lk.lookup_lonlat(pg, *latlon(X0 + 10, Y0 + 10))["plan"]["decision"] == "789/QĐ-UBND"
    other.publish(old_plan, by="planner")  # a roll-back
    assert lk.lookup_xy(pg, Y0 + 10, X0 + 10)["plan"]["version"] == old_plan

    # Paths with no parcel statement confirm the kept copy by a round trip of their own.
    x, y = DA_LAT_XY
    assert lk.lookup_lonlat(pg, *latlon(x + 5, y + 5))["reason"] == "outside_districts"
    with pytest.raises(NotFoundError):
        lk.lookup_key(pg, "672", 1, 1)
    grid = parcel_grid(1, 2, origin=DA_LAT_XY).rename(columns={
        "MaXa": "commune", "SoTo": "sheet", "SoThua": "parcel", "DienTich": "area_m2",
        "LoaiDat": "land_use", "TenChu": "owner"})
    other.publish(other.add_version("672", "parcels", grid, source_name="thua.gpkg",
                                    source_sha256="0" * 64, created_by="t").id, by="t")
    assert lk.lookup_lonlat(pg, *latlon(x + 5, y + 5))["parcel"]["district"] == "672"
    assert lk.lookup_key(pg, "672", 1, 2)["parcel"]["parcel"] == 2
    other.close()


@pytest.mark.production
def test_a_publish_by_another_process_is_in_the_next_lookup(
        pg: Store, tmp_path: Path, pg_dsn_env: str) -> None:
    """As from another node: ``gisportal publish`` in a process of its own."""
    assert lk.lookup_key(pg, "678", 1, 3)["planned"][0]["code"] in {"ODT", "CLN"}
    draft = ingest_file(pg, plan_file(tmp_path, {"DGT": shapely.box(
        X0 - 500, Y0 - 500, X0 + 600, Y0 + 600)}, "plan2.gpkg"), "plan", "678").version
    assert lk.lookup_key(pg, "678", 1, 3)["plan"]["version"] != draft.id
    env = {**os.environ, "GISPORTAL_HOME": str(tmp_path / "production"),
           "GISPORTAL_DATABASE": pg_dsn_env}
    done = subprocess.run([sys.executable, "-m", "gisportal", "publish", "--district", "678",
                           "--kind", "plan", "--version", str(draft.id), "--consultation",
                           "--confirm-removals"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    after = lk.lookup_key(pg, "678", 1, 3)
    assert after["plan"]["version"] == draft.id
    assert [p["code"] for p in after["planned"]] == ["DGT"]


@pytest.mark.production
def test_the_publish_token_changes_with_the_published_versions_only(
        pg: Store, tmp_path: Path) -> None:
    """Drafts come and go (uploads never wait for the token's row); a publish and a
    meta update of a published version draw a new token in their own transaction."""
    from tests.test_store import pg_query

    def token() -> object:
        return pg_query("SELECT token FROM publish_generation")[0][0]

    before = token()
    draft = pg.add_version("678", "plan", gpd.GeoDataFrame(
        {"land_use": ["DGT"]}, geometry=[shapely.box(X0, Y0, X0 + 10, Y0 + 10)], crs=CRS),
        source_name="p.gpkg", source_sha256="1" * 64, created_by="t")
    pg.update_meta(draft.id, {"note": "a draft's meta"})
    assert token() == before
    assert pg.published_snapshot("678").confirmed  # read for this call, and kept
    kept = pg.published_snapshot("678")
    assert not kept.confirmed  # the kept copy, to be confirmed by a statement
    pg.publish(draft.id, by="t")
    published = token()
    assert published != before
    # A statement given the kept (now stale) snapshot says so; the next is fresh.
    with pytest.raises(StalePublished):
        pg.records_and_overlays(kept[("678", "parcels")].id, point=(X0 + 10, Y0 + 10),
                                published=kept)
    fresh = pg.published_snapshot("678")
    assert fresh.confirmed and fresh[("678", "plan")].id == draft.id
    pg.update_meta(draft.id, {"decision": {"number": "1/QĐ"}})
    assert token() != published
    with pytest.raises(StalePublished):
        pg.confirm(pg.published_snapshot("678"))


# -- the contract of records_and_overlays, on both backends ----------------------------------


@pytest.fixture
def layers(store_on_each_backend: Store) -> tuple[Store, int, int, int]:
    """Parcels (a 2×3 grid of 20 m × 25 m), plan zones and projects, as drafts."""
    s = store_on_each_backend
    grid = parcel_grid(2, 3).rename(columns={"SoTo": "sheet", "SoThua": "parcel",
                                             "LoaiDat": "land_use"})
    grid["Tỷ lệ %"] = 0.5  # a "%" in a name is no placeholder in the statement's text
    parcels = s.add_version("678", "parcels", grid, source_name="thua.gpkg",
                            source_sha256="0" * 64, created_by="t").id
    plan = s.add_version("678", "plan", gpd.GeoDataFrame(
        {"land_use": ["ODT", "CLN", None]},
        geometry=[shapely.box(X0 - 100, Y0 - 100, X0 + 30, Y0 + 200),
                  shapely.box(X0 + 30, Y0 - 100, X0 + 300, Y0 + 200),
                  shapely.box(X0 + 500, Y0 + 500, X0 + 600, Y0 + 600)], crs=CRS),
        source_name="qh.gpkg", source_sha256="1" * 64, created_by="t").id
    projects = s.add_version("678", "annual_plan", gpd.GeoDataFrame(
        {"year": [2026, 2027], "name": ["Đường", "Trường"], "area_m2": [10.5, None]},
        geometry=[shapely.box(X0 - 5, Y0 - 5, X0 + 5, Y0 + 5),
                  shapely.box(X0 + 520, Y0 + 520, X0 + 540, Y0 + 540)], crs=CRS),
        source_name="kh.gpkg", source_sha256="2" * 64, created_by="t").id
    return s, parcels, plan, projects


def test_records_and_overlays_is_what_records_gives(layers) -> None:
    s, parcels, plan, projects = layers
    overlays = [(plan, ["land_use"]), (projects, ["year", "name", "area_m2"]), (plan, [])]

    def separately(where=None, point=None, version=parcels):
        found = [] if version is None else s.records(version, where=where, point=point)
        if found:
            box = tuple(float(v) for v in shapely.bounds(found[0]["geometry"]))
            return found, [s.records(v, bbox=box, columns=c) for v, c in overlays]
        if point is None:
            return found, [[] for _ in overlays]
        return found, [s.records(v, point=point, columns=c) for v, c in overlays]

    def same(a, b) -> None:
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert x.keys() == y.keys()
            assert {k: v for k, v in x.items() if k != "geometry"} == {
                k: v for k, v in y.items() if k != "geometry"}
            assert shapely.equals_exact(x["geometry"], y["geometry"], 0)

    cases = [
        {"point": (X0 + 10, Y0 + 10)},  # a parcel under a zone and a project
        {"point": (X0 + 20, Y0 + 10)},  # on the edge of two parcels: the first's overlays
        {"where": {"sheet": 1, "parcel": 5}},
        {"where": {"sheet": 1, "parcel": 99}},  # nothing found, no point: no overlays
        {"point": (X0 + 530, Y0 + 530)},  # no parcel: what lies at the point
        {"point": (X0 + 530, Y0 + 530), "version": None},  # no parcels layer
        {"point": (X0 + 5000, Y0 + 5000)},
    ]
    for case in cases:
        version = case.pop("version", parcels)
        found = s.records_and_overlays(version, overlays=overlays, **case)
        expected = separately(version=version, **case)
        same(found.records, expected[0])
        for got, want in zip(found.overlays, expected[1], strict=True):
            same(got, want)
    edge = s.records_and_overlays(parcels, point=(X0 + 20, Y0 + 10), overlays=overlays)
    assert len(edge.records) == 2 and len(edge.overlays[0]) == 1
    assert [r["land_use"] for r in s.records_and_overlays(
        None, point=(X0 + 530, Y0 + 530), overlays=overlays).overlays[0]] == [None]
    for bad in ({}, {"where": {"sheet": 1}, "point": (X0, Y0)}):
        with pytest.raises(UsageError):
            s.records_and_overlays(parcels, **bad)
    with pytest.raises(UsageError):
        s.records_and_overlays(None, where={"sheet": 1})


def test_a_snapshot_is_the_published_versions(layers) -> None:
    s, parcels, plan, _ = layers
    s.publish(parcels, by="t")
    s.publish(plan, by="t")
    for district in (None, "678", "672"):
        snapshot = s.published_snapshot(district)
        assert isinstance(snapshot, Published)
        assert dict(snapshot) == s.published_versions(district)
        s.confirm(snapshot)
        assert snapshot.confirmed
    with pytest.raises(NotFoundError):
        s.published_snapshot("67a")
