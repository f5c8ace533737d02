"""Files received from outside: a safe name, streamed to disk under a size limit.

An upload (a layer, a decision PDF) is written in 1 MiB chunks and never held in memory
(a district can be hundreds of MiB), counted as it goes so an oversized upload is refused
as soon as it passes the limit. Both the job queue and the decisions use these, so they
live on the ground floor.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from gisportal.base.errors import InputError
from gisportal.base.text import human_size, nfc

__all__ = ["CHUNK", "fsync_dir", "safe_file_name", "save_stream"]

CHUNK = 1024**2
#: Longest file name kept (bytes of UTF-8 are what file systems limit, 255 on ext4).
_MAX_NAME_BYTES = 150
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def safe_file_name(name: str | None, default: str = "upload") -> str:
    """A file name that is safe to create in an upload folder, Vietnamese kept.

    Browsers send the name the planner's file had, sometimes with a Windows path
    (``C:\\Users\\...\\thửa đất.zip``). The last path component is kept, in NFC, without
    separators, control or format characters and leading dots (no hidden files, no
    ``..``), shortened to `_MAX_NAME_BYTES` with its extension kept. Unlike an
    ASCII-only "secure" name, ``Thửa đất Đức Trọng.zip`` stays readable: the name is
    also the version's source name shown to planners.
    """
    text = nfc(str(name or ""))
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    text = _UNSAFE.sub("_", text)
    text = " ".join(text.split()).lstrip(". ").rstrip(" ")
    if not text or text.strip("._ ") == "":
        text = default
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        stem, ext = text, ""
    suffix = f".{ext}" if ext else ""
    while len((stem + suffix).encode("utf-8")) > _MAX_NAME_BYTES and stem:
        stem = stem[:-1]
    return (stem.rstrip(" .") or default) + suffix


def save_stream(stream: BinaryIO, dest: Path, *, max_bytes: int, label: str,
                too_big: Callable[[], InputError] | None = None,
                on_chunk: Callable[[bytes], None] | None = None) -> int:
    """Copy `stream` to the new file `dest` in chunks, synced; refuse more than `max_bytes`.

    ``too_big`` makes the refusal (default: the upload limit's message); ``on_chunk``
    sees every chunk as it is written (a hash, a header check). Returns the number of
    bytes written. On any failure the partial file is removed.
    """
    written = 0
    try:
        with open(dest, "xb") as out:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    if too_big is not None:
                        raise too_big()
                    raise InputError(
                        f"the upload is over the {human_size(max_bytes)} limit", where=label,
                        fix="Split the data into smaller files (one district or commune "
                            "each), or ask the administrator to raise max_upload_bytes "
                            "(GISPORTAL_MAX_UPLOAD_BYTES)", code="FILE-TOO-BIG")
                if on_chunk is not None:
                    on_chunk(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return written


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename (or a new file) in the folder `path` durable: its entry is data too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
