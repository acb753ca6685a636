"""The Helm chart, rendered: lint, schema sync, every ci scenario, restricted pod security,
least-privilege RBAC rules and the webhook configurations (their rules the same list as the
image extractor's), checked on `helm template` output."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helm_podsecurity import pod_specs, restricted_violations
from helm_support import CHART, CI_VALUES, KUBE_VERSION_ARGS, Render, load_yaml, run_helm

from affidavit import defaults
from affidavit.admission.kinds import POD_SOURCES, covered, pin_rules, stamp_rules, webhook_rules
from affidavit.admission.owners import CREATORS
from affidavit.admission.workloads import POD_SPEC_PATHS
from affidavit.demo.stack import webhook_configurations
from affidavit.names import GROUP, INDEX_CONFIGMAP, VERSION


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_ci_scenarios_exist() -> None:
    names = {p.name for p in CI_VALUES}
    assert {"default-values.yaml", "postgres-values.yaml", "eu-region-values.yaml"} <= names


def test_values_and_every_ci_file_match_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    defaults = load_yaml(CHART / "values.yaml")
    jsonschema.validate(defaults, schema, cls=jsonschema.Draft202012Validator)
    for path in CI_VALUES:
        jsonschema.validate(
            merged(defaults, load_yaml(path) or {}), schema, cls=jsonschema.Draft202012Validator
        )


def test_every_values_key_is_declared_in_the_schema() -> None:
    """The schema is closed (additionalProperties: false), so it cannot lag behind values.yaml."""
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(values: dict[str, Any], node: dict[str, Any], path: str) -> None:
        props = node.get("properties", {})
        for key, value in values.items():
            assert key in props, f"values.yaml key {path}{key} is not in values.schema.json"
            sub = props[key]
            if "$ref" in sub:
                sub = schema["$defs"][sub["$ref"].split("/")[-1]]
            if isinstance(value, dict) and sub.get("additionalProperties") is False:
                walk(value, sub, f"{path}{key}.")

    walk(load_yaml(CHART / "values.yaml"), schema, "")


def test_schema_rejects_what_it_should() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = load_yaml(CHART / "values.yaml")
    bad: list[dict[str, Any]] = [
        {"webhook": {"failurePolicy": "Sometimes"}},
        {"ledger": {"type": "postgres", "postgres": {"existingSecret": ""}}},
        {"clusterName": ""},
        {"region": ""},  # the webhook refuses to start without a region
        {"unmatchedImages": "Block"},
        {"typo": True},
        {"registry": {"allowedHosts": ["https://ghcr.io/org"]}},  # a host, not a URL
        {"webhook": {"maxImagesPerRequest": 0}},
    ]
    for override in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(merged(defaults, override), schema)


def test_helm_lint_passes_for_every_scenario(helm: Path) -> None:
    for path in [None, *CI_VALUES]:
        args: list[str | Path] = ["lint", CHART, "--strict"]
        if path:
            args += ["-f", path]
        out = run_helm(helm, *args)
        assert "0 chart(s) failed" in out.stdout


def test_helm_enforces_the_schema(helm: Path) -> None:
    out = run_helm(
        helm, "template", "affidavit", CHART, "--set", "webhook.timeoutSeconds=99", check=False
    )
    assert out.returncode != 0
    assert "timeoutSeconds" in out.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_pod_is_restricted(render: Render, values: Path) -> None:
    docs = render("-f", values) + render(
        "-f", values, "--show-only", "templates/tests/test-readyz.yaml"
    )
    specs = list(pod_specs(docs))
    assert {name for name, _ in specs} >= {"Deployment/affidavit", "Pod/affidavit-test-readyz"}
    for name, spec in specs:
        assert restricted_violations(spec) == [], name
        assert spec.get("automountServiceAccountToken") is not None or name.startswith("Deploy")


def test_the_checker_catches_a_privileged_pod() -> None:
    spec = {
        "hostNetwork": True,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [
            {
                "name": "c",
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            }
        ],
    }
    assert restricted_violations(spec) == [
        "hostNetwork is true",
        "volume root has type ['hostPath']",
        "container c is privileged",
        "container c does not set allowPrivilegeEscalation=false",
        "container c does not drop ALL capabilities",
        "container c adds capabilities ['SYS_ADMIN']",
        "container c may run as root (runAsNonRoot not true)",
        "container c has seccompProfile None",
        "container c has a writable root filesystem",
        "container c uses hostPort 80",
    ]


def test_deployment_runs_webhook_and_operator_sharing_the_ledger(render: Render) -> None:
    dep = one(render(), "Deployment")
    pod = dep["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"webhook", "operator"}
    assert containers["webhook"]["args"][:2] == ["webhook", "serve"]
    assert containers["operator"]["args"][:2] == ["operator", "run"]
    for c in containers.values():
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["AFFIDAVIT_LEDGER"] == "sqlite:////var/lib/affidavit/ledger.db"
        assert env["AFFIDAVIT_CLUSTER_NAME"] == "cluster"
        assert env["AFFIDAVIT_EXCEPTION_MAX_DAYS"] == "7"  # both enforce the cluster maximum
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert mounts["data"] == "/var/lib/affidavit"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["data"]
    assert containers["webhook"]["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    webhook_env = {e["name"]: e.get("value") for e in containers["webhook"]["env"]}
    assert webhook_env["AFFIDAVIT_TLS_CERT"] == "/var/run/affidavit/certs/tls.crt"
    assert (
        webhook_env["AFFIDAVIT_POLICY_CONFIGMAP"] == "$(AFFIDAVIT_NAMESPACE)/affidavit-policy-index"
    )
    assert webhook_env["AFFIDAVIT_BUDGET_SECONDS"] == "8"
    assert webhook_env["AFFIDAVIT_EVIDENCE_TTL_SECONDS"] == "300"
    assert webhook_env["AFFIDAVIT_EVIDENCE_CACHE_MIB"] == "48"
    operator_env = {e["name"]: e.get("value") for e in containers["operator"]["env"]}
    assert operator_env["AFFIDAVIT_CERT_DIR"] == "/var/run/affidavit/certs"
    assert operator_env["AFFIDAVIT_WEBHOOK_CONFIGURATION"] == "affidavit"


def _webhook_env(docs: list[dict[str, Any]]) -> dict[str, str | None]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (webhook,) = [c for c in pod["containers"] if c["name"] == "webhook"]
    return {e["name"]: e.get("value") for e in webhook["env"]}


def test_registry_allow_list_and_image_cap_reach_the_webhook(render: Render) -> None:
    env = _webhook_env(render())
    assert env["AFFIDAVIT_MAX_IMAGES_PER_REQUEST"] == "64"
    assert "AFFIDAVIT_REGISTRY_ALLOWED_HOSTS" not in env  # only the registries policies name
    hosts = "registry.allowedHosts={auth.docker.io,*.cloudflare.docker.com}"
    env = _webhook_env(render("--set", hosts, "--set", "webhook.maxImagesPerRequest=16"))
    assert env["AFFIDAVIT_REGISTRY_ALLOWED_HOSTS"] == "auth.docker.io *.cloudflare.docker.com"
    assert env["AFFIDAVIT_MAX_IMAGES_PER_REQUEST"] == "16"


def test_unmatched_images_reaches_the_webhook(render: Render) -> None:
    assert _webhook_env(render())["AFFIDAVIT_UNMATCHED_IMAGES"] == "Warn"
    env = _webhook_env(render("--set", "unmatchedImages=Deny"))
    assert env["AFFIDAVIT_UNMATCHED_IMAGES"] == "Deny"


def test_postgres_scenario_reads_the_url_from_a_secret(render: Render) -> None:
    dep = one(render("-f", CHART / "ci" / "postgres-values.yaml"), "Deployment")
    assert dep["spec"]["replicas"] == 3
    for c in dep["spec"]["template"]["spec"]["containers"]:
        env = {e["name"]: e for e in c["env"]}
        assert env["AFFIDAVIT_LEDGER"]["valueFrom"]["secretKeyRef"] == {
            "name": "affidavit-ledger",
            "key": "url",
        }


def test_several_replicas_need_postgres(helm: Path) -> None:
    out = run_helm(helm, "template", "affidavit", CHART, "-n", "affidavit-system", *KUBE_VERSION_ARGS,
                   "--set", "replicaCount=2", check=False)  # fmt: skip
    assert out.returncode != 0
    assert "replicaCount > 1 needs ledger.type=postgres" in out.stderr


def test_eu_region_values_reach_both_containers(render: Render) -> None:
    docs = render("-f", CHART / "ci" / "eu-region-values.yaml")
    for c in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]:
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert (env["AFFIDAVIT_CLUSTER_NAME"], env["AFFIDAVIT_REGION"]) == (
            "prod-eu-1",
            "eu-west-1",
        )
    hook = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]
    excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert excluded == ["affidavit-system", "kube-system", "monitoring"]
    rules = operator_role(docs)["rules"]
    assert {
        "apiGroups": ["wgpolicyk8s.io"],
        "resources": ["policyreports"],
        "verbs": ["get", "create", "update"],
    } in rules


def test_webhook_configuration(render: Render) -> None:
    vwc = one(render(), "ValidatingWebhookConfiguration")
    assert vwc["metadata"]["name"] == "affidavit"
    (hook,) = vwc["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["timeoutSeconds"] == 10
    assert hook["sideEffects"] == "NoneOnDryRun"  # a dry run leaves no ledger row, no Event
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["clientConfig"]["service"] == {
        "name": "affidavit",
        "namespace": "affidavit-system",
        "path": "/validate",
        "port": 443,
    }
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["affidavit-system", "kube-system"],
        }
    ]
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in hook["rules"])


def test_webhook_rules_cover_exactly_what_the_extractor_reads(render: Render) -> None:
    """One list (admission.kinds) for the chart's rules, the demo stack's, and the extractor:
    a kind registered but unreadable would be denied, one readable but not registered would
    never be sent (as pods/ephemeralcontainers, i.e. `kubectl debug`, once was)."""
    (hook,) = one(render(), "ValidatingWebhookConfiguration")["webhooks"]
    from_list = {
        (s.group, s.version, r) for s in POD_SOURCES for r in s.resources
    }  # fmt: skip
    assert covered(hook["rules"]) == from_list == covered(webhook_rules())
    assert ("", "v1", "pods/ephemeralcontainers") in from_list
    assert set(POD_SPEC_PATHS) == {s.kind for s in POD_SOURCES}
    assert all(r.get("scope") == "Namespaced" for r in hook["rules"])
    demo_vwc, demo_mwc = webhook_configurations("affidavit", "affidavit-system", "u", "u")
    (demo_hook,) = demo_vwc["webhooks"]
    assert covered(demo_hook["rules"]) == from_list
    assert demo_hook["sideEffects"] == hook["sideEffects"]
    demo_pin, demo_stamp = demo_mwc["webhooks"]
    pin, stamp = one(render(), "MutatingWebhookConfiguration")["webhooks"]
    assert demo_pin["rules"] == pin["rules"] == pin_rules()
    assert demo_stamp["rules"] == stamp["rules"] == stamp_rules()


def test_mutating_webhook_pins_pods_and_stamps_exceptions(render: Render) -> None:
    mwc = one(render(), "MutatingWebhookConfiguration")
    assert mwc["metadata"]["name"] == "affidavit"
    hook, stamp = mwc["webhooks"]
    assert hook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["pods", "pods/ephemeralcontainers"],
            "scope": "Namespaced",
        }
    ]
    assert hook["clientConfig"]["service"] == {
        "name": "affidavit",
        "namespace": "affidavit-system",
        "path": "/mutate",
        "port": 443,
    }
    assert (hook["failurePolicy"], hook["sideEffects"], hook["reinvocationPolicy"]) == (
        "Fail",
        "None",
        "IfNeeded",
    )
    vwc = one(render(), "ValidatingWebhookConfiguration")["webhooks"][0]
    assert hook["namespaceSelector"] == vwc["namespaceSelector"] == stamp["namespaceSelector"]
    assert stamp["rules"] == [
        {
            "apiGroups": ["affidavit.dev"],
            "apiVersions": ["v1alpha1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["accountabilityexceptions"],
            "scope": "Namespaced",
        }
    ]
    assert stamp["clientConfig"]["service"] == hook["clientConfig"]["service"]
    assert (stamp["failurePolicy"], stamp["sideEffects"], stamp["reinvocationPolicy"]) == (
        "Fail",
        "None",
        "IfNeeded",
    )
    ignore = one(render("--set", "webhook.failurePolicy=Ignore"), "MutatingWebhookConfiguration")
    assert [w["failurePolicy"] for w in ignore["webhooks"]] == ["Ignore", "Ignore"]


def operator_role(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator's and webhook's ClusterRole (the other one is for people: decision readers)."""
    (role,) = [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == "affidavit"]
    return role


