"""Assemble the ai-provenance/v1 predicate for ``base..head`` from every source of evidence.

This is the one place that does the I/O of collection (a constant number of git processes,
whatever the size of the range), hands each commit to ``classify``, decides who accepted each
AI-touched change, and computes the summary that policies and auditors read first.

Who accepted an AI change (``acceptedBy``): the committer when that is a human (for ``Alice
(aider)`` the human is ``Alice``), else the author when human, else the committer of the mainline
merge that brought the commit in (the merger); ``acceptedAt`` is that commit's ``committedAt``.
Bot accounts (``[bot]``), known AI identities and platform identities (GitHub's web-flow
``noreply@github.com``) are never an acceptor.

``aiLineShare`` is AI lines divided by lines added, over the files of non-merge commits whose AI
line count is known (from git-ai notes or Agent Trace); it is absent when no count is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from affidavit import __version__
from affidavit.attestations.predicates.provenance import (
    AiProvenance,
    Change,
    Collector,
    FileChange,
    Person,
    Source,
    Summary,
    TiersSource,
)
from affidavit.attestations.predicates.signed_time import utc_now_rfc3339
from affidavit.collect.agent_trace import group_traces, read_trace_records, revision_keys
from affidavit.collect.classify import Classification, classify
from affidavit.collect.git import (
    RawCommit,
    check_range,
    config_value,
    gitlink_paths,
    iter_commits,
    read_blob,
    resolve_commit,
    run_git,
)
from affidavit.collect.notes import list_notes, read_notes
from affidavit.collect.remote import public_url
from affidavit.collect.tiers import TIER_MAP_TIER, TIERS_PATH, TierMap, load_tiers, with_folders
from affidavit.collect.tools import ToolRegistry, load_registry
from affidavit.cycles import cycle_collection_paused

COLLECTOR_NAME = "affidavit"
_PLATFORM_EMAILS = frozenset({"noreply@github.com", "noreply@gitlab.com"})


@dataclass(frozen=True, slots=True)
class _Acceptor:
    person: Person
    at: str


def _human(registry: ToolRegistry, name: str, email: str) -> Person | None:
    """The human behind an identity, or None for a bot, AI or platform identity."""
    if name.lower().endswith("[bot]") or email.lower() in _PLATFORM_EMAILS:
        return None
    if registry.identity(name, email) is not None:
        return None
    hit = registry.by_name_suffix(name)
    if hit is not None:
        return Person(name=hit[1], email=email) if hit[1] else None
    return Person(name=name, email=email)


def _mergers(commits: list[RawCommit], head: str) -> dict[str, RawCommit]:
    """For each commit off the mainline, the mainline merge that brought it in."""
    by_sha = {c.sha: c for c in commits}
    mainline: list[RawCommit] = []
    cur = by_sha.get(head)
    while cur is not None:
        mainline.append(cur)
        cur = by_sha.get(cur.parents[0]) if cur.parents else None
    on_main = {c.sha for c in mainline}
    merger: dict[str, RawCommit] = {}
    for merge in reversed(mainline):  # oldest first: the first merge to bring a commit wins
        stack = [p for p in merge.parents[1:] if p in by_sha]
        while stack:
            sha = stack.pop()
            if sha in on_main or sha in merger:
                continue
            merger[sha] = merge
            stack.extend(p for p in by_sha[sha].parents if p in by_sha)
    return merger


_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__
_ALL_FIELDS: dict[type[BaseModel], frozenset[str]] = {
    m: frozenset(m.model_fields) for m in (Change, FileChange)
}


def _trusted(model: type[_M], values: dict[str, Any]) -> _M:
    """A model from ``values`` this module computed, every field present, without validation.

    What pydantic's ``model_construct`` does, without its per-field Python loop: validated
    construction of a change and its files was the largest share of the collector's CPU on long
    ranges (about 30 us per commit of 200). The values are typed by construction (RawCommit,
    Classification, TierMap), the shared Person/Evidence/Tool objects are themselves validated,
    and tests/integration/collect/test_collect_golden.py checks the result validates and is
    byte-identical to the validated path's JSON. Predicates read from outside (verify, policy)
    are still parsed with full validation.
    """
    obj = _new(model)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", _ALL_FIELDS[model])
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


class _People:
    """One shared (immutable) Person per identity: identities repeat across thousands of commits."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Person] = {}

    def __call__(self, name: str, email: str) -> Person:
        key = (name, email)
        person = self._cache.get(key)
        if person is None:
            person = self._cache[key] = Person(name=name, email=email)
        return person


