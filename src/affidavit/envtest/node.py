"""A one-node Kubernetes cluster with real Pods, inside namespaces that the harness removes.

The chart, the image and the webhook served by Pods can only be tested with a kubelet: `helm
test`, the PodDisruptionBudget, Services and DNS do nothing without one. :class:`Node` starts,
inside :class:`~affidavit.envtest.namespaces.Namespaces` of its own, the control plane (etcd,
kube-apiserver, kube-controller-manager) plus kube-scheduler, containerd (runc from Debian),
kubelet, kube-proxy (nftables), CoreDNS, a plain-HTTP registry holding the pause image, and
optionally PostgreSQL for the Pods' ledger. The Python process stays outside and reaches the
apiserver, the registry and PostgreSQL through relays on its own 127.0.0.1.

What outside the namespaces a node changes, and how it is put back: Pod cgroups under
``/affidavit-node-<pid>-<id>`` (removed at stop; leftovers of a killed run are removed by the
next), and nothing else (kubelet's kernel tunables are files in the workdir, see the
namespaces module). :attr:`NodeInfo.tunables` records their values before the start, and
:meth:`Node.stop` writes back any that changed anyway.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from affidavit.envtest import cgroups
from affidavit.envtest.binaries import find_binaries, find_node_binaries, pinned_versions
from affidavit.envtest.controlplane import ControlPlane, ControlPlaneInfo
from affidavit.envtest.namespaces import KERNEL_TUNABLES, Namespaces
from affidavit.envtest.nodeconfig import (
    CONTAINERD_SOCKET,
    NodeLayout,
    write_cni,
    write_containerd,
    write_corefile,
    write_kube_proxy,
    write_kubelet,
    write_registry,
)
from affidavit.envtest.process import ManagedProcess
from affidavit.errors import ClusterError

__all__ = ["Node", "NodeError", "NodeInfo"]

NODE_NAME = "affidavit-node"
_IP, _POD_CIDR, _SERVICE_CIDR = "10.88.0.1", "10.88.0.0/24", "10.0.0.0/24"
_REGISTRY_PORT, _PG_PORT = 5000, 5432
#: How long the node may take to become Ready (2-core CI machines are slow).
READY_TIMEOUT = 180.0


class NodeError(ClusterError):
    """A node component failed to start, crashed, or the node did not become Ready."""


@dataclass(frozen=True)
class NodeInfo:
    """How to reach a running node from this process, and what Pods inside it use."""

    #: The control plane as this process reaches it (``https://127.0.0.1:<relay>``).
    control_plane: ControlPlaneInfo
    name: str
    #: The node's address inside its namespace (the bridge's).
    ip: str
    #: ``host:port`` of the registry for image references in Pods (inside the namespace).
    registry: str
    #: ``127.0.0.1:<relay>``: the same registry, for pushing from this process.
    registry_local: str
    #: SQLAlchemy URL of the Pods' PostgreSQL (inside), and the same database from here.
    postgres_url: str | None
    postgres_local_url: str | None
    #: ``/proc/sys`` values of the machine-wide kernel tunables before the node started.
    tunables: dict[str, str]
    #: Where kubelet put the Pods' cgroups.
    cgroup_root: str
    namespaces: Namespaces
    workdir: Path

    def run(
        self, argv: list[str], *, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the node's namespaces; text output captured."""
        proc = subprocess.run(
            self.namespaces.command(argv), capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode:
            raise NodeError(f"{argv[0]} exited {proc.returncode}: {proc.stderr or proc.stdout}")
        return proc


class Node:
    """A control plane and one real node inside fresh namespaces; a context manager.

    ``postgres=True`` also runs a PostgreSQL server the Pods can reach (database ``ledger``).
    The caller owns ``workdir`` (configurations and one log per component are left there).
    """

    def __init__(self, workdir: Path, *, postgres: bool = False) -> None:
        self.workdir = Path(workdir).resolve()
        self.postgres = postgres
        self._procs: list[ManagedProcess] = []
        self._control_plane: ControlPlane | None = None
        self._ns: Namespaces | None = None
        self._pg_dir: Path | None = None
        self._tunables: dict[str, str] = {}
        self._cgroup_root = ""
        self._info: NodeInfo | None = None

    @property
    def info(self) -> NodeInfo:
        if self._info is None:
            raise NodeError("the node is not running")
        return self._info

    def __enter__(self) -> NodeInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> NodeInfo:
        if self._info is not None:
            return self._info
        k8s_bin = find_binaries((*_CP_BINARIES, "helm"))
        node_bin = find_node_binaries()
        runc = shutil.which("runc") or "/usr/sbin/runc"
        for tool, package in ((runc, "runc"), ("/usr/lib/cni/bridge", "containernetworking-plugins"),
                              ("nft", "nftables"), ("skopeo", "skopeo"),
                              ("docker-registry", "docker-registry")):  # fmt: skip
            if not (shutil.which(tool) or os.access(tool, os.X_OK)):
                raise NodeError(f"{tool} is not installed", hint=f"run `make deps` ({package})")
        cgroups.remove_stale()
        self._tunables = _read_tunables()
        self._cgroup_root = f"/affidavit-node-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            self._info = self._start(k8s_bin, node_bin, runc)
        except BaseException:
            self.stop()
            raise
        return self._info

    def stop(self) -> None:
        """Stop every component, remove the namespaces, the cgroups, and put tunables back."""
        while self._procs:
            self._procs.pop().stop()
        if self._control_plane is not None:
            self._control_plane.stop()
            self._control_plane = None
        if self._ns is not None:
            self._ns.stop()
            self._ns = None
        if self._cgroup_root:
            cgroups.remove(self._cgroup_root)
            self._cgroup_root = ""
        if self._tunables:
            _restore_tunables(self._tunables)
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)
            self._pg_dir = None
        self._info = None

    # -- internals ----------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
               cwd: Path | None = None) -> ManagedProcess:  # fmt: skip
        assert self._ns is not None
        proc = ManagedProcess(
            name, self._ns.command(argv, cwd=cwd), self.workdir / f"{name}.log", env=env
        )
        self._procs.append(proc)
        return proc

    def _wait(self, proc: ManagedProcess, what: str, check: object, timeout: float = 90) -> None:
        ns = self._ns
        assert ns is not None and callable(check)
        try:
            proc.wait_until(lambda: bool(ns.call(check)), what, timeout)
        except ClusterError as e:
            raise NodeError(e.message) from None

    def _start(self, k8s_bin: Path, node_bin: Path, runc: str) -> NodeInfo:
        wd = self.workdir
        wd.mkdir(parents=True, exist_ok=True)
        registry = f"{_IP}:{_REGISTRY_PORT}"
        layout = NodeLayout(wd, NODE_NAME, _IP, _POD_CIDR, _IP, _SERVICE_CIDR, registry,
                            self._cgroup_root)  # fmt: skip
        ns = self._ns = Namespaces(wd / "ns", address=f"{_IP}/24", service_cidr=_SERVICE_CIDR)
        ns.start()

        reg = self._spawn("registry", ["docker-registry", "serve",
                                       str(write_registry(wd / "registry", registry))])  # fmt: skip
        self._wait(reg, "the registry answered /v2/", lambda: _http_ok(f"http://{registry}/v2/"))

        pg_url = pg_local = None
        if self.postgres:
            pg_url, pg_port = self._start_postgres()
            pg_local = pg_url.replace(f"@{_IP}:{_PG_PORT}", f"@127.0.0.1:{pg_port}")

        self._control_plane = ControlPlane(wd / "control-plane", binaries=k8s_bin, namespace=ns)
        inner = self._control_plane.start()
        api_port = ns.forward(_IP, 6443)
        kubeconfig = wd / "kubeconfig"
        _rewrite_kubeconfig(inner.kubeconfig, kubeconfig, f"https://127.0.0.1:{api_port}")
        outer = replace(inner, server=f"https://127.0.0.1:{api_port}", kubeconfig=kubeconfig)
        pki = inner.workdir / "pki"

        sched = self._spawn("kube-scheduler", [
            str(node_bin / "kube-scheduler"), f"--kubeconfig={inner.kubeconfig}",
            f"--authentication-kubeconfig={inner.kubeconfig}",
            f"--authorization-kubeconfig={inner.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10259",
        ])  # fmt: skip
        self._wait(sched, "kube-scheduler is healthy", lambda: _https_ok(10259, "/healthz"))

        pause_tag = pinned_versions().get("PAUSE_VERSION", "3.10.2")
        pause = f"{registry}/pause:{pause_tag}"
        subprocess.run(
            ns.command(["skopeo", "--insecure-policy", "copy", "--quiet",
                        f"oci:{node_bin.parent / 'pause-oci'}:{pause_tag}", f"docker://{pause}",
                        "--dest-tls-verify=false"]),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

        path_env = {"PATH": f"{node_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        containerd = self._spawn(
            "containerd",
            [str(node_bin / "containerd"), f"--config={write_containerd(layout, runc, pause)}"],
            env=path_env,
        )
        sock = ns.root / CONTAINERD_SOCKET.lstrip("/")
        self._wait(containerd, "containerd listens", lambda: _unix_ok(sock))
        write_cni(layout)
        cgroups.create(self._cgroup_root)

        kubelet = self._spawn("kubelet", [
            str(node_bin / "kubelet"), f"--config={write_kubelet(layout, pki / 'client-ca.crt')}",
            f"--kubeconfig={inner.kubeconfig}", f"--hostname-override={NODE_NAME}",
            f"--node-ip={_IP}", f"--root-dir={wd / 'kubelet'}", "--v=1",
        ], env=path_env)  # fmt: skip
        self._wait(kubelet, "kubelet is healthy",
                   lambda: _http_ok("http://127.0.0.1:10248/healthz"))  # fmt: skip

        proxy = self._spawn("kube-proxy", [
            str(node_bin / "kube-proxy"), f"--config={write_kube_proxy(layout, inner.kubeconfig)}",
        ])  # fmt: skip
        self._wait(proxy, "kube-proxy is healthy",
                   lambda: _http_ok("http://127.0.0.1:10256/healthz"))  # fmt: skip

        dns = self._spawn("coredns", [
            str(node_bin / "coredns"), "-conf", str(write_corefile(layout, inner.kubeconfig)),
        ])  # fmt: skip
        self._wait(dns, "CoreDNS is ready", lambda: _http_ok("http://127.0.0.1:8181/ready"))

        self._wait(kubelet, f"node {NODE_NAME} is Ready",
                   lambda: _node_ready(inner), READY_TIMEOUT)  # fmt: skip
        return NodeInfo(
            control_plane=outer, name=NODE_NAME, ip=_IP, registry=registry,
            registry_local=f"127.0.0.1:{ns.forward(_IP, _REGISTRY_PORT)}",
            postgres_url=pg_url, postgres_local_url=pg_local, tunables=dict(self._tunables),
            cgroup_root=self._cgroup_root, namespaces=ns, workdir=wd,
        )  # fmt: skip

    def _start_postgres(self) -> tuple[str, int]:
        """PostgreSQL for the Pods (trust auth from the Pods' subnet); returns (URL, relay)."""
        ns = self._ns
        assert ns is not None
        bindir = max(Path("/usr/lib/postgresql").glob("*/bin/postgres"), default=None)
        if bindir is None:
            raise NodeError("PostgreSQL is not installed", hint="run `make deps` (postgresql)")
        bindir = bindir.parent
        # Outside the 0700 pytest directories: the postgres user must reach its data.
        base = self._pg_dir = Path(tempfile.mkdtemp(prefix="affidavit-node-pg-"))
        shutil.chown(base, "postgres", "postgres")
        data = base / "data"
        as_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "affidavit",
                        "--auth=trust"], check=True, capture_output=True, cwd=base)  # fmt: skip
        with open(data / "pg_hba.conf", "a") as f:
            f.write(f"host all all {_POD_CIDR} trust\n")
        pg = self._spawn("postgres", [*as_pg, str(bindir / "postgres"), "-D", str(data),
                                      "-c", f"listen_addresses={_IP}", "-p", str(_PG_PORT),
                                      "-k", str(base), "-c", "fsync=off"], cwd=base)  # fmt: skip
        self._wait(pg, "PostgreSQL accepts connections", lambda: _tcp_ok(_IP, _PG_PORT))
        subprocess.run(ns.command([str(bindir / "createdb"), "-h", _IP, "-p", str(_PG_PORT),
                                   "-U", "affidavit", "ledger"], cwd=base),
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        return f"postgresql+psycopg://affidavit@{_IP}:{_PG_PORT}/ledger", ns.forward(_IP, _PG_PORT)


_CP_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


def _read_tunables() -> dict[str, str]:
    values = {}
    for rel in KERNEL_TUNABLES:
        path = Path("/proc/sys") / rel
        if path.exists():
            values[rel] = path.read_text().strip()
    return values


def _restore_tunables(before: dict[str, str]) -> None:
    for rel, value in before.items():
        path = Path("/proc/sys") / rel
        try:
            if path.read_text().strip() != value:
                path.write_text(value)
        except OSError:
            continue


def _rewrite_kubeconfig(src: Path, dst: Path, server: str) -> None:
    config = json.loads(src.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = server
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - inside the node's namespace
        return bool(r.status == 200)


def _https_ok(port: int, path: str) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a component's self-signed serving cert; health only
    with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", timeout=2, context=ctx) as r:
        return bool(r.status == 200)


def _tcp_ok(host: str, port: int) -> bool:
    socket.create_connection((host, port), 2).close()
    return True


def _unix_ok(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
    return True


def _node_ready(cp: ControlPlaneInfo) -> bool:
    out = subprocess.run(
        [str(cp.kubectl), f"--kubeconfig={cp.kubeconfig}", "get", "node", NODE_NAME,
         "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    return out.stdout.strip() == "True"
