"""The demo's recorded GitHub users carry the same id in every process.

``hash()`` of a string is salted per process (PYTHONHASHSEED), so ids built from it differ
between two runs of the demo and the review evidence of one run cannot be compared with another's.
"""

from __future__ import annotations

import os
import subprocess
import sys


def _user_id(seed: str) -> str:
    code = "from affidavit.demo.github_records import _user; print(_user('ana-dev')['id'])"
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def test_user_ids_do_not_depend_on_the_process() -> None:
    ids = {_user_id(seed) for seed in ("1", "2", "3")}
    assert len(ids) == 1
    assert ids.pop().isdigit()
