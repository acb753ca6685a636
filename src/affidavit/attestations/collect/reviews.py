"""The rules of ``collect review``, shared by every source of review data.

GitHub, GitLab and commit trailers each say in their own way who reviewed what; the rules that
turn that into code-review/v1 must be the same for all three, so they live here once:

- only approvals of the final revision count;
- a reviewer's latest non-``commented`` state wins (a later ``changes_requested`` or a dismissal
  supersedes an earlier approval; ``pending`` reviews were never submitted and are ignored);
- an approval is independent when the reviewer is not the change's author, not an author,
  co-author or committer of any of its commits (by login, by email, and for GitLab, whose commits
  carry no login, by display name), not a bot and not a known AI agent identity.

The source modules (``reviews_github``, ``reviews_gitlab``, ``reviews_trailers``) read their
inputs into a ``ReviewEvidence`` and call ``build_code_review``; they also use the JSON readers
here, whose errors name the file, the item and the field, and the API response expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, overload

import yaml

from affidavit.attestations.predicates.provenance import Source
from affidavit.attestations.predicates.review import (
    ChangeRequest,
    CodeReview,
    Identity,
    Review,
    ReviewState,
    ReviewSummary,
)
from affidavit.errors import InputError, UsageError

__all__ = [
    "AgentIdentities",
    "Contributors",
    "JsonInput",
    "RawReview",
    "ReviewEvidence",
    "build_code_review",
    "load_agent_identities",
    "load_json",
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
        if person.login and person.login.lower() in self.logins:
            return True
        if person.email:
            email = person.email.lower()
            derived = login_from_email(email)
            if email in self.emails or (derived is not None and derived in self.logins):
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


# --- JSON inputs -------------------------------------------------------------------------------


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
        raise source.error(f"{where} has '{dotted}' = {json.dumps(value)}, expected {names}")
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
        raise source.error(
            f"{where} has '{dotted}' = {json.dumps(value)}, expected a full commit id"
        )
    return value  # type: ignore[no-any-return]


def check_head(head: str | None) -> str | None:
    """``--head`` as given by the user: a full commit id, since it is compared with the API's."""
    if head is not None and not _REVISION.match(head):
        raise UsageError(
            f"--head {head!r} is not a full commit id (40 or 64 lower-case hex digits)",
            hint='pass the full id, e.g. --head "$(git rev-parse HEAD)"',
        )
    return head


# --- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawReview:
    """One review as the source reports it, before the rules are applied."""

    reviewer: Identity
    state: ReviewState
    submitted_at: str | None
    revision: str | None
    comments: int = 0


@dataclass
class Contributors:
    """Everyone who wrote or committed the change: their approvals are not independent."""

    identities: list[Identity] = field(default_factory=list)
    logins: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def add(self, person: Identity, *, listed: bool = True) -> None:
        if person.login:
            self.logins.add(person.login.lower())
        if person.email:
            self.emails.add(person.email.lower())
            derived = login_from_email(person.email)
            if derived:
                self.logins.add(derived)
        if person.name:
            self.names.add(person.name.strip().lower())
        if listed and person not in self.identities:
            self.identities.append(person)

    def add_co_authors(self, message: str) -> None:
        """Add every ``Co-authored-by: Name <email>`` of a commit message."""
        for line in message.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == "co-authored-by":
                name, email = parse_name_email(value)
                self.add(Identity(name=name, email=email), listed=False)

    def include(self, person: Identity, *, by_name: bool) -> bool:
        if person.login and person.login.lower() in self.logins:
            return True
        if person.email:
            email = person.email.lower()
            derived = login_from_email(email)
            if email in self.emails or (derived is not None and derived in self.logins):
                return True
        return by_name and bool(person.name) and (person.name or "").strip().lower() in self.names


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


@dataclass(frozen=True)
class ReviewEvidence:
    """What a source knows about a change and its reviews, in the predicate's terms."""

    source: Source
    change_request: ChangeRequest
    final_revision: str  # the revision an approval must name to count
    reviews: tuple[RawReview, ...]
    contributors: Contributors
    match_names: bool = False  # compare display names too (GitLab commits carry no login)
    review_comments: int | None = None  # the source's own count, when it has one


def reviewer_key(person: Identity) -> str:
    """How a reviewer is named in ``summary.reviewers`` and told apart from others."""
    return person.login or person.email or person.name or "(unknown)"


def is_independent(reviewer: Identity, evidence: ReviewEvidence, agents: AgentIdentities) -> bool:
    if reviewer.is_bot or looks_like_bot(reviewer) or agents.matches(reviewer):
        return False
    author = Contributors()
    author.add(evidence.change_request.author)
    if author.include(reviewer, by_name=evidence.match_names):
        return False
    return not evidence.contributors.include(reviewer, by_name=evidence.match_names)


def build_code_review(
    evidence: ReviewEvidence, agents: AgentIdentities | None = None
) -> CodeReview:
    """Apply the rules to ``evidence``: the code-review/v1 predicate."""
    agents = agents if agents is not None else load_agent_identities()
    ordered = sorted(
        evidence.reviews, key=lambda r: r.submitted_at or ""
    )  # stable: ties keep order
    deciding: dict[str, RawReview] = {}
    reviewers: dict[str, Identity] = {}
    for raw in ordered:
        if raw.state == "pending":
            continue
        key = reviewer_key(raw.reviewer).lower()
        reviewers.setdefault(key, raw.reviewer)
        if raw.state != "commented":
            deciding[key] = raw
    approvals = 0
    independent = 0
    for key, raw in deciding.items():
        if raw.state == "approved" and raw.revision == evidence.final_revision:
            approvals += 1
            if is_independent(reviewers[key], evidence, agents):
                independent += 1
    reviews = [
        Review(
            reviewer=raw.reviewer,
            state=raw.state,
            submitted_at=raw.submitted_at,
            revision=raw.revision,
            comments=raw.comments,
            on_final_revision=raw.revision == evidence.final_revision,
            independent=is_independent(raw.reviewer, evidence, agents),
        )
        for raw in evidence.reviews
    ]
    comments = evidence.review_comments
    if comments is None:
        comments = sum(raw.comments for raw in evidence.reviews)
    change_request = evidence.change_request.model_copy(
        update={"committers": list(evidence.contributors.identities)}
    )
    return CodeReview(
        source=evidence.source,
        change_request=change_request,
        reviews=reviews,
        summary=ReviewSummary(
            approvals_on_final_revision=approvals,
            independent_approvals=independent,
            reviewers=sorted({reviewer_key(p) for p in reviewers.values()}, key=str.lower),
            review_comments=comments,
        ),
    )