def test_the_decision_reader_role_only_reads_decisions_the_index_and_policies(
    render: Render,
) -> None:
    (role,) = [
        d for d in by_kind(render(), "ClusterRole")
        if d["metadata"]["name"] == "affidavit-decision-reader"
    ]  # fmt: skip
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["services/proxy"],
            "resourceNames": ["https:affidavit:https", "https:affidavit:443"],
            "verbs": ["get"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["affidavit-policy-index"],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        {
            "apiGroups": ["affidavit.dev"],
            "resources": ["accountabilitypolicies", "regionpolicies", "accountabilityexceptions"],
            "verbs": ["get", "list"],
        },
    ]
    env = {
        e["name"]: e.get("value")
        for e in one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["AFFIDAVIT_DECISIONS_API"] == "true"


def test_rbac_is_least_privilege(render: Render) -> None:
    docs = render()
    cluster_rules = operator_role(docs)["rules"]
    ns_rules = one(docs, "Role")["rules"]
    verbs = {
        (g, r, tuple(rule.get("resourceNames", ())), v)
        for rule in cluster_rules + ns_rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    for rule in cluster_rules + ns_rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
            rule["verbs"]
        ), rule
    writes_on_crds = {v for g, r, _, v in verbs if g == "affidavit.dev" and "/" not in r}
    assert writes_on_crds == {"get", "list", "watch"}
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        assert ("admissionregistration.k8s.io", kind, ("affidavit",), "patch") in verbs
    secret_verbs = {(n, v) for g, r, n, v in verbs if r == "secrets"}
    assert secret_verbs == {
        ((), "get"),
        ((), "create"),
        (("affidavit-webhook-tls",), "get"),
        (("affidavit-webhook-tls",), "update"),
        (("affidavit-webhook-tls",), "patch"),
    }
    # The webhook reads the owner of a controller-made object, and only reads it: get on
    # exactly the kinds that create the webhook's kinds (owners.CREATORS), and on the
    # ControllerRevision holding a StatefulSet's current revision.
    owner_kinds = {owner for creators in CREATORS.values() for owner in creators}
    plural = {k: k.lower() + "s" for _, k in owner_kinds}
    assert {(g, r, n, v) for g, r, n, v in verbs if g in ("apps", "batch")} | {
        (g, r, n, v) for g, r, n, v in verbs if r == "replicationcontrollers"
    } == {(g, plural[k], (), "get") for g, k in owner_kinds} | {
        ("apps", "controllerrevisions", (), "get")
    }
    # separateRequester asks who may act as a deployer: a review, which grants nothing
    assert {(g, r, n, v) for g, r, n, v in verbs if g == "authorization.k8s.io"} == {
        ("authorization.k8s.io", "subjectaccessreviews", (), "create")
    }
    # create is the only secret verb without a name, and only in the release namespace
    assert any(
        r["resources"] == ["configmaps", "secrets"] and r["verbs"] == ["create"] for r in ns_rules
    )
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "affidavit", "namespace": "affidavit-system"}
    ]


