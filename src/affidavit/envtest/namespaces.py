"""Network, mount and PID namespaces for a real node, so that nothing outside them changes.

A kubelet with real Pods changes a machine: bridges, addresses, routes, nftables rules, a mount
per volume, kernel tunables, and processes that outlive their parent (containerd's shims). The
node harness keeps all of it inside namespaces it creates and removes:

* ``unshare --net --mount --pid --fork --kill-child`` starts an *anchor*, PID 1 of a new PID
  namespace. When it dies the kernel kills every process in that namespace, containers
  included; it dies with its ``unshare`` parent, which dies with the Python process
  (``PR_SET_PDEATHSIG``). No process outlives the harness, not even after a SIGKILL.
* The anchor makes mounts that only the namespace sees: a tmpfs on /run and /var/log, an overlay
  on /var/lib whose writes land in the workdir, and workdir files bind-mounted over the kernel
  tunables kubelet insists on setting (``vm.overcommit_memory``, ``kernel.panic``, ...), so
  kubelet changes a file, not the machine. The mounts vanish with the namespace.
* The network namespace holds a loopback and one bridge carrying the node's address and a route
  for the Service range; forwarding is on only there. No interface leads outside, so no packet
  from a Pod can leave, and two runs never collide.

The Python process itself stays outside. :meth:`Namespaces.call` runs a function in a thread
that joined the network namespace (the sockets it opens live there), and :meth:`forward` relays
a port on the host's 127.0.0.1 to an address inside, for kubectl, helm, skopeo and the tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from affidavit.envtest.process import ManagedProcess
from affidavit.errors import ClusterError

__all__ = ["KERNEL_TUNABLES", "NamespaceError", "Namespaces"]

T = TypeVar("T")

_CLONE_NEWNET = 0x40000000
#: Seconds a forwarded connection waits to be connected inside (only the connect: see _serve).
CONNECT_TIMEOUT = 10
#: Machine-wide tunables (``/proc/sys`` paths) kubelet sets at start and kube-proxy may touch;
#: inside the namespace each is a workdir file bind-mounted over the real one.
KERNEL_TUNABLES = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
)

# Runs as PID 1 of the new namespaces (``python -c``): mounts, network, then reaps orphans
# (containerd's shims re-parent to it) until it is killed.
_ANCHOR = r"""
import json, os, signal, subprocess, sys, time
# PID 1 ignores signals it has no handler for; SIGTERM ends the namespaces (and all inside).
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
cfg = json.loads(sys.argv[1])
wd = cfg["workdir"]
def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
run("mount", "--make-rshared", "/")
for target in ("/run", "/var/log"):
    run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", target)
upper, work = wd + "/varlib/upper", wd + "/varlib/work"
os.makedirs(upper, exist_ok=True)
os.makedirs(work, exist_ok=True)
try:
    run("mount", "-t", "overlay", "overlay", "-o",
        f"lowerdir=/var/lib,upperdir={upper},workdir={work}", "/var/lib")
except subprocess.CalledProcessError:
    run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/var/lib")
os.makedirs(wd + "/sysctl", exist_ok=True)
for rel in cfg["tunables"]:
    path = "/proc/sys/" + rel
    if not os.path.exists(path):
        continue
    copy = wd + "/sysctl/" + rel.replace("/", ".")
    with open(path) as src, open(copy, "w") as dst:
        dst.write(src.read())
    run("mount", "--bind", copy, path)
run("ip", "link", "set", "lo", "up")
run("ip", "link", "add", cfg["bridge"], "type", "bridge")
run("ip", "addr", "add", cfg["address"], "dev", cfg["bridge"])
run("ip", "link", "set", cfg["bridge"], "up")
run("ip", "route", "add", cfg["service_cidr"], "dev", cfg["bridge"])
with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
    f.write("1")
