"""The CLI reference page, generated from the command line itself.

``python -m leadstage.cli.reference > docs/cli-reference.md`` writes it; a test fails when the committed
page differs from what the code generates, so the page always says what the commands do.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterator
from typing import Any

import typer

HEADER = """# CLI reference

Every `leadstage` command with its arguments and options, generated from the code
(`python -m leadstage.cli.reference > docs/cli-reference.md`; `tests/unit/test_cli_reference.py` checks
that this page is current). The guides show the commands at work: `docs/getting-started.md` first.

Global option, before the command: `--db URL` (a SQLite file or `postgresql://...`; else
`LEADSTAGE_DATABASE_URL`, else `./leadstage.db`). Commands that print data take `--json` and then print one
JSON document on stdout; messages go to stderr. Exit codes: `0` success, `2` bad input, `3` refused by a
rule (role, transition, policy, a concurrent change), `1` anything else. Without `--as USER` a command acts
as the built-in administrator.
"""


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name in sorted(group.commands):
        command = group.commands[name]
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _default(param: Any) -> str | None:
    value = param.default
    if value is None or value is False or param.required or callable(value) or value == ():
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, list | tuple):
        return None if not value else ", ".join(str(v) for v in value)
    return str(value)


def _option(param: Any) -> str:
    names = " / ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
    if getattr(param, "is_flag", False):
        return names
    value = "USER" if param.name == "as_user" else param.name.upper()
    return names.replace(f"`{param.opts[-1]}`", f"`{param.opts[-1]} {value}`")


def _line(text: str | None) -> str:
    return " ".join((text or "").split())


def render() -> str:
    from leadstage.cli import commands  # noqa: F401  (registers every command)
    from leadstage.cli.app import app

    root = typer.main.get_command(app)
    out = [HEADER]
    for path, command in _commands(root):
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        options = [p for p in command.params if p.param_type_name == "option" and p.name != "help"]
        usage = " ".join(
            ["leadstage", *path]
            + [(p.metavar or p.name.upper()) + ("..." if p.nargs == -1 else "") for p in arguments]
            + (["[OPTIONS]"] if options else [])
        )
        out.append(f"## `{usage}`\n")
        out.append(_line(command.help) + "\n")
        items = []
        for p in arguments:
            items.append(f"* `{p.metavar or p.name.upper()}`: {_line(p.help) or 'required.'}")
        for p in options:
            text = _line(p.help)
            extras = []
            if p.required:
                extras.append("required")
            if getattr(p, "multiple", False):
                extras.append("repeatable")
            default = _default(p)
            if default is not None and not getattr(p, "is_flag", False):
                extras.append(f"default: `{default}`")
            suffix = f"({'; '.join(extras)})" if extras else ""
            items.append(f"* {_option(p)}: {' '.join(x for x in (text, suffix) if x)}".rstrip(": "))
        if items:
            out.append("\n".join(items) + "\n")
    return "\n".join(out)


NEEDS = {
    "reason": "a reason code",
    "note": "a note",
    "reason_and_note": "a reason code and a note",
    "criteria_or_manual": "the MQL criteria met, or reason `manual` with a note",
    "qualification": "the qualification policy met (BANT by default)",
    "opportunity": "amount, currency, expected close date",
    "close": "amount, currency, close date",
    "advocacy_or_note": "an advocacy activity, or a note",
}


def transition_table() -> str:
    """The transition table (``domain/stages.py``) as a Markdown table, for docs/concepts.md."""
    from leadstage.domain.stages import STAGE_ORDER, TRANSITIONS, Role, Status

    def names(items: Any, order: Any) -> str:
        return ", ".join(i.value for i in order if i in items)

    rows = [
        "| Action | From stage | From status | To | Who (and admin) | Needs | New cycle |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule in TRANSITIONS.values():
        to = f"{rule.to_stage.value if rule.to_stage else '(same stage)'} / {rule.to_status.value}"
        who = names(rule.roles - {Role.ADMIN}, list(Role))
        cycle = (
            "always"
            if rule.always_new_cycle
            else (f"from {names(rule.new_cycle_from, list(Status))}" if rule.new_cycle_from else "")
        )
        rows.append(
            f"| `{rule.action.value}` | {names(rule.from_stages, STAGE_ORDER)} | "
            f"{names(rule.from_statuses, list(Status))} | {to} | {who} | "
            f"{NEEDS[rule.needs.value] if rule.needs else ''} | {cycle} |"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
