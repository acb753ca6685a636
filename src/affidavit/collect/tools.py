"""The registry of known AI tool identities, as data users can extend.

New agents and new bot accounts appear every month; hard-coding them would make the collector
wrong the day a team adopts one. The built-in list lives in ``affidavit/data/ai-tools.yaml``;
``--tools FILE`` of the same shape adds entries or replaces entries with the same ``id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from affidavit.errors import InputError


class _ToolEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1)
    name: str = ""  # shown in predicates; the id when omitted
    emails: list[str] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)
    logins: list[str] = Field(default_factory=list)
    name_suffixes: list[str] = Field(default_factory=list, alias="nameSuffixes")
    subject_prefixes: list[str] = Field(default_factory=list, alias="subjectPrefixes")
    message_lines: list[str] = Field(default_factory=list, alias="messageLines")
    aliases: list[str] = Field(default_factory=list)
    trailers: list[str] = Field(default_factory=list)


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    tools: list[_ToolEntry]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One known AI tool and the marks that identify it."""

    id: str
    name: str
    emails: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    logins: tuple[str, ...] = ()  # review-system logins (collect review's independence rule)
    name_suffixes: tuple[str, ...] = ()
    subject_prefixes: tuple[str, ...] = ()
    message_lines: tuple[str, ...] = ()  # a line of the message starting so marks the tool
    aliases: tuple[str, ...] = ()
    trailers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolRegistry:
    """Look-ups from the marks found in a commit to the tool they belong to."""

    tools: tuple[ToolSpec, ...]
    _emails: dict[str, ToolSpec] = field(init=False, repr=False, compare=False)
    _names: dict[str, ToolSpec] = field(init=False, repr=False, compare=False)
    _aliases: dict[str, ToolSpec] = field(init=False, repr=False, compare=False)
    _trailers: dict[str, ToolSpec] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[tuple[str, ToolSpec], ...] = field(init=False, repr=False, compare=False)
    _prefixes: tuple[tuple[str, ToolSpec], ...] = field(init=False, repr=False, compare=False)
    _lines: tuple[tuple[str, ToolSpec], ...] = field(init=False, repr=False, compare=False)
    # identities repeat across thousands of commits: their look-ups are remembered
    _identities: dict[tuple[str, str], ToolSpec | None] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _suffix_hits: dict[str, tuple[ToolSpec, str] | None] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        def index(attr: str) -> dict[str, ToolSpec]:
            table: dict[str, ToolSpec] = {}
            for tool in self.tools:
                for key in getattr(tool, attr):
                    table.setdefault(key.lower(), tool)
            return table

        object.__setattr__(self, "_emails", index("emails"))
        object.__setattr__(self, "_names", index("names"))
        object.__setattr__(self, "_aliases", index("aliases"))
        object.__setattr__(self, "_trailers", index("trailers"))
        suffixes = tuple((x.lower(), t) for t in self.tools for x in t.name_suffixes if x)
        prefixes = tuple((x.lower(), t) for t in self.tools for x in t.subject_prefixes if x)
        object.__setattr__(self, "_suffixes", suffixes)
        object.__setattr__(self, "_prefixes", prefixes)
        lines = tuple((x.lower(), t) for t in self.tools for x in t.message_lines if x.strip())
        object.__setattr__(self, "_lines", lines)

    def by_email(self, email: str) -> ToolSpec | None:
        return self._emails.get(email.strip().lower())

    def by_bot_name(self, name: str) -> ToolSpec | None:
        return self._names.get(name.strip().lower())

    def by_alias(self, text: str) -> ToolSpec | None:
        return self._aliases.get(text.strip().lower())

    def by_trailer_key(self, key: str) -> ToolSpec | None:
        return self._trailers.get(key.lower())

    def by_name_suffix(self, name: str) -> tuple[ToolSpec, str] | None:
        """The tool whose suffix ends ``name``, and the name without it (the human)."""
        if name in self._suffix_hits:
            return self._suffix_hits[name]
        hit: tuple[ToolSpec, str] | None = None
        lowered = name.lower()
        for suffix, tool in self._suffixes:
            if lowered.endswith(suffix):
                hit = tool, name[: len(name) - len(suffix)].strip()
                break
        self._suffix_hits[name] = hit
        return hit

    def by_subject_prefix(self, subject: str) -> tuple[ToolSpec, str] | None:
        """The tool whose prefix starts ``subject``, and the prefix as written."""
        lowered = subject.lower()
        for prefix, tool in self._prefixes:
            if lowered.startswith(prefix):
                return tool, subject[: len(prefix)]
        return None

    def by_message_line(self, message: str) -> list[tuple[ToolSpec, str]]:
        """Each tool one of whose marks starts a line of ``message`` (anywhere, not only in the
        trailers: a footer such as Claude Code's), with the first such line as written."""
        whole = message.lower()
        marks = [(mark, tool) for mark, tool in self._lines if mark in whole]
        if not marks:  # nearly every commit: one pass over the message, no split
            return []
        hits: dict[str, tuple[ToolSpec, str]] = {}
        for line in message.split("\n"):
            text = line.strip()
            lowered = text.lower()
            for mark, tool in marks:
                if tool.id not in hits and lowered.startswith(mark):
                    hits[tool.id] = tool, text
        return list(hits.values())

    def identity(self, name: str, email: str) -> ToolSpec | None:
        """The tool a whole identity (a bot account) belongs to, if any."""
        key = (name, email)
        if key in self._identities:
            return self._identities[key]
        spec = self._identities[key] = self.by_bot_name(name) or self.by_email(email)
        return spec


def _parse(text: str, origin: str) -> list[_ToolEntry]:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputError(
            f"{origin} is not valid YAML: {e}", hint="fix the YAML syntax of the tools file"
        ) from e
    try:
        return _RegistryFile.model_validate(data).tools
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"{origin}: invalid tools registry at {where}: {first['msg']}",
            hint="see affidavit/data/ai-tools.yaml for the expected shape",
        ) from e


def _spec(entry: _ToolEntry) -> ToolSpec:
    return ToolSpec(
        id=entry.id,
        name=entry.name or entry.id,
        emails=tuple(entry.emails),
        names=tuple(entry.names),
        logins=tuple(entry.logins),
        name_suffixes=tuple(entry.name_suffixes),
        subject_prefixes=tuple(entry.subject_prefixes),
        message_lines=tuple(entry.message_lines),
        aliases=tuple(entry.aliases),
        trailers=tuple(entry.trailers),
    )


def builtin_tools_text() -> str:
    """The text of the built-in registry."""
    return resources.files("affidavit").joinpath("data/ai-tools.yaml").read_text("utf-8")


def builtin_tools() -> tuple[ToolSpec, ...]:
    """The tools of the packaged ai-tools.yaml (a broken packaged file is an error, not empty)."""
    return tuple(_spec(e) for e in _parse(builtin_tools_text(), "built-in ai-tools.yaml"))


def tools_from_file(path: Path) -> tuple[ToolSpec, ...]:
    """The tools of a ``--tools`` file, in the packaged file's shape."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise InputError(
            f"cannot read tools file {path}: {reason}",
            hint="pass --tools with the path of a YAML registry",
        ) from e
    return tuple(_spec(e) for e in _parse(text, str(path)))


def load_registry(extra: Path | None = None) -> ToolRegistry:
    """The built-in registry, extended or overridden (same ``id``) by ``extra`` when given."""
    tools = {t.id: t for t in builtin_tools()}
    if extra is not None:
        tools.update((t.id, t) for t in tools_from_file(extra))
    return ToolRegistry(tuple(tools.values()))
