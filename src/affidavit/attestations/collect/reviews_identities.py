"""Who is an AI agent or a bot, for ``collect review``'s independence rule.

An approval by an AI agent or a bot is never independent. Agents show up under many identities
(GitHub logins, noreply emails, ``(aider)`` name suffixes, commit-trailer names), so the known
ones live here once, extended (never shrunk) by ``ai-tools.yaml``, with the one login/email
matcher that the contributor check in :mod:`.reviews` uses too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from affidavit.attestations.predicates.review import Identity
from affidavit.errors import InputError

__all__ = [
    "AgentIdentities",
    "load_agent_identities",
    "login_from_email",
    "looks_like_bot",
    "matches_login_or_email",
    "parse_name_email",
]

# Identities AI agents use on GitHub, GitLab and in commit trailers. ai-tools.yaml, when present,
# extends these; it can never remove one.
_AGENT_EMAILS = frozenset(
    """noreply@anthropic.com noreply@openai.com aider@aider.chat noreply@aider.chat
    copilot@github.com cursoragent@cursor.com 198982749+copilot@users.noreply.github.com
    161369871+google-labs-jules[bot]@users.noreply.github.com
    158243242+devin-ai-integration[bot]@users.noreply.github.com
    208079219+amazon-q-developer[bot]@users.noreply.github.com""".split()  # noqa: SIM905 (a word list)
)
_AGENT_LOGINS = frozenset(
    """copilot copilot-swe-agent copilot-swe-agent[bot] copilot-pull-request-reviewer[bot]
    google-labs-jules[bot] devin-ai-integration[bot] amazon-q-developer[bot] claude[bot]
    chatgpt-codex-connector[bot] cursor[bot]""".split()  # noqa: SIM905 (a word list)
)
_AGENT_NAME_SUFFIXES = (" (aider)",)
_EMAIL = re.compile(r"^[^\s@<>*]+@[^\s@<>*]+\.[^\s@<>*]+$")
_ANGLE_EMAIL = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_BOT_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*\[bot\]$")
_NOREPLY = re.compile(r"^(?:\d+\+)?([^@+]+)@users\.noreply\.github\.com$")
_LOGIN_KEYS = frozenset({"login", "logins", "names", "bot", "bots"})


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

    emails: frozenset[str] = _AGENT_EMAILS
    logins: frozenset[str] = _AGENT_LOGINS
    names: frozenset[str] = frozenset()  # exact names of agent accounts
    name_suffixes: tuple[str, ...] = _AGENT_NAME_SUFFIXES

    def matches(self, person: Identity) -> bool:
        if matches_login_or_email(person, self.logins, self.emails):
            return True
        name = (person.name or "").strip().lower()
        if name and name in self.names:
            return True
        return any(name.endswith(suffix) for suffix in self.name_suffixes)


def _walk_strings(node: object, key: str | None, found: dict[str, set[str]]) -> None:
    if isinstance(node, Mapping):
        for k, v in node.items():
            _walk_strings(v, str(k).lower(), found)
    elif isinstance(node, list):
        for v in node:
            _walk_strings(v, key, found)
    elif isinstance(node, str):
        text = node.strip()
        if key in ("namesuffixes", "name_suffixes"):
            found["suffixes"].add(node.lower())
            return
        for candidate in [*_ANGLE_EMAIL.findall(text), text]:
            if _EMAIL.match(candidate):
                found["emails"].add(candidate.lower())
        if _BOT_LOGIN.match(text) or (key in _LOGIN_KEYS and re.fullmatch(r"[\w.\[\]-]+", text)):
            found["logins"].add(text.lower())
        if key in ("names", "logins"):
            found["names"].add(text.lower())


def _read_identities(text: str, found: dict[str, set[str]]) -> None:
    _walk_strings(yaml.safe_load(text), None, found)


def load_agent_identities(extra: Path | None = None) -> AgentIdentities:
    """The built-in agent identities, extended by ai-tools.yaml and by ``extra`` (``--tools``).

    The tools registry belongs to the provenance collector and its shape may change, so it is read
    leniently: any e-mail address in it (bare or as ``Name <email>``), any ``name[bot]`` login,
    any value under a ``names``/``login(s)``/``bot(s)`` key and any ``nameSuffixes`` entry is an
    agent identity. A missing or unreadable packaged file leaves the built-in list, which is
    never shrunk; an unreadable ``extra`` file, which the user named, is an error.
    """
    found: dict[str, set[str]] = {
        "emails": set(),
        "logins": set(),
        "names": set(),
        "suffixes": set(),
    }
    try:
        packaged = resources.files("affidavit").joinpath("data", "ai-tools.yaml")
        _read_identities(packaged.read_text(encoding="utf-8"), found)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        pass
    if extra is not None:
        try:
            _read_identities(extra.read_text(encoding="utf-8"), found)
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"tools file {extra} cannot be read ({e})") from e
        except yaml.YAMLError as e:
            raise InputError(f"tools file {extra} is not valid YAML: {e}") from e
    return AgentIdentities(
        emails=_AGENT_EMAILS | found["emails"],
        logins=_AGENT_LOGINS | found["logins"],
        names=frozenset(found["names"]),
        name_suffixes=tuple(dict.fromkeys([*_AGENT_NAME_SUFFIXES, *sorted(found["suffixes"])])),
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
