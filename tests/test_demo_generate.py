"""The synthetic Lâm Đồng generator: tiling, parcels, plan, determinism, text.

The merged province's own checks (island, zones, through the pipeline) are in
tests/test_demo_merged.py."""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from gisportal.base import seeds as base_seeds
from gisportal.base.errors import UsageError
from gisportal.demo import generate_district, generate_province, growth, province_outline
from gisportal.demo.cells import jittered_mesh
from gisportal.demo.outline import province_layout
from gisportal.demo.seeds import fold

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
#: the 30 plan districts: former Bình Thuận 593–602, Đắk Nông 660–667, Lâm Đồng 672–683
CODES = [*map(str, range(593, 603)), *map(str, range(660, 668)), *map(str, range(672, 684))]
SMALL = 300  # parcels per district in the whole-province fixture
MEDIUM = 20_000  # parcels in the one district checked at scale
MEDIUM_CODE = "678"  # Đức Trọng: a thị trấn, villages, farmland, forest, a river


def _district_seeds() -> dict[str, dict]:
    units = json.loads((SEEDS / "admin_units.json").read_text(encoding="utf-8"))["units"]
    return {
        u["code"]: u
        for u in units
        if u["level"] == "district" and u["valid_to"] in ("2024-12-31", "2025-06-30")
        and (u.get("valid_from") or "") <= "2024-12-31"
    }


def _catalogue() -> set[str]:
    with open(SEEDS / "land_use_codes.csv", encoding="utf-8", newline="") as fh:
        return {row["code"] for row in csv.DictReader(fh)}


def _anchor_xy(code: str, crs: str = "EPSG:5899") -> shapely.Point:
    """The district's anchor in ``crs`` (a generated district is in its survey zone)."""
    lon, lat = _district_seeds()[code]["anchor_lonlat"]
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return shapely.Point(x, y)


@pytest.fixture(scope="module")
def province():
    events: list[tuple[str, int]] = []
    districts = generate_province(SMALL, progress=lambda stage, n: events.append((stage, n)))
    return districts, events


@pytest.fixture(scope="module")
def medium():
    return generate_district(MEDIUM_CODE, MEDIUM)


# --------------------------------------------------------------------------- districts


def test_the_thirty_plan_districts_of_2024(province):
    districts, _ = province
    assert [d.code for d in districts] == CODES
    seeds = _district_seeds()
    assert [d.name for d in districts] == [seeds[c]["name"] for c in CODES]


def test_districts_tile_the_outline():
    # in the province's CRS (generated districts are each in their own zone)
    outline = province_outline()
    boundaries = np.array([d.boundary for d in province_layout().districts])
    assert len(boundaries) == len(CODES)
    # the mainland and one island (Phú Quý), no holes
    assert outline.geom_type == "MultiPolygon" and outline.is_valid
    assert len(outline.geoms) == 2 and not any(p.interiors for p in outline.geoms)
    assert all(b.geom_type == "Polygon" for b in boundaries)
    assert shapely.is_valid(boundaries).all()
    assert shapely.coverage_is_valid(boundaries)  # no overlaps, edges matched
    union = shapely.union_all(boundaries)
    assert abs(union.area - outline.area) / outline.area < 1e-6
    assert abs(sum(b.area for b in boundaries) - outline.area) / outline.area < 1e-6
    assert shapely.symmetric_difference(union, outline).area / outline.area < 1e-6


def test_districts_are_the_size_of_the_real_ones():
    # all 30, Phú Quý's 16 km² included, measured in the province's CRS as the seeds are
    seeds = _district_seeds()
    for d in province_layout().districts:
        assert d.boundary.area / 1e6 == pytest.approx(seeds[d.code]["area_km2"], rel=0.05), \
            d.code


def test_anchor_lies_inside_its_district(province):
    districts, _ = province
    for d in districts:
        assert d.boundary.contains(_anchor_xy(d.code, d.crs)), d.code


# --------------------------------------------------------------------------- communes


def test_communes_are_the_real_ones_and_tile(province):
    districts, _ = province
    prefix = {"xa": "Xã ", "phuong": "Phường ", "thi_tran": "Thị trấn "}
    all_codes = []
    for d in districts:
        real = base_seeds.communes_of(d.code)
        communes = d.communes
        # the real former communes: GSO code and name, the kind from the name's prefix
        assert list(communes["code"]) == sorted(real)
        assert [real[c].name for c in communes["code"]] == list(communes["name"])
        assert all(n.startswith(prefix[k]) for n, k in zip(communes["name"], communes["kind"],
                                                          strict=True))
        geoms = communes.geometry.values
        assert (shapely.get_type_id(geoms) == 3).all() and shapely.is_valid(geoms).all()
        assert shapely.coverage_is_valid(geoms)
        union = shapely.union_all(geoms)
        assert shapely.symmetric_difference(union, d.boundary).area / d.boundary.area < 1e-9
        all_codes += list(communes["code"])
    assert len(all_codes) == len(set(all_codes))


