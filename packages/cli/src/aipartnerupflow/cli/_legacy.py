"""Command lines written for aipartnerupflow 0.9's ``apflow``, translated before parsing.

Spellings with the same meaning are rewritten (``tasks create --file`` is ``--tasks-file``,
``tasks count --format json`` is ``--json``, ``tasks update --name X`` is
``--fields '{"name": "X"}'`` ...). Spellings whose behaviour is gone stop with a one-line hint
naming what to use instead (``run flow --background`` -> ``--queue``). Only the arguments after
``COMMAND SUBCOMMAND`` are looked at; the root's global options are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["LegacyUsageError", "translate"]

#: Global options of the root that take a value.
_ROOT_VALUE_OPTIONS = ("--database-url", "--plugin", "--env-file", "--log-level")


class LegacyUsageError(Exception):
    """A 0.9 spelling whose behaviour is gone; the message names the new spelling."""


def _split(arg: str) -> tuple[str, str | None]:
    """``--opt=value`` as ``("--opt", "value")``; other arguments as ``(arg, None)``."""
    if arg.startswith("--") and "=" in arg:
        name, value = arg.split("=", 1)
        return name, value
    return arg, None


class _Args:
    """The arguments after the subcommand, consumed one by one."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.i = 0
        self.out: list[str] = []

    def __iter__(self) -> _Args:
        return self

    def __next__(self) -> tuple[str, str | None]:
        if self.i >= len(self.args):
            raise StopIteration
        arg = self.args[self.i]
        self.i += 1
        if arg == "--":  # everything after is positional
            self.out.extend(self.args[self.i - 1 :])
            self.i = len(self.args)
            raise StopIteration
        return _split(arg)

    def value(self, name: str, inline: str | None) -> str:
        if inline is not None:
            return inline
        if self.i >= len(self.args):
            raise LegacyUsageError(f"{name} needs a value")
        self.i += 1
        return self.args[self.i - 1]

    def next_is_value(self) -> bool:
        return self.i < len(self.args) and not self.args[self.i].startswith("-")


Rule = Callable[[_Args, str, str | None, list[str]], bool]


def _renames(table: dict[str, list[str]], flags: dict[str, list[str]] | None = None) -> Rule:
    """Options taking a value renamed (``table``), flags renamed or dropped (``flags``)."""

    def rule(args: _Args, name: str, inline: str | None, notes: list[str]) -> bool:
        if name in table:
            args.out.extend([*table[name], args.value(name, inline)])
            return True
        if flags is not None and name in flags:
            args.out.extend(flags[name])
            return True
        return False

    return rule


def _gone(hints: dict[str, str]) -> Rule:
    def rule(args: _Args, name: str, inline: str | None, notes: list[str]) -> bool:
        if name in hints:
            raise LegacyUsageError(f"{name} is an aipartnerupflow 0.9 option: {hints[name]}")
        return False

    return rule


def _dropped(notes_for: dict[str, str]) -> Rule:
    def rule(args: _Args, name: str, inline: str | None, notes: list[str]) -> bool:
        if name in notes_for:
            notes.append(f"{name} (aipartnerupflow 0.9) is not needed: {notes_for[name]}")
            return True
        return False

    return rule


def _format_json(args: _Args, name: str, inline: str | None, notes: list[str]) -> bool:
    if name not in ("--format", "-f"):
        return False
    value = args.value(name, inline)
    if value == "json":
        args.out.append("--json")
    elif value != "table":
        raise LegacyUsageError(f"{name} takes table or json, not {value!r}; or use --json")
    return True


def _root_only_flag(args: _Args, name: str, inline: str | None, notes: list[str]) -> bool:
    # 0.9's -r/--root-only was a flag; our -r is --root-id VALUE.
    if name == "--root-only" or (name == "-r" and not args.next_is_value()):
        args.out.append("--roots-only")
        return True
    return False


def _positional(*names: str) -> Rule:
    def rule(args: _Args, name: str, inline: str | None, notes: list[str]) -> bool:
        if name in names:
            args.out.append(args.value(name, inline))
            return True
        return False

    return rule


def _host_short(args: _Args, name: str, inline: str | None, notes: list[str]) -> bool:
    # 0.9's -h HOST; our -h is --help, so only -h followed by a value is a host.
    if name == "-h" and args.next_is_value():
        args.out.extend(["--host", args.value(name, inline)])
        return True
    return False


_UPDATE_JSON = ("--inputs", "--params", "--schemas")
_UPDATE_PLAIN = ("--name", "--status")
#: 0.9 let ``tasks update`` write any outcome; here a task's run writes it.
_UPDATE_STATE = ("--result", "--progress", "--error")
_STATE_HINT = (
    "a task's result, progress and error are written by its run: run it again with "
    "`apflow tasks update ID --status pending` and `apflow tasks execute ROOT_ID`, or stop it "
    "with `--status cancelled`"
)


