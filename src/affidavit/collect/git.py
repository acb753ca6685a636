"""Read a range of git history fast enough for 50,000-commit ranges.

Provenance needs, for every commit in ``base..head``, its identities, dates, message and changed
files. Spawning git per commit is far too slow for large ranges, so the whole range comes from ONE
``git log`` process whose output is streamed and parsed incrementally:

- the header of each commit is a record starting with ``\\x1e`` whose fields are NUL-separated
  (a commit message can never contain NUL, so the fields are unambiguous);
- files come from ``--numstat -z`` (``added\\tdeleted\\tpath``; a rename is
  ``added\\tdeleted\\t`` followed by the old and new path; binary files show ``-``);
- renames are detected with ``-M``; root commits are diffed against the empty tree (``--root``);
- merge commits are diffed against their FIRST parent (``--diff-merges=first-parent``): the files
  of a merge are what it brought into the mainline. The lines of a merge are therefore also counted
  in the merged commits; the summary excludes merges from line totals for that reason.

Messages and names are forced to UTF-8 with ``--encoding=UTF-8`` (git re-encodes commits that
carry an ``encoding`` header). Commits without that header whose bytes are not UTF-8 are decoded
with the repository's ``i18n.commitEncoding`` when set, else as UTF-8 with replacement characters.
"""

from __future__ import annotations

import codecs
import subprocess
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from affidavit.errors import CollectError

#: git as the collectors run it: never through refs/replace, which anyone who can push a ref
#: can fill, to show another commit's message and identities under an AI commit's own sha
GIT = ("git", "--no-replace-objects")

_HEADER_FIELDS = 9  # sha, parents, an, ae, aI, cn, ce, cI, message
_FORMAT = "%x1e%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class FileStat:
    """One changed file of a commit; ``added``/``deleted`` are None for a binary file."""

    path: str
    added: int | None
    deleted: int | None
    previous_path: str | None = None


