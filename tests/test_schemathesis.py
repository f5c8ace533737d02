"""Schemathesis over both OpenAPI documents: /api/openapi.json and the OGC API's /ogc/api.

The documents are what scripts, QGIS and GDAL read to know what to send and what comes
back, so a property-based client generates requests from them (valid ones, invalid
ones, the edge cases of each parameter, methods the documents do not list) and checks
every answer against them: never a 5xx, only documented status codes, the documented
content type, bodies valid against the published schemas, documented headers, 401
when the required token is missing, 405 with ``Allow`` for an undocumented method.

Run on a small published home (the OGC tests' district: 120 parcels and a two-zone
plan), anonymously for both documents, then once more for the planners' JSON API with
a Bearer token of a planner of that district. The fast runs draw a bounded number of
examples per operation with a fixed seed, so CI is stable; the ``slow`` one draws more,
also derandomized: a CI run must not depend on luck (a random run once found ``limit=``
accepted on /api/jobs; that case is now pinned in tests/test_api_contract.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from schemathesis import checks as st

from gisportal import jobs
from gisportal.accounts import tokens, users
from gisportal.web.app import create_app
from tests.test_ogc_api import publish_district

#: What every answer must satisfy. ``positive_data_acceptance`` is left out: the
#: documents cannot say that district, sheet and parcel go together, or that a tile's x
#: is below 2^z, so a schema-valid request may rightly be a 400.
CHECKS = [
    st.not_a_server_error,
    st.status_code_conformance,
    st.content_type_conformance,
    st.response_schema_conformance,
    st.response_headers_conformance,
    st.missing_required_header,
    st.unsupported_method,
    st.allow_header_conformance,
]
#: The JSON API answers are checked as sent uncompressed: the WSGI transport hands a body
#: over as sent, and /api/units gzips for a client that accepts it (tested on its own in
#: tests/test_units.py).
IDENTITY = {"Accept-Encoding": "identity"}
#: The JSON API refuses what its document forbids (limit=0 against ``minimum: 1``...).
#: Not for /ogc: there a limit above the maximum is served as the maximum, as the OGC
#: standard requires, though the document publishes the maximum.
API_CHECKS = [*CHECKS, st.negative_data_rejection]

FAST = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """District 678 published, and a planner of it (cheap password hashing)."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    publish_district(tmp / "home", tmp)
    users.add_user(tmp / "home", "lan", "planner", "mat-khau-dai-12345", districts=["678"],
                   hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    return tmp / "home"


@pytest.fixture(scope="module")
def app(home):
    return create_app({"home": str(home)})


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@pytest.fixture(scope="module")
def ogc_schema(app):
    return schemathesis.openapi.from_wsgi("/ogc/api", app)


@pytest.fixture(scope="module")
def staff_schema(app, home):
    """The JSON API as the planner's script sees it: every request with the token."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    token = tokens.create_token(home, "lan", label="schemathesis")
    schema.config.update(headers={"Authorization": f"Bearer {token}"})
    return schema


api = schemathesis.pytest.from_fixture("api_schema")
ogc = schemathesis.pytest.from_fixture("ogc_schema")
staff = schemathesis.pytest.from_fixture("staff_schema").include(
    path_regex=r"^/api/(jobs|versions|me)")


@api.parametrize()
@FAST
def test_json_api_anonymous(case) -> None:
    case.call_and_validate(checks=API_CHECKS, headers=IDENTITY)


@ogc.parametrize()
@FAST
def test_ogc_api(case) -> None:
    case.call_and_validate(checks=CHECKS)


@staff.parametrize()
@FAST
def test_json_api_with_a_planners_token(case, home) -> None:
    case.call_and_validate(checks=API_CHECKS, headers=IDENTITY)
    # Generated uploads are never GIS files: nothing may have been queued.
    assert jobs.list_jobs(home) == []


@pytest.mark.slow
@api.parametrize()
@SLOW
def test_json_api_anonymous_many(case) -> None:
    case.call_and_validate(checks=API_CHECKS, headers=IDENTITY)


@pytest.mark.slow
@ogc.parametrize()
@SLOW
def test_ogc_api_many(case) -> None:
    case.call_and_validate(checks=CHECKS)


@pytest.mark.slow
@staff.parametrize()
@SLOW
def test_json_api_with_a_planners_token_many(case, home) -> None:
    case.call_and_validate(checks=API_CHECKS, headers=IDENTITY)
    assert jobs.list_jobs(home) == []
