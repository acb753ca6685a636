"""Put every changed file in a trust tier, from the repository's own tier map.

Review requirements differ by risk: an AI-written change to authentication code needs more than
one to a README. The repository says which paths are which in ``.affidavit/tiers.yaml``, read at
the BASE revision: the change under review must not decide its own review, so an AI commit that
edits ``src/auth/`` and also drops ``src/auth/**`` from ``critical`` is still classified by the map
that was in force before it (the trusted side). ``--tiers FILE`` overrides; with no base revision
(the whole history is the change) or no map at base, the built-in default map applies. A change to
the tier map file itself is always ``critical``, whatever any map says. The sha256 of the
configuration used and where it came from go into the predicate (``collector.tiersDigest``,
``collector.tiersSource``) so a verifier can tell which map classified the files, and a policy can
pin it (``require.tierMapDigest``).

File shape::

    tiers:
      - tier: critical
        paths: ["**/auth/**", "db/migrations/**"]
      - tier: low
        paths: ["docs/**", "*.md"]
    default: standard

Globs: ``**`` spans directories, ``*`` and ``?`` stay within one path segment; a pattern without
``/`` matches the file name in any directory, and a pattern that names a folder covers what is
under it (``src/auth`` is ``src/auth/**``), both as in .gitignore. The FIRST matching rule wins, so
list stricter tiers first (the default map puts ``critical`` before ``low``: ``docs/auth.md`` is
``critical`` -- when in doubt, fail closed). A renamed file is classified by its new path and,
when the old path is in another tier, listed under the old path too (see ``provenance``). A
submodule is a folder: ``src/auth`` as a submodule is ``critical`` under ``**/auth/**``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from affidavit.attestations.predicates.provenance import TiersKind
from affidavit.errors import InputError

TIERS_PATH = ".affidavit/tiers.yaml"
TIER_MAP_TIER = "critical"  # the tier of any change to TIERS_PATH itself

_CRITICAL_WORDS = (
    "auth",
    "login",
    "session",
    "oauth",
    "crypto",
    "security",
    "payments",
    "billing",
    "migrations",
)


def _default_text() -> str:
    critical: list[str] = []
    for w in _CRITICAL_WORDS:
        critical += [f"**/{w}/**", f"**/{w}.*", f"**/{w}_*", f"**/*_{w}.*"]
    lines = ["tiers:", "  - tier: critical", "    paths:"]
    lines += [f'      - "{p}"' for p in critical]
    lines += ["  - tier: low", "    paths:"]
    lines += [
        f'      - "{p}"' for p in ("docs/**", "**/docs/**", "*.md", "tests/**", "**/tests/**")
    ]
    lines += ["default: standard", ""]
    return "\n".join(lines)


DEFAULT_TIERS_TEXT = _default_text()


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str = Field(min_length=1)
    paths: list[str] = Field(min_length=1)


class _TiersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: list[_Rule] = Field(default_factory=list)
    default: str = "standard"


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob (``**``, ``*``, ``?``) to an anchored regular expression."""
    pat = pattern.strip()
    if "/" not in pat.rstrip("/"):
        pat = "**/" + pat
    pat = pat.lstrip("/")
    if pat.endswith("/"):
        pat += "**"
    out: list[str] = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    # A pattern that names a folder covers everything under it, as in .gitignore: ``src/auth``
    # (no trailing ``/**``) is the login module's tier, not only a file called auth.
    # DOTALL: ``**`` spans any character a path may hold, a newline too (git allows one)
    return re.compile("".join(out) + r"(?:/.*)?\Z", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class TierMap:
    """Ordered (tier, globs) rules; the first match wins. ``digest`` identifies the config.

    ``source`` names the map in errors; ``kind``, ``path`` and ``revision`` say where it came
    from (recorded as ``collector.tiersSource``).
    """

    rules: tuple[tuple[str, tuple[str, ...]], ...]
    default: str
    digest: str
    source: str
    kind: TiersKind = "built-in"
    path: str | None = None
    revision: str | None = None
    #: submodule paths: each also read as the folder it is (``src/auth`` as ``src/auth/``)
    folders: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(default=(), repr=False)
    _cache: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((tier, glob_to_regex(g)) for tier, globs in self.rules for g in globs)
        object.__setattr__(self, "_compiled", compiled)

    def tier_of(self, path: str) -> str:
        """The tier of ``path`` (repository-relative, ``/``-separated).

        The tier map file itself is always ``critical``: a change to it changes how every later
        change is reviewed. A submodule (in ``folders``) is also read as the folder it is, so
        ``**/auth/**`` covers a submodule at ``src/auth``; the first rule either reading
        matches wins.
        """
        if path == TIERS_PATH:
            return TIER_MAP_TIER
        hit = self._cache.get(path)
        if hit is None:
            readings = (path, path + "/") if path in self.folders else (path,)
            hit = self.default
            for tier, rx in self._compiled:
                if any(rx.match(p) for p in readings):
                    hit = tier
                    break
            self._cache[path] = hit
        return hit


def parse_tiers(
    raw: bytes,
    source: str,
    kind: TiersKind = "built-in",
    path: str | None = None,
    revision: str | None = None,
) -> TierMap:
    """A tier map from the bytes of a tiers file; ``source`` names it in errors."""
    try:
        data: Any = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise InputError(
            f"{source} is not valid UTF-8 YAML: {e}", hint="fix the syntax of the tiers file"
        ) from e
    try:
        parsed = _TiersFile.model_validate(data if data is not None else {})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(
            f"{source}: invalid tier map at {where}: {first['msg']}",
            hint="expected 'tiers: [{tier: NAME, paths: [GLOB, ...]}, ...]' and optional 'default: NAME'",
        ) from e
    return TierMap(
        rules=tuple((r.tier, tuple(r.paths)) for r in parsed.tiers),
        default=parsed.default,
        digest="sha256:" + hashlib.sha256(raw).hexdigest(),
        source=source,
        kind=kind,
        path=path,
        revision=revision,
    )


def default_tiers() -> TierMap:
    """The built-in map: critical auth/crypto/payments/migrations paths, low docs and tests."""
    return parse_tiers(DEFAULT_TIERS_TEXT.encode(), "built-in default tier map")


def load_tiers(
    tiers_file: Path | None, base_blob: bytes | None, base_revision: str | None = None
) -> TierMap:
    """``--tiers FILE`` if given, else ``.affidavit/tiers.yaml`` at the base revision (the
    trusted side: ``base_blob``, read at ``base_revision``), else the default map.

    Never the map at head: the change being classified cannot choose its own review.
    """
    if tiers_file is not None:
        try:
            raw = tiers_file.read_bytes()
        except OSError as e:
            raise InputError(
                f"cannot read tiers file {tiers_file}: {e.strerror}",
                hint="pass --tiers with the path of a YAML tier map",
            ) from e
        return parse_tiers(raw, str(tiers_file), "file", str(tiers_file))
    if base_blob is not None and base_revision is not None:
        return parse_tiers(
            base_blob,
            f"{TIERS_PATH} at the base revision {base_revision[:12]}",
            "base-revision",
            TIERS_PATH,
            base_revision,
        )
    return default_tiers()


def with_folders(tiers: TierMap, folders: frozenset[str]) -> TierMap:
    """``tiers`` reading each of ``folders`` (submodule paths) as a folder too."""
    return replace(tiers, folders=folders, _cache={}) if folders else tiers