def test_image_pull_secret_reads_can_be_turned_off(render: Render) -> None:
    rules = operator_role(render("--set", "rbac.readImagePullSecrets=false"))["rules"]
    assert not [r for r in rules if "secrets" in r["resources"]]


def test_pdb_and_network_policy(render: Render) -> None:
    docs = render("-f", CHART / "ci" / "postgres-values.yaml")
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    netpol = one(docs, "NetworkPolicy")
    assert netpol["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert netpol["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    default = one(render(), "NetworkPolicy")  # on by default: the webhook and metrics ports
    assert default["spec"]["policyTypes"] == ["Ingress"]
    assert default["spec"]["ingress"] == [{"ports": [{"port": "https", "protocol": "TCP"}]},
                                          {"ports": [{"port": "metrics", "protocol": "TCP"},
                                                     {"port": "ready", "protocol": "TCP"}]}]  # fmt: skip
    assert not by_kind(render("--set", "networkPolicy.enabled=false"), "NetworkPolicy")


def test_helm_test_pod_checks_readyz_over_tls(render: Render) -> None:
    (pod,) = render("--show-only", "templates/tests/test-readyz.yaml")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "https://affidavit.affidavit-system.svc:443/readyz" in script
    assert 'cafile="/tls/ca.crt"' in script
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "affidavit-webhook-tls"


def test_the_ledger_buffer_file_is_on_the_data_volume(render: Render) -> None:
    env = _webhook_env(render())
    assert env["AFFIDAVIT_LEDGER_BUFFER_FILE"] == "/var/lib/affidavit/ledger-buffer.jsonl"


def test_chart_names_are_the_ones_the_processes_use(render: Render) -> None:
    """The index ConfigMap, its RBAC, the CRDs' group/version (affidavit.names) and the
    webhook's defaults (affidavit.defaults) are the ones the processes use."""
    docs = render("--include-crds")
    dep = one(docs, "Deployment")
    (webhook,) = [
        c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "webhook"
    ]
    env = {e["name"]: e.get("value") for e in webhook["env"]}
    assert env["AFFIDAVIT_POLICY_CONFIGMAP"] == f"$(AFFIDAVIT_NAMESPACE)/{INDEX_CONFIGMAP}"
    granted = {
        name
        for role in by_kind(docs, "Role")
        for rule in role["rules"]
        if "configmaps" in rule["resources"]
        for name in rule.get("resourceNames", [])
    }
    assert INDEX_CONFIGMAP in granted
    # The chart's defaults are the webhook's own (affidavit.defaults).
    assert float(env["AFFIDAVIT_BUDGET_SECONDS"]) == defaults.BUDGET_SECONDS
    assert int(env["AFFIDAVIT_MAX_IMAGES_PER_REQUEST"]) == defaults.MAX_IMAGES_PER_REQUEST
    crds = by_kind(docs, "CustomResourceDefinition")
    assert len(crds) == 3
    for crd in crds:
        assert crd["spec"]["group"] == GROUP
        assert [v["name"] for v in crd["spec"]["versions"]] == [VERSION]


def test_chart_carries_private_sigstore_trusted_roots(
    render: Render, helm: Path, tmp_path: Path
) -> None:
    root = json.dumps(
        {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": []}
    )
    values = tmp_path / "roots.yaml"
    values.write_text(json.dumps({"sigstore": {"trustedRoots": {"private-sigstore": root}}}))
    [cm] = [
        d
        for d in render("-f", values)
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "private-sigstore"
    ]
    assert cm["metadata"]["namespace"] == "affidavit-system"
    assert json.loads(cm["data"]["trusted_root.json"]) == json.loads(root)
    assert not [d for d in render() if d["metadata"]["name"] == "private-sigstore"]
    values.write_text(json.dumps({"sigstore": {"trustedRoots": {"x": "not a root"}}}))
    out = run_helm(helm, "template", "affidavit", CHART, *KUBE_VERSION_ARGS, "-f", values,
                   check=False)  # fmt: skip
    assert out.returncode != 0
    assert "at '/sigstore/trustedRoots/x': 'not a root' does not match pattern" in out.stderr
