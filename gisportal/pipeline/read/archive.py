"""Unpack an uploaded zip archive without trusting anything it says about itself.

Planners upload zipped shapefiles made by every tool there is (ArcGIS, QGIS, MapInfo,
Windows Explorer, 7-Zip with a Vietnamese code page), and the portal is reachable from
the internet, so the archive is hostile until proven otherwise: paths may try to
escape the destination (zip-slip), members may be symlinks, sizes may be lies, and a
few kilobytes may inflate to terabytes (zip bomb). :func:`safe_extract` checks the
whole central directory *before* writing a byte, then extracts into a private staging
folder while counting the bytes it really writes, and only moves the result into the
destination when every member came out intact. On any refusal nothing is left behind.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gisportal.base.errors import InputError, UnsafeArchiveError, UsageError
from gisportal.base.text import human_size

__all__ = ["safe_extract", "decode_member_name", "is_ignored_member"]

#: Below this declared size a member cannot hurt however well it compresses: an empty
#: 254-character DBF column compresses a thousandfold, so applying the ratio test to
#: tiny members would refuse genuine files for no gain in safety.
RATIO_CHECK_MIN_BYTES = 1024**2

_CHUNK = 1024**2
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_FLAG_UTF8 = 0x800
_FLAG_ENCRYPTED = 0x1
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Files zip tools add on their own; they are never part of the data.
_IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    name: str  # decoded, NFC, forward slashes, validated relative path


def is_ignored_member(name: str) -> bool:
    """Tell whether a member path is operating-system litter (``__MACOSX/``, ``.DS_Store``).

    macOS Finder adds ``__MACOSX/._thua.shp`` resource forks next to real files; reading
    them as shapefiles fails in confusing ways, so they are skipped by name.
    """
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if not parts:
        return True
    if any(p == "__MACOSX" for p in parts[:-1]) or parts[0] == "__MACOSX":
        return True
    last = parts[-1]
    return last.lower() in _IGNORED_NAMES or last.startswith("._")


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """Return the member's path as NFC text, whatever code page the zip tool used.

    The zip format says names are cp437 unless flag bit 11 marks them UTF-8, and
    Python decodes them that way. In practice Vietnamese Windows tools write either
    UTF-8 without setting the flag or the Windows-1258 ANSI code page, so a name that
    is not flagged is re-read from its raw bytes: valid UTF-8 wins (random cp437 or
    cp1258 bytes are almost never valid UTF-8), otherwise cp1258 and cp437 are scored
    by how Vietnamese the result looks and the better one is kept (cp437 on a tie,
    as the format says). The result is NFC because macOS writes decomposed names.

    Parameters
    ----------
    info
        The member as listed by :mod:`zipfile`.

    Returns
    -------
    str
        The name with forward slashes as written in the archive (not yet validated).
    """
    name = info.filename
    if not info.flag_bits & _FLAG_UTF8:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:  # pragma: no cover - zipfile decoded it with cp437
            raw = None
        if raw is not None and not raw.isascii():
            name = _best_legacy_name(raw)
    return unicodedata.normalize("NFC", name)


def _best_legacy_name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    cp437 = raw.decode("cp437")
    try:
        cp1258 = unicodedata.normalize("NFC", raw.decode("cp1258"))
    except UnicodeDecodeError:
        return cp437
    score = _vietnamese_score()
    return cp1258 if score(cp1258) > score(cp437) else cp437


def _vietnamese_score():
    """The colleague's syllable scorer, imported late so a zip can be read without it."""
    try:
        from gisportal.pipeline.read.encodings import vietnamese_score
    except ImportError:  # pragma: no cover - only while encodings.py is being written
        def vietnamese_score(text: str) -> float:
            letters = [c for c in text if c.isalpha()]
            return sum(c in _VIETNAMESE_LETTERS for c in letters) / max(1, len(letters))
    return vietnamese_score


_VIETNAMESE_LETTERS = set(
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữự"
    "vxyỳýỷỹỵAÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬBCDĐEÈÉẺẼẸÊỀẾỂỄỆGHIÌÍỈĨỊKLMNOÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢPQRSTUÙÚỦŨỤ"
    "ƯỪỨỬỮỰVXYỲÝỶỸỴ"
)


