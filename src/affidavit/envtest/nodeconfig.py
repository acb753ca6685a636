"""The configuration files of a real node: containerd, CNI, kubelet, kube-proxy, CoreDNS.

Each setting here was needed on the machines the tests run on (cgroup v1, root without
CAP_SYS_RESOURCE, no Docker, nothing reachable outside the node's namespace); the comments say
which failure it prevents. The node runs inside namespaces of its own
(:mod:`affidavit.envtest.namespaces`), so /run and /var/log are private there; everything
else a component writes is pointed into the workdir.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONTAINERD_SOCKET",
    "NodeLayout",
    "cgroup_v2",
    "write_cni",
    "write_containerd",
    "write_corefile",
    "write_kube_proxy",
    "write_kubelet",
    "write_registry",
]

#: containerd's socket, inside the namespace's private /run.
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"


def cgroup_v2() -> bool:
    """True on a unified (cgroup v2 only) hierarchy."""
    return Path("/sys/fs/cgroup/cgroup.controllers").exists()


@dataclass(frozen=True)
class NodeLayout:
    """Names, addresses and directories one node uses."""

    workdir: Path
    name: str
    #: The node's address (on the bridge) and the Pods' subnet on that bridge.
    ip: str
    pod_cidr: str
    gateway: str
    service_cidr: str
    #: ``host:port`` of the registry Pods pull from (inside the namespace).
    registry: str
    #: Where kubelet puts Pod cgroups (``/affidavit-node-...``): removed at stop.
    cgroup_root: str
    cluster_domain: str = "cluster.local"

    def path(self, *parts: str) -> Path:
        return self.workdir.joinpath(*parts)


def write_containerd(layout: NodeLayout, runc: str, pause_image: str) -> Path:
    """containerd's config (version 3, containerd 2.x); returns its path."""
    certs = layout.path("containerd", "certs.d")
    # A plain-HTTP registry: containerd reads hosts.toml per registry host.
    host_dir = certs / layout.registry
    host_dir.mkdir(parents=True, exist_ok=True)
    (host_dir / "hosts.toml").write_text(
        f'server = "http://{layout.registry}"\n\n'
        f'[host."http://{layout.registry}"]\n  capabilities = ["pull", "resolve"]\n'
    )
    config = layout.path("containerd", "config.toml")
    rt = "plugins.'io.containerd.cri.v1.runtime'"
    images = "plugins.'io.containerd.cri.v1.images'"
    config.write_text(
        f"""version = 3
root = "{layout.path("containerd", "root")}"
state = "/run/containerd"

[grpc]
  address = "{CONTAINERD_SOCKET}"

[{rt}]
  # runc cannot lower oom_score_adj where root lacks CAP_SYS_RESOURCE: without this every
  # sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false

[{rt}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{rt}.containerd.runtimes.runc.options]
  BinaryName = "{runc}"
  SystemdCgroup = false

[{rt}.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "{layout.path("cni")}"

[{images}.pinned_images]
  sandbox = "{pause_image}"

[{images}.registry]
  config_path = "{certs}"
"""
    )
    return config


def write_cni(layout: NodeLayout) -> None:
    """One bridge network with host-local IPAM; no masquerade (there is nowhere to go)."""
    conf_dir = layout.path("cni")
    conf_dir.mkdir(parents=True, exist_ok=True)
    conf = {
        "cniVersion": "1.0.0",
        "name": "affidavit-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(layout.path("cni-ipam")),
                    "ranges": [[{"subnet": layout.pod_cidr, "gateway": layout.gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
        ],
    }
    (conf_dir / "10-affidavit.conflist").write_text(json.dumps(conf, indent=2))


def write_kubelet(layout: NodeLayout, client_ca: Path) -> Path:
    """KubeletConfiguration (JSON is YAML); returns its path."""
    resolv = layout.path("resolv.conf")
    resolv.write_text("")  # Pods with dnsPolicy Default get no upstream resolver
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.ip,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # cgroupfs: there is no systemd here; v1 hierarchies are still found on CI machines.
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "clusterDNS": [layout.ip],
        "clusterDomain": layout.cluster_domain,
        "resolvConf": str(resolv),
        "podLogsDir": str(layout.path("pod-logs")),
        "serializeImagePulls": False,
        # A busy CI disk must not evict the test's Pods.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusReportFrequency": "10s",
    }
    path = layout.path("kubelet-config.yaml")
    path.write_text(json.dumps(config, indent=2))
    return path


def write_kube_proxy(layout: NodeLayout, kubeconfig: Path) -> Path:
    """KubeProxyConfiguration, nftables mode; returns its path."""
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": layout.name,
        "clusterCIDR": layout.pod_cidr,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # A Pod calling a Service backed by a Pod on the same bridge gets its reply through the
        # gateway (no br_netfilter needed): masquerade all Service traffic.
        "nftables": {"masqueradeAll": True},
        # 0: leave the machine-wide conntrack table size alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
    }
    path = layout.path("kube-proxy-config.yaml")
    path.write_text(json.dumps(config, indent=2))
    return path


def write_corefile(layout: NodeLayout, kubeconfig: Path) -> Path:
    """Cluster DNS on the node's address: cluster names only, nothing forwarded anywhere."""
    path = layout.path("Corefile")
    path.write_text(
        f""".:53 {{
    bind {layout.ip}
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes {layout.cluster_domain} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""
    )
    return path


def write_registry(root: Path, address: str) -> Path:
    """Debian's docker-registry (distribution 2.8) serving plain HTTP on ``address``."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
    )
    return config
