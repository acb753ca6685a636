"""What the chain scan asks the database for: the stored columns, streamed in chain order.

The scan (:mod:`affidavit.ledger.scan`) must read each row once and parse each stored decision
once. Measured on a million decisions, the databases' own JSON functions were the slow part:
SQLite's ``json_extract`` and PostgreSQL's per-row ``::jsonb`` cast parse the text several
times slower than orjson does in the reading process, and the text has to come to that process
anyway, because only it may compute the hash. So the queries here ask the database only for what
it does fast (the stored columns, the time column in RFC 3339, whether the row is in the period)
and the decision is parsed once by the scan: that parse is the one the columns are checked
against and the one a reader takes its facts from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def image_key(image: tuple[Any, ...]) -> tuple[str, str]:
    return str(image[0]), str(image[1] or "")


def rfc3339(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def sqlite_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


#: The time column in RFC 3339 as the writer puts it in the JSON (whole seconds without
#: fraction), so the check is one string comparison per row. On SQLite only a column in the
#: writer's exact text gets one (the period is compared as text, which orders only that format),
#: and only when it is a time (the exact check reads it as one); any other text is NULL, fails the
#: comparison and goes to the exact check.
_SQLITE_TIME = (
    "[0-9]" * 4 + "-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]." + "[0-9]" * 6
)
_SQLITE_RFC = (
    f"CASE WHEN d.time NOT GLOB '{_SQLITE_TIME}' THEN NULL "
    # digits in the right places that are no time (month 13, February 30, 24:00): SQLite's own
    # reading, written back, differs; the exact check then names the row
    "WHEN strftime('%Y-%m-%d %H:%M:%S', julianday(substr(d.time, 1, 19))) "
    "IS NOT substr(d.time, 1, 19) THEN NULL "
    "WHEN substr(d.time, 20) = '.000000' "
    "THEN replace(substr(d.time, 1, 19), ' ', 'T') || 'Z' "
    "ELSE replace(d.time, ' ', 'T') || 'Z' END"
)
_PG_RFC = (
    "to_char(d.time, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', d.time)"
    " = d.time THEN '' ELSE to_char(d.time, '.US') END || 'Z'"
)
#: The indexed columns in one text, joined by ``SEP`` (NULL when the time is not in the
#: writer's format): one value per row to fetch and compare instead of six.
SEP = "\x1f"
_ROWS = (
    "SELECT d.seq, d.id || chr(31) || d.outcome || chr(31) || d.namespace || chr(31) || d.kind"
    " || chr(31) || d.name || chr(31) || {rfc}, {period}, d.decision, d.prev_hash, d.hash "
    "FROM decisions d WHERE d.seq BETWEEN {lo} AND {hi} ORDER BY d.seq"
)

#: Every row of a seq range (``lo``..``hi``) in chain order: id, outcome, namespace, kind, name
#: and the time in RFC 3339 joined by ``SEP``, whether it is in the period, the stored JSON and
#: the chain's hashes.
SQLITE_ROWS = _ROWS.replace("chr(31)", "char(31)").format(
    rfc=_SQLITE_RFC, period="(d.time >= :since AND d.time < :until)", lo=":lo", hi=":hi"
)
PG_ROWS = _ROWS.format(
    rfc=_PG_RFC, period="(d.time >= %(since)s AND d.time < %(until)s)", lo="%(lo)s", hi="%(hi)s"
)

_IMAGES = (
    "SELECT seq, ref, digest FROM decision_images WHERE seq BETWEEN {lo} AND {hi} ORDER BY seq"
)
SQLITE_IMAGE_ROWS = _IMAGES.format(lo=":lo", hi=":hi")
PG_IMAGE_ROWS = _IMAGES.format(lo="%(lo)s", hi="%(hi)s")
#: The widest seq range (an open bound).
SEQ_MIN, SEQ_MAX = -(2**63), 2**63 - 1
