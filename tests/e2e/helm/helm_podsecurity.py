"""The Pod Security Standard "restricted" profile (plus read-only root), as plain checks.

Written from https://kubernetes.io/docs/concepts/security/pod-security-standards/ so the chart
can be checked offline on its rendered output; the install test also lets the real
kube-apiserver's PodSecurity admission judge the same pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(kind/name, pod spec) of every Pod and pod template in rendered manifests."""
    for d in docs:
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        spec = d.get("spec") or {}
        if kind == "Pod":
            yield f"{kind}/{name}", spec
        elif kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
            yield f"{kind}/{name}", spec["template"]["spec"]
        elif kind == "CronJob":
            yield f"{kind}/{name}", spec["jobTemplate"]["spec"]["template"]["spec"]


def restricted_violations(spec: Mapping[str, Any]) -> list[str]:
    """Every way ``spec`` breaks the restricted profile; empty when it complies."""
    out: list[str] = []
    psc = spec.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            out.append(f"{host} is true")
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            out.append(f"volume {v['name']} has type {sorted(kinds - ALLOWED_VOLUMES)}")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser is 0")
    containers = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    for c in containers:
        name = c.get("name")
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"container {name} is privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"container {name} does not set allowPrivilegeEscalation=false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"container {name} does not drop ALL capabilities")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"container {name} adds capabilities {caps.get('add')}")
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            out.append(f"container {name} may run as root (runAsNonRoot not true)")
        if sc.get("runAsUser") == 0:
            out.append(f"container {name} runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"container {name} has seccompProfile {seccomp!r}")
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"container {name} has a writable root filesystem")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append(f"container {name} uses hostPort {p['hostPort']}")
    return out
