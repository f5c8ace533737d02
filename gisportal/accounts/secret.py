"""The key that signs session cookies and CSRF tokens.

``GISPORTAL_SECRET_KEY`` (setting ``secret_key``) when set — the choice for several
servers behind one address, which must share it. Otherwise a random key is made once
in the data home (``secret_key``, mode 0600) and reused, so sessions survive a restart
and every worker of one data home agrees on it. It is created in a temporary file and
hard-linked into place: two processes starting at once end up with the same key, and
nobody ever reads a half-written one.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path

from gisportal.base.errors import UsageError

__all__ = ["SECRET_FILE", "MIN_SECRET_LENGTH", "secret_key"]

logger = logging.getLogger(__name__)

SECRET_FILE = "secret_key"
MIN_SECRET_LENGTH = 32


def secret_key(home: str | Path, configured: str = "") -> str:
    """The configured key, or the data home's own (created on first use)."""
    if configured:
        if len(configured) < MIN_SECRET_LENGTH:
            raise UsageError(f"GISPORTAL_SECRET_KEY has {len(configured)} characters; at "
                             f"least {MIN_SECRET_LENGTH} are needed", where="GISPORTAL_SECRET_KEY",
                             fix='make one with: python -c "import secrets; '
                                 'print(secrets.token_urlsafe(48))"',
                             code="SETTING-INVALID")
        return configured
    path = Path(home).expanduser().resolve() / SECRET_FILE
    if not path.exists():
        _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("%s is readable by other users (mode %o): chmod 600 it", path, mode)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise UsageError(f"the secret key file holds {len(key)} characters", where=str(path),
                         fix="delete the file to make a new key (everyone is signed out)",
                         code="SETTING-INVALID")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)  # atomic: the key file appears complete or not at all
    finally:
        tmp.unlink(missing_ok=True)
