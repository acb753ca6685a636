"""Help that reads cleanly in an 80-column terminal, for every command including new ones.

Typer's Rich panels squeeze a table into the terminal: at 80 columns long option names and
environment variables were cut with an ellipsis, and every option showed its Python type
(``<bool>``, ``<list[str]>``, ``<float>``) and raw float defaults (``7776000.0``). The CLI
renders click's plain help instead (wrapped, never cut) and this module gives each parameter a
metavar a person reads (``IMAGE``, ``HOST``, ``FILE``) once, when the command tree is built, so
an option added later needs nothing to render cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Metavars by option name, for the names whose value is not obvious from their type.
METAVARS = {
    "--insecure-registry": "HOST",
    "--registry-allowed-host": "HOST",
    "--key": "KEY",
    "--public-key": "KEY",
    "--ledger-public-key": "KEY",
    "--ledger-key": "KEY",
    "--ledger": "URL",
    "--kubeconfig": "FILE",
    "--policy": "FILE",
    "--output": "FILE",
    "--type": "URI",
    "--since": "TIME",
    "--until": "TIME",
    "--at": "TIME",
    "--image": "IMAGE",
    "--namespace": "NAMESPACE",
    "--region": "REGION",
    "--cluster": "NAME",
    "--cluster-name": "NAME",
    "--context": "CONTEXT",
    "--service": "NAMESPACE/NAME",
    "--format": "FORMAT",
    "--outcome": "OUTCOME",
    "--decision": "ID",
    "--label": "KEY=VALUE",
    "--namespace-label": "KEY=VALUE",
}
_BY_TYPE = {"int": "N", "float": "NUMBER", "str": "TEXT"}


def walk(command: Any) -> Iterator[tuple[list[str], Any]]:
    """Every command of a click tree with its path of names, the root first."""
    stack: list[tuple[list[str], Any]] = [([], command)]
    while stack:
        path, cmd = stack.pop(0)
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append(([*path, name], sub))


def _metavar(param: Any) -> str:
    for name in param.opts:
        if name in METAVARS:
            return METAVARS[name]
    described = param.type_descriptor
    if described.is_path:
        return "DIR" if described.path_type == "dir" else "PATH"
    if described.is_choice:
        return "|".join(str(c) for c in described.choices or ())
    kind = described.annotation
    if described.is_list:
        kind = (getattr(kind, "__args__", None) or (str,))[0]
    return _BY_TYPE.get(getattr(kind, "__name__", ""), "VALUE")


def _no_type(ctx: Any) -> None:
    return None


def tidy(command: Any) -> Any:
    """Give every argument and valued option of ``command``'s tree a readable metavar, and
    integral float defaults their integer form (``300``, not ``300.0``)."""
    for _, cmd in walk(command):
        for param in cmd.params:
            if getattr(param, "param_type_name", "") == "argument":
                if param.metavar is None:
                    param.metavar = param.name.upper()
                # typer prints an argument's Python type beside its name (``IMAGE <str>``);
                # the name in capitals says what to pass
                param.display_type_rich = _no_type
                continue
            if param.is_flag or param.count:
                continue
            if param.metavar is None:
                param.metavar = _metavar(param)
            default = param.default
            if isinstance(default, float) and default.is_integer():
                param.default = int(default)
    return command
