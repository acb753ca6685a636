"""Benchmark: ``collect provenance`` over a 50,000-commit range, against plain ``git log --numstat``.

Why: a release range can span tens of thousands of commits (first attestation of an old
repository, a long-lived release branch). The collector reads the whole range with one git
process; this measures how much it costs on top of git's own history walk and diffing.

The repository is generated once with ``git fast-import`` and cached under
``~/.cache/affidavit/bench/``: 50,000 commits on ``main`` (every 100th a merge of a one-commit
side branch), 1-3 files per commit among 2,000 paths (auth, docs, tests, source), an AI
convention on about half the commits, and git-ai notes on 5% of them.

Run: ``.venv/bin/python benchmarks/bench_collect.py [--commits N] [--rounds R]``. Prints commits/s
for the collector (including JSON serialisation, as the CLI does) and for the baseline in the same
run, the ratio, and the collector's own Python CPU per commit: git runs in a second process, so
on an idle machine the wall ratio is about max(git, Python CPU) / git, and under load it is the
Python CPU per commit that moves it.

``--before SRC``: the collector of another checkout (``SRC/src``, e.g. a worktree of main) is
timed too, each round interleaved with this tree's and with git's, both in a fresh process, so
a before/after and both ratios to git come from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from affidavit.collect import collect_provenance

CACHE = Path.home() / ".cache" / "affidavit" / "bench"
TRAILERS = (
    "",
    "",
    "\n\nCo-Authored-By: Claude Opus 4.6 <noreply@anthropic.com>",
    "\n\nCo-authored-by: aider (gpt-4o) <aider@aider.chat>",
    "\n\nAssisted-by: Claude:claude-3-opus sparse\nSigned-off-by: Dev <dev@example.com>",
    "\n\nAI-Assisted: no",
    "\n\nMade-with: Cursor",
    "\n\nSigned-off-by: Dev <dev@example.com>",
)
DIRS = ("src/auth", "src/api", "src/core", "docs", "tests", "db/migrations", "src/billing", "lib")
NOTE = (
    "{path}\n  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-{n}\n---\n"
    '{{"schema_version":"authorship/3.0.0","humans":{{}},'
    '"sessions":{{"s_c9883b05a2487d":{{"agent_id":{{"tool":"cursor","model":"gpt-5"}}}}}}}}'
)


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n%s\n" % (len(raw), raw)


def generate(path: Path, commits: int) -> None:
    """Write a repository of ``commits`` commits with git fast-import."""
    rng = random.Random(42)
    if path.exists():
        shutil.rmtree(path)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    proc = subprocess.Popen(
        ["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    out = proc.stdin
    paths = [f"{DIRS[i % len(DIRS)]}/m{i}.py" for i in range(2000)]
    notes: list[tuple[int, str, int]] = []
    when = 1_600_000_000
    mark = 0
    main_mark = 0
    made = 0
    while made < commits:
        mark += 1
        made += 1
        when += 60
        is_merge = made % 100 == 0 and main_mark
        author = b"Dev <dev@example.com>"
        if rng.random() < 0.03:
            author = b"copilot-swe-agent[bot] <198982749+Copilot@users.noreply.github.com>"
        branch = b"refs/heads/main"
        if is_merge:  # a one-commit side branch, then its merge
            out.write(b"commit refs/heads/side\nmark :%d\n" % mark)
            out.write(b"author %s %d +0000\ncommitter %s %d +0000\n" % (author, when, author, when))
            out.write(_data(f"side change {made}"))
            out.write(b"from :%d\n" % main_mark)
            out.write(b"M 644 inline %s\n" % paths[rng.randrange(2000)].encode())
            out.write(_data(f"side {made}\n"))
            side = mark
            mark += 1
            made += 1
            when += 60
            out.write(b"commit %s\nmark :%d\n" % (branch, mark))
            out.write(b"author Maya <maya@example.com> %d +0000\n" % when)
            out.write(b"committer Maya <maya@example.com> %d +0000\n" % when)
            out.write(_data(f"Merge side {made}"))
            out.write(b"from :%d\nmerge :%d\n\n" % (main_mark, side))
            main_mark = mark
            continue
        out.write(b"commit %s\nmark :%d\n" % (branch, mark))
        out.write(
            b"author %s %d +0000\ncommitter Dev <dev@example.com> %d +0000\n" % (author, when, when)
        )
        out.write(_data(f"change {made}: update things{rng.choice(TRAILERS)}\n"))
        if main_mark:
            out.write(b"from :%d\n" % main_mark)
        for _ in range(rng.randint(1, 3)):
            target = paths[rng.randrange(2000)]
            lines = rng.randint(1, 40)
            body = "".join(f"v{made}_{i} = {i}\n" for i in range(lines))
            out.write(b"M 644 inline %s\n" % target.encode())
            out.write(_data(body))
            if rng.random() < 0.05:
                notes.append((mark, target, lines))
        out.write(b"\n")
        main_mark = mark
    if notes:  # one notes commit holding every note
        out.write(b"commit refs/notes/ai\n")
        out.write(b"committer Dev <dev@example.com> %d +0000\n" % when)
        out.write(_data("notes"))
        for m, target, lines in notes:
            out.write(b"N inline :%d\n" % m)
            out.write(_data(NOTE.format(path=target, n=lines)))
        out.write(b"\n")
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "-C", str(path), "gc", "-q"], check=True)


def repository(commits: int) -> Path:
    path = CACHE / f"repo-{commits}"
    stamp = path / ".bench-complete"
    if not stamp.exists():
        print(f"generating {commits} commits under {path} (cached for later runs)...")
        generate(path, commits)
        stamp.write_text("ok\n")
    return path


COLLECTOR_FLAGS = ("--reverse", "-M", "--root", "--diff-merges=first-parent", "-z")


def time_git_log(repo: Path, *flags: str) -> float:
    start = time.perf_counter()
    args = ["git", "-C", str(repo), "log", "--numstat", *flags, "main"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    while proc.stdout.read(1 << 20):
        pass
    proc.wait()
    return time.perf_counter() - start


def time_collect(repo: Path) -> tuple[float, float, int]:
    """Wall time, this process's CPU time (the collector's Python share, git excluded), commits."""
    start, cpu = time.perf_counter(), time.process_time()
    predicate = collect_provenance(repo, None, "main")
    text = predicate.model_dump_json(by_alias=True, exclude_none=True, indent=2)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert predicate.summary.commits == len(predicate.changes)
    del text
    return elapsed, cpu, predicate.summary.commits


def time_collect_in(src: Path, repo: Path) -> tuple[float, float, int]:
    """``time_collect`` in a fresh process that imports the collector from ``src/src``."""
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    out = subprocess.run(
        [sys.executable, __file__, "--time-one", str(repo)],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    elapsed, cpu, n = json.loads(out.strip().splitlines()[-1])
    return float(elapsed), float(cpu), int(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commits", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--before", type=Path, help="another checkout whose collector is timed interleaved"
    )
    parser.add_argument("--time-one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_one is not None:  # the child of time_collect_in
        print(json.dumps(time_collect(args.time_one)))
        return
    repo = repository(args.commits)
    count = int(
        subprocess.run(
            ["git", "-C", str(repo), "rev-list", "--count", "main"], capture_output=True, check=True
        ).stdout
    )
    if args.before is not None:
        compare(repo, count, args.before, args.rounds)
        return
    base_times = []
    flagged_times = []
    collect_times = []
    cpu_times = []
    for _ in range(args.rounds):
        base_times.append(time_git_log(repo))
        flagged_times.append(time_git_log(repo, *COLLECTOR_FLAGS))
        elapsed, cpu, n = time_collect(repo)
        assert n == count
        collect_times.append(elapsed)
        cpu_times.append(cpu)
    base, flagged, coll = min(base_times), min(flagged_times), min(collect_times)
    print(f"commits in range:                 {count}")
    print(
        f"baseline git log --numstat:       {count / base:10.0f} commits/s  ({base:.2f} s, best of {args.rounds})"
    )
    print(
        f"git log, the collector's flags: {count / flagged:10.0f} commits/s  ({flagged:.2f} s)"
        "  [-M --root --diff-merges=first-parent -z --reverse: git's share of the collector]"
    )
    print(
        f"affidavit collect provenance:     {count / coll:10.0f} commits/s  ({coll:.2f} s, best of {args.rounds})"
    )
    print(f"ratio (collect time / git log):   {coll / base:10.2f}x")
    cpu = min(cpu_times)
    print(
        f"collector's Python CPU:           {cpu / count * 1e6:10.0f} us/commit"
        f"  ({cpu:.2f} s, best of {args.rounds}; git's own CPU excluded)"
    )


def compare(repo: Path, count: int, before: Path, rounds: int) -> None:
    """Rounds of git log, this tree's collector and ``before``'s, each a fresh process; the
    order alternates between rounds so that neither tree always runs after git."""
    here = Path(__file__).resolve().parent.parent
    trees = {"this tree": here, "before": before.resolve()}
    print(f"commits in range: {count}; this tree {here}, before {trees['before']}")
    for r in range(1, rounds + 1):
        base = time_git_log(repo)
        order = list(trees.items()) if r % 2 else list(reversed(trees.items()))
        row = []
        for label, src in order:
            elapsed, cpu, n = time_collect_in(src, repo)
            assert n == count, f"{label} collected {n} commits, not {count}"
            row.append(
                f"{label}: {elapsed:6.2f} s = {elapsed / base:4.2f}x git, "
                f"Python CPU {cpu / count * 1e6:4.0f} us/commit"
            )
        print(f"round {r}: git log --numstat {base:6.2f} s; " + "; ".join(row))


if __name__ == "__main__":
    main()
