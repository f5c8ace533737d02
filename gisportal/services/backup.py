"""Backup and restore of an embedded data home, while the portal runs.

What a land office must not lose is in the home: the catalogue (versions, users,
tokens, jobs, the audit log), the district GeoPackages (every version of every layer),
the uploads as received (each version names the exact file it came from), the decision
PDFs and the session key. A backup is one tar file holding them:

=========================  ===========================================================
``gisportal-backup.json``  the manifest: format, gisportal version, when, what it holds
``catalogue.sqlite``       copied with SQLite's online backup API (one transaction)
``districts/<code>.gpkg``  the same, after the catalogue (see `GpkgStore.snapshot`)
``uploads/``               uploads and validation reports
``decisions/``             decision PDFs
``secret_key``             the home's session key (mode 0600), when it has one
``tiles/``                 only with ``tiles=True``: tiles are rebuilt from the versions
                           on first use, so a backup leaves them out by default
=========================  ===========================================================

Restoring unpacks into an empty home, then opens the store once (which removes what an
upload that was running during the backup left half-written). Production deployments
(PostgreSQL and S3) are backed up with the database's and the object store's own tools
(``pg_dump``, bucket versioning or replication): docs/deploy.md, "Backup and restore".
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gisportal import __version__
from gisportal.accounts.secret import SECRET_FILE
from gisportal.base.errors import InputError, UsageError
from gisportal.store.gpkg import GpkgStore
from gisportal.store.home import DataHome, scratch_prefix

__all__ = ["FORMAT", "MANIFEST", "BackupResult", "backup", "restore"]

#: The manifest's name inside the archive, and the format it declares.
MANIFEST = "gisportal-backup.json"
FORMAT = "gisportal-backup/1"

Progress = Callable[[str], None]


@dataclass
class BackupResult:
    """What a backup wrote or a restore brought back."""

    path: Path
    versions: int
    districts: list[str]
    files: int
    bytes: int
    manifest: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "versions": self.versions,
                "districts": self.districts, "files": self.files, "bytes": self.bytes}


def _embedded_only(home: DataHome, what: str) -> None:
    if home.settings.get("database") or home.settings.get("files"):
        raise UsageError(
            f"gisportal {what} works on an embedded data home; this one keeps its data in "
            "PostgreSQL and/or S3", where="GISPORTAL_DATABASE / GISPORTAL_FILES",
            fix="back up the database with pg_dump and the bucket with its own tools "
                "(docs/deploy.md, 'Backup and restore')", code="BACKUP-PRODUCTION")


def backup(home: DataHome, dest: str | os.PathLike[str], *, tiles: bool = False,
           progress: Progress | None = None) -> BackupResult:
    """Write a backup of `home` to the tar file `dest` (``.tar.gz``: compressed).

    The archive is written beside `dest` under a temporary name and renamed when
    complete, so `dest` is never a partial backup.

    Raises
    ------
    UsageError
        `dest` exists, or the home is in production mode.
    """
    _embedded_only(home, "backup")
    out = Path(dest).expanduser().resolve()
    if out.exists():
        raise UsageError(f"{out} exists", where="backup file",
                         fix="name a new file; a backup never overwrites another")
    mode = "w:gz" if out.name.endswith((".tar.gz", ".tgz")) else "w"
    store = home.store
    assert isinstance(store, GpkgStore)
    work = Path(tempfile.mkdtemp(prefix=scratch_prefix("backup"), dir=home.scratch))
    partial = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        if progress:
            progress("catalogue and layers")
        snap = work / "store"
        store.snapshot(snap)
        versions = GpkgStore(snap, crs=store.crs)
        try:
            listed = versions.versions()
            districts = versions.districts()
        finally:
            versions.close()
        members: list[tuple[Path, str]] = [(p, p.relative_to(snap).as_posix())
                                           for p in sorted(snap.rglob("*")) if p.is_file()]
        areas = [("uploads", home.uploads), ("decisions", home.decisions)]
        if tiles:
            areas.append(("tiles", home.tiles))
        for name, folder in areas:
            if folder.is_dir():
                members += [(p, f"{name}/{p.relative_to(folder).as_posix()}")
                            for p in sorted(folder.rglob("*"))
                            if p.is_file() and not any(part.startswith(".")
                                                       for part in p.relative_to(folder).parts)]
        secret = home.root / SECRET_FILE
        if secret.is_file():
            members.append((secret, SECRET_FILE))
        manifest = {
            "format": FORMAT, "gisportal": __version__,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "home": str(home.root), "crs": store.crs, "versions": len(listed),
            "published": sum(v.is_published for v in listed), "districts": districts,
            "tiles": tiles, "files": len(members),
        }
        if progress:
            progress(f"{len(members)} files")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(partial, mode) as tar:
            blob = work / MANIFEST
            blob.write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                            encoding="utf-8")
            tar.add(blob, MANIFEST)
            for path, name in members:
                try:
                    tar.add(path, name, recursive=False)
                except FileNotFoundError:  # removed by the clean-up meanwhile: not needed
                    continue
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return BackupResult(out, len(listed), districts, len(members), out.stat().st_size,
                        manifest)


def _manifest(tar: tarfile.TarFile, label: str) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST)
        fh = tar.extractfile(member)
        doc = json.loads(fh.read().decode("utf-8")) if fh else None
    except (KeyError, ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError("the file is not a gisportal backup (no gisportal-backup.json of "
                         f"format {FORMAT})", where=label,
                         fix="give a file written by `gisportal backup`",
                         code="BACKUP-NOT-A-BACKUP")
    return doc


def restore(home: DataHome, src: str | os.PathLike[str],
            progress: Progress | None = None) -> BackupResult:
    """Unpack the backup `src` into `home`, which must hold no store yet.

    Raises
    ------
    UsageError
        The home already holds a catalogue or districts, or is in production mode.
    InputError
        `src` is not a gisportal backup, or is damaged.
    """
    _embedded_only(home, "restore")
    path = Path(src).expanduser().resolve()
    label = str(path)
    if home.catalogue.exists() or any(home.districts.glob("*.gpkg")):
        raise UsageError(f"the data home {home.root} already holds a store",
                         where="GISPORTAL_HOME",
                         fix="restore into a new, empty data home (--home NEW_FOLDER), "
                             "then point the portal at it", code="RESTORE-HOME-NOT-EMPTY")
    # Unpacked beside the home's contents first and moved in when whole, so a refused
    # or damaged archive leaves the home as empty as it was.
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=home.root))
    try:
        with tarfile.open(path) as tar:
            manifest = _manifest(tar, label)
            if progress:
                progress(f"{manifest.get('files', '?')} files")
            # The "data" filter refuses absolute paths, "..", links out of the folder
            # and device files: a backup is a file from outside like any upload.
            tar.extractall(staging, filter="data")
        for entry in staging.iterdir():
            if entry.name != MANIFEST:
                target = home.root / entry.name
                if target.is_dir() and entry.is_dir():  # an empty area made on open
                    for inner in entry.iterdir():
                        os.replace(inner, target / inner.name)
                else:
                    os.replace(entry, target)
    except tarfile.FilterError as exc:
        raise InputError(f"the backup holds a path that would land outside the data home "
                         f"({exc.tarinfo.name[:80]!r})", where=label,
                         fix="use a backup written by `gisportal backup`; this file was "
                             "made or changed by something else", code="BACKUP-UNSAFE") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError) \
                and exc.errno is not None:
            raise
        raise InputError(f"the backup is damaged ({type(exc).__name__})", where=label,
                         fix="use another copy of the backup", code="BACKUP-DAMAGED") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    secret = home.root / SECRET_FILE
    if secret.exists():
        secret.chmod(0o600)
    store = GpkgStore(home, crs=str(manifest.get("crs") or home.crs))
    try:
        listed = store.versions()
        districts = store.districts()
    finally:
        store.close()
    return BackupResult(path, len(listed), districts, int(manifest.get("files") or 0),
                        path.stat().st_size, manifest)
