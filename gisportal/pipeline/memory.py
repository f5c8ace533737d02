"""Giving freed memory back to the system between the steps of an ingest.

Why: an ingest's peak resident memory (issue 12: at most 1 GB per million parcels) is
not what it holds alive at any moment but what the allocators keep after it is freed.
Measured on a 200 000-parcel shapefile, the live heap never passes 160 MB while the
resident size grew by 290 MB, because of three allocators' habits:

* glibc raises its mmap threshold to the size of the largest block freed so far (up to
  32 MiB), so after the first big numpy array every temporary array of a few MB comes
  from the heap and stays resident when freed; and a worker thread's heap (the
  validation and GEOS threads) keeps up to twice that at its top, which
  ``malloc_trim`` never returns (it trims only the main heap's top).
* Arrow's mimalloc pool keeps the pages of freed buffers (the reader's record batches,
  the writer's WKB batches) until it is asked to purge them.
* freed chunks in the middle of the main heap stay resident until ``malloc_trim``.

:func:`lean_heap` fixes glibc's thresholds at their initial values for this process
(what ``MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072`` would do), and
:func:`give_back` purges mimalloc and trims glibc; the pipeline calls it where a step
has just dropped a big temporary. Both cost microseconds to a few milliseconds, and do
nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from functools import cache

__all__ = ["give_back", "lean_heap", "MMAP_THRESHOLD"]

#: Blocks this big or bigger are mapped on their own and unmapped when freed (glibc's
#: starting value, kept instead of raised); the heap top is trimmed past as much.
MMAP_THRESHOLD = 128 * 1024
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LOCK = threading.Lock()
_lean = False


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (``mallopt``/``malloc_trim``), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: raises AttributeError elsewhere
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def lean_heap() -> None:
    """Keep glibc's mmap and trim thresholds fixed for this process (once).

    With the thresholds fixed, a big temporary (a numpy array, a batch of WKB) is
    unmapped as soon as it is freed, and a thread's heap gives back its free top, where
    the dynamic thresholds would keep them resident for the rest of the process. Set
    once per process, by `gisportal.services.ingest.check_file`: the processes that run
    ingests (a job worker, ``gisportal ingest|validate``), never the web app's, whose
    small short-lived allocations are better served by glibc's own thresholds.
    """
    global _lean
    with _LOCK:
        libc = _glibc()
        if _lean or libc is None:
            return
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, MMAP_THRESHOLD)
        _lean = True


def give_back() -> None:
    """Return freed memory to the system now: Arrow's pool, then glibc's heaps.

    Called between the steps of an ingest, after one has dropped big temporaries, so
    that the next step starts from what is alive, not from what was once needed.
    """
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency of the reader
        pass
    else:
        pa.default_memory_pool().release_unused()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