class _UpdateFields:
    """``tasks update --name X --priority 1 ...`` (0.9) as one ``--fields`` JSON object."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def __call__(self, args: _Args, name: str, inline: str | None, notes: list[str]) -> bool:
        key = name.removeprefix("--")
        if name in _UPDATE_STATE:
            raise LegacyUsageError(f"{name} is an aipartnerupflow 0.9 option: {_STATE_HINT}")
        if name in _UPDATE_PLAIN:
            self.fields[key] = args.value(name, inline)
        elif name in _UPDATE_JSON:
            raw = args.value(name, inline)
            try:
                self.fields[key] = json.loads(raw)
            except ValueError:
                raise LegacyUsageError(f"{name} must be JSON, got {raw!r}") from None
        elif name == "--priority":
            raw = args.value(name, inline)
            try:
                self.fields[key] = int(raw)
            except ValueError:
                raise LegacyUsageError(f"{name} must be a number, got {raw!r}") from None
        else:
            return False
        return True

    def finish(self, out: list[str]) -> None:
        if self.fields:
            out.extend(["--fields", json.dumps(self.fields)])


_BACKGROUND = (
    "its thread died with the command and stranded the tasks. Use --queue to hand the tree "
    "to `apflow worker` processes (PostgreSQL), or start `apflow daemon start` and run there"
)
_COPY = (
    "`apflow tasks copy ROOT_ID` copies the whole tree (new ids, all pending); to run failed "
    "tasks again in place use `apflow tasks execute ROOT_ID --rerun failed`"
)


def _rules(command: str, sub: str) -> tuple[list[Rule], _UpdateFields | None]:
    """The rules for ``command sub`` (after renaming 0.9 subcommands)."""
    if command == "run" and sub == "flow":
        return [
            _gone({"--background": _BACKGROUND, "-b": _BACKGROUND}),
            _gone({"--use-demo": "demo mode (canned results) is not kept; run real executors"}),
            _dropped({"--watch": "runs are followed live", "-w": "runs are followed live"}),
        ], None
    if command == "generate" and sub == "task-tree":
        save = (
            "the tree is printed (and written with -o FILE); store it with `apflow tasks "
            "create --tasks-file FILE`, or pass --run to run it"
        )
        provider = "name the provider in the LiteLLM model: --model anthropic/claude-..."
        return [
            _renames({"-m": ["--model"], "-t": ["--temperature"]}),
            _gone({"--provider": provider, "-p": provider, "--save": save}),
            _gone({"--user-id": save, "-u": save}),
            _dropped(
                {
                    "--pretty": "the tree is printed as indented JSON",
                    "--no-pretty": "the tree is printed as indented JSON",
                    "--no-save": "nothing is stored unless you store it",
                    "--max-tokens": "the answer's length is the model's default",
                }
            ),
        ], None
    if command != "tasks":
        if command == "serve" or (command == "daemon" and sub in ("start", "restart")):
            return [
                _positional("--protocol", "-P"),
                _host_short,
                _renames({}, {"--background": []}),
                _gone(
                    {
                        "--foreground": "run the server in the foreground with `apflow serve`",
                        "--reload": "restart `apflow serve` after a change",
                        "--workers": "scale out with `apflow worker` processes on PostgreSQL",
                    }
                ),
            ], None
        return [], None
    if sub == "create":
        return [_renames({"--file": ["--tasks-file"]}, {"--stdin": ["--tasks-file", "-"]})], None
    if sub == "list":
        return [
            _format_json,
            _renames({"-o": ["--offset"]}, {"--all-tasks": ["--all"], "--root-only": []}),
        ], None
    if sub == "count":
        return [_format_json, _root_only_flag], None
    if sub == "update":
        update = _UpdateFields()
        return [update], update
    if sub == "children":
        return [_positional("--parent-id", "-p", "--task-id", "-t")], None
    if sub == "watch":
        hint = "follow one tree with `apflow tasks watch ROOT_ID`"
        return [_positional("--task-id", "-t"), _gone({"--all": hint, "-a": hint})], None
    if sub == "cancel":
        note = "cancelling reaches the running executor"
        return [_dropped({"--force": note, "-f": note})], None
    if sub == "delete":
        return [_renames({}, {"-f": ["--force"]})], None
    if sub == "copy":
        names = (
            "--children",
            "--copy-mode",
            "--custom-task-ids",
            "--custom-include-children",
            "--reset-fields",
            "--dry-run",
        )
        return [_gone(dict.fromkeys(names, _COPY))], None
    return [], None


def _command_index(args: list[str]) -> int:
    """Where the command name is, after the root's global options."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, inline = _split(args[i])
        i += 2 if name in _ROOT_VALUE_OPTIONS and inline is None else 1
    return i


def translate(args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` with 0.9 spellings rewritten, and notes for the user (stderr).

    Raises :class:`LegacyUsageError` for a 0.9 spelling whose behaviour is gone.
    """
    at = _command_index(args)
    if at >= len(args):
        return args, []
    command = args[at]
    notes: list[str] = []
    if command == "serve":  # 0.9: `serve [start] [options]`; ours: `serve [PROTOCOL] ...`
        sub, head, tail = "", args[: at + 1], args[at + 1 :]
        if tail[:1] == ["start"]:
            tail = tail[1:]
    else:
        if at + 1 >= len(args):
            return args, []
        sub, head, tail = args[at + 1], args[: at + 2], args[at + 2 :]
    if command == "tasks" and sub == "all":
        head[-1] = sub = "list"
        notes.append("`tasks all` (aipartnerupflow 0.8) is `tasks list --all` now")
        tail = ["--all", *tail]
    rules, update = _rules(command, sub)
    if not rules:
        return [*head, *tail], notes
    parsed = _Args(tail)
    for name, inline in parsed:
        if not any(rule(parsed, name, inline, notes) for rule in rules):
            parsed.out.append(name if inline is None else f"{name}={inline}")
    if update is not None:
        update.finish(parsed.out)
    return [*head, *parsed.out], notes
