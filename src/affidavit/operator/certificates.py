"""The webhook's serving certificate: made, published, trusted and rotated before it expires.

The kube-apiserver only calls a webhook over TLS it can verify, so the operator owns the whole
chain: it makes a one-shot CA and a serving certificate (built by :mod:`affidavit.pki`, which
envtest shares), stores them in the Secret ``affidavit-webhook-tls`` (``tls.crt``,
``tls.key``, ``ca.crt``) and, for a webhook run outside the cluster, in a directory; and it
patches the ``caBundle`` of the Validating- and MutatingWebhookConfiguration.

Rotation never leaves a window in which the apiserver distrusts the webhook: each rotation makes
a fresh CA, first publishes a ``caBundle`` holding the new CA *and* the previous one, and only
then hands the new certificate to the webhook. The CA key is discarded after signing, so no CA
key is ever stored anywhere.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from affidavit import pki
from affidavit.errors import ClusterError
from affidavit.operator import kube

log = logging.getLogger(__name__)

SECRET_NAME = "affidavit-webhook-tls"  # noqa: S105 - a Secret's name, not a password
WEBHOOK_CONFIGURATION = "affidavit"
#: Backdate notBefore for peers with slow clocks: 5 minutes, or 5% of a short test lifetime.
_MAX_BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class CertificatePolicy:
    """How long serving certificates live and when they are renewed.

    A certificate is renewed once less than ``renew_fraction`` of its lifetime is left.
    """

    lifetime: datetime.timedelta = datetime.timedelta(days=90)
    renew_fraction: float = 1 / 3


@dataclass(frozen=True)
class ServingMaterial:
    """What the webhook serves with (``tls_crt``, ``tls_key``) and what the apiserver trusts."""

    tls_crt: bytes
    tls_key: bytes
    ca_bundle: bytes  # PEM: the current CA, then the previous one while it is still valid

    def as_secret_data(self) -> dict[str, bytes]:
        return {"tls.crt": self.tls_crt, "tls.key": self.tls_key, "ca.crt": self.ca_bundle}


def service_names(service: str, namespace: str) -> list[str]:
    """The DNS names the apiserver uses to reach a webhook Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def issue(
    dns_names: Sequence[str],
    ips: Sequence[str],
    policy: CertificatePolicy,
    previous_ca: bytes | None = None,
) -> ServingMaterial:
    """A fresh one-shot CA and a serving certificate it signs, both valid for the lifetime."""
    now = _now()
    backdate = min(_MAX_BACKDATE, policy.lifetime * 0.05)
    not_before = now - backdate
    not_after = now + policy.lifetime
    ca_key = pki.new_key()
    ca_name = pki.subject_name(f"affidavit webhook CA {now:%Y%m%dT%H%M%S%f}", "affidavit")
    ca_cert = pki.build_ca(ca_key, ca_name, not_before, not_after + backdate)
    key = pki.new_key()
    common_name = dns_names[0] if dns_names else (ips[0] if ips else "affidavit")
    cert = pki.build_leaf(
        ca_name,
        ca_key,
        key,
        pki.subject_name(common_name),
        not_before,
        not_after,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        dns_sans=dns_names,
        ip_sans=ips,
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    bundle = ca_pem + _still_valid(previous_ca or b"", now)
    return ServingMaterial(
        tls_crt=cert.public_bytes(serialization.Encoding.PEM),
        tls_key=pki.key_pem(key),
        ca_bundle=bundle,
    )


def _still_valid(pem_bundle: bytes, now: datetime.datetime) -> bytes:
    """The first certificate of a PEM bundle if it has not expired (the previous CA)."""
    try:
        certs = x509.load_pem_x509_certificates(pem_bundle)
    except ValueError:
        return b""
    if certs and certs[0].not_valid_after_utc > now:
        return certs[0].public_bytes(serialization.Encoding.PEM)
    return b""


def needs_renewal(
    material: ServingMaterial | None,
    dns_names: Sequence[str],
    ips: Sequence[str],
    policy: CertificatePolicy,
) -> str | None:
    """Why ``material`` must be replaced, or None when it is fine to keep serving it."""
    if material is None:
        return "no serving certificate yet"
    try:
        cert = x509.load_pem_x509_certificate(material.tls_crt)
        cas = x509.load_pem_x509_certificates(material.ca_bundle)
        serialization.load_pem_private_key(material.tls_key, password=None)
    except ValueError as e:
        return f"the stored certificate cannot be read ({e})"
    if not any(cert.issuer == ca.subject for ca in cas):
        return "the stored certificate is not signed by a CA in ca.crt"
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "the stored certificate has no subjectAltName"
    have = {str(n) for n in sans.get_values_for_type(x509.DNSName)}
    have |= {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    want = set(dns_names) | {str(ipaddress.ip_address(ip)) for ip in ips}
    if not want <= have:
        return f"the stored certificate lacks the names {sorted(want - have)}"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    left = cert.not_valid_after_utc - _now()
    if left < lifetime * policy.renew_fraction:
        return f"the certificate expires at {cert.not_valid_after_utc.isoformat()}"
    return None


def not_after(material: ServingMaterial) -> datetime.datetime:
    return x509.load_pem_x509_certificate(material.tls_crt).not_valid_after_utc


def renew_at(material: ServingMaterial, policy: CertificatePolicy) -> datetime.datetime:
    """When ``material`` will need renewing under ``policy``."""
    cert = x509.load_pem_x509_certificate(material.tls_crt)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_after_utc - lifetime * policy.renew_fraction


def write_cert_dir(directory: Path, material: ServingMaterial) -> None:
    """The Secret's three files, for a webhook run outside the cluster (key last, mode 0600)."""
    kube.write_file_atomically(directory / "ca.crt", material.ca_bundle)
    kube.write_file_atomically(directory / "tls.crt", material.tls_crt)
    kube.write_file_atomically(directory / "tls.key", material.tls_key, mode=0o600)


def patch_ca_bundle(k: kube.Kube, name: str, ca_bundle: bytes) -> bool:
    """Set ``caBundle`` on every webhook of the validating and the mutating configuration
    ``name``; False if neither exists (the mutating one pins digests, see admission.pin)."""
    found = False
    for kind in ("validating", "mutating"):
        found = _patch_ca_bundle(k, kind, name, ca_bundle) or found
    return found


def _patch_ca_bundle(k: kube.Kube, kind: str, name: str, ca_bundle: bytes) -> bool:
    api = k.admission
    if kind == "validating":
        read, write = (
            api.read_validating_webhook_configuration,
            api.patch_validating_webhook_configuration,
        )
    else:
        read, write = (
            api.read_mutating_webhook_configuration,
            api.patch_mutating_webhook_configuration,
        )
    try:
        current = kube.call(f"get {kind}webhookconfiguration {name}", lambda: read(name))
    except ClusterError as e:
        if kube.is_not_found(e):
            return False
        raise
    encoded = base64.b64encode(ca_bundle).decode("ascii")
    webhooks = current.webhooks or []
    if all(w.client_config.ca_bundle == encoded for w in webhooks):
        return True
    patch = {
        "webhooks": [{"name": w.name, "clientConfig": {"caBundle": encoded}} for w in webhooks]
    }
    kube.call(f"patch {kind}webhookconfiguration {name}", lambda: write(name, patch))
    return True


@dataclass(frozen=True)
class CertificateManager:
    """Keeps the Secret, the cert directory and the ``caBundle`` current; see :meth:`ensure`."""

    api: kube.Kube
    namespace: str
    dns_names: tuple[str, ...]
    ips: tuple[str, ...] = ()
    policy: CertificatePolicy = CertificatePolicy()
    cert_dir: Path | None = None
    secret_name: str = SECRET_NAME
    webhook_configuration: str = WEBHOOK_CONFIGURATION

    def load(self) -> tuple[ServingMaterial | None, str | None]:
        """The stored material (None if absent or incomplete) and the Secret's version."""
        found = kube.read_secret_data(self.api, self.namespace, self.secret_name)
        if found is None:
            return None, None
        data, version = found
        if not {"tls.crt", "tls.key", "ca.crt"} <= data.keys():
            return None, version
        return ServingMaterial(data["tls.crt"], data["tls.key"], data["ca.crt"]), version

    def ensure(self) -> ServingMaterial:
        """Rotate if needed, then make the webhook configuration and cert dir match the Secret.

        Order matters: the ``caBundle`` (new CA plus previous CA) is published before the
        Secret and the files the webhook serves from change. Replicas race safely: the Secret
        is replaced only at the version that was read; the loser adopts the winner's material.
        """
        material, version = self.load()
        reason = needs_renewal(material, self.dns_names, self.ips, self.policy)
        if material is None or reason is not None:
            log.info("issuing a new webhook serving certificate: %s", reason)
            fresh = issue(
                self.dns_names,
                self.ips,
                self.policy,
                previous_ca=material.ca_bundle if material else None,
            )
            patch_ca_bundle(self.api, self.webhook_configuration, fresh.ca_bundle)
            try:
                kube.write_tls_secret(
                    self.api, self.namespace, self.secret_name, fresh.as_secret_data(), version
                )
                material = fresh
            except ClusterError as e:
                if not kube.is_conflict(e):
                    raise
                log.info("another replica rotated the certificate first; adopting it")
                material, _ = self.load()
                if material is None:
                    raise
                patch_ca_bundle(self.api, self.webhook_configuration, material.ca_bundle)
        elif not patch_ca_bundle(self.api, self.webhook_configuration, material.ca_bundle):
            log.debug("no webhook configuration %s found", self.webhook_configuration)
        if self.cert_dir is not None:
            self._sync_dir(material)
        return material

    def _sync_dir(self, material: ServingMaterial) -> None:
        assert self.cert_dir is not None
        current = self.cert_dir / "tls.crt"
        ca = self.cert_dir / "ca.crt"
        if (
            current.exists()
            and ca.exists()
            and current.read_bytes() == material.tls_crt
            and ca.read_bytes() == material.ca_bundle
        ):
            return
        write_cert_dir(self.cert_dir, material)
