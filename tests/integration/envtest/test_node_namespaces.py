"""The namespaces a real node lives in: real ``unshare``/``nsenter``, no Kubernetes binaries.

What the node harness promises the machine: processes started inside see their own network
(a bridge with the node's address, a route for the Service range), their own /run, /var/log and
/var/lib, and files instead of the machine-wide kernel tunables; the harness reaches inside
through a relay on 127.0.0.1; and stopping kills everything inside, orphans included.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from affidavit.envtest import ManagedProcess, Namespaces, namespaces
from affidavit.envtest.namespaces import KERNEL_TUNABLES

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"),
    reason="needs root, unshare and nsenter (util-linux)",
)


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Namespaces]:
    with Namespaces(tmp_path / "ns", address="10.88.0.1/24", service_cidr="10.0.0.0/24") as n:
        yield n


def inside(ns: Namespaces, script: str) -> str:
    return subprocess.run(
        ns.command(["sh", "-c", script]), capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_inside_has_its_own_network_with_the_node_address_and_no_way_out(ns: Namespaces) -> None:
    assert inside(ns, "ip -4 -o addr show dev cni0 | awk '{print $4}'").strip() == "10.88.0.1/24"
    routes = inside(ns, "ip route").splitlines()
    assert sorted(r.split()[0] for r in routes) == ["10.0.0.0/24", "10.88.0.0/24"]
    assert inside(ns, "cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert "cni0" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def test_kernel_tunables_written_inside_leave_the_machine_unchanged(ns: Namespaces) -> None:
    rel = "vm/overcommit_memory"
    assert rel in KERNEL_TUNABLES
    before = Path("/proc/sys", rel).read_text()
    other = "1" if before.strip() != "1" else "2"
    assert inside(ns, f"echo {other} > /proc/sys/{rel}; cat /proc/sys/{rel}").strip() == other
    assert Path("/proc/sys", rel).read_text() == before


def test_run_var_log_and_var_lib_writes_stay_inside(ns: Namespaces, tmp_path: Path) -> None:
    probe = "affidavit-ns-probe"
    inside(ns, f"mkdir -p /run/{probe} /var/log/{probe} /var/lib/{probe}")
    for d in ("/run", "/var/log", "/var/lib"):
        assert not Path(d, probe).exists()
        assert (ns.root / d.lstrip("/") / probe).is_dir()
    assert (tmp_path / "ns" / "varlib" / "upper" / probe).is_dir()


def test_the_relay_reaches_a_server_inside(ns: Namespaces, tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello").write_text("from inside\n")
    server = ManagedProcess(
        "http", ns.command(["python3", "-m", "http.server", "--bind", "10.88.0.1", "8000",
                            "--directory", str(tmp_path / "www")]),
        tmp_path / "http.log",
    )  # fmt: skip
    try:
        port = ns.forward("10.88.0.1", 8000)

        def fetch() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=2) as r:
                return bool(r.read() == b"from inside\n")

        server.wait_until(fetch, "the relayed server answered", timeout=30)
    finally:
        server.stop()


def test_the_relay_waits_for_an_answer_slower_than_its_connect_timeout(
    ns: Namespaces, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An apiserver waiting on an admission webhook answers after seconds of silence: the relay's
    connect timeout must not become a read timeout that cuts the client off mid-request."""
    monkeypatch.setattr(namespaces, "CONNECT_TIMEOUT", 0.5)
    ready = tmp_path / "listening"
    slow = (
        "import pathlib, socket, sys, time\n"
        "server = socket.create_server(('10.88.0.1', 8001))\n"
        "pathlib.Path(sys.argv[1]).touch()\n"
        "conn, _ = server.accept()\n"
        "conn.recv(1024)\n"
        "time.sleep(2)\n"  # four connect timeouts of silence
        "conn.sendall(b'answered after the silence')\n"
        "conn.close()\n"
    )
    argv = ["python3", "-c", slow, str(ready)]
    server = ManagedProcess("slow", ns.command(argv), tmp_path / "slow.log")
    try:
        server.wait_until(ready.exists, "the server inside listens", timeout=30)
        port = ns.forward("10.88.0.1", 8001)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"request")
            assert client.recv(1024) == b"answered after the silence"
    finally:
        server.stop()


def test_stopping_kills_every_process_inside_orphans_included(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "ns", address="10.88.0.1/24", service_cidr="10.0.0.0/24")
    ns.start()
    anchor = ns.pid
    # A daemon that leaves its parent (as containerd's shims do).
    inside(ns, "setsid sleep 600 >/dev/null 2>&1 & echo started")
    tasks = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
    in_ns = [p for p in tasks if _netns(p) == _netns(Path(f"/proc/{anchor}"))]
    assert len(in_ns) >= 2  # the anchor and the orphaned sleep
    ns.stop()
    assert not Path(f"/proc/{anchor}").exists()
    assert all(not p.exists() for p in in_ns)


def _netns(proc: Path) -> str | None:
    try:
        return os.readlink(proc / "ns" / "net")
    except OSError:
        return None
