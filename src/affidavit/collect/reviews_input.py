"""Reading the JSON files ``collect review`` is given (GitHub and GitLab API responses).

The user saves API responses to files; when one is the wrong endpoint, truncated or missing a
field, the error must name the file, the item and the field, and the API response expected.
These readers do that once for every source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from affidavit.errors import InputError, UsageError

__all__ = ["JsonInput", "check_head", "get_field", "get_revision", "load_json", "shown"]


@dataclass(frozen=True)
class JsonInput:
    """One input file: what it should be (label, API endpoint) so errors can say so."""

    label: str  # e.g. "github reviews file"
    path: str  # as the user gave it
    endpoint: str  # e.g. "GET /repos/{o}/{r}/pulls/{n}/reviews"

    def error(self, problem: str) -> InputError:
        return InputError(
            f"{self.label} {self.path}: {problem}; expected the JSON of {self.endpoint}"
        )


def _decode_all(text: str) -> list[Any]:
    """Every JSON value in ``text``; ``gh api --paginate`` writes one array per page."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return values
        value, pos = decoder.raw_decode(text, pos)
        values.append(value)


def load_json(source: JsonInput, *, array: bool) -> Any:
    """Read ``source``: an array (pages concatenated or slurped are joined) or an object."""
    try:
        text = Path(source.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise source.error(f"cannot be read ({reason})") from e
    try:
        values = _decode_all(text)
    except json.JSONDecodeError as e:
        raise source.error(f"is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    except RecursionError as e:  # json recurses once per level of nesting
        raise source.error("is not valid JSON (nested too deeply to read)") from e
    except ValueError as e:  # an integer of more digits than Python converts
        raise source.error(f"is not valid JSON ({e})") from e
    if not values:
        raise source.error("is empty")
    if array:
        if all(isinstance(v, list) for v in values):
            items = [item for v in values for item in v]
            if items and all(isinstance(i, list) for i in items):  # gh api --paginate --slurp
                items = [item for page in items for item in page]
            return items
        raise source.error(f"holds {_kind(values[0])}, not an array")
    if len(values) != 1 or not isinstance(values[0], dict):
        raise source.error(f"holds {_kind(values[0])}, not one object")
    return values[0]


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a " + type(value).__name__.replace("NoneType", "null").replace("str", "string")


_MISSING = object()
_SHOWN = 80  # characters of a wrong value quoted in a message


def shown(value: object) -> str:
    """A wrong value as JSON for a message, cut to its first characters: a field of megabytes
    must not become a message of megabytes."""
    text = json.dumps(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"... ({len(text)} characters)"


def _lookup(obj: Mapping[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def get_field(
    source: JsonInput,
    obj: Any,
    dotted: str,
    kind: type | tuple[type, ...],
    *,
    where: str,
    required: bool = True,
) -> Any:
    """``obj[dotted]`` checked against ``kind``; ``None`` when optional and absent or null.

    ``where`` names the object in messages: ``"item 3"``, ``"the pull request"``.
    """
    if not isinstance(obj, Mapping):
        raise source.error(f"{where} is {_kind(obj)}, not an object")
    value = _lookup(obj, dotted)
    if value is _MISSING or value is None:
        if required:
            null = " (null)" if value is None else ""
            raise source.error(f"{where} has no '{dotted}'{null}")
        return None
    if (isinstance(value, bool) and kind in (int, (int,))) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        names = names.replace("str", "string").replace("dict", "object").replace("list", "array")
        raise source.error(f"{where} has '{dotted}' = {shown(value)}, expected {names}")
    return value


_REVISION = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@overload
def get_revision(
    source: JsonInput, obj: Any, dotted: str, *, where: str, required: Literal[True] = True
) -> str: ...


@overload
def get_revision(
    source: JsonInput, obj: Any, dotted: str, *, where: str, required: bool
) -> str | None: ...


def get_revision(
    source: JsonInput, obj: Any, dotted: str, *, where: str, required: bool = True
) -> str | None:
    """A commit id field: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits."""
    value = get_field(source, obj, dotted, str, where=where, required=required)
    if value is not None and not _REVISION.match(value):
        raise source.error(f"{where} has '{dotted}' = {shown(value)}, expected a full commit id")
    return value  # type: ignore[no-any-return]


def check_head(head: str | None) -> str | None:
    """``--head`` as given by the user: a full commit id, since it is compared with the API's."""
    if head is not None and not _REVISION.match(head):
        raise UsageError(
            f"--head {head!r} is not a full commit id (40 or 64 lower-case hex digits)",
            hint='pass the full id, e.g. --head "$(git rev-parse HEAD)"',
        )
    return head
