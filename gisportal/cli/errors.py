"""The command line's one-line error exit, shared by ``main`` and ``accounts``.

A module of its own because ``main`` imports ``accounts`` (to register its commands), so
``accounts`` cannot import it from ``main``.
"""

from __future__ import annotations

import functools
import sys

import click

from gisportal.base.errors import GisportalError

__all__ = ["errors", "fail"]


def fail(err: GisportalError) -> None:
    """Print `err` as ``gisportal: error: …`` on one line and exit with its exit code."""
    click.echo(f"gisportal: error: {err.one_line()}", err=True)
    sys.exit(err.exit_code)


def errors(func):
    """Turn a GisportalError into its one-line message and exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GisportalError as err:
            fail(err)

    return wrapper
