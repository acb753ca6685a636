"""Helpers for the webhook's integration tests: signed images in the real registry, policy files,
AdmissionReviews, and a real `affidavit webhook serve` process over HTTPS on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from affidavit.admission.decide import Webhook
from affidavit.admission.server import WebhookSettings, build_webhook
from affidavit.attestations.dsse import sign_envelope
from affidavit.attestations.image import push_sample_image
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.predicates import AI_PROVENANCE_V1
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import attach
from affidavit.envtest import free_port, wait_for
from affidavit.envtest.certs import CertKeyPair
from affidavit.policy.decision import Decision

REV = "c0ffee" + "0" * 34


@dataclass(frozen=True)
class Tls:
    ca: CertKeyPair
    cert: Path
    key: Path


@dataclass(frozen=True)
class Images:
    good: str  # tag reference, attested
    good_digest: str
    bare: str  # tag reference, no attestations
    bare_digest: str
    host: str


def human_provenance() -> dict[str, Any]:
    person = {"name": "Alice", "email": "alice@example.com"}
    return {
        "source": {"repository": "https://github.com/example/shop", "revision": REV},
        "changes": [
            {
                "commit": REV,
                "author": person,
                "committer": person,
                "authoredAt": "2026-11-28T10:00:00Z",
                "committedAt": "2026-11-28T10:00:00Z",
                "aiInvolvement": "none",
                "tools": [],
                "files": [{"path": "README.md", "tier": "low", "linesAdded": 3}],
            }
        ],
        "summary": {
            "commits": 1,
            "aiTouchedCommits": 0,
            "undeclaredCommits": 0,
            "traceabilityCoverage": 1.0,
        },
        "collector": {"name": "affidavit", "version": "0.1.0"},
    }


@dataclass(frozen=True)
class Signing:
    private_path: Path
    public_pem: str


def make_signing(directory: Path) -> Signing:
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    path = directory / "ci.key"
    path.write_bytes(private_pem)
    return Signing(path, public_pem.decode())


def push(registry_host: str, repo: str, tag: str, *, content: bytes) -> str:
    with RegistryClient() as client:
        return push_sample_image(client, f"{registry_host}/{repo}", {"app.txt": content}, tag=tag)


def attest_provenance(registry_host: str, repo: str, digest: str, signing: Signing) -> None:
    ref = ImageReference.parse(f"{registry_host}/{repo}@{digest}")
    statement = make_statement(ref.name, digest, AI_PROVENANCE_V1, human_provenance())
    envelope = sign_envelope(statement, load_signer(signing.private_path)).to_json()
    with RegistryClient() as client:
        attach(client, ref, AI_PROVENANCE_V1, envelope=envelope)


def policy(name: str, images: list[str], pem: str, **spec: Any) -> dict[str, Any]:
    require: dict[str, Any] = {"provenance": {"required": True}}
    require.update(spec.pop("require", {}))
    return {
        "apiVersion": "affidavit.dev/v1alpha1",
        "kind": "AccountabilityPolicy",
        "metadata": {"name": name, "generation": 1},
        "spec": {
            "mode": spec.pop("mode", "Enforce"),
            "match": {"images": images},
            "signers": {"keys": [{"name": "ci", "publicKey": pem}]},
            "require": require,
            **spec,
        },
    }


def write_policies(directory: Path, pem: str) -> None:
    docs = [
        policy("strict", ["*/strict/*"], pem),
        policy("lenient", ["*/lenient/*"], pem, require={"failurePolicy": "Ignore"}),
        policy("warn", ["*/warn/*"], pem, mode="Warn"),
        policy("audit", ["*/audit/*"], pem, mode="Audit"),
        policy("pinned", ["*/pinned/*"], pem, require={"requireDigest": True}),
    ]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policies.yaml").write_text(yaml.safe_dump_all(docs))


def review(
    *images: str,
    uid: str = "uid-1",
    kind: str = "Deployment",
    namespace: str = "shop",
    name: str = "web",
) -> dict[str, Any]:
    pod_spec = {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "apps", "version": "v1", "kind": kind},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "operation": "CREATE",
            "namespace": namespace,
            "name": name,
            "userInfo": {"username": "alice", "groups": ["dev"]},
            "object": obj,
        },
    }


@dataclass
class WebhookProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    client: httpx.Client

    def validate(self, body: dict[str, Any] | bytes) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(
            f"{self.url}/validate", content=content, headers={"content-type": "application/json"}
        )

    def metric(self, name: str, **labels: str) -> float:
        text = self.client.get(f"{self.url}/metrics").text
        want = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
        )
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_webhook(
    workdir: Path,
    ca_pem: bytes,
    cert: Path,
    key: Path,
    *,
    args: list[str],
    wrap: list[str] | None = None,
) -> WebhookProcess:
    """``wrap``: a command that execs the webhook's (e.g. into a mount namespace of its own)."""
    port = free_port()
    log = workdir / f"webhook-{port}.log"
    cmd = [
        *(wrap or []),
        sys.executable,
        "-m",
        "affidavit.cli.main",
        "webhook",
        "serve",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--cluster-name",
        "prod-1",
        "--region",
        "eu-west-1",
        "--log-level",
        "warning",
        *args,
    ]
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    ca = workdir / "ca.pem"
    ca.write_bytes(ca_pem)
    client = httpx.Client(verify=_ctx(ca), timeout=30)
    url = f"https://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"webhook exited: {log.read_text()}")
        try:
            return client.get(f"{url}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, f"the webhook on port {port}", 30, interval=0.1)
    except AssertionError:
        proc.kill()
        raise RuntimeError(f"webhook not ready: {log.read_text()}") from None
    return WebhookProcess(url, proc, log, client)


def start_ledgered_webhook(
    workdir: Path,
    tls: Tls,
    *,
    ledger: str,
    policies: Path,
    registry_host: str | None = None,
    extra: Sequence[str] = (),
    wrap: list[str] | None = None,
) -> WebhookProcess:
    """``start_webhook`` with what most tests give it: a ledger URL, a policy directory and the
    registry it may reach (``--registry-allowed-host``), then any ``extra`` arguments."""
    args = ["--ledger", ledger, "--policy-dir", str(policies)]
    if registry_host is not None:
        args += ["--registry-allowed-host", registry_host]
    return start_webhook(
        workdir, tls.ca.cert_pem, tls.cert, tls.key, args=[*args, *extra], wrap=wrap
    )


def _ctx(ca: Path) -> Any:
    import ssl

    return ssl.create_default_context(cafile=str(ca))


def decision_from_json(data: dict[str, Any]) -> Decision:
    """Rebuild a Decision from the ledger's JSON (to recompute the admission message)."""
    return Decision.from_dict(data)


def in_process_webhook(
    tmp_path: Path, policy_dir: Path, images: Images | None = None, **settings: Any
) -> Webhook:
    """A Webhook built as ``webhook serve`` builds it (no server, no ledger unless ``settings``
    name one), its policies read from ``policy_dir``, allowed to reach ``images``' registry;
    the caller starts ``policy`` and closes it."""
    return build_webhook(
        WebhookSettings(
            tls_cert=tmp_path / "unused.crt",
            tls_key=tmp_path / "unused.key",
            cluster_name=settings.pop("cluster_name", "prod-1"),
            region="eu-west-1",
            ledger_url=settings.pop("ledger_url", None),
            policy_dir=policy_dir,
            registry_allowed_hosts=(images.host,) if images is not None else (),
            **settings,
        )
    )
