"""The package's shape: floors in data-flow order, nothing importing from a later floor,
engine modules importable without Flask, and the data home's areas named in one place
(docs/design.md, "The house")."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gisportal"
FLOORS = ["base", "demo", "pipeline", "store", "outputs", "accounts", "services", "jobs",
          "web", "cli"]


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else None


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every gisportal module `path` imports, at module level or inside a function."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "gisportal":
            if node.module == "gisportal":
                out += [(node.lineno, f"gisportal.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names
                    if a.name.split(".")[0] == "gisportal"]
    return out


def test_every_module_lives_on_a_floor():
    loose = sorted(p.name for p in PACKAGE.glob("*.py")
                   if p.name not in ("__init__.py", "__main__.py"))
    assert loose == [], f"modules at the package root, outside every floor: {loose}"


def test_no_module_imports_from_a_later_floor():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        me = _module(path)
        mine = _floor(me)
        if mine is None:
            continue
        for line, target in _imports(path):
            theirs = _floor(target)
            if theirs is not None and theirs > mine:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {me} → {target}")
    assert upward == []


@pytest.mark.parametrize("module", ["gisportal.services.ingest", "gisportal.services.lookup",
                                    "gisportal.jobs.worker", "gisportal.cli.main",
                                    "gisportal.store.home", "gisportal.outputs.export"])
def test_engine_modules_load_without_flask(module):
    code = f"import sys, {module}; print('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False", f"importing {module} loads Flask"


def test_the_data_home_areas_are_named_only_by_the_data_home():
    """Paths under the home are asked of `DataHome`, never built by hand."""
    areas = ("uploads", "tiles", "decisions", "exports", "jobs", "tmp", "logs", "districts")
    pattern = re.compile(r'/\s*"(' + "|".join(areas) + r')"')
    built = [f"{p.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
             for p in PACKAGE.rglob("*.py") if p.name != "home.py"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert built == []


@pytest.mark.parametrize("kind", ["parcels", "plan", "boundary"])
def test_every_threshold_the_code_reads_is_in_the_layer_model(kind):
    """Tolerances live only in ``layers/<kind>.json``: every name the validation,
    repair and compare code asks for is there (a missing one is an error, not a
    default hidden in code)."""
    from gisportal.base.models import layer_model
    from gisportal.pipeline.repair import OVERLAP_THRESHOLD, SNAP_THRESHOLD
    from gisportal.pipeline.validation.boundary import OUTLINE_THRESHOLDS
    from gisportal.pipeline.validation.topology import TOPOLOGY_KINDS, TOPOLOGY_THRESHOLDS

    model = layer_model(kind)
    names = {"area_tolerance_m2", "sliver_width_m", "tiny_area_m2", "max_vertices",
             "max_holes"}
    if kind in TOPOLOGY_KINDS:
        names |= {*TOPOLOGY_THRESHOLDS, OVERLAP_THRESHOLD, SNAP_THRESHOLD,
                  "area_tolerance_relative"}
    if kind == "boundary":
        names |= set(OUTLINE_THRESHOLDS)
    for name in sorted(names):
        assert model.threshold(name) >= 0, name
