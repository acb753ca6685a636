"""What the chain scan asks the database to extract from each decision, and how it reads it.

The scan (:mod:`affidavit.ledger.scan`) must parse each stored decision once, in the database,
and get back only what it checks and what its reader counts. This module writes that one query
for SQLite (``json_extract`` with many paths: one parse) and PostgreSQL (one ``::jsonb`` cast
per row), takes arrays element by element up to a fixed count (with a sentinel that says when a
decision has more, which is then parsed here instead), and shapes the flat answer back into
tuples. ``facts_of`` gives the same shape from a decision parsed in Python, for the fallback.
Keys are plain JSON keys only (checked), so the text of the query never carries data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Facts:
    """What to extract from each decision of the period.

    ``fields``: top-level keys (their JSON values, in order). ``arrays``: for a top-level array,
    the keys to take from each of its objects (a tuple per element). The database extracts the
    first elements by position (one parse per row); a decision with more is parsed here
    instead, so nothing is cut off. Keys may be dotted (``snapshot.caller.authenticated``).
    """

    fields: tuple[str, ...] = ()
    #: (dotted path of the array, dotted keys of each element, how many elements by position)
    arrays: tuple[tuple[str, tuple[str, ...], int], ...] = ()


#: One row: seq, id, RFC 3339 time, outcome, namespace, kind, name, in the period, damaged
#: (at or after the first fault), the stored line's parts (decision, prev_hash, hash), and the
#: facts (the ``fields`` tuple, then one tuple of tuples per array); facts are None outside the
#: period.

_IMAGES = ("images", ("ref", "digest"), 2)


def _arrays(facts: Facts, with_facts: bool) -> list[tuple[str, tuple[str, ...], int]]:
    return [_IMAGES, *facts.arrays] if with_facts else [_IMAGES]


def _paths(facts: Facts, with_facts: bool) -> list[tuple[str, ...]]:
    """JSON paths (as key tuples) in extraction order: the images, the fields, the arrays."""
    out: list[tuple[str, ...]] = []
    for n, (array, keys, limit) in enumerate(_arrays(facts, with_facts)):
        if n == 1:
            out += [_split(k) for k in facts.fields]
        for i in range(limit):
            out += [(*_split(array), str(i), *_split(k)) for k in keys]
        out.append((*_split(array), str(limit)))  # present: more elements than extracted
    if with_facts and len(_arrays(facts, with_facts)) == 1:
        out += [_split(k) for k in facts.fields]
    return out


def _split(dotted: str) -> tuple[str, ...]:
    return tuple(_check(p) for p in dotted.split("."))


def _get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def shape(
    values: list[Any], facts: Facts, with_facts: bool, nested: bool = True
) -> tuple[Any, ...] | None:
    """(images, facts) from the extracted values; None when an array had more elements.

    An element is present when its first key is (a rule, an image, a ref).
    """
    if nested:
        values = [_freeze(v) for v in values]
    pos = 0
    arrays: list[tuple[tuple[Any, ...], ...]] = []
    fields: tuple[Any, ...] = ()
    for n, (_, keys, limit) in enumerate(_arrays(facts, with_facts)):
        if n == 1:
            fields = tuple(values[pos : pos + len(facts.fields)])
            pos += len(facts.fields)
        width = len(keys)
        stop = pos + width * limit
        if values[stop] is not None:
            return None
        arrays.append(
            tuple(
                tuple(values[j : j + width])
                for j in range(pos, stop, width)
                if values[j] is not None
            )
        )
        pos = stop + 1
    if with_facts and len(arrays) == 1:
        fields = tuple(values[pos : pos + len(facts.fields)])
    images = tuple(sorted(arrays[0], key=image_key)) if len(arrays[0]) > 1 else arrays[0]
    if not with_facts:
        return (images, None)
    return (images, _assemble(facts, fields, arrays[1:]))


def _assemble(
    facts: Facts, fields: tuple[Any, ...], arrays: Sequence[tuple[Any, ...]]
) -> tuple[Any, ...]:
    return ((fields,) if facts.fields else ()) + tuple(arrays)


def image_key(image: tuple[Any, ...]) -> tuple[str, str]:
    return str(image[0]), str(image[1] or "")


def _check(key: str) -> str:
    if not key.replace("_", "").isalnum():
        raise ValueError(f"fact key {key!r} is not a plain JSON key")
    return key


def _sqlite_path(path: tuple[str, ...]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if part.isdigit() else f".{_check(part)}"
    return f"'{out}'"


def _pg_path(path: tuple[str, ...]) -> str:
    return "x.j" + "".join(f"->{p}" if p.isdigit() else f"->'{_check(p)}'" for p in path)


def rfc3339(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def sqlite_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_sql(facts: Facts) -> str:
    rfc = (
        "CASE WHEN substr(d.time, 20) = '.000000' "
        "THEN replace(substr(d.time, 1, 19), ' ', 'T') || 'Z' "
        "ELSE replace(d.time, ' ', 'T') || 'Z' END"
    )
    ok = (
        "json_extract(d.decision, '$.id', '$.outcome', '$.namespace', '$.kind', '$.name', "
        f"'$.time') = json_array(d.id, d.outcome, d.namespace, d.kind, d.name, {rfc})"
    )
    period = "(d.time >= :since AND d.time < :until)"
    both = ", ".join(_sqlite_path(p) for p in _paths(facts, True))
    images = ", ".join(_sqlite_path(p) for p in _paths(facts, False))
    # Every interpolated part is built here from fixed text and checked plain keys (_check).
    return (
        f"SELECT d.seq, d.id, {rfc}, d.outcome, d.namespace, d.kind, d.name, {period}, "  # noqa: S608
        f"d.decision, d.prev_hash, d.hash, {ok}, CASE WHEN {period} "
        f"THEN json_extract(d.decision, {both}) ELSE json_extract(d.decision, {images}) END "
        "FROM decisions d ORDER BY d.seq"
    )


def pg_sql(facts: Facts) -> str:
    rfc = (
        "to_char(d.time, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', d.time)"
        " = d.time THEN '' ELSE to_char(d.time, '.US') END || 'Z'"
    )
    ok = (
        "jsonb_build_array(x.j->'id', x.j->'outcome', x.j->'namespace', x.j->'kind', "
        "x.j->'name', x.j->'time') = jsonb_build_array(d.id, d.outcome, d.namespace, d.kind, "
        f"d.name, {rfc})"
    )
    period = "(d.time >= %(since)s AND d.time < %(until)s)"
    both = ", ".join(_pg_path(p) for p in _paths(facts, True))
    images = ", ".join(_pg_path(p) for p in _paths(facts, False))
    return (
        f"SELECT d.seq, d.id, {rfc}, d.outcome, d.namespace, d.kind, d.name, {period}, "  # noqa: S608
        f"d.decision, d.prev_hash, d.hash, {ok}, CASE WHEN {period} "
        f"THEN jsonb_build_array({both})::text ELSE jsonb_build_array({images})::text END "
        "FROM decisions d CROSS JOIN LATERAL (SELECT d.decision::jsonb AS j) x ORDER BY d.seq"
    )


IMAGE_ROWS = "SELECT seq, ref, digest FROM decision_images ORDER BY seq"


def facts_of(data: Mapping[str, Any], facts: Facts) -> tuple[Any, ...]:
    """The facts of a parsed decision, shaped as the fast scan shapes them."""
    fields = tuple(_freeze(_get(data, k)) for k in facts.fields)
    arrays = []
    for array, keys, _ in facts.arrays:
        items = _get(data, array)
        elements = (
            tuple(_freeze(_get(item, k)) for k in keys)
            for item in (items if isinstance(items, list) else ())
        )
        arrays.append(tuple(e for e in elements if e and e[0] is not None))
    return _assemble(facts, fields, arrays)


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value
