"""Settings, declared once as a table: name, default, environment variable, help.

Like datasette's settings list, the table is the documentation: ``gisportal
settings`` prints it, and the README lists it. Values come from the environment
(``GISPORTAL_*``) or, for the web app, from a mapping given to the factory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gisportal.base.errors import UsageError

__all__ = ["Setting", "SETTINGS", "load_settings", "setting", "data_home"]


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    env: str
    help: str
    #: Never printed (``gisportal settings`` says only whether it is set).
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "instance", "GISPORTAL_HOME",
            "Data home: the embedded store (catalogue.sqlite, districts/*.gpkg) and "
            "published output. Never committed. In production mode (database and files "
            "set) it holds only this node's scratch, logs and secret key."),
    Setting("keepalive_requests", 100, "GISPORTAL_KEEPALIVE_REQUESTS",
            "Requests one kept-alive connection may carry on gunicorn (serve --workers N) "
            "before the server closes it after the answer; the client reconnects to "
            "whichever worker accepts first, so connections opened in a burst do not stay "
            "piled on one worker (as nginx's keepalive_requests). 0: no limit."),
    Setting("database", "", "GISPORTAL_DATABASE",
            "Production store and catalogue: a PostgreSQL/PostGIS URL "
            "(postgresql://user:password@host:5432/gisportal). Empty: the embedded "
            "GeoPackage/SQLite store under the data home."),
    Setting("database_replicas", "", "GISPORTAL_DATABASE_REPLICAS",
            "Read replicas of the database, comma-separated PostgreSQL URLs: read-only "
            "work (look-ups, tiles metadata, OGC, search) goes there. Empty: the primary."),
    Setting("files", "", "GISPORTAL_FILES",
            "Production file areas (uploads, reports, tiles, decision PDFs, exports): an "
            "S3 location s3://bucket/prefix; endpoint and credentials the standard boto3 "
            "way (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Empty: "
            "folders under the data home."),
    Setting("max_upload_bytes", 1024**3, "GISPORTAL_MAX_UPLOAD_BYTES",
            "Largest file accepted for validation or ingest, in bytes."),
    Setting("max_features", 5_000_000, "GISPORTAL_MAX_FEATURES",
            "Most features a layer may hold; a larger one is refused from its own count, "
            "before its records are read (a whole province's parcels fit)."),
    Setting("max_columns", 500, "GISPORTAL_MAX_COLUMNS",
            "Most attribute columns a layer may hold, refused before reading (wide tables "
            "cost minutes; the store's SQLite tables stop at 2 000 columns, so never more "
            "than 1 900 whatever this says)."),
    Setting("tiles_max_age", 300, "GISPORTAL_TILES_MAX_AGE",
            "Seconds browsers and proxies may cache a vector tile (ETags follow versions)."),
    Setting("tile_cache_mb", 4096, "GISPORTAL_TILE_CACHE_MB",
            "With files in S3: MB of this node's disk (<home>/cache/tiles) for copies of "
            "tile archives, downloaded once per node on first use and then served like "
            "local files; least recently used removed first. 0: every tile is a ranged "
            "GET to the store."),
    Setting("tile_cache_check_seconds", 30.0, "GISPORTAL_TILE_CACHE_CHECK_SECONDS",
            "Seconds a cached tile archive is served before its ETag is asked of the store "
            "again (one HEAD): an archive rebuilt under its key is noticed within this."),
    # The address the public uses (gisportal/web/security.py).
    Setting("public_url", "", "GISPORTAL_PUBLIC_URL",
            "The portal's public address, e.g. https://quyhoach.lamdong.gov.vn (no path). "
            "Set, every absolute link (OGC API, OpenAPI) names it whatever Host header a "
            "request carries. Empty: links follow the request's host (set allowed_hosts)."),
    Setting("allowed_hosts", "", "GISPORTAL_ALLOWED_HOSTS",
            "Host names the portal answers for, separated by commas (.example.org: its "
            "subdomains too); a request for another is refused (400). Empty: any host, "
            "which only a development set-up or one with public_url should keep."),
    Setting("proxy_fix", 0, "GISPORTAL_PROXY_FIX",
            "Reverse proxies in front of the portal (nginx: 1). Above 0, the client's "
            "address, scheme and host come from that many X-Forwarded-For/-Proto/-Host "
            "entries; 0 ignores those headers, which any client can send."),
    Setting("export_contact_org", "Văn phòng Đăng ký đất đai tỉnh Lâm Đồng",
            "GISPORTAL_EXPORT_CONTACT_ORG",
            "Organisation named as the contact in the metadata of ministry export packages."),
    Setting("export_contact_email", "", "GISPORTAL_EXPORT_CONTACT_EMAIL",
            "E-mail of that contact in export metadata (left out when empty)."),
    Setting("job_workers", 1, "GISPORTAL_JOB_WORKERS",
            "Background jobs (ingest, publish) run at once, each in its own process; "
            "more wait in the queue. 1 leaves a core to residents on a 2-core machine."),
    Setting("max_decision_bytes", 50 * 1024**2, "GISPORTAL_MAX_DECISION_BYTES",
            "Largest signed approval-decision PDF accepted, in bytes."),
    Setting("publish_confirm_removed_share", 0.05, "GISPORTAL_PUBLISH_CONFIRM_REMOVED_SHARE",
            "A publish that removes more than this share of the published features (0.05 = "
            "5 %) must be confirmed (--confirm-removals, confirm_removals=true, the review "
            "page's box): a partial file must never silently replace a district."),
    # Limits of background jobs and the heavy commands (gisportal/jobs/limits.py).
    Setting("job_memory_mb", 4096, "GISPORTAL_JOB_MEMORY_MB",
            "Address space (virtual memory, MB) each job worker, and the validate, ingest, "
            "export and demo commands, may use; over it the job fails with 'ran out of "
            "memory' instead of swapping the server. Virtual, not resident: a 200 000-parcel "
            "ingest and publish fails under 1024 and completes under 1536 (unlimited it "
            "reserves 2.1 GB, 600 000 parcels 2.6 GB). 0: no limit."),
    Setting("job_timeout_seconds", 3600, "GISPORTAL_JOB_TIMEOUT_SECONDS",
            "Longest a background job may run before it is stopped as failed, so one "
            "hostile or wedged upload cannot hold the job slot (600 000 parcels ingested "
            "and published in 16 minutes on a busy 2-core machine). 0: no limit."),
    Setting("upload_retention_days", 30, "GISPORTAL_UPLOAD_RETENTION_DAYS",
            "gisportal cleanup removes the uploaded files of jobs finished this many days "
            "ago (never of a version still draft or published: repair reads them again)."),
    # Accounts and sign-in (gisportal/accounts, gisportal/web/auth.py).
    Setting("secret_key", "", "GISPORTAL_SECRET_KEY",
            "Key signing session cookies and CSRF tokens (32+ characters). Unset: a random "
            "key is made once in the data home (secret_key, mode 0600). Servers sharing "
            "one address must share it.", secret=True),
    Setting("cookie_secure", "auto", "GISPORTAL_COOKIE_SECURE",
            "Send the session cookie over HTTPS only: auto (yes, except when the portal is "
            "reached at localhost/127.0.0.1, so the embedded demo works over http), true, "
            "or false (only for a trusted intranet without HTTPS)."),
    Setting("session_hours", 8, "GISPORTAL_SESSION_HOURS",
            "A sign-in lasts this many hours at most (and ends when the browser closes)."),
    Setting("login_max_failures", 5, "GISPORTAL_LOGIN_MAX_FAILURES",
            "Failed sign-ins allowed per user name and client address within the window; "
            "more are answered 429 until the window has passed."),
    Setting("login_window_seconds", 900, "GISPORTAL_LOGIN_WINDOW_SECONDS",
            "The window, in seconds, over which failed sign-ins are counted."),
    Setting("login_max_per_address", 20, "GISPORTAL_LOGIN_MAX_PER_ADDRESS",
            "Failed sign-ins allowed per client address (whatever the user names) within "
            "login_window_seconds; more are answered 429 before any password hash."),
    Setting("login_max_global", 10, "GISPORTAL_LOGIN_MAX_GLOBAL",
            "Sign-in attempts the whole service lets reach the password hash (Argon2, "
            "~0.2 CPU-s each) within login_global_window_seconds; more are answered 429, "
            "so a sign-in flood cannot take the look-ups' CPU."),
    Setting("login_global_window_seconds", 5, "GISPORTAL_LOGIN_GLOBAL_WINDOW_SECONDS",
            "The window, in seconds, of login_max_global (10 in 5 s: 2 a second on "
            "average — look-up p99 stayed within 2x under a flood on 2 cores, 4 a second "
            "did not)."),
    # Jobs across nodes (gisportal/jobs/runner.py, docs/design.md "Jobs across nodes").
    Setting("job_runner", "auto", "GISPORTAL_JOB_RUNNER",
            "Who starts background jobs: spawn (the web node starts a worker process per "
            "job, up to job_workers), external (only `gisportal worker` processes, on any "
            "node, take jobs from the queue), or auto: spawn in the embedded mode (one "
            "command runs everything), external in production mode (database set)."),
    Setting("job_heartbeat_seconds", 5, "GISPORTAL_JOB_HEARTBEAT_SECONDS",
            "Seconds between two heartbeats of a running job's worker (one short update of "
            "its row)."),
    Setting("job_stale_seconds", 60, "GISPORTAL_JOB_STALE_SECONDS",
            "A running job whose worker sent no heartbeat for this long is taken to have "
            "lost its node and is put back in the queue for another worker (several "
            "heartbeats: a busy node is not a dead one)."),
    Setting("job_max_attempts", 3, "GISPORTAL_JOB_MAX_ATTEMPTS",
            "Runs a job gets when its worker keeps disappearing; after the last one it "
            "fails with JOB-ABANDONED instead of being re-queued again."),
    Setting("node_name", "", "GISPORTAL_NODE_NAME",
            "This node's name in the jobs table (which node runs a job). Empty: the host "
            "name. Nodes sharing one database must have different names."),
)


_BY_NAME = {s.name: s for s in SETTINGS}


def _value(s: Setting) -> Any:
    """One setting from the environment, typed like its default, else the default."""
    if s.env not in os.environ:
        return s.default
    raw = os.environ[s.env]
    try:
        return type(s.default)(raw) if not isinstance(s.default, str) else raw
    except ValueError:
        raise UsageError(f"{s.env}={raw!r} is not a {type(s.default).__name__}",
                         where=s.env, fix=f"set it like the default, {s.default!r}",
                         code="SETTING-INVALID") from None


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then environment variables, then ``overrides``; typed like the default."""
    out = {s.name: _value(s) for s in SETTINGS}
    out.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return out


def setting(name: str) -> Any:
    """One setting as `load_settings` would give it, without reading the others: for
    code on a hot path that needs a single value (the catalogue asks which database
    on every connection)."""
    return _value(_BY_NAME[name])


def data_home(settings: dict[str, Any] | None = None) -> Path:
    """The data home as an absolute path, created if missing."""
    home = Path((settings or load_settings())["home"]).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home
