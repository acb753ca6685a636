"""A seeded fuzz run over AdmissionReviews against a real `affidavit webhook serve`: no 5xx, no
answer for another uid, no admission of a workload that still names the unreviewed image.

``make test`` runs a few hundred cases; ``make fuzz`` runs AFFIDAVIT_FUZZ_CASES (100,000) and
prints the figures for the README (cases, 5xx, fail-opens, uid mismatches, RSS start and end).
Reproduce a run with AFFIDAVIT_FUZZ_SEED=<the printed seed>.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

from admission_fuzz import Mutator, problems
from admission_support import Images, WebhookProcess

PROGRESS_EVERY = 5_000


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_fuzzed_reviews_never_fail_open_answer_another_uid_or_5xx(
    webhook: WebhookProcess, images: Images
) -> None:
    seed = int(os.environ.get("AFFIDAVIT_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    cases = int(os.environ.get("AFFIDAVIT_FUZZ_CASES") or 300)
    print(f"\nfuzz: seed {seed} (AFFIDAVIT_FUZZ_SEED={seed} reproduces), {cases} cases")
    mutator = Mutator(seed, images.bare)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    kinds: Counter[str] = Counter()
    rss_start = _rss_mb(webhook.proc.pid)

    def figures(done: int) -> str:
        return (
            f"fuzz: {done} cases, statuses {dict(sorted(statuses.items()))}, "
            f"5xx {sum(v for k, v in statuses.items() if k >= 500)}, problems {dict(kinds)}, "
            f"RSS {rss_start:.0f} MB -> {_rss_mb(webhook.proc.pid):.0f} MB"
        )

    for n in range(cases):
        if n and n % PROGRESS_EVERY == 0:  # a long run shows its figures (and RSS) as it goes
            print(figures(n), flush=True)
        case = mutator.case(n)
        r = webhook.validate(case.body)
        statuses[r.status_code] += 1
        try:
            answer = r.json()
        except ValueError:
            answer = None
        for problem in problems(case, r.status_code, answer, images.bare):
            kinds[problem.split(" ", 1)[0]] += 1
            failures.append(f"case {n} ({case.mutation}): {problem}; body {case.body[:300]!r}")
    print(figures(cases))
    assert failures == [], f"seed {seed}:\n" + "\n".join(failures[:20])
