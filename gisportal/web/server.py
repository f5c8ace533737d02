"""The app as ``gisportal serve`` runs it, and hooks for its gunicorn server.

`serving_app` is the app a server process serves (waitress, or each gunicorn worker):
`create_app`, then the objects made at start-up (modules, the settings, seeds, the
store's caches: hundreds of thousands) are moved out of the garbage collector's sight
(`gc.freeze`). A request makes a few thousand short-lived objects (an OGC items page of
1 000 features about 2 000), so the collector's full passes come often, and each one
walked every start-up object again: a tenth to a fifth of the OGC items throughput
(bench/bench_ogc.py, three alternated pairs on 2 CPUs at load 1.2: 65.5 → 72.8,
65.3 → 73.1, 53.2 → 64.0 thousand features/s). Only in server processes: a test or a
script that makes many apps keeps its garbage collectable.

``gisportal serve --workers N`` runs gunicorn.

gunicorn's workers share one listening socket, and a gthread worker accepts whatever
connection it sees first. Clients that open their kept-alive connections in a burst (a
load balancer's pool, a browser's six, a load generator's 32) can all land on one worker
and stay there: one bench run had one worker at 100 % CPU and the other idle, at a
third of the throughput. Closing a connection after `keepalive_requests` answers (the
answer says ``Connection: close``; the client opens a new one) gives the other workers
their share within a second or two, the way nginx's ``keepalive_requests`` does.
Per-worker ``SO_REUSEPORT`` sockets would balance by the kernel's hash instead, but a
worker that restarts drops the connections queued on its socket, and gunicorn's
arbiter keeps one shared socket anyway.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["close_after", "serving_app"]


def serving_app(config: dict[str, Any]) -> Any:
    """The Flask app of a server process, its start-up objects frozen (module doc)."""
    import gc

    from gisportal.web.app import create_app

    app = create_app(config)
    gc.collect()
    gc.freeze()
    return app


def close_after(limit: int) -> Callable[[Any, Any], None] | None:
    """A gunicorn ``pre_request`` hook that closes a connection after `limit` requests
    (None for 0: no limit). Counts are per socket, forgotten when the socket goes."""
    if limit <= 0:
        return None
    counts: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    def pre_request(worker: Any, req: Any) -> None:
        sock = getattr(getattr(req, "unreader", None), "sock", None)
        if sock is None:
            return
        with lock:
            n = counts.get(sock, 0) + 1
            counts[sock] = n
        if n >= limit:
            req.must_close = True  # gunicorn then answers "Connection: close"

    return pre_request
