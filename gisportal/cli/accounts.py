"""``gisportal users …`` and ``gisportal audit``: thin click commands over the accounts.

Registered on the main group in ``gisportal/cli/main.py``. Each change is audited with the
actor ``cli:<operating-system user>``; passwords come from a prompt (typed twice) or,
for scripts, one line of standard input with ``--password-stdin``.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import click

from gisportal.accounts import audit, tokens, users
from gisportal.base.errors import UsageError
from gisportal.cli.errors import errors as _errors
from gisportal.store.home import DataHome

__all__ = ["users_group", "audit_command", "cli_actor"]


def cli_actor() -> str:
    """``cli:<os user>``, the actor of every change made from the command line."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME/USER
        who = f"uid{os.getuid()}"
    return f"cli:{who}"


def _home(ctx: click.Context) -> DataHome:
    """The data home with the command's settings: the accounts are where they say (the
    embedded catalogue, or the ``database`` setting's PostgreSQL)."""
    return DataHome(ctx.obj["settings"])


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
              help="GSO code of a (former) district a planner works on, or of one of "
                   "today's communes (5 digits: a commune officer, who only sends "
                   "cadastral corrections of it); repeat for several.")
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
    valid: dict[str, list[tokens.Token]] = {}
    for t in tokens.list_tokens(_home(ctx)):
        if t.state == "valid":
            valid.setdefault(t.user, []).append(t)
    if as_json:
        listed = json.loads(users.dump(found))
        for u in listed:
            u["tokens"] = [{"id": t.id, "label": t.label, "created_at": t.created_at,
                            "expires_at": t.expires_at} for t in valid.get(u["name"], [])]
        click.echo(json.dumps(listed, ensure_ascii=False, indent=1))
        return
    for u in found:
        state = "active" if u.is_active else f"disabled {u.disabled_at}"
        # Each valid token's end, so a token that never expires is seen (issue 11).
        ends = ", ".join(t.expires_at or "never" for t in valid.get(u.name, [])) or "-"
        click.echo(f"{u.name}\t{u.role}\t{','.join(u.districts) or '*'}\t{state}\t"
                   f"last login {u.last_login_at or '-'}\ttokens expire {ends}")


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
@click.option("--expires", metavar="WHEN",
              help="When the token stops working: 90d, 12h, 2w, a date (2027-01-31: "
                   "through that day, Vietnam time) or a time with its offset. Default: "
                   "never (until revoked).")
@click.option("--revoke", is_flag=True, help="Revoke every token of NAME instead.")
@click.option("--list", "list_", is_flag=True,
              help="List NAME's tokens (id, state, expiry, label) instead.")
@click.pass_context
@_errors
def users_token(ctx, name, label, expires, revoke, list_) -> None:
    """Create an API token for NAME (printed once) — for scripts: Authorization: Bearer."""
    if revoke and list_:
        raise UsageError("--revoke and --list do not go together", where="users token",
                         fix="give one of them")
    if revoke:
        n = tokens.revoke_tokens(_home(ctx), name, actor=cli_actor())
        click.echo(f"revoked {n} token(s) of {users.get_user(_home(ctx), name).name}")
        return
    if list_:
        for t in tokens.list_tokens(_home(ctx), name):
            click.echo(f"{t.id}\t{t.state}\texpires {t.expires_at or 'never'}\t"
                       f"created {t.created_at} by {t.created_by}\t{t.label}")
        return
    token = tokens.create_token(_home(ctx), name, label=label, actor=cli_actor(),
                                expires=expires)
    click.echo(token)  # alone on standard output, for scripts
    if expires:  # the end as stored (UTC), on standard error: the script keeps the token
        ends = tokens.list_tokens(_home(ctx), name)[0].expires_at
        click.echo(f"hết hạn / expires {ends or 'không bao giờ / never'}", err=True)


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