@dataclass(frozen=True, slots=True)
class RawCommit:
    """A commit as git reports it, decoded to text."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: str
    committer_name: str
    committer_email: str
    committed_at: str
    message: str
    files: tuple[FileStat, ...]


def run_git(repo: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Run one git command in ``repo`` and return its stdout; failures become CollectError."""
    try:
        proc = subprocess.run(
            [*GIT, "-C", str(repo), *args],
            input=stdin,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as e:
        raise CollectError("git is not installed", hint="install git and retry") from e
    if check and proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip()
        raise CollectError(f"git {args[0]} failed in {repo}: {detail}")
    return proc.stdout


def resolve_commit(repo: Path, rev: str) -> str:
    """The full sha of commit ``rev``; an unknown revision is a CollectError naming it."""
    if (
        not (repo / ".git").exists()
        and not run_git(repo, "rev-parse", "--git-dir", check=False).strip()
    ):
        raise CollectError(
            f"{repo} is not a git repository",
            hint="pass --repo with the path of the repository the image was built from",
        )
    out = run_git(
        repo, "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}", check=False
    )
    sha = out.decode().strip()
    if not sha:
        raise CollectError(
            f"revision {rev!r} is not a commit in {repo}",
            hint="fetch it (git fetch --unshallow or git fetch origin <ref>) or pass an existing revision",
        )
    return sha


def check_range(repo: Path, base: str | None, head: str) -> None:
    """Refuse a range that crosses the edge of a shallow clone: past it, git reads the boundary
    commit as a root (all its files added by it) and the commits before it, AI ones among them,
    as never made. ``base`` and ``head`` are full shas (``resolve_commit``). (An empty range is
    the command's to refuse, with its own words: ``cli.collect``.)"""
    shallow = Path(run_git(repo, "rev-parse", "--git-path", "shallow").decode().strip())
    if not shallow.is_absolute():
        shallow = repo / shallow
    if not shallow.is_file():
        return
    edges = set(shallow.read_text(encoding="ascii", errors="replace").split())
    revs = [head] if base is None else [head, f"^{base}"]
    inside = run_git(repo, "rev-list", *revs, "--").decode().split()
    crossed = next((sha for sha in inside if sha in edges), None)
    if crossed is not None:
        raise CollectError(
            f"commit {crossed[:12]} in the range is the edge of a shallow clone: the commits "
            "before it are missing, so what they changed (and whether AI wrote it) cannot be read",
            hint="fetch the whole history (git fetch --unshallow; actions/checkout with "
            "fetch-depth: 0)",
        )


def config_value(repo: Path, key: str) -> str | None:
    """A git config value of the repository, or None when unset."""
    out = run_git(repo, "config", "--get", key, check=False).decode("utf-8", "replace").strip()
    return out or None


def read_blob(repo: Path, rev: str, path: str) -> bytes | None:
    """The content of ``path`` at ``rev``, or None when the file does not exist there."""
    proc = subprocess.run(
        [*GIT, "-C", str(repo), "cat-file", "blob", f"{rev}:{path}"],
        capture_output=True,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def gitlink_paths(repo: Path, *revs: str) -> frozenset[str]:
    """The paths that are submodules (gitlinks, mode 160000) in any of ``revs``' trees.

    A change to one is a change to a whole folder, which its numstat line does not show.
    """
    paths: set[str] = set()
    for rev in revs:
        out = run_git(repo, "ls-tree", "-r", "-z", "--full-tree", rev)
        for entry in out.split(b"\0"):
            meta, tab, path = entry.partition(b"\t")
            if tab and meta.startswith(b"160000 "):
                paths.add(path.decode("utf-8", "replace"))
    return frozenset(paths)


class _Decoder:
    """UTF-8 first; the repository's commit encoding for legacy bytes; replacement otherwise."""

    def __init__(self, fallback: str | None) -> None:
        self._fallback: str | None = None
        if fallback:
            try:
                self._fallback = codecs.lookup(fallback).name
            except LookupError:
                self._fallback = None

    def __call__(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode(self._fallback or "utf-8", "replace")


def _tokens(stream: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream on NUL without holding more than one chunk."""
    tail = b""
    for chunk in stream:
        parts = (tail + chunk).split(b"\0")
        tail = parts.pop()
        yield from parts
    if tail:
        yield tail


def parse_log(stream: Iterator[bytes], decode: _Decoder) -> Iterator[RawCommit]:
    """Parse the output of ``git log -z --numstat --format=_FORMAT`` incrementally."""
    tokens = _tokens(stream)
    header: list[bytes] | None = None
    files: list[FileStat] = []

    def build(h: list[bytes]) -> RawCommit:
        try:  # one decode for the whole header: UTF-8 never puts a NUL inside a character
            text = b"\0".join(h).decode("utf-8").split("\0")
        except UnicodeDecodeError:
            text = [decode(b) for b in h]
        return RawCommit(
            sha=text[0],
            parents=tuple(text[1].split()),
            author_name=text[2],
            author_email=text[3],
            authored_at=text[4],
            committer_name=text[5],
            committer_email=text[6],
            committed_at=text[7],
            message=text[8],
            files=tuple(files),
        )

    rest = _HEADER_FIELDS - 1
    for tok in tokens:
        if tok[:1] == b"\n":
            tok = tok[1:]
        if not tok:
            continue
        if tok[0] == 0x1E:
            if header is not None:
                yield build(header)
            header = [tok[1:], *islice(tokens, rest)]
            if len(header) < _HEADER_FIELDS:  # truncated output: empty fields, as before
                header += [b""] * (_HEADER_FIELDS - len(header))
            files = []
            continue
        added, deleted, path = tok.split(b"\t", 2)
        n_added = None if added == b"-" else int(added)
        n_deleted = None if deleted == b"-" else int(deleted)
        if path:
            try:
                text = path.decode("utf-8")
            except UnicodeDecodeError:
                text = decode(path)
            files.append(FileStat(text, n_added, n_deleted))
        else:  # rename or copy: the old and new path follow as their own tokens
            old = decode(next(tokens, b""))
            new = decode(next(tokens, b""))
            files.append(FileStat(new, n_added, n_deleted, old))
    if header is not None:
        yield build(header)


def iter_commits(repo: Path, base: str | None, head: str) -> Generator[RawCommit, None, None]:
    """Every commit in ``base..head`` (all ancestors of head when base is None), oldest first.

    ``base`` and ``head`` must be full shas (see ``resolve_commit``).
    """
    revs = [head] if base is None else [head, f"^{base}"]
    args = [
        *GIT,
        "-C",
        str(repo),
        "-c",
        "log.showSignature=false",
        "log",
        "--reverse",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--encoding=UTF-8",
        "-M",
        "--root",
        "--diff-merges=first-parent",
        "--numstat",
        "-z",
        f"--format={_FORMAT}",
        *revs,
        "--",
    ]
    decode = _Decoder(config_value(repo, "i18n.commitEncoding"))
    errfile = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in the finally below
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errfile, bufsize=0)
    assert proc.stdout is not None
    stdout = proc.stdout

    def chunks() -> Iterator[bytes]:
        # Unbuffered (bufsize=0): each read returns whatever git has written so far (up to a
        # chunk), so parsing runs on one core while git walks and diffs on the other; a
        # buffered read waits for a full chunk, which for a few thousand commits is the whole
        # output.
        while chunk := stdout.read(_CHUNK):
            yield chunk

    try:
        yield from parse_log(chunks(), decode)
    finally:
        stdout.close()
        code = proc.wait()
        errfile.seek(0)
        err = errfile.read()
        errfile.close()
    if code != 0:
        raise CollectError(f"git log failed in {repo}: {err.decode('utf-8', 'replace').strip()}")
