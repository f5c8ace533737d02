"""``gisportal users …`` and ``gisportal audit``: thin click commands over the accounts.

Registered on the main group in ``gisportal/cli.py``. Each change is audited with the
actor ``cli:<operating-system user>``; passwords come from a prompt (typed twice) or,
for scripts, one line of standard input with ``--password-stdin``.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from pathlib import Path

import click

from gisportal.accounts import audit, tokens, users
from gisportal.errors import GisportalError, UsageError
from gisportal.settings import data_home

__all__ = ["users_group", "audit_command", "cli_actor"]


def cli_actor() -> str:
    """``cli:<os user>``, the actor of every change made from the command line."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME/USER
        who = f"uid{os.getuid()}"
    return f"cli:{who}"


def _errors(func):
    """A GisportalError becomes its one-line message and exit code (as in cli.py)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GisportalError as err:
            click.echo(f"gisportal: error: {err.one_line()}", err=True)
            sys.exit(err.exit_code)

    return wrapper


def _home(ctx: click.Context) -> Path:
    return data_home(ctx.obj["settings"])


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = click.get_text_stream("stdin").readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UsageError("no password on standard input", where="--password-stdin",
                             fix="pipe the password as one line, e.g. from a password manager")
        return password
    return click.prompt("Mật khẩu / Password", hide_input=True,
                        confirmation_prompt="Nhập lại / Repeat")


@click.group("users")
def users_group() -> None:
    """Accounts: admins and district planners (the public needs none)."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(users.ROLES), required=True)
@click.option("--district", "districts", multiple=True, metavar="CODE",
              help="GSO district code a planner works on; repeat for several.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_context
@_errors
def users_add(ctx, name, role, districts, password_stdin) -> None:
    """Create the account NAME."""
    users.check_name(name)
    users.check_districts(role, districts)  # fail before asking for a password
    user = users.add_user(_home(ctx), name, role, _password(password_stdin),
                          districts=districts, actor=cli_actor())
    scope = ", ".join(user.districts) if user.districts else "mọi huyện / all districts"
    click.echo(f"added {user.name} ({user.role}; {scope})")


@users_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_context
@_errors
def users_passwd(ctx, name, password_stdin) -> None:
    """Set a new password for NAME (its open sessions end)."""
    users.get_user(_home(ctx), name)  # fail before asking for a password
    user = users.set_password(_home(ctx), name, _password(password_stdin), actor=cli_actor())
    click.echo(f"password changed for {user.name}")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_context
@_errors
def users_list(ctx, as_json) -> None:
    """List every account, disabled ones too."""
    found = users.list_users(_home(ctx))
    if as_json:
        click.echo(users.dump(found))
        return
    for u in found:
        state = "active" if u.is_active else f"disabled {u.disabled_at}"
        click.echo(f"{u.name}\t{u.role}\t{','.join(u.districts) or '*'}\t{state}\t"
                   f"last login {u.last_login_at or '-'}")


@users_group.command("disable")
@click.argument("name")
@click.pass_context
@_errors
def users_disable(ctx, name) -> None:
    """Disable NAME: no sign-in, no token; the account stays in the audit log."""
    user = users.disable_user(_home(ctx), name, actor=cli_actor())
    click.echo(f"disabled {user.name}")


@users_group.command("enable")
@click.argument("name")
@click.pass_context
@_errors
def users_enable(ctx, name) -> None:
    """Enable a disabled account again."""
    user = users.enable_user(_home(ctx), name, actor=cli_actor())
    click.echo(f"enabled {user.name}")


@users_group.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (shown in the audit log).")
@click.option("--revoke", is_flag=True, help="Revoke every token of NAME instead.")
@click.pass_context
@_errors
def users_token(ctx, name, label, revoke) -> None:
    """Create an API token for NAME (printed once) — for scripts: Authorization: Bearer."""
    if revoke:
        n = tokens.revoke_tokens(_home(ctx), name, actor=cli_actor())
        click.echo(f"revoked {n} token(s) of {users.get_user(_home(ctx), name).name}")
        return
    click.echo(tokens.create_token(_home(ctx), name, label=label, actor=cli_actor()))


@click.command("audit")
@click.option("--actor", help="Only this actor (user name, case-insensitive).")
@click.option("--action", help="Only this action, or a family ending with a dot (login.).")
@click.option("--district", help="Only this district code.")
@click.option("--since", help="From this date (YYYY-MM-DD, Vietnam time) or ISO time.")
@click.option("--until", help="Up to this date (inclusive) or ISO time.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, audit.MAX_PAGE),
              help="Events to print (ignored with --csv, which writes all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every matching event to this CSV file (UTF-8 with BOM, for Excel).")
@click.option("--delimiter", default=",", show_default=True,
              help="CSV separator: , or ; (Excel with Vietnamese regional settings) or tab.")
@click.pass_context
@_errors
def audit_command(ctx, actor, action, district, since, until, limit, as_json, csv_path,
                  delimiter) -> None:
    """Read the audit log, newest first, or export it as CSV."""
    home = _home(ctx)
    filters = {"actor": actor, "action": action, "district": district, "since": since,
               "until": until}
    if csv_path:
        with csv_path.open("w", encoding="utf-8", newline="") as out:
            n = audit.write_csv(home, out, delimiter=delimiter, **filters)
        audit.record(home, cli_actor(), "audit.export",
                     detail={"rows": n, "file": str(csv_path)[:200],
                             **{k: v for k, v in filters.items() if v}})
        click.echo(f"{n} events written to {csv_path}", err=True)
        return
    for e in audit.events(home, limit=limit, **filters).events:
        if as_json:
            click.echo(json.dumps(e.to_dict(), ensure_ascii=False))
        else:
            where = " ".join(f"{k}={v}" for k, v in (("district", e.district),
                             ("kind", e.kind), ("version", e.version),
                             ("decision", e.decision)) if v is not None)
            detail = json.dumps(e.detail, ensure_ascii=False) if e.detail is not None else ""
            click.echo(f"{e.id}\t{e.at_vn}\t{e.actor}\t{e.action}\t{where}\t{detail}")