def _safe_relative(name: str, zip_label: str) -> str:
    """Validate one member path and return it as a clean relative POSIX path.

    Backslashes are treated as separators (old Windows zippers write ``Data\\thua.shp``)
    *before* looking for ``..``, so ``..\\..\\evil`` cannot slip through as one odd name.
    """
    where = f"{zip_label}!{name}"
    fix = "Re-create the zip from the folder that holds the data, with relative paths only"
    if _CONTROL.search(name):
        raise UnsafeArchiveError("the archive has a member whose name contains control "
                                 "characters", where=where, fix=fix, code="ARCHIVE-BAD-NAME")
    text = name.replace("\\", "/")
    if text.startswith("/"):
        raise UnsafeArchiveError("the archive has a member with an absolute path",
                                 where=where, fix=fix, code="ARCHIVE-ZIP-SLIP")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if parts and _DRIVE.match(parts[0]):
        raise UnsafeArchiveError("the archive has a member with a drive letter in its path",
                                 where=where, fix=fix, code="ARCHIVE-ZIP-SLIP")
    if ".." in parts:
        raise UnsafeArchiveError("the archive has a member whose path climbs out of the "
                                 "folder with '..' (zip-slip)", where=where, fix=fix,
                                 code="ARCHIVE-ZIP-SLIP")
    if any(":" in p for p in parts):
        raise UnsafeArchiveError("the archive has a member whose path contains ':'",
                                 where=where, fix=fix, code="ARCHIVE-ZIP-SLIP")
    if not parts:
        raise UnsafeArchiveError("the archive has a member with an empty name", where=where,
                                 fix=fix, code="ARCHIVE-BAD-NAME")
    return "/".join(parts) + ("/" if text.endswith("/") else "")


def _open_zip(zip_path: Path) -> zipfile.ZipFile:
    label = zip_path.name
    try:
        with open(zip_path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InputError("the archive cannot be opened", where=str(zip_path),
                         fix=f"Check the file exists and is readable ({exc.strerror})",
                         code="FILE-UNREADABLE") from exc
    if not zipfile.is_zipfile(zip_path):
        if head in _ZIP_MAGIC:
            raise InputError("the zip archive is damaged or incomplete (its table of "
                             "contents is missing)", where=label,
                             fix="Upload the file again or re-create the zip; an interrupted "
                                 "download or upload cuts the end off", code="ARCHIVE-CORRUPT")
        raise InputError("not a zip archive", where=label,
                         fix="Upload a .zip made with a zip tool (Windows 'Send to > "
                             "Compressed folder', 7-Zip, QGIS), not a .rar/.7z or a renamed "
                             "file", code="FILE-NOT-ZIP")
    try:
        return zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError,
            NotImplementedError) as exc:
        raise InputError(f"the zip archive is damaged: {exc}", where=label,
                         fix="Re-create the zip and upload it again", code="ARCHIVE-CORRUPT"
                         ) from exc


