"""Run a command the way a person at a terminal would: its stderr on a pseudo-terminal.

Progress is drawn only for a person (``affidavit.cli.progress``); a test that wants to see it
needs a real terminal device, which ``pty.openpty`` gives without any terminal emulator.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess


def run_on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with stderr on a pseudo-terminal; its exit code and what the terminal got."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("AFFIDAVIT_NO_PROGRESS", None)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=follower, env=env)  # fmt: skip
    os.close(follower)
    seen = bytearray()
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    return proc.wait(timeout=120), seen.decode(errors="replace")