def _change(
    raw: RawCommit,
    c: Classification,
    tiers: TierMap,
    acceptor: _Acceptor | None,
    people: _People,
) -> Change:
    """One change, built without per-object validation (see ``_trusted``)."""
    ai_lines = c.ai_lines
    tier_of = tiers.tier_of
    files = [
        _trusted(
            FileChange,
            {
                "path": f.path,
                # moving the tier map away is a change to it, too
                "tier": TIER_MAP_TIER if f.previous_path == TIERS_PATH else tier_of(f.path),
                "lines_added": f.added or 0,
                "lines_deleted": f.deleted or 0,
                "ai_lines": None
                if ai_lines is None or f.added is None
                else ai_lines.get(f.path, 0),
                "binary": f.added is None,
                "previous_path": f.previous_path,
            },
        )
        for f in raw.files
    ]
    # A rename across tiers is also a change where the file was: without -M git shows it as a
    # deletion there, and a move out of src/auth/ must not leave the critical tier untouched.
    files += [
        _trusted(
            FileChange,
            {
                "path": f.previous_path,
                "tier": tier_of(f.previous_path),
                "lines_added": 0,
                "lines_deleted": 0,
                "ai_lines": None if ai_lines is None or f.added is None else 0,
                "binary": f.added is None,
                "previous_path": None,
            },
        )
        for f in raw.files
        if f.previous_path is not None
        and f.previous_path != TIERS_PATH
        and tier_of(f.previous_path) != tier_of(f.path)
    ]
    return _trusted(
        Change,
        {
            "commit": raw.sha,
            "parents": list(raw.parents),
            "author": people(raw.author_name, raw.author_email),
            "committer": people(raw.committer_name, raw.committer_email),
            "authored_at": raw.authored_at,
            "committed_at": raw.committed_at,
            "ai_involvement": c.involvement,
            "evidence": list(c.evidence),
            "tools": list(c.tools),
            "accepted_by": acceptor.person if acceptor else None,
            "accepted_at": acceptor.at if acceptor else None,
            "files": files,
        },
    )


def summarize(changes: list[Change]) -> Summary:
    """Counts, traceability coverage, tools, AI-touched tiers and the AI line share."""
    touched = [c for c in changes if c.ai_involvement in ("assisted", "generated")]
    undeclared = sum(1 for c in changes if c.ai_involvement == "unknown")
    ai_total = added_total = 0
    known = False
    for c in changes:
        if len(c.parents) > 1:
            continue
        for f in c.files:
            if f.ai_lines is not None:
                known = True
                ai_total += f.ai_lines
                added_total += f.lines_added
    share = round(ai_total / added_total, 4) if known and added_total else (0.0 if known else None)
    n = len(changes)
    return Summary(
        commits=n,
        ai_touched_commits=len(touched),
        undeclared_commits=undeclared,
        traceability_coverage=round((n - undeclared) / n, 4) if n else 1.0,
        tools=sorted({t.name for c in changes for t in c.tools}),
        tiers_touched_by_ai=sorted({f.tier for c in touched for f in c.files}),
        ai_line_share=share,
    )


def _source(repo: Path, base: str | None, head_arg: str, head: str) -> Source:
    origin = config_value(repo, "remote.origin.url")
    ref = run_git(repo, "rev-parse", "--symbolic-full-name", head_arg, check=False)
    ref_text = ref.decode("utf-8", "replace").strip()
    return Source(
        repository=public_url(origin) if origin else str(repo.resolve()),
        revision=head,
        base_revision=base,
        ref=ref_text if ref_text.startswith("refs/") else None,
    )


_PROGRESS_EVERY = 256
_AI = ("assisted", "generated")


def _direct_acceptor(raw: RawCommit, registry: ToolRegistry) -> _Acceptor | None:
    """The human committer, else the human author, of ``raw``: the acceptor when there is one."""
    person = _human(registry, raw.committer_name, raw.committer_email) or _human(
        registry, raw.author_name, raw.author_email
    )
    return _Acceptor(person, raw.committed_at) if person is not None else None


def _merger_acceptor(merge: RawCommit | None, registry: ToolRegistry) -> _Acceptor | None:
    """The human committer of the mainline merge that brought a commit in, if any."""
    if merge is None:
        return None
    person = _human(registry, merge.committer_name, merge.committer_email)
    return _Acceptor(person, merge.committed_at) if person is not None else None


@dataclass(slots=True)
class _Range:
    """The range as read: every commit, its classification and, where it could already be
    built, its change. ``waiting`` holds the positions whose change waits for what is only known
    once the whole range is in: a git-ai note or Agent Trace record, or the merger."""

    raws: list[RawCommit]
    classes: list[Classification]
    changes: list[Change | None]
    waiting: list[int]