def test_seat_towns_sit_on_the_anchor(province):
    districts, _ = province
    seeds = _district_seeds()
    for d in districts:
        towns = seeds[d.code]["seat_towns"]
        names = list(d.communes["name"])
        anchor = _anchor_xy(d.code, d.crs)
        seat = d.communes[d.communes.contains(anchor)]
        assert len(seat) == 1
        kinds = set(d.communes["kind"])
        if "phuong" in kinds:
            assert seat["kind"].iloc[0] == "phuong"
        elif "thi_tran" in kinds:
            # the seat town by name, spellings folded (Mađaguôi = Thị trấn Ma Đa Guôi)
            assert seat["kind"].iloc[0] == "thi_tran"
            assert fold(seat["name"].iloc[0].removeprefix("Thị trấn ")) == fold(towns[0]), d.code
        elif towns:  # seated in a rural commune named after the seat (Đam Rông: Rô Men)
            assert fold(seat["name"].iloc[0].removeprefix("Xã ")) == fold(towns[0]), d.code
        assert all(n.startswith(("Xã ", "Phường ", "Thị trấn ")) for n in names)


# --------------------------------------------------------------------------- parcels


def test_exact_parcel_counts(province, medium):
    districts, _ = province
    assert all(len(d.parcels) == SMALL for d in districts)
    assert len(medium.parcels) == MEDIUM
    empty = generate_district("673", 0).parcels
    assert len(empty) == 0 and list(empty.columns) == list(medium.parcels.columns)
    tiny = generate_district("675", 7).parcels
    assert len(tiny) == 7 and (tiny["land_use"] == "ODT").any()  # the town comes first


def test_parcels_valid_and_do_not_overlap(medium):
    geoms = medium.parcels.geometry.values
    assert (shapely.get_type_id(geoms) == 3).all()
    assert shapely.is_valid(geoms).all()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = left < right
    shared = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
    assert (shared <= 0.01).all()
    assert len(tree.query(geoms, predicate="overlaps")[0]) == 0
    # shared edges have the same vertices on both sides: a valid polygon coverage
    assert shapely.coverage_is_valid(geoms)


def test_parcels_inside_their_commune_and_district(province, medium):
    for d in [*province[0], medium]:
        shapes = dict(zip(d.communes["code"], d.communes.geometry, strict=True))
        own = np.array([shapes[c] for c in d.parcels["commune"]], dtype=object)
        assert shapely.within(d.parcels.geometry.values, own).all()
        assert shapely.within(d.parcels.geometry.values, d.boundary).all()


def test_parcel_keys_and_numbering(province, medium):
    for d in [*province[0], medium]:
        p = d.parcels
        assert not p.duplicated(["commune", "sheet", "parcel"]).any()
        for _, sheets in p.groupby("commune"):
            assert set(sheets["sheet"]) == set(range(1, sheets["sheet"].max() + 1))
        for _, lots in p.groupby(["commune", "sheet"]):
            assert sorted(lots["parcel"]) == list(range(1, len(lots) + 1))