def _plan(zf: zipfile.ZipFile, zip_path: Path, *, max_total_bytes: int, max_ratio: float,
          max_members: int) -> list[_Member]:
    """Check the central directory and decide what to extract, writing nothing."""
    label = zip_path.name
    infos = zf.infolist()
    if len(infos) > max_members:
        raise UnsafeArchiveError(
            f"the archive has {len(infos)} members, more than the {max_members} allowed",
            where=label, fix="Zip only the files of the layer you want to upload",
            code="ARCHIVE-TOO-MANY-MEMBERS")
    members: list[_Member] = []
    seen: dict[str, str] = {}
    total = 0
    for info in infos:
        raw_name = decode_member_name(info)
        if is_ignored_member(raw_name):
            continue
        name = _safe_relative(raw_name, label)
        where = f"{label}!{name}"
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise UnsafeArchiveError("the archive contains a symbolic link", where=where,
                                     fix="Zip the real files, not links to them",
                                     code="ARCHIVE-SYMLINK")
        # Zip tools often store permissions without a file-type field (0o600): only a
        # type that is present and neither regular file nor folder is refused.
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError("the archive contains a special file (device or pipe)",
                                     where=where, fix="Zip only ordinary files",
                                     code="ARCHIVE-SPECIAL-FILE")
        if name.endswith("/"):
            continue
        if info.flag_bits & _FLAG_ENCRYPTED:
            raise InputError("the archive is password-protected", where=where,
                             fix="Zip the files again without a password",
                             code="ARCHIVE-ENCRYPTED")
        key = name.casefold()
        if key in seen:
            raise UnsafeArchiveError("the archive lists the same file twice, so one copy "
                                     "would overwrite the other", where=where,
                                     fix="Re-create the zip so that each file appears once",
                                     code="ARCHIVE-DUPLICATE")
        seen[key] = name
        total += info.file_size
        if total > max_total_bytes:
            raise UnsafeArchiveError(
                f"the archive would unpack to more than {human_size(max_total_bytes)}",
                where=label, fix="Split the data into smaller uploads (one district or "
                                 "commune per file)", code="ARCHIVE-TOO-BIG")
        if info.file_size >= RATIO_CHECK_MIN_BYTES:
            ratio = info.file_size / max(1, info.compress_size)
            if ratio > max_ratio:
                raise UnsafeArchiveError(
                    f"a member compresses {ratio:.0f} to 1, more than the {max_ratio:.0f} to 1 "
                    "a real GIS file reaches (zip bomb)", where=where,
                    fix="Upload the genuine data; if the file is real, zip it with less "
                        "compression or upload the files unzipped", code="ARCHIVE-BOMB")
        members.append(_Member(info, name))
    folders = {str(p).casefold() for m in members for p in PurePosixPath(m.name).parents}
    for m in members:
        if m.name.casefold() in folders:
            raise UnsafeArchiveError("the archive has a file and a folder with the same name",
                                     where=f"{label}!{m.name}",
                                     fix="Re-create the zip from the data folder",
                                     code="ARCHIVE-DUPLICATE")
    archive_size = zip_path.stat().st_size
    if total >= RATIO_CHECK_MIN_BYTES and total / max(1, archive_size) > max_ratio:
        raise UnsafeArchiveError(
            f"the archive declares {human_size(total)} inside {human_size(archive_size)}, a ratio "
            f"above {max_ratio:.0f} to 1 (zip bomb)", where=label,
            fix="Upload the genuine data; if the file is real, zip it with less compression",
            code="ARCHIVE-BOMB")
    return members


def _extract_member(zf: zipfile.ZipFile, member: _Member, target: Path, label: str,
                    budget: int) -> int:
    """Stream one member to disk, counting bytes; return how many were written."""
    where = f"{label}!{member.name}"
    declared = member.info.file_size
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    # zipfile silently truncates output at the declared size and then reports a CRC
    # error, which hides a forged (too small) size. The probe allows one byte more and
    # carries no CRC, so zipfile checks neither and this function checks both itself.
    probe = copy.copy(member.info)
    probe.file_size = declared + 1
    del probe.CRC
    crc = 0
    try:
        with zf.open(probe) as src, open(target, "xb") as dst:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > declared:
                    raise UnsafeArchiveError(
                        "a member unpacks to more bytes than the archive declares for it "
                        "(forged header)", where=where,
                        fix="Re-create the zip with a standard zip tool",
                        code="ARCHIVE-SIZE-MISMATCH")
                if written > budget:
                    raise UnsafeArchiveError(
                        "the archive unpacks to more than the size allowed", where=where,
                        fix="Split the data into smaller uploads", code="ARCHIVE-TOO-BIG")
                crc = zlib.crc32(chunk, crc)
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputError(f"the zip archive is damaged: member cannot be unpacked ({exc})",
                         where=where, fix="Re-create the zip and upload it again",
                         code="ARCHIVE-CORRUPT") from exc
    except NotImplementedError as exc:
        raise InputError("the member is compressed with a method we cannot unpack "
                         "(e.g. Deflate64 or AES encryption)", where=where,
                         fix="Re-create the zip with ordinary 'deflate' compression "
                             "(Windows 'Compressed folder' or 7-Zip in zip/deflate mode)",
                         code="ARCHIVE-UNSUPPORTED-METHOD") from exc
    if written != declared:
        raise InputError("the zip archive is damaged: a member is shorter than the archive "
                         "declares", where=where, fix="Re-create the zip and upload it again",
                         code="ARCHIVE-CORRUPT")
    if crc != member.info.CRC:
        raise InputError("the zip archive is damaged: a member fails its CRC check",
                         where=where, fix="Re-create the zip and upload it again",
                         code="ARCHIVE-CORRUPT")
    return written


