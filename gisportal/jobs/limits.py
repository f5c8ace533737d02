"""Resource limits of a job worker and of the heavy commands: memory and wall time.

Why: a hostile upload (issue 11) grew a worker to 3 GB and held the only job slot for
good. Every worker now runs under an address-space limit (``job_memory_mb``), set in the
worker process itself before it does any work, and a wall-time limit
(``job_timeout_seconds``): the worker's own ``SIGALRM`` stops the job at its next Python
step, and the reaper kills the process group of a worker that is still alive a grace
period later (wedged in C code, where no Python handler runs). The command line's heavy
commands run under the same memory limit.

Why ``RLIMIT_AS`` and what it counts: it is the one limit Linux enforces on every
allocation (``RLIMIT_RSS`` is ignored), but it counts *virtual* memory — glibc reserves
64 MiB of address space per thread arena, every thread has its stack, GDAL and PROJ map
files — so a worker reserves about 1.9 GB before it reads a byte (measured: a
100-parcel ingest peaks at 1.9 GB virtual for 0.2 GB resident; 200 000 parcels with
publishing at 2.1 GB virtual, 0.6 GB resident). An allocation over the limit fails:
Python raises `MemoryError`, GDAL reports "out of memory", a C++ library may abort.
Each is turned into one message naming the limit and its setting.

Only the *soft* limit is lowered, so a worker can give its children (the next queued
job, which it starts as it finishes) the limit it was started with.
"""

from __future__ import annotations

import errno
import re
import resource
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gisportal.base.errors import GisportalError, InputError, exception_chain

__all__ = ["Limits", "limit_memory", "restore_memory", "is_out_of_memory",
           "log_says_out_of_memory", "out_of_memory_error", "timeout_error",
           "TIMEOUT_GRACE"]

MIB = 1024**2
#: Seconds a worker past its time gets to stop by itself (its SIGALRM handler, then the
#: store discarding a half-written version) before the reaper kills its process group.
TIMEOUT_GRACE = 30
#: What native code says when an allocation fails (GDAL, GEOS, glibc, the C++ runtime,
#: the dynamic loader mapping a library — an ImportError — over the limit).
_OOM_TEXT = re.compile(r"out of memory|cannot allocate memory|bad_alloc|memoryerror|"
                       r"failed to map segment from shared object", re.IGNORECASE)
#: How much of the end of a worker's log is searched for signs of an allocation failure.
_LOG_TAIL = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """The limits one job (or command) runs under; 0 means none."""

    memory_mb: int = 0
    timeout_seconds: int = 0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Limits:
        return cls(memory_mb=max(0, int(settings.get("job_memory_mb") or 0)),
                   timeout_seconds=max(0, int(settings.get("job_timeout_seconds") or 0)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, fallback: Limits) -> Limits:
        """The limits a job row recorded at dispatch (`fallback` for rows from before)."""
        if not data:
            return fallback
        return cls(memory_mb=int(data.get("memory_mb") or 0),
                   timeout_seconds=int(data.get("timeout_seconds") or 0))

    def to_dict(self) -> dict[str, int]:
        return {"memory_mb": self.memory_mb, "timeout_seconds": self.timeout_seconds}


def limit_memory(memory_mb: int) -> tuple[int, int] | None:
    """Lower this process's soft ``RLIMIT_AS`` to `memory_mb` MiB (never above the hard
    limit); the limits before, for `restore_memory`. None (nothing changed) for 0."""
    if memory_mb <= 0:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = memory_mb * MIB
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    return soft, hard


def restore_memory(previous: tuple[int, int] | None) -> None:
    """Put back the soft limit `limit_memory` replaced (children inherit limits)."""
    if previous is not None:
        resource.setrlimit(resource.RLIMIT_AS, previous)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is an allocation that failed.

    `MemoryError` (numpy's array errors are one), ``ENOMEM``, or the text native
    libraries give it; a reader or the store may have wrapped it in one of gisportal's
    own errors, so the whole chain is searched (gisportal's errors by type only: their
    text is about the file).
    """
    for e in exception_chain(exc):
        if isinstance(e, MemoryError):
            return True
        if isinstance(e, OSError) and e.errno == errno.ENOMEM:
            return True
        if not isinstance(e, GisportalError) and _OOM_TEXT.search(str(e)):
            return True
    return False


def log_says_out_of_memory(log: Path) -> bool:
    """Whether the end of a dead worker's log shows an allocation failure (a C++
    ``std::bad_alloc`` abort, a `MemoryError` raised where nothing caught it)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - _LOG_TAIL))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return False
    return bool(_OOM_TEXT.search(tail))


def out_of_memory_error(memory_mb: int, where: str, *, subject: str = "job") -> InputError:
    """The one-line error of a job (or command) over its memory limit.

    An `InputError` (exit 2 on the command line): the file as given cannot be handled
    within the limit — the planner can split it, the administrator can raise the limit.
    """
    limit, vi_limit = ((f"limit {memory_mb} MB", f"{memory_mb} MB") if memory_mb
                       else ("no limit set", "không đặt giới hạn"))
    vi = "công việc" if subject == "job" else "lệnh"
    return InputError(
        f"{vi} đã dùng hết bộ nhớ cho phép ({vi_limit}, thiết lập job_memory_mb) / "
        f"the {subject} ran out of memory ({limit}, setting job_memory_mb)",
        where=where,
        fix="Chia tệp thành các tệp nhỏ hơn (ví dụ mỗi xã một tệp), hoặc nhờ quản trị viên "
            "tăng job_memory_mb / split the file into smaller ones (one commune each), or "
            "ask the administrator to raise job_memory_mb (GISPORTAL_JOB_MEMORY_MB)",
        code="OUT-OF-MEMORY")


def timeout_error(seconds: int, where: str) -> GisportalError:
    """The error of a job stopped for running longer than ``job_timeout_seconds``."""
    return GisportalError(
        f"công việc chạy quá {seconds} giây (job_timeout_seconds) nên đã bị dừng / the job "
        f"took longer than {seconds} s (job_timeout_seconds) and was stopped",
        where=where,
        fix="Chia tệp thành các tệp nhỏ hơn rồi tải lên lại, hoặc nhờ quản trị viên tăng "
            "job_timeout_seconds / split the file into smaller ones and upload them again, "
            "or ask the administrator to raise job_timeout_seconds "
            "(GISPORTAL_JOB_TIMEOUT_SECONDS)",
        code="JOB-TIMEOUT")