def test_numbering_reads_from_north_west(medium):
    p = medium.parcels
    # the fullest sheet (in the seat town)
    commune, sheet = p.groupby(["commune", "sheet"]).size().idxmax()
    first = p[(p["commune"] == commune) & (p["sheet"] == sheet)].sort_values("parcel")
    assert len(first) > 50
    y = shapely.get_coordinates(first.geometry.centroid.values)[:, 1]
    # numbers go down the sheet in bands: the top tenth is numbered before the bottom
    head, tail = y[: max(len(y) // 10, 1)], y[-max(len(y) // 10, 1):]
    assert head.mean() > tail.mean()


def test_land_use_codes_exist(province, medium):
    catalogue = _catalogue()
    used = set()
    for d in [*province[0], medium]:
        used |= set(d.parcels["land_use"]) | set(d.plan["land_use"])
    assert used
    for code in used:
        assert set(code.split("+")) <= catalogue, code
    assert any("+" in c for c in used)
    assert {"ODT", "ONT", "CLN", "DGT", "SON", "RSX"} <= {c for u in used for c in u.split("+")}


def test_towns_are_small_lots_and_forest_large(medium):
    p = medium.parcels
    area = p.geometry.area
    town = area[p["land_use"] == "ODT"]
    forest = area[p["land_use"].isin(["RSX", "RPH", "RDD"])]
    farm = area[p["land_use"].isin(["CLN", "HNK", "LUC"])]
    assert len(town) > 1000 and len(forest) > 50
    assert 100 <= town.median() <= 500
    assert 1_000 <= farm.median() <= 20_000
    assert 50_000 <= forest.median() <= 500_000
    assert town.median() < farm.median() < forest.median()


def test_towns_are_dense(medium):
    p = medium.parcels
    anchor = _anchor_xy(MEDIUM_CODE)
    near = p[p.geometry.distance(anchor) < 500]
    # the seat town centre is surveyed throughout: hundreds of small lots within 500 m
    assert len(near) > 1500
    assert near.geometry.area.median() < 500


def test_roads_are_long_and_thin(medium):
    p = medium.parcels
    roads = p[p["land_use"] == "DGT"].geometry
    rivers = p[p["land_use"] == "SON"].geometry
    assert len(roads) and len(rivers)
    # elongation: perimeter² / area is 16 for a square, 48 for a 1:10 ribbon
    assert ((roads.length**2 / roads.area) > 48).mean() > 0.3
    assert (roads.length**2 / roads.area).max() > 200
    assert (rivers.length**2 / rivers.area).median() > 48


def test_declared_area_close_to_true_area(medium):
    p = medium.parcels
    true = p.geometry.area.values
    declared = p["area_m2"].values
    assert (np.abs(declared - true) <= 0.01 * true).all()
    assert np.allclose(declared, np.round(declared, 1))
    off = np.abs(declared - true) > 0.06
    assert 0 < off.mean() < 0.1  # a few parcels carry a surveyor's error


# --------------------------------------------------------------------------- plan


def test_plan_covers_each_district_exactly(province, medium):
    for d in [*province[0], medium]:
        zones = d.plan.geometry.values
        # Phú Quý, an island of 16 km², has a few dozen zones
        assert (20 if d.code == "602" else 100) <= len(zones) <= 5000, d.code
        assert (shapely.get_type_id(zones) == 3).all() and shapely.is_valid(zones).all()
        assert shapely.coverage_is_valid(zones)
        assert shapely.is_empty(shapely.coverage_invalid_edges(zones)).all()
        union = shapely.union_all(zones)
        assert abs(union.area - d.boundary.area) / d.boundary.area < 1e-9
        assert shapely.symmetric_difference(union, d.boundary).area / d.boundary.area < 1e-9
        assert d.plan["zone_id"].is_unique
        assert set(d.plan["commune"]) <= set(d.communes["code"])


def test_plan_grows_the_towns(medium):
    p = medium.parcels
    spots = p.geometry.representative_point().values
    close = shapely.distance(spots, _anchor_xy(MEDIUM_CODE)) < 4_000
    tree = shapely.STRtree(medium.plan.geometry.values)
    where, zone = tree.query(spots[close], predicate="intersects")
    planned = np.full(int(close.sum()), None, dtype=object)
    planned[where] = medium.plan["land_use"].values[zone]
    current = p["land_use"].str.split("+").str[0].values[close]
    assert all(v is not None for v in planned)
    changed = current != planned
    # farmland round the town is planned for urban uses...
    grown = changed & np.isin(current, ["CLN", "HNK", "LUC", "LUK"]) & np.isin(
        planned, ["ODT", "TMD", "DGT", "DKV"])
    assert grown.sum() > 0
    # ...while most of the land keeps its use
    assert (~changed).mean() > 0.5
    assert {"SKN", "DGT", "SON"} <= set(medium.plan["land_use"])


# --------------------------------------------------------------------------- determinism


def _fingerprint(d) -> list[bytes]:
    out = [shapely.to_wkb(d.boundary)]
    for frame in (d.communes, d.parcels, d.plan):
        out += list(shapely.to_wkb(frame.geometry.values))
        out.append(frame.drop(columns="geometry").to_csv().encode())
    return out


def test_same_seed_same_district(province):
    districts, _ = province
    alone = generate_district("673", SMALL)
    assert _fingerprint(alone) == _fingerprint(next(d for d in districts if d.code == "673"))
    assert _fingerprint(generate_district("673", SMALL)) == _fingerprint(alone)


def test_other_seed_other_province(province):
    other = generate_district("673", SMALL, seed=7)
    same = next(d for d in province[0] if d.code == "673")
    assert shapely.to_wkb(other.boundary) != shapely.to_wkb(same.boundary)
    assert not province_outline(7).equals(province_outline())


# --------------------------------------------------------------------------- growth


def _grow_reference(mesh, seeds, budgets, speed, cost, allowed, labels=None):
    """Region growing as first written: every cell of the mesh, every held cell
    restarted; what `growth.grow_regions` must still give."""
    import heapq

    n = mesh.size
    out = [-1] * n if labels is None else labels.tolist()
    taken = [0] * len(seeds)
    limit = [2**62] * len(seeds) if budgets is None else list(budgets)
    heap = []
    if labels is None:
        heap = [(0.0, r, int(c)) for r, c in enumerate(seeds)]
    else:
        for cell in np.flatnonzero(labels >= 0):
            heap.append((0.0, out[cell], int(cell)))
            taken[out[cell]] += 1
            out[cell] = -2
    heapq.heapify(heap)
    while heap:
        dist, region, cell = heapq.heappop(heap)
        if out[cell] >= 0:
            continue
        if out[cell] == -1:
            if taken[region] >= limit[region]:
                continue
            taken[region] += 1
        out[cell] = region
        for k in range(mesh.indptr[cell], mesh.indptr[cell + 1]):
            nb = int(mesh.indices[k])
            if out[nb] == -1 and allowed[nb]:
                heapq.heappush(heap, (dist + mesh.lengths[k] * cost[nb] / speed[region],
                                      region, nb))
    return np.array(out)


@pytest.mark.parametrize("share", [0.0, 1.0])  # the whole mesh; a graph of allowed cells
def test_region_growth_is_the_reference_growth(monkeypatch, share):
    monkeypatch.setattr(growth, "_SUBGRAPH_SHARE", share)
    rng = np.random.default_rng(5)
    mesh = jittered_mesh((0.0, 0.0, 30_000.0, 30_000.0), 500.0, rng)
    allowed = np.hypot(*(mesh.xy - 15_000.0).T) < 9_000.0  # a disc: 7 % of the mesh
    cells = np.flatnonzero(allowed)
    seeds = rng.choice(cells, 5, replace=False)
    budgets = np.array([100, 40, 300, 80, 60])  # the disc has ~1 000 cells: some left
    speed = rng.uniform(0.5, 2.0, 5)
    cost = rng.uniform(0.5, 3.0, mesh.size)
    first = growth.grow_regions(mesh, seeds, budgets, speed=speed, cost=cost, allowed=allowed)
    assert np.array_equal(first, _grow_reference(mesh, seeds, budgets, speed, cost, allowed))
    assert (first[cells] < 0).any()
    # a restart from what the regions hold, without budgets, takes the rest
    rest = growth.grow_regions(mesh, seeds, None, speed=speed, cost=cost, allowed=allowed,
                               labels=first)
    assert np.array_equal(rest, _grow_reference(mesh, seeds, None, speed, cost, allowed,
                                                first))
    assert (rest[cells] >= 0).all() and (rest[~allowed] < 0).all()


# --------------------------------------------------------------------------- text, api


def _texts(d) -> list[str]:
    out = [d.name]
    for frame in (d.communes, d.parcels, d.plan):
        for col in frame.columns:
            if col != "geometry" and frame[col].dtype != "int64" and col != "area_m2":
                out += [v for v in frame[col] if isinstance(v, str)]
    return out


def test_text_is_nfc(province, medium):
    for d in [*province[0], medium]:
        texts = _texts(d)
        assert all(unicodedata.is_normalized("NFC", t) for t in texts)
    owners = medium.parcels["owner"]
    persons = owners[~owners.str.startswith(("UBND", "Ban ", "Trường", "Trạm", "Giáo",
                                             "Công ty"))]
    assert len(persons) > 0.8 * len(owners)
    assert persons.str.contains(" |K'", regex=True).all()
    assert persons.str.startswith(("Nguyễn ", "Trần ", "K'", "Ka ")).any()


def test_progress_is_reported(province):
    _, events = province
    assert events[0] == ("layout", 1)
    assert ("parcels", SMALL * len(CODES)) in events
    assert [n for stage, n in events if stage == "district"] == list(range(1, len(CODES) + 1))


def test_bad_arguments():
    with pytest.raises(UsageError):
        generate_district("999", 10)
    with pytest.raises(UsageError):
        generate_province(-1)
    with pytest.raises(UsageError):
        generate_province(10, districts=["672", "682@2025"])