def safe_extract(zip_path: Path, dest: Path, *, max_total_bytes: int = 2 * 1024**3,
                 max_ratio: float = 200.0, max_members: int = 10_000) -> list[Path]:
    """Extract a zip archive into ``dest``, refusing anything hostile or broken.

    Every member is checked before anything is written: its name (decoded from cp437,
    cp1258 or UTF-8, normalised to NFC), its path (no absolute paths, drive letters,
    ``..`` or backslash tricks), its type (no symlinks or device files), the total
    declared size and the compression ratios. Extraction then streams into a hidden
    staging folder inside ``dest``, counting bytes so a header that lies about sizes is
    caught as it happens, and checking each CRC. Only when every member is intact are
    the files moved into ``dest``; on any error the staging folder is removed, so
    ``dest`` holds exactly what it held before (it is removed too if this call created
    it). ``__MACOSX/`` resource forks, ``.DS_Store`` and ``Thumbs.db`` are skipped.

    Parameters
    ----------
    zip_path
        The archive as uploaded.
    dest
        Folder to extract into; created if missing. Files already there are never
        overwritten.
    max_total_bytes
        Cap on the declared and on the actually written uncompressed size.
    max_ratio
        Highest compression ratio accepted for any member of at least
        :data:`RATIO_CHECK_MIN_BYTES` and for the archive as a whole (declared size
        over file size). Real GIS files reach about 15:1; zip bombs reach 1000:1.
    max_members
        Cap on the number of entries in the central directory.

    Returns
    -------
    list of Path
        The extracted files (not folders), in archive order.

    Raises
    ------
    InputError
        Not a zip (``FILE-NOT-ZIP``), damaged archive or bad CRC (``ARCHIVE-CORRUPT``,
        naming the member), password protection, unsupported compression.
    UnsafeArchiveError
        Zip-slip, symlinks, too large, zip bomb, too many members, duplicate names.
    UsageError
        A file in the archive would overwrite a file already in ``dest``.
    """
    zip_path = Path(zip_path)
    dest = Path(dest)
    label = zip_path.name
    with _open_zip(zip_path) as zf:
        members = _plan(zf, zip_path, max_total_bytes=max_total_bytes, max_ratio=max_ratio,
                        max_members=max_members)
        created_dest = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        tops = {m.name.split("/", 1)[0] for m in members}
        clash = sorted(t for t in tops if (dest / t).exists())
        if clash:
            if created_dest:  # pragma: no cover - a fresh folder cannot clash
                shutil.rmtree(dest, ignore_errors=True)
            raise UsageError("the destination folder already holds files the archive would "
                             "overwrite", where=f"{dest}: {', '.join(clash)}",
                             fix="Extract into an empty folder", code="ARCHIVE-DEST-NOT-EMPTY")
        stage = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
        try:
            budget = max_total_bytes
            for m in members:
                budget -= _extract_member(zf, m, stage.joinpath(*m.name.split("/")), label,
                                          budget)
            for top in sorted(tops):
                os.replace(stage / top, dest / top)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            for top in tops:  # a failed move can leave part of the result behind
                path = dest / top
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                elif path.exists():
                    path.unlink(missing_ok=True)
            if created_dest:
                shutil.rmtree(dest, ignore_errors=True)
            raise
        shutil.rmtree(stage, ignore_errors=True)
    return [dest.joinpath(*m.name.split("/")) for m in members]
