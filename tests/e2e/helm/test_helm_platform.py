"""What platform engineers expect from the chart, on `helm template` / `helm install --dry-run`
output: a PersistentVolumeClaim for the SQLite ledger, registry CA and plain-HTTP values
reaching the webhook, a separate metrics port and a ServiceMonitor, cert-manager instead
of operator-managed certificates, anti-affinity and topology spreading, extraArgs / extraEnv /
extraVolumes, the operator's readiness probe and identity, the webhook's bounded wait for its
certificate, a `helm test` Pod kept for `--logs`, NOTES warnings, and the refusal of several
replicas on SQLite."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helm_support import CHART, Render, run_helm

from affidavit.envtest import ControlPlaneInfo

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
PLATFORM = CHART / "ci" / "platform-values.yaml"
SELECTOR = {"app.kubernetes.io/name": "affidavit", "app.kubernetes.io/instance": "affidavit"}


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["containers"]}


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_sqlite_ledger_on_a_persistent_volume_claim(render: Render) -> None:
    docs = render("-f", PLATFORM)
    claim = one(docs, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "affidavit-ledger"
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast",
        "resources": {"requests": {"storage": "5Gi"}},
    }
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": "affidavit-ledger"},
    }


def test_an_existing_claim_is_used_not_created(render: Render) -> None:
    docs = render("--set", "ledger.sqlite.persistence.enabled=true",
                  "--set", "ledger.sqlite.persistence.existingClaim=audit-ledger")  # fmt: skip
    assert [d for d in docs if d["kind"] == "PersistentVolumeClaim"] == []
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "audit-ledger"}} in volumes


def test_by_default_the_ledger_is_on_an_emptydir(render: Render) -> None:
    docs = render()
    assert [d for d in docs if d["kind"] == "PersistentVolumeClaim"] == []
    deployment = one(docs, "Deployment")
    assert "strategy" not in deployment["spec"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}


def test_several_replicas_on_sqlite_are_refused(helm: Path) -> None:
    out = run_helm(helm, "template", "affidavit", CHART, "-n", "affidavit-system", "--set", "replicaCount=2",
                   "--set", "ledger.sqlite.persistence.enabled=true", check=False)  # fmt: skip
    assert out.returncode != 0
    assert "replicaCount > 1 needs ledger.type=postgres" in out.stderr


def test_registry_values_reach_the_webhook(render: Render) -> None:
    docs = render("-f", PLATFORM)
    webhook = containers(docs)["webhook"]
    assert webhook["args"] == [
        "webhook", "serve",
        "--insecure-registry=mirror.internal:5000",
        "--budget-seconds=6",
    ]  # fmt: skip
    assert env(webhook)["AFFIDAVIT_REGISTRY_CA"] == "/etc/affidavit/registry-ca/ca.crt"
    assert {
        "name": "registry-ca", "mountPath": "/etc/affidavit/registry-ca", "readOnly": True,
    } in webhook["volumeMounts"]  # fmt: skip
    configmap = next(d for d in docs if d["metadata"]["name"] == "affidavit-registry-ca")
    assert configmap["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----\n")
    # The operator never contacts registries: none of it reaches its container.
    assert "AFFIDAVIT_REGISTRY_CA" not in env(containers(docs)["operator"])


def test_without_registry_values_nothing_is_added(render: Render) -> None:
    docs = render()
    assert containers(docs)["webhook"]["args"] == ["webhook", "serve"]
    assert not [d for d in docs if d["metadata"]["name"] == "affidavit-registry-ca"]


def test_metrics_port_and_service_monitor(render: Render) -> None:
    docs = render("-f", PLATFORM)
    webhook = containers(docs)["webhook"]
    assert env(webhook)["AFFIDAVIT_METRICS_PORT"] == "9090"
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in webhook["ports"]
    service_ports = one(docs, "Service")["spec"]["ports"]
    assert {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"} in (
        service_ports
    )
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"] == {
        "selector": {"matchLabels": SELECTOR},
        "namespaceSelector": {"matchNames": ["affidavit-system"]},
        "endpoints": [{"port": "metrics", "path": "/metrics", "scheme": "http",
                       "honorLabels": True, "interval": "30s"},
                      {"targetPort": "ready", "path": "/metrics", "scheme": "http",
                       "honorLabels": True, "interval": "30s"}],
    }  # fmt: skip


def test_a_service_monitor_needs_the_metrics_port(helm: Path) -> None:
    out = run_helm(helm, "template", "affidavit", CHART, "--set", "metrics.port=0",
                   "--set", "metrics.serviceMonitor.enabled=true", check=False)  # fmt: skip
    assert out.returncode != 0
    assert "metrics.serviceMonitor.enabled needs metrics.port" in out.stderr


def test_cert_manager_issues_the_certificate_instead_of_the_operator(render: Render) -> None:
    docs = render("--set", "certManager.enabled=true")
    kinds = sorted(
        (d["kind"], d["metadata"]["name"]) for d in docs if "cert-manager" in d["apiVersion"]
    )
    assert kinds == [
        ("Certificate", "affidavit"),
        ("Certificate", "affidavit-ca"),
        ("Issuer", "affidavit-ca"),
        ("Issuer", "affidavit-selfsigned"),
    ]
    serving = next(
        d for d in docs if d["kind"] == "Certificate" and d["metadata"]["name"] == "affidavit"
    )
    assert serving["spec"]["secretName"] == "affidavit-webhook-tls"
    assert serving["spec"]["dnsNames"][2] == "affidavit.affidavit-system.svc"
    assert serving["spec"]["issuerRef"] == {"name": "affidavit-ca", "kind": "Issuer",
                                            "group": "cert-manager.io"}  # fmt: skip
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["certs"] == {"name": "certs", "secret": {"secretName": "affidavit-webhook-tls"}}
    assert env(containers(docs)["operator"])["AFFIDAVIT_MANAGE_CERTIFICATES"] == "false"


def test_cert_manager_with_an_existing_issuer(render: Render) -> None:
    docs = render("--set", "certManager.enabled=true", "--set", "certManager.issuerRef.name=corp",
                  "--set", "certManager.issuerRef.kind=ClusterIssuer")  # fmt: skip
    issued = [d for d in docs if "cert-manager" in d["apiVersion"]]
    assert [(d["kind"], d["metadata"]["name"]) for d in issued] == [("Certificate", "affidavit")]
    assert issued[0]["spec"]["issuerRef"] == {
        "name": "corp", "kind": "ClusterIssuer", "group": "cert-manager.io",
    }  # fmt: skip


def test_replicas_spread_over_nodes_and_zones(render: Render) -> None:
    term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": SELECTOR}}
    spec = one(render(), "Deployment")["spec"]["template"]["spec"]
    assert spec["affinity"] == {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term}]}}  # fmt: skip
    spec = one(render("-f", PLATFORM), "Deployment")["spec"]["template"]["spec"]
    assert spec["affinity"] == {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    }
    assert spec["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": SELECTOR},
    }]  # fmt: skip
    spec = one(render("--set", "podAntiAffinity="), "Deployment")["spec"]["template"]["spec"]
    assert "affinity" not in spec


def test_extra_args_env_and_volumes(render: Render) -> None:
    docs = render("-f", PLATFORM)
    both = containers(docs)
    assert both["operator"]["args"][-1] == "--verbose"
    for container in both.values():
        assert env(container)["HTTPS_PROXY"] == "http://proxy.internal:3128"
        assert {"name": "extra-config", "mountPath": "/etc/affidavit/extra",
                "readOnly": True} in container["volumeMounts"]  # fmt: skip
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "extra-config", "configMap": {"name": "affidavit-extra"}} in volumes


def test_the_operators_readiness_is_served_but_is_not_the_pods(render: Render) -> None:
    """/readyz (a current index) on the ready port, but no readinessProbe: once started, the
    Pod's readiness, and so the webhook's endpoint, is the webhook container's alone (see the
    node test test_an_operator_that_is_not_ready_leaves_admission_served)."""
    by_name = containers(render())
    operator = by_name["operator"]
    assert "--readiness=http://0.0.0.0:8081/readyz" in operator["args"]
    assert {"name": "ready", "containerPort": 8081, "protocol": "TCP"} in operator["ports"]
    assert "readinessProbe" not in operator
    assert by_name["webhook"]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # kopf's peering identity from the Pod's name, not from /etc/passwd
    assert env(operator)["AFFIDAVIT_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # the failurePolicy installed, which the operator compares the live webhooks with
    assert env(operator)["AFFIDAVIT_WEBHOOK_FAILURE_POLICY"] == "Fail"
    ignore = containers(render("--set", "webhook.failurePolicy=Ignore"))["operator"]
    assert env(ignore)["AFFIDAVIT_WEBHOOK_FAILURE_POLICY"] == "Ignore"
    # the namespace owns the webhook configurations only when asked (fail closed otherwise)
    assert "AFFIDAVIT_OWN_WEBHOOK_CONFIGURATIONS" not in env(operator)
    owned = containers(render("--set", "webhook.removeWithNamespace=true"))["operator"]
    assert env(owned)["AFFIDAVIT_OWN_WEBHOOK_CONFIGURATIONS"] == "true"


def test_webhook_waits_for_its_certificate(render: Render) -> None:
    webhook = containers(render())["webhook"]
    assert env(webhook)["AFFIDAVIT_TLS_WAIT_SECONDS"] == "120"
    # the kubelet leaves it that long, plus a minute to import on a loaded node, before
    # liveness may restart it
    startup = webhook["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 180


def test_a_slow_start_is_never_killed_by_liveness(render: Render) -> None:
    """On a loaded 2-core node the operator took over 75 s to import and log in; its liveness
    probe (15 s + 3 x 20 s) killed it with empty logs, and the webhook waiting for its
    certificate was killed in turn. A startup probe now holds liveness off for 5 minutes; it
    is the operator's readiness (a current policy index), so a new Pod of a rollout against
    older CRDs is held back while the old ones serve, and nothing later (see
    test_the_operators_readiness_is_served_but_is_not_the_pods)."""
    operator = containers(render())["operator"]
    startup = operator["startupProbe"]
    assert startup["httpGet"] == {"path": "/startz", "port": "ready"}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert startup["periodSeconds"] * startup["failureThreshold"] == 300
    assert "initialDelaySeconds" not in operator["livenessProbe"]


def test_older_crds_hold_a_start_only_where_old_pods_serve_meanwhile(render: Render) -> None:
    """Under RollingUpdate the old Pods serve while a new one is held back by older CRDs; under
    Recreate (the SQLite ledger's one volume) the old Pod is stopped first, and a held start
    left the webhook without endpoints: every workload refused until someone applied the
    CRDs. There the operator is told not to let older CRDs hold its start."""
    rolling = one(render(), "Deployment")
    assert "strategy" not in rolling["spec"]
    assert "--crds-do-not-hold-start" not in containers(render())["operator"]["args"]
    recreate = ("--set", "ledger.sqlite.persistence.enabled=true")
    assert one(render(*recreate), "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert "--crds-do-not-hold-start" in containers(render(*recreate))["operator"]["args"]


def test_a_stopping_webhook_serves_until_the_service_drops_it(render: Render) -> None:
    docs = render()
    webhook = containers(docs)["webhook"]
    assert webhook["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 35
    off = containers(render("--set", "webhook.shutdownDelaySeconds=0"))["webhook"]
    assert "lifecycle" not in off


def test_the_network_policy_lets_prometheus_reach_the_metrics_port(render: Render) -> None:
    netpol = one(render(), "NetworkPolicy")
    assert netpol["spec"]["ingress"] == [
        {"ports": [{"port": "https", "protocol": "TCP"}]},
        # the webhook's metrics, and the operator's (its readiness gauge) on its ready port
        {"ports": [{"port": "metrics", "protocol": "TCP"}, {"port": "ready", "protocol": "TCP"}]},
    ]
    source = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    netpol = one(render("--set-json", f"networkPolicy.metricsFrom=[{json.dumps(source)}]"),
                 "NetworkPolicy")  # fmt: skip
    assert netpol["spec"]["ingress"][1]["from"] == [source]
    netpol = one(render("--set", "metrics.port=0"), "NetworkPolicy")
    assert netpol["spec"]["ingress"] == [{"ports": [{"port": "https", "protocol": "TCP"}]}]


def test_the_helm_test_pod_is_not_selected_by_the_service_or_the_budget(render: Render) -> None:
    docs = render()
    (pod,) = render("--show-only", "templates/tests/test-readyz.yaml")
    labels = pod["metadata"]["labels"]
    for selector in (one(docs, "Service")["spec"]["selector"],
                     one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                     one(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]):  # fmt: skip
        assert not selector.items() <= labels.items()
    assert labels["app.kubernetes.io/component"] == "test"


def test_helm_test_pod_is_kept_for_its_logs(render: Render) -> None:
    (pod,) = render("--show-only", "templates/tests/test-readyz.yaml")
    assert pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"


def notes(helm: Path, control_plane: ControlPlaneInfo, *args: str) -> str:
    """NOTES.txt as `helm install` prints it (a client-side dry run; helm asks the real
    apiserver for its version)."""
    out = run_helm(helm, "install", "affidavit", CHART, "--dry-run=client", "--namespace",
                   "affidavit-system", *args, env=control_plane.env())  # fmt: skip
    return out.stdout.split("NOTES:\n", 1)[1]


def test_notes_warn_about_defaults_left_in_place(
    helm: Path, control_plane: ControlPlaneInfo
) -> None:
    text = notes(helm, control_plane)
    assert (
        'WARNING: clusterName and/or region are left at their defaults ("cluster", "unspecified").'
        in text
    )
    assert "WARNING: the decision ledger is SQLite on an emptyDir" in text
    assert (
        "WARNING: one webhook replica, failurePolicy Fail: while it restarts (a helm upgrade;"
        in (text)
    )
    text = notes(helm, control_plane, "--set", "clusterName=prod-1", "--set", "region=eu-west-1",
                 "--set", "ledger.sqlite.persistence.enabled=true")  # fmt: skip
    # kept on a volume, the one replica is also stopped before the next starts on an upgrade
    assert text.count("WARNING") == 1
    assert (
        "WARNING: one webhook replica, failurePolicy Fail: while it restarts (a helm upgrade, "
        "which\n  stops it before starting the next, since its ledger volume is ReadWriteOnce; "
        "a node drain; a lost node)"
    ) in text
    text = notes(helm, control_plane, "--set", "clusterName=prod-1", "--set", "region=eu-west-1",
                 "--set", "ledger.type=postgres", "--set", "ledger.postgres.existingSecret=db",
                 "--set", "replicaCount=2")  # fmt: skip
    assert "WARNING" not in text
    assert "UPGRADE" not in text  # said on an upgrade only
    assert "a Pod deleted before then (a drain, an upgrade) loses them" in text


def test_notes_say_what_is_never_judged_and_when_workloads_pass_unjudged(
    helm: Path, control_plane: ControlPlaneInfo
) -> None:
    text = notes(helm, control_plane)
    assert (
        "Never judged: workloads in affidavit-system, kube-system. Whoever may write in\n" in text
    )
    assert "WARNING: failurePolicy Ignore" not in text
    assert "The webhook refuses requests until the operator has issued its certificate" in text
    # the decisions API answers any Pod unless the NetworkPolicy names the control plane
    assert "NOTE: the decisions API (/decisions: every decision's workload" in text
    # deleting the namespace leaves the configurations failing closed: said, with the command
    assert "kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration" in text
    # failurePolicy Ignore said plainly, and no longer "refuses requests until ..." under it
    text = notes(helm, control_plane, "--set", "webhook.failurePolicy=Ignore",
                 "--set", "networkPolicy.ingressFrom[0].ipBlock.cidr=10.0.0.1/32",
                 "--set", "webhook.removeWithNamespace=true")  # fmt: skip
    assert "WARNING: failurePolicy Ignore: whenever the API server cannot reach the webhook" in text
    assert "refuses requests until" not in text
    assert "workloads are admitted unjudged (failurePolicy Ignore)" in text
    assert "NOTE: the decisions API" not in text
    assert "validatingwebhookconfiguration,mutatingwebhookconfiguration" not in text


def test_the_default_namespace_is_refused(helm: Path, control_plane: ControlPlaneInfo) -> None:
    # the release namespace is never judged: installed into "default" (helm install without
    # -n, on a context whose namespace is default), every workload there ran unjudged
    out = run_helm(helm, "install", "affidavit", CHART, "--dry-run=client", "--namespace",
                   "default", check=False, env=control_plane.env())  # fmt: skip
    assert out.returncode != 0
    assert "install Affidavit into a namespace of its own" in out.stderr


def test_platform_scenario_installs_into_the_apiserver(
    helm: Path, control_plane: ControlPlaneInfo, kubectl: Kubectl, tmp_path: Path
) -> None:
    """The PVC, registry CA ConfigMap, metrics port, spreading and extra volumes are accepted by
    the real apiserver, and the Pods pass its PodSecurity "restricted" admission (the
    ServiceMonitor is left out: this apiserver has no Prometheus operator CRDs)."""
    namespace, release = "affidavit-platform-e2e", "affidavit-platform"
    env = {
        **control_plane.env(),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }
    kubectl("create", "namespace", namespace, check=False)
    kubectl("label", "--overwrite", "namespace", namespace,
            "pod-security.kubernetes.io/enforce=restricted")  # fmt: skip
    out = run_helm(helm, "install", release, CHART, "--namespace", namespace, "-f", PLATFORM,
                   "--set", "metrics.serviceMonitor.enabled=false",
                   "--set", "webhook.failurePolicy=Ignore", env=env, timeout=180)  # fmt: skip
    try:
        assert "would violate PodSecurity" not in out.stdout + out.stderr
        # an upgrade is told that Helm leaves crds/ alone, and what to run
        upgrade = run_helm(helm, "upgrade", release, CHART, "--namespace", namespace,
                           "-f", PLATFORM, "--set", "metrics.serviceMonitor.enabled=false",
                           "--set", "webhook.failurePolicy=Ignore", "--dry-run=client",
                           env=env)  # fmt: skip
        assert (
            "UPGRADE: helm upgrade leaves the CRDs in this chart's crds/ as they were first "
            "installed. Apply this version's:\n"
            "  kubectl apply --server-side -f charts/affidavit/crds/\n"
        ) in upgrade.stdout
        assert "(spec.evidence.registryLocations)" in upgrade.stdout
        assert "must collect with\n  --pseudonym-key (spec.evidence.pseudonymousIdentities)" in (
            upgrade.stdout
        )
        claim = kubectl("get", "pvc", f"{release}-ledger", "-n", namespace, "-o",
                        "jsonpath={.spec.resources.requests.storage}").stdout  # fmt: skip
        assert claim == "5Gi"
        ports = kubectl("get", "service", release, "-n", namespace, "-o",
                        "jsonpath={.spec.ports[*].name}").stdout  # fmt: skip
        assert ports == "https metrics"
    finally:
        run_helm(helm, "uninstall", release, "--namespace", namespace, check=False, env=env)
        # the claim is kept on uninstall (helm.sh/resource-policy: keep): audit evidence
        kept = kubectl("get", "pvc", f"{release}-ledger", "-n", namespace, check=False)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    assert kept.returncode == 0
