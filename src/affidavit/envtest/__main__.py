"""``python -m affidavit.envtest [WORKDIR]``: run a control plane until Ctrl-C or SIGTERM.

For the demo and for poking at a cluster by hand: prints the kubeconfig path and an
``export KUBECONFIG=...`` line, then waits; everything is stopped on exit.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import tempfile
import threading
from pathlib import Path

from affidavit.envtest.controlplane import ControlPlane
from affidavit.errors import AffidavitError


def main(argv: list[str]) -> int:
    workdir = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="affidavit-envtest-"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with ControlPlane(workdir) as info:
            print(f"kube-apiserver: {info.server}")
            print(f"binaries:       {info.bin_dir}")
            print(f"logs:           {info.workdir}")
            print(f"export KUBECONFIG={info.kubeconfig}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    except AffidavitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
