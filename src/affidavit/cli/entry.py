"""The ``affidavit`` console script: stop on SIGTERM even as a container's PID 1, then run the CLI.

In a container the process is PID 1 of its PID namespace, and the kernel drops every signal
PID 1 has no handler for. Until uvicorn or kopf install their own handlers (seconds of imports
on a loaded node, or the webhook's wait for its certificate), a SIGTERM from the kubelet was
ignored and the container was SIGKILLed at the end of its grace period (exit 137, nothing
logged). This module installs a handler before the CLI's heavy imports, so such a stop is an
ordinary ``SystemExit`` (exit 143) at once.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

#: 128 + SIGTERM, what a shell reports for a process the signal ended.
EXIT_ON_SIGTERM = 128 + signal.SIGTERM


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_ON_SIGTERM)


def stop_on_sigterm_as_pid1() -> bool:
    """As PID 1, turn SIGTERM into ``SystemExit`` until a server installs its own handler."""
    if os.getpid() != 1 or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return True


def main() -> int:
    stop_on_sigterm_as_pid1()
    from affidavit.cli.main import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
