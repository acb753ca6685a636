"""Start and stop a real Kubernetes control plane as plain processes, envtest-style.

Affidavit's admission webhook, operator and Helm chart must be tested against a real
kube-apiserver, and the demo must run one, on machines without Docker. :class:`ControlPlane`
starts etcd, kube-apiserver and (optionally) kube-controller-manager from the binaries that
``scripts/k8s-binaries`` built, on free 127.0.0.1 ports, with fresh certificates, RBAC
authorization, a ``system:masters`` client certificate and a generated kubeconfig. It waits
until each component is healthy and stops them cleanly. With ``webhook_client_hosts`` the
apiserver also presents a client certificate to the webhooks at those hosts
(:mod:`~affidavit.envtest.admission_config`). What each component is started with (certificates,
command lines, health probes) is :mod:`~affidavit.envtest.components`; this module runs them.

No process may outlive its owner, even when a test fails or is interrupted: each component is
a :class:`~affidavit.envtest.process.ManagedProcess` (own process group, SIGTERM then SIGKILL,
stopped at interpreter exit, killed by the kernel if the Python process itself dies).
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from affidavit.envtest import components
from affidavit.envtest.admission_config import (
    DEFAULT_CLIENT_NAME,
    WebhookClientAuth,
    write_webhook_client_auth,
)
from affidavit.envtest.binaries import find_binaries
from affidavit.envtest.kubeconfig import write_kubeconfig
from affidavit.envtest.namespaces import Namespaces
from affidavit.envtest.process import ManagedProcess, PortTaken, child_setup, free_port, port_taken
from affidavit.errors import ClusterError

__all__ = ["ControlPlane", "ControlPlaneError", "ControlPlaneInfo", "child_setup", "free_port"]

#: How long each component may take to become healthy (2-core CI machines are slow).
STARTUP_TIMEOUT = 90.0
#: Starting is retried this many times when a picked port was taken meanwhile.
_PORT_RETRIES = 3
#: Log lines quoted when a component fails to start.
_LOG_TAIL_LINES = 30


class ControlPlaneError(ClusterError):
    """A control-plane component failed to start, crashed, or did not become healthy."""


@dataclass(frozen=True)
class ControlPlaneInfo:
    """How to reach a running control plane. Every path is inside the control plane's workdir."""

    #: ``https://127.0.0.1:<port>`` of kube-apiserver.
    server: str
    #: A self-contained kubeconfig (context ``affidavit-envtest``) for the admin identity.
    kubeconfig: Path
    #: PEM of the CA that signed the apiserver's serving certificate.
    ca_pem: bytes
    ca_file: Path
    #: Client certificate and key of user ``affidavit-admin`` in group ``system:masters``.
    client_cert: Path
    client_key: Path
    #: ``http://127.0.0.1:<port>`` of etcd.
    etcd_url: str
    #: Directory holding etcd, kube-apiserver, kubectl, helm, ...
    bin_dir: Path
    workdir: Path
    #: The client certificate the apiserver presents to webhooks (``webhook_client_hosts``).
    webhook_client: WebhookClientAuth | None = None

    @property
    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def helm(self) -> Path:
        return self.bin_dir / "helm"

    def env(self) -> dict[str, str]:
        """``os.environ`` plus ``KUBECONFIG`` pointing at this control plane."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) in ``workdir``; a context manager.

    >>> with ControlPlane(tmp_path) as info:  # doctest: +SKIP
    ...     subprocess.run([info.kubectl, "get", "ns"], env=info.env(), check=True)

    The caller owns ``workdir`` (certificates, kubeconfig, etcd data and one log per
    component are written there and left behind for debugging). Without a controller manager
    nothing reconciles: Deployments get no ReplicaSets and namespaces never finish deleting.
    There is no scheduler or kubelet, so Pods stay Pending.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        binaries: Path | None = None,
        with_controller_manager: bool = True,
        extra_apiserver_args: Sequence[str] = (),
        webhook_client_hosts: Sequence[str] = (),
        webhook_client_name: str = DEFAULT_CLIENT_NAME,
        namespace: Namespaces | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self._webhook_client_hosts = tuple(webhook_client_hosts)
        self._webhook_client_name = webhook_client_name
        #: With a namespace (a real node's), every component runs inside it on the node's
        #: address at the usual ports, and Pods reach the apiserver through the ``kubernetes``
        #: Service; without, they run on 127.0.0.1 at free ports.
        self.namespace = namespace
        self._binaries = binaries
        self.with_controller_manager = with_controller_manager
        self._extra_apiserver_args = tuple(extra_apiserver_args)
        self._procs: list[ManagedProcess] = []
        self._info: ControlPlaneInfo | None = None
        #: How each component was started and how its health is checked, for ``restart``.
        self._argv: dict[str, list[str]] = {}
        self._health: dict[str, tuple[str, Callable[[], bool]]] = {}

    @property
    def info(self) -> ControlPlaneInfo:
        if self._info is None:
            raise ControlPlaneError("the control plane is not running")
        return self._info

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the running components, by name (for diagnostics and tests)."""
        return {p.name: p.popen.pid for p in self._procs if p.popen.poll() is None}

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> ControlPlaneInfo:
        """Start every component, wait until healthy, and return how to reach them."""
        if self._info is not None:
            return self._info
        required = ["etcd", "kube-apiserver"]
        if self.with_controller_manager:
            required.append("kube-controller-manager")
        if self._binaries is not None:
            bin_dir = self._binaries
            missing = [b for b in required if not os.access(bin_dir / b, os.X_OK)]
            if missing:
                raise ControlPlaneError(
                    f"control-plane binaries missing from {bin_dir}: {', '.join(missing)}",
                    hint="run `bash scripts/k8s-binaries` from the repository root",
                )
        else:
            bin_dir = find_binaries(tuple(required))
        try:
            for attempt in range(1, _PORT_RETRIES + 1):
                try:
                    self._info = self._start_once(bin_dir)
                    return self._info
                except PortTaken:
                    self._stop_processes()
                    if attempt == _PORT_RETRIES:
                        raise ControlPlaneError(
                            "control plane could not bind its ports after "
                            f"{_PORT_RETRIES} attempts (logs in {self.workdir})"
                        ) from None
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the components (newest first: SIGTERM, then SIGKILL after a grace period)."""
        self._stop_processes()
        self._info = None

    def restart(self, name: str) -> None:
        """Stop one component (SIGTERM) and start it again with the same arguments, port and
        certificates, returning once it is healthy: a control-plane restart as clients see it."""
        old = next((p for p in self._procs if p.name == name), None)
        if old is None or name not in self._health:
            raise ControlPlaneError(f"no running {name} to restart")
        old.stop()
        self._procs.remove(old)
        proc = self._spawn(name, self._argv[name])
        what, check = self._health[name]
        self._wait(proc, what, check)

    def __enter__(self) -> ControlPlaneInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    def _stop_processes(self) -> None:
        while self._procs:
            self._procs.pop().stop()

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        self._argv[name] = list(argv)
        try:
            if self.namespace is not None:
                argv = self.namespace.command(argv, cwd=self.workdir)
            proc = ManagedProcess(name, argv, self.workdir / f"{name}.log", cwd=self.workdir)
        except ClusterError as e:
            raise ControlPlaneError(e.message, hint=e.hint) from e.__cause__
        self._procs.append(proc)
        return proc

    def _wait(self, proc: ManagedProcess, what: str, check: Callable[[], bool]) -> None:
        self._health[proc.name] = (what, check)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last_error = ""
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                tail = proc.log_tail(_LOG_TAIL_LINES)
                if port_taken(tail):
                    raise PortTaken(f"{proc.name} could not bind its port:\n{tail}")
                raise ControlPlaneError(
                    f"{proc.name} exited with code {proc.popen.returncode} while starting; "
                    f"last lines of {proc.log_path}:\n{tail}"
                )
            try:
                if check() if self.namespace is None else self.namespace.call(check):
                    return
            except (OSError, http.client.HTTPException) as e:
                last_error = str(e)
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{what} not healthy after {STARTUP_TIMEOUT:.0f}s ({last_error or 'no answer'}); "
            f"last lines of {proc.log_path}:\n{proc.log_tail(_LOG_TAIL_LINES)}"
        )

    def _start_once(self, bin_dir: Path) -> ControlPlaneInfo:
        wd = self.workdir
        wd.mkdir(parents=True, exist_ok=True)
        ns = self.namespace
        host = "127.0.0.1" if ns is None else ns.ip
        pki = components.write_pki(wd / "pki", host)
        webhook_client = None
        admission_args: list[str] = []
        if self._webhook_client_hosts:
            webhook_client = write_webhook_client_auth(
                wd / "admission", self._webhook_client_hosts, self._webhook_client_name
            )
            admission_args = [f"--admission-control-config-file={webhook_client.admission_config}"]

        if ns is None:
            etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        else:  # a namespace of its own: every port is free
            etcd_port, peer_port, api_port = 2379, 2380, 6443
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        server = f"https://{host}:{api_port}"

        etcd = self._spawn("etcd", components.etcd_argv(bin_dir, wd, etcd_url, peer_url))
        self._wait(etcd, f"etcd at {etcd_url}", lambda: components.etcd_healthy(etcd_port))

        argv = components.apiserver_argv(
            bin_dir,
            pki,
            etcd_url=etcd_url,
            host=host,
            port=api_port,
            in_namespace=ns is not None,
            extra=[*admission_args, *self._extra_apiserver_args],
        )
        kube_apiserver = self._spawn("kube-apiserver", argv)
        ssl_ctx = components.admin_context(pki)
        self._wait(
            kube_apiserver,
            f"kube-apiserver at {server}",
            lambda: components.https_ok(host, api_port, "/readyz", ssl_ctx),
        )

        kubeconfig = wd / "kubeconfig"
        write_kubeconfig(kubeconfig, server, pki.serving_ca, pki.admin)

        if self.with_controller_manager:
            kcm_port = free_port() if ns is None else 10257
            kcm = self._spawn(
                "kube-controller-manager",
                components.controller_manager_argv(bin_dir, wd, kubeconfig, pki, kcm_port),
            )
            insecure = components.unverified_context()
            self._wait(
                kcm,
                f"kube-controller-manager on port {kcm_port}",
                lambda: components.https_ok("127.0.0.1", kcm_port, "/healthz", insecure),
            )

        return ControlPlaneInfo(
            server=server,
            kubeconfig=kubeconfig,
            ca_pem=pki.serving_ca.cert_pem,
            ca_file=pki.ca_file,
            client_cert=pki.admin_crt,
            client_key=pki.admin_key,
            etcd_url=etcd_url,
            bin_dir=bin_dir,
            workdir=wd,
            webhook_client=webhook_client,
        )
