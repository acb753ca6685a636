"""``python -m affidavit.envtest [--node [--postgres]] [--ready-file F] [WORKDIR]``: run a cluster.

For the demo, ``make cluster`` and poking at a cluster by hand: prints the kubeconfig path and
an ``export KUBECONFIG=...`` line, then waits until Ctrl-C or SIGTERM; everything is stopped
on exit. ``--node`` adds a real node (kubelet, containerd, kube-proxy, CoreDNS, a registry)
inside namespaces of its own; ``--ready-file`` writes the node's addresses as JSON there once
it is up (for scripts that wait for it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from affidavit.envtest.controlplane import ControlPlane
from affidavit.envtest.node import Node
from affidavit.envtest.process import StopSignal
from affidavit.errors import AffidavitError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m affidavit.envtest")
    parser.add_argument("workdir", nargs="?", type=Path)
    parser.add_argument("--node", action="store_true", help="also run a real node")
    parser.add_argument("--postgres", action="store_true", help="with --node: a PostgreSQL too")
    parser.add_argument("--ready-file", type=Path, help="write the addresses here when up")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="affidavit-envtest-"))
    stop = StopSignal()
    try:
        if args.node:
            with Node(workdir, postgres=args.postgres) as node:
                info = node.control_plane
                facts = {
                    "kubeconfig": str(info.kubeconfig),
                    "server": info.server,
                    "registry": node.registry,
                    "registry_local": node.registry_local,
                    "postgres_url": node.postgres_url,
                    "anchor_pid": node.namespaces.pid,
                    "workdir": str(node.workdir),
                }
                print(f"kube-apiserver: {info.server} (relayed into the node's namespace)")
                print(f"node:           {node.name} at {node.ip}")
                print(f"registry:       {node.registry_local} (Pods pull from {node.registry})")
                if node.postgres_url:
                    print(f"postgres:       {node.postgres_url} (for Pods)")
                print(f"logs:           {node.workdir}")
                print(f"export KUBECONFIG={info.kubeconfig}", flush=True)
                if args.ready_file:
                    args.ready_file.write_text(json.dumps(facts, indent=2))
                stop.wait()
            return 0
        with ControlPlane(workdir) as info:
            print(f"kube-apiserver: {info.server}")
            print(f"binaries:       {info.bin_dir}")
            print(f"logs:           {info.workdir}")
            print(f"export KUBECONFIG={info.kubeconfig}", flush=True)
            stop.wait()
    except AffidavitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
