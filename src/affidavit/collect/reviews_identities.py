"""Who is an AI agent or a bot, for ``collect review``'s independence rule.

An approval by an AI agent or a bot is never independent. Agents show up under many identities
(GitHub logins, noreply emails, ``(aider)`` name suffixes, commit-trailer names); they are read
from the one tools registry ``collect provenance`` uses (``ai-tools.yaml``, through
:mod:`.tools`), and a ``--tools`` file adds to them but never removes one. The one login/email
matcher the contributor check in :mod:`.reviews` uses lives here too.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from affidavit.attestations.predicates.review import Identity
from affidavit.collect.tools import builtin_tools, tools_from_file

__all__ = [
    "AgentIdentities",
    "load_agent_identities",
    "login_from_email",
    "looks_like_bot",
    "matches_login_or_email",
    "parse_name_email",
]

_EMAIL = re.compile(r"^[^\s@<>*]+@[^\s@<>*]+\.[^\s@<>*]+$")
_ANGLE_EMAIL = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_BOT_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*\[bot\]$")
_NOREPLY = re.compile(r"^(?:\d+\+)?([^@+]+)@users\.noreply\.github\.com$")


def login_from_email(email: str) -> str | None:
    """The GitHub login behind a ``[ID+]login@users.noreply.github.com`` address, if it is one."""
    match = _NOREPLY.match(email.strip().lower())
    return match.group(1) if match else None


def matches_login_or_email(
    person: Identity, logins: Collection[str], emails: Collection[str]
) -> bool:
    """Whether ``person``'s login, email, or the login a noreply email implies is listed
    (``logins`` and ``emails`` lower-case)."""
    if person.login and person.login.lower() in logins:
        return True
    if person.email:
        email = person.email.lower()
        derived = login_from_email(email)
        if email in emails or (derived is not None and derived in logins):
            return True
    return False


def looks_like_bot(person: Identity) -> bool:
    """A ``[bot]`` account by login, name or noreply address (GitHub Apps all look like this)."""
    derived = login_from_email(person.email) if person.email else None
    return any(
        (value or "").strip().lower().endswith("[bot]")
        for value in (person.login, person.name, derived)
    )


@dataclass(frozen=True)
class AgentIdentities:
    """Known AI agent identities, compared case-insensitively."""

    emails: frozenset[str] = frozenset()
    logins: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()  # exact names of agent accounts
    name_suffixes: tuple[str, ...] = ()

    def matches(self, person: Identity) -> bool:
        if matches_login_or_email(person, self.logins, self.emails):
            return True
        name = (person.name or "").strip().lower()
        if name and name in self.names:
            return True
        return any(name.endswith(suffix) for suffix in self.name_suffixes)


def load_agent_identities(extra: Path | None = None) -> AgentIdentities:
    """The agent identities of the packaged tools registry, plus those of ``extra`` (``--tools``).

    Unlike ``collect provenance``, where an entry of ``extra`` replaces the built-in one with its
    id, here both count: a tools file can only make the independence rule stricter.

    Raises:
        InputError: a tools file cannot be read or does not have the registry's shape.
    """
    tools = [*builtin_tools(), *(tools_from_file(extra) if extra is not None else ())]
    return AgentIdentities(
        emails=frozenset(e.lower() for t in tools for e in t.emails),
        logins=frozenset(x.lower() for t in tools for x in (*t.logins, *t.names)),
        names=frozenset(n.lower() for t in tools for n in t.names),
        name_suffixes=tuple(dict.fromkeys(x.lower() for t in tools for x in t.name_suffixes)),
    )


def parse_name_email(value: str) -> tuple[str | None, str | None]:
    """``"Ada Lovelace <ada@example.org>"`` -> (name, email); a bare address is an email."""
    value = value.strip()
    match = _ANGLE_EMAIL.search(value)
    if match:
        name = value[: match.start()].strip() or None
        return name, match.group(1)
    if _EMAIL.match(value):
        return None, value
    return value or None, None