def _read_range(
    repo: Path,
    base: str | None,
    head: str,
    registry: ToolRegistry,
    tiers: TierMap,
    people: _People,
    maybe_annotated: Callable[[str], bool],
    progress: Callable[[int, int | None], None] | None,
) -> _Range:
    """The range's commits, oldest first, telling ``progress`` as they are read.

    Each commit is classified, and its change built, as it arrives, while git is still walking
    and diffing the rest (on a second core), instead of after git's last line. git's share is
    the larger one, so on an idle machine this moves the wall time little (``bench_collect
    --before``: 1.26-1.35x git before, 1.21-1.37x after); what is left after git ends is the
    summary and the serialisation. A commit that a note or trace may cover
    (``maybe_annotated``), or an AI-touched one with no human committer or author (its acceptor
    may be the merger), waits until the range is in.
    """
    got = _Range([], [], [], [])
    total: int | None = None
    if progress is not None:
        revs = [head] if base is None else [head, f"^{base}"]
        total = int(run_git(repo, "rev-list", "--count", *revs, "--").decode().strip() or 0)
        progress(0, total)
    for raw in iter_commits(repo, base, head):
        c = classify(raw, registry)
        change: Change | None = None
        if not maybe_annotated(raw.sha):
            acceptor = _direct_acceptor(raw, registry) if c.involvement in _AI else None
            if acceptor is not None or c.involvement not in _AI:
                change = _change(raw, c, tiers, acceptor, people)
        if change is None:
            got.waiting.append(len(got.raws))
        got.raws.append(raw)
        got.classes.append(c)
        got.changes.append(change)
        if progress is not None and len(got.raws) % _PROGRESS_EVERY == 0:
            progress(len(got.raws), total)
    if progress is not None:
        progress(len(got.raws), total)
    return got


@cycle_collection_paused()
def collect_provenance(
    repo: Path,
    base: str | None,
    head: str,
    *,
    tools: ToolRegistry | None = None,
    tiers_file: Path | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> AiProvenance:
    """The ai-provenance/v1 predicate for ``base..head`` of the git repository at ``repo``.

    ``base`` None means every commit reachable from ``head``. ``tools`` defaults to the built-in
    registry; ``tiers_file`` overrides ``.affidavit/tiers.yaml`` at ``base`` (never the map at head:
    the change does not decide its own review; see ``tiers``). ``progress(done, total)`` is told
    how many commits have been read, every few hundred (``total`` from ``git rev-list --count``).
    """
    registry = tools if tools is not None else load_registry()
    head_sha = resolve_commit(repo, head)
    base_sha = resolve_commit(repo, base) if base is not None else None
    check_range(repo, base_sha, head_sha)
    base_map = read_blob(repo, base_sha, TIERS_PATH) if base_sha is not None else None
    tiers = load_tiers(tiers_file, base_map, base_sha)
    revs = (head_sha,) if base_sha is None else (base_sha, head_sha)
    tiers = with_folders(tiers, gitlink_paths(repo, *revs))
    noted = list_notes(repo)
    records = read_trace_records(repo, head_sha)
    traced = revision_keys(records)
    people = _People()
    got = _read_range(
        repo,
        base_sha,
        head_sha,
        registry,
        tiers,
        people,
        lambda sha: sha in noted or sha[:7] in traced,
        progress,
    )
    raws, classes = got.raws, got.classes
    shas = {r.sha for r in raws}
    notes = read_notes(repo, noted, shas)
    traces = group_traces(records, shas)
    for i in got.waiting:
        r = raws[i]
        note, trace = notes.get(r.sha), traces.get(r.sha)
        if note is not None or trace is not None:
            classes[i] = classify(r, registry, note, trace)
    # the merger is the acceptor of last resort, and only looked for when some AI-touched
    # non-merge commit is in the range (as before the changes were built in the stream)
    needs_merger = any(
        c.involvement in _AI and len(r.parents) <= 1 for r, c in zip(raws, classes, strict=True)
    )
    mergers = _mergers(raws, head_sha) if needs_merger else {}
    changes = got.changes
    for i in got.waiting:
        r, c = raws[i], classes[i]
        acceptor = None
        if c.involvement in _AI:
            acceptor = _direct_acceptor(r, registry) or _merger_acceptor(
                mergers.get(r.sha), registry
            )
        changes[i] = _change(r, c, tiers, acceptor, people)
    built = [ch for ch in changes if ch is not None]
    assert len(built) == len(raws)  # every waiting position was built just above
    return AiProvenance(
        source=_source(repo, base_sha, head, head_sha),
        changes=built,
        summary=summarize(built),
        collector=Collector(
            name=COLLECTOR_NAME,
            version=__version__,
            tiers_digest=tiers.digest,
            tiers_source=TiersSource(kind=tiers.kind, path=tiers.path, revision=tiers.revision),
        ),
        created_at=utc_now_rfc3339(),
    )