with open(wd + "/ready", "w") as f:
    f.write("ok")
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(1)
"""


class NamespaceError(ClusterError):
    """The namespaces could not be created or entered."""


def _setns(fd: int, nstype: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Namespaces:
    """The anchor process and its network, mount and PID namespaces; a context manager.

    ``address`` is the node's address with its prefix (``10.88.0.1/24``) on ``bridge``;
    ``service_cidr`` is routed to the bridge so that local clients of a ClusterIP get as far as
    kube-proxy's rules.
    """

    def __init__(
        self, workdir: Path, *, address: str, service_cidr: str, bridge: str = "cni0"
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.address = address
        self.ip = address.split("/")[0]
        self.service_cidr = service_cidr
        self.bridge = bridge
        self._unshare: ManagedProcess | None = None
        self._pid = 0
        self._netfd = -1
        self._pool: ThreadPoolExecutor | None = None
        self._forwarders: list[_Forwarder] = []

    @property
    def pid(self) -> int:
        """Host PID of the anchor (PID 1 inside)."""
        if not self._pid:
            raise NamespaceError("the namespaces are not running")
        return self._pid

    @property
    def root(self) -> Path:
        """The namespace's view of the file system, seen from outside (``/proc/PID/root``)."""
        return Path(f"/proc/{self.pid}/root")

    def start(self) -> Namespaces:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "ready").unlink(missing_ok=True)
        cfg = {
            "workdir": str(self.workdir),
            "tunables": list(KERNEL_TUNABLES),
            "bridge": self.bridge,
            "address": self.address,
            "service_cidr": self.service_cidr,
        }
        argv = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
                "--mount-proc", "--propagation", "private",
                sys.executable, "-c", _ANCHOR, json.dumps(cfg)]  # fmt: skip
        self._unshare = ManagedProcess("namespaces", argv, self.workdir / "anchor.log")
        try:
            self._unshare.wait_until(
                lambda: (self.workdir / "ready").exists(), "the namespaces were set up", 30
            )
            children = Path(f"/proc/{self._unshare.popen.pid}/task/{self._unshare.popen.pid}")
            self._pid = int((children / "children").read_text().split()[0])
            self._netfd = os.open(f"/proc/{self._pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self.stop()
            raise
        self._pool = ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="netns", initializer=_setns,
            initargs=(self._netfd, _CLONE_NEWNET),
        )  # fmt: skip
        return self

    def command(self, argv: Sequence[str], *, cwd: Path | None = None) -> list[str]:
        """``argv`` wrapped to run inside all three namespaces (in ``cwd``, default workdir)."""
        return ["nsenter", f"--target={self.pid}", "--net", "--mount", "--pid",
                f"--wd={cwd or self.workdir}", "--", *argv]  # fmt: skip

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a thread inside the network namespace (sockets open there)."""
        if self._pool is None:
            raise NamespaceError("the namespaces are not running")
        return self._pool.submit(fn, *args).result()

    def forward(self, host: str, port: int) -> int:
        """A port on the host's 127.0.0.1 relayed to ``host:port`` inside; returns the port."""
        fwd = _Forwarder(self, (host, port))
        self._forwarders.append(fwd)
        return fwd.port

    def stop(self) -> None:
        """Kill the anchor (and with it everything in the namespaces); wait until it is gone."""
        for fwd in self._forwarders:
            fwd.close()
        self._forwarders.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._netfd >= 0:
            os.close(self._netfd)
            self._netfd = -1
        if self._unshare is not None:
            self._unshare.stop()
            self._unshare = None
        if self._pid:
            deadline = time.monotonic() + 30
            while Path(f"/proc/{self._pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            self._pid = 0

    def __enter__(self) -> Namespaces:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Forwarder:
    """Accepts on 127.0.0.1 outside, dials the target inside, copies bytes both ways."""

    def __init__(self, ns: Namespaces, target: tuple[str, int]) -> None:
        self._ns = ns
        self._target = target
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name=f"forward-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            upstream = self._ns.call(socket.create_connection, self._target, CONNECT_TIMEOUT)
        except (OSError, NamespaceError, RuntimeError):
            conn.close()
            return
        # The timeout was the connect's alone: a relayed answer may take longer to begin (an
        # apiserver waiting on an admission webhook, a watch with no event yet), and a timed-out
        # read would cut the client's connection mid-request ("unexpected EOF").
        upstream.settimeout(None)
        with self._lock:
            self._open.update((conn, upstream))
        directions_left = [2]

        def pump(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            with self._lock:
                directions_left[0] -= 1
                if directions_left[0]:
                    return
                self._open.difference_update((conn, upstream))
            for s in (conn, upstream):
                s.close()

        threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()
        pump(conn, upstream)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.close()
            self._open.clear()
