"""The allocator housekeeping of an ingest (gisportal.pipeline.memory).

The figures themselves are measured by bench/bench_ingest.py (issue 12); here only
that the helpers are safe to call at any time and that they give memory back.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from gisportal.pipeline import memory


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_lean_heap_is_set_once_where_glibc_is() -> None:
    """lean_heap sets glibc's thresholds once per process (and is a no-op elsewhere);
    a second call and give_back at any time change nothing of that."""
    memory.lean_heap()
    assert memory._lean is (memory._glibc() is not None)
    memory.lean_heap()
    memory.give_back()
    assert memory._lean is (memory._glibc() is not None)


@pytest.mark.skipif(memory._glibc() is None, reason="glibc only")
def test_freed_arrow_buffers_leave_the_process() -> None:
    """A big Arrow buffer freed is returned to the system by give_back, not kept by the
    pool for the rest of the process."""
    memory.give_back()
    before = _rss_kib()
    data = pa.array(np.arange(8_000_000, dtype=np.int64) % 1000)  # 64 MB in Arrow's pool
    assert _rss_kib() - before > 40_000
    del data
    memory.give_back()
    assert _rss_kib() - before < 20_000
