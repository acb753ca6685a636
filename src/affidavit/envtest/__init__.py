"""A real Kubernetes control plane for tests and the demo, without Docker.

Affidavit's cluster side (admission webhook, operator, Helm chart) is tested against a real
kube-apiserver, never a mock. This package starts etcd, kube-apiserver and
kube-controller-manager as local processes the way controller-runtime's envtest does, from
binaries that ``scripts/k8s-binaries`` builds from the Go module proxy, and makes the
certificates that such a cluster and a webhook it calls need.

    from affidavit.envtest import ControlPlane
    with ControlPlane(workdir) as info:
        ...  # info.kubeconfig, info.server, info.kubectl

A real node (kubelet, containerd, kube-proxy, CoreDNS, a registry, optionally PostgreSQL)
runs on request, with the control plane, inside namespaces of its own:

    from affidavit.envtest import Node
    with Node(workdir) as node:
        ...  # node.control_plane.kubeconfig, node.registry_local, node.run([...])

``python -m affidavit.envtest [--node] [WORKDIR]`` runs one until interrupted (demo, make cluster).
"""

from __future__ import annotations

from affidavit.envtest.binaries import (
    BinariesMissingError,
    find_binaries,
    find_cosign,
    find_node_binaries,
    k8s_bin_dir,
    pinned_versions,
)
from affidavit.envtest.certs import CertKeyPair, issue_cert, make_ca
from affidavit.envtest.controlplane import ControlPlane, ControlPlaneError, ControlPlaneInfo
from affidavit.envtest.namespaces import Namespaces
from affidavit.envtest.node import Node, NodeError, NodeInfo
from affidavit.envtest.process import ManagedProcess, child_setup, free_port, wait_for

__all__ = [
    "BinariesMissingError",
    "CertKeyPair",
    "ControlPlane",
    "ControlPlaneError",
    "ControlPlaneInfo",
    "ManagedProcess",
    "Namespaces",
    "Node",
    "NodeError",
    "NodeInfo",
    "child_setup",
    "find_binaries",
    "find_cosign",
    "find_node_binaries",
    "free_port",
    "issue_cert",
    "k8s_bin_dir",
    "make_ca",
    "pinned_versions",
    "wait_for",
]
