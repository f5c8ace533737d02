"""The data home: the one owner of the settings, the opened store and every file area.

Everything gisportal keeps lives in one data home (``$GISPORTAL_HOME``, default
``./instance``). Code never builds a path under the home by hand: it asks the
`DataHome` for the area (``home.uploads``, ``home.tile_file(...)``), so that a second
backend (PostgreSQL for the store and catalogue, S3 for the file areas) plugs in here
and nowhere else. The areas of the embedded home:

=================  ==============================================================
``districts/``     one GeoPackage per district: the layer versions (`GpkgStore`)
``catalogue.sqlite``  versions, accounts, tokens, sessions, jobs, the audit log
``uploads/<job>/`` an upload as received, its validation reports
``tiles/<d>/<kind>/v<id>.pmtiles``  a version's vector tiles
``decisions/<sha256>.pdf``  decision PDFs, by content
``exports/``       ministry packages being built for a download
``jobs/``          job lock files (who runs which job)
``tmp/``           scratch: unzipped uploads, partial files (cleaned, see housekeeping)
``logs/``          the error log of internal failures
=================  ==============================================================

The shared areas (uploads and reports, tiles, decision PDFs) are `FileArea` objects
(`gisportal.store.files`): these folders by default, or ``<prefix>/uploads/``,
``<prefix>/tiles/``, ``<prefix>/decisions/`` of an S3 bucket when the setting ``files``
is ``s3://bucket/prefix`` (production mode: a second app node must find every file the
first one stored). Every read and write of a shared file goes through the area
(``home.upload_area``, ``home.tile_area``, ``home.decision_area``) under a key this class
spells (`upload_key`, `tile_key`, `decision_key`); the `Path` helpers (``tile_file``,
``upload_folder``...) remain for embedded-mode callers. Scratch, logs, job lock files,
exports being built and the secret key always stay on the node.

A `DataHome` is cheap to make (no file is opened until the store is asked for), so
functions that receive a home as a path wrap it with `DataHome.at`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gisportal.base.settings import load_settings

if TYPE_CHECKING:
    from gisportal.store.base import Store
    from gisportal.store.files import FileArea

__all__ = ["SCRATCH", "DataHome", "on_primary", "scratch_prefix"]

#: The scratch folder's name under the data home.
SCRATCH = "tmp"


def scratch_prefix(what: str) -> str:
    """The name prefix of a scratch entry this process makes (``gisportal-read-<pid>-``);
    the pid lets the clean-up tell a live process's scratch from a dead one's."""
    return f"gisportal-{what}-{os.getpid()}-"


def on_primary(store: Store) -> Store:
    """`store` with every read on the primary database: for code that reads what it (or a
    job) has just written, which a read replica may not have replayed yet — the planner's
    pages, the publish workflow. The store itself when it has no replicas (the embedded
    store has none)."""
    pin = getattr(store, "primary", None)
    return pin() if callable(pin) else store


class DataHome:
    """One data home: its settings, its store (opened on first use) and its file areas.

    Parameters
    ----------
    settings
        The settings (`gisportal.base.settings.load_settings`); ``settings["home"]``
        names the folder. Missing settings are loaded from the environment.
    create
        Create the folder if it is missing (the default). ``False`` for commands that
        must not create a home where they run (``gisportal validate``).
    """

    def __init__(self, settings: Mapping[str, Any] | None = None, *,
                 create: bool = True, root: str | os.PathLike[str] | None = None) -> None:
        # With `root` and no settings (`at`), the settings are read from the environment
        # when first asked for: most callers handed a path only want an area of it.
        self._settings: dict[str, Any] | None = dict(settings) if settings is not None \
            else None if root is not None else load_settings()
        home = root if root is not None else self.settings["home"]
        self.root = Path(str(home)).expanduser().resolve()
        if self._settings is not None and root is not None:
            self._settings["home"] = str(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        self._store: Store | None = None
        self._file_areas: dict[str, FileArea] = {}

    @property
    def settings(self) -> dict[str, Any]:
        """The home's settings (``home`` is this home's folder)."""
        if self._settings is None:
            self._settings = load_settings({"home": str(self.root)})
        return self._settings

    @classmethod
    def at(cls, root: str | os.PathLike[str] | DataHome,
           settings: Mapping[str, Any] | None = None) -> DataHome:
        """The home in folder `root` (settings from the environment, home overridden).

        A `DataHome` given as `root` is returned as it is, so functions can accept
        either a path or a home."""
        if isinstance(root, DataHome):
            return root
        return cls(settings, root=root)

    def __repr__(self) -> str:
        return f"DataHome({str(self.root)!r})"

    def __fspath__(self) -> str:
        """A home can stand where a path is expected (``Path(home)``, ``open_store``)."""
        return str(self.root)

    def __str__(self) -> str:
        """Its folder, as ``str(path)`` gives: code handed a home where it used to get a
        path (a worker's argv, ``GISPORTAL_HOME`` for a child) keeps working."""
        return str(self.root)

    # -- the store -----------------------------------------------------------------------

    @property
    def crs(self) -> str:
        """The store CRS: the province's projected CRS (seeds/province.json)."""
        from gisportal.base import seeds

        return str(seeds.province()["crs"])

    @property
    def store(self) -> Store:
        """The home's store, opened on first use and kept open (close with `close`): the
        web app's. Its public reads go to the read replicas when ``database_replicas``
        names some; `on_primary` (``get_store(primary=True)``) pins a staff page's."""
        if self._store is None:
            self._store = self.open_store(replicas=True)
        return self._store

    @property
    def replicas(self) -> list[str]:
        """The read replicas' DSNs (setting ``database_replicas``, comma-separated)."""
        raw = str(self.settings.get("database_replicas") or "")
        return [part.strip() for part in raw.split(",") if part.strip()]

    def open_store(self, crs: str | None = None, *, replicas: bool = False) -> Store:
        """A new store on this home that the caller closes (a command, a worker).

        Production mode (``settings["database"]`` set) opens the PostGIS store on that
        database (`gisportal.store.postgis`); otherwise the embedded GeoPackage store
        under the home. `crs` defaults to the province's (`crs`). With `replicas`, the
        PostGIS store sends its read-only work to the ``database_replicas``; without,
        the default, every read is on the primary: a command or a job worker reads what
        it has just written (an ingest its version, a publish its pointer), which a
        replica may not have replayed yet.
        """
        if self.settings.get("database"):
            from gisportal.store.postgis import PostgisStore

            return PostgisStore(self, crs=crs or self.crs,
                                replicas=self.replicas if replicas else ())
        from gisportal.store.gpkg import GpkgStore

        return GpkgStore(self, crs=crs or self.crs)

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- the catalogue and file areas ----------------------------------------------------

    def _area(self, name: str, *, create: bool = False) -> Path:
        folder = self.root / name
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def catalogue(self) -> Path:
        """The catalogue database file (versions, accounts, jobs, audit)."""
        return self.root / "catalogue.sqlite"

    @property
    def districts(self) -> Path:
        """The embedded store's folder of district GeoPackages."""
        return self._area("districts")

    @property
    def uploads(self) -> Path:
        """Uploads as received, one folder per job, with their reports."""
        return self._area("uploads")

    def upload_folder(self, job_id: int) -> Path:
        """The folder of job `job_id`'s upload and reports."""
        return self.uploads / str(int(job_id))

    @property
    def tiles(self) -> Path:
        """Vector tile archives of versions."""
        return self._area("tiles")

    def tile_file(self, district: str, kind: str, version_id: int) -> Path:
        """The PMTiles archive of one version."""
        return self.tiles / district / kind / f"v{int(version_id)}.pmtiles"

    @property
    def decisions(self) -> Path:
        """Decision PDFs, named by the SHA-256 of their bytes."""
        return self._area("decisions")

    def decision_file(self, sha256: str) -> Path:
        """The stored PDF whose bytes have this SHA-256."""
        return self.decisions / f"{sha256}.pdf"

    @property
    def exports(self) -> Path:
        """Ministry packages being built for a download (node-local: a package is built,
        streamed to the client and removed; with S3 file areas the web download builds
        it in scratch instead, so the node keeps only scratch, logs and locks)."""
        return self._area("exports")

    # -- shared file areas (folders, or S3 with settings["files"]) ----------------------

    @property
    def files_remote(self) -> bool:
        """Whether the shared file areas are in an object store (``files`` is set)."""
        return bool(str(self.settings.get("files") or "").strip())

    def file_area(self, name: str) -> FileArea:
        """The shared area `name` (``uploads``, ``tiles``, ``decisions``), made once."""
        if name not in ("uploads", "tiles", "decisions"):
            raise ValueError(f"no shared file area {name!r}")
        area = self._file_areas.get(name)
        if area is None:
            from gisportal.store.files import open_area

            area = open_area(str(self.settings.get("files") or "").strip(), name,
                             self.root / name)
            self._file_areas[name] = area
        return area

    @property
    def upload_area(self) -> FileArea:
        """Uploads as received and their validation reports: keys ``<job>/<name>``."""
        return self.file_area("uploads")

    @property
    def tile_area(self) -> FileArea:
        """Tile archives: keys ``<district>/<kind>/v<id>.pmtiles``."""
        return self.file_area("tiles")

    @property
    def decision_area(self) -> FileArea:
        """Decision PDFs by content: keys ``<sha256>.pdf``."""
        return self.file_area("decisions")

    @staticmethod
    def upload_key(job_id: int, name: str = "") -> str:
        """The key of file `name` of job `job_id`'s upload folder (the folder's prefix,
        ``7/``, without a name)."""
        return f"{int(job_id)}/{name}"

    @staticmethod
    def upload_key_of(relative: str) -> str:
        """The upload-area key of a path a job row records relative to the home
        (``uploads/7/thua.zip`` → ``7/thua.zip``); ValueError for anything else."""
        head, sep, key = str(relative).partition("/")
        if head != "uploads" or not sep or not key:
            raise ValueError(f"{relative!r} is not in the uploads area")
        return key

    @staticmethod
    def upload_relative(key: str) -> str:
        """What a job row records for upload-area key `key` (``uploads/7/thua.zip``)."""
        return f"uploads/{key}"

    @property
    def tile_cache(self) -> Path:
        """``<home>/cache/tiles``: this node's copies of tile archives of an object store
        (`gisportal.outputs.tiles.cache`) — a cache, rebuilt from the bucket, never state
        a second node needs. Created when first written."""
        return self.root / "cache" / "tiles"

    @staticmethod
    def tile_key(district: str, kind: str, version_id: int) -> str:
        """The tile-area key of one version's PMTiles archive."""
        return f"{district}/{kind}/v{int(version_id)}.pmtiles"

    @staticmethod
    def decision_key(sha256: str) -> str:
        """The decision-area key of the PDF whose bytes have this SHA-256."""
        return f"{sha256}.pdf"

    def tile_build_lock(self, district: str, kind: str) -> Path:
        """The node-local lock file held while a layer's archive is built: beside the
        archives in a folder area, under ``jobs/`` with S3 (no lock file in a bucket)."""
        if not self.files_remote:
            return self.tiles / district / kind / ".build.lock"
        return self.jobs / f"tiles-{district}-{kind}.build.lock"

    @property
    def jobs(self) -> Path:
        """Job lock files."""
        return self._area("jobs")

    @property
    def logs(self) -> Path:
        """The error log of internal failures."""
        return self._area("logs")

    @property
    def scratch(self) -> Path:
        """``<home>/tmp``, created if missing: scratch on the volume the administrator
        watches, where the clean-up finds what a killed process left."""
        return self._area(SCRATCH, create=True)

    @staticmethod
    def scratch_for(settings: Mapping[str, Any] | None) -> Path | None:
        """The scratch folder of the home `settings` names, or None (the system's
        temporary folder) when that home does not exist: checking a file with
        ``gisportal validate`` must not create a data home in whatever folder it runs
        in."""
        home = (settings or {}).get("home")
        if not home:
            return None
        root = Path(str(home)).expanduser()
        if not root.is_dir():
            return None
        try:
            return DataHome.at(root.resolve(), settings).scratch
        except OSError:  # a read-only home: the system's folder will do
            return None
