"""From an image as written in a workload to its verified evidence, with the workload's credentials.

A tag says nothing about what will run; attestations are bound to digests. So each image is
resolved to its manifest digest against its registry, using the registry credentials of the
workload's imagePullSecrets (a private registry answers 401 otherwise), and the evidence is
looked up by digest through the ``EvidenceCache``. Secrets are read through the small
``SecretReader`` protocol: the app wires in the Kubernetes API; tests pass real Secret objects.

Each lookup ends in one of three outcomes: the evidence (``Lookup``), ``Missing`` (anything
the request itself causes or controls: a bad pull secret, a registry no policy names, a missing
image, a refused credential, the budget), or ``Unavailable`` (the registry itself failed). Only
``Unavailable`` may ever take a policy's fail-open path, and its text names the registry and
nothing more; the detail goes to the log.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from affidavit.admission.registries import RegistryTrust, registry_host
from affidavit.admission.trust_roots import TrustRoots
from affidavit.attestations.evidence import ImageEvidence, TrustedSigner
from affidavit.attestations.evidence_cache import CacheResult, EvidenceCache
from affidavit.attestations.reference import ImageReference
from affidavit.attestations.registry import (
    BudgetExceededError,
    Credentials,
    RegistryAccessError,
    RegistryClient,
    RegistryUnavailableError,
    credentials_from_docker_config,
)
from affidavit.errors import AffidavitError, InputError
from affidavit.policy.index import PolicyIndex

log = logging.getLogger("affidavit.admission")

MAX_CLIENTS = 64  # pooled registry clients, one per distinct set of pull-secret credentials
MAX_SECRETS = 1024  # cached pull secrets, by (namespace, name)
#: Credentials tried for one registry, in the workload's order (each try is a lookup).
MAX_CREDENTIALS_PER_HOST = 4


class SecretReader(Protocol):
    """Reads a Secret object (``{"type": ..., "data": {...}}``, values base64) or None if absent."""

    def read_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...


@functools.lru_cache(maxsize=1024)
def access_of(credentials: Credentials | None) -> str:
    """Who reads a registry with ``credentials``, as the evidence cache tells readers apart: a
    fingerprint of them (no secret in it), or "" for none."""
    if credentials is None:
        return ""
    parts = [credentials.username, credentials.password, credentials.identity_token]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def secret_credentials(secret: Mapping[str, Any], *, where: str) -> dict[str, Credentials]:
    """Registry credentials from a ``kubernetes.io/dockerconfigjson`` (or legacy dockercfg) Secret."""
    data = secret.get("data") or {}
    kind = secret.get("type")
    try:
        if kind == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" in data:
            return credentials_from_docker_config(base64.b64decode(data[".dockerconfigjson"]))
        if kind == "kubernetes.io/dockercfg" and ".dockercfg" in data:
            auths = json.loads(base64.b64decode(data[".dockercfg"]))
            return credentials_from_docker_config({"auths": auths})
    except (ValueError, TypeError) as e:
        raise InputError(f"imagePullSecret {where} is not valid base64 JSON ({e})") from e
    raise InputError(
        f"imagePullSecret {where} has type {kind!r} without registry credentials",
        hint="use `kubectl create secret docker-registry` (type kubernetes.io/dockerconfigjson)",
    )


@dataclass(frozen=True)
class Lookup:
    """The evidence for one image, and whether the cache answered."""

    image: str
    digest: str
    evidence: ImageEvidence
    cache: CacheResult


@dataclass(frozen=True)
class Missing:
    """No evidence, for a reason the request causes or controls: never fail-open."""

    image: str
    found: str
    fix: str
    late: bool = False  # the request's time budget ran out first


@dataclass(frozen=True)
class Unavailable:
    """The image's registry itself failed (refused, timed out on its own, 5xx; not 429)."""

    image: str
    registry: str

    @property
    def found(self) -> str:
        return f"registry {self.registry} is unreachable"


Outcome = Lookup | Missing | Unavailable


class EvidenceResolver:
    """Resolves images with per-workload credentials and verifies them through a shared cache."""

    def __init__(
        self,
        *,
        cache: EvidenceCache,
        secrets: SecretReader | None = None,
        insecure_hosts: Sequence[str] = (),
        ca_bundle: Path | None = None,
        registry_timeout: float = 5.0,
        secret_ttl: float = 30.0,
        predicate_types: Sequence[str] | None = None,
        allowed_hosts: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        trust_roots: TrustRoots | None = None,
    ) -> None:
        """``allowed_hosts``: registries contacted besides those the policies name, and the
        only hosts a redirect or a token realm may lead to (``HOST[:PORT]`` or ``*.DOMAIN``)."""
        self.cache = cache
        self.trust = RegistryTrust(allowed_hosts)
        self._trust_roots = trust_roots
        self._secrets = secrets
        self._insecure_hosts = tuple(insecure_hosts)
        self._ca_bundle = ca_bundle
        self._timeout = registry_timeout
        self._secret_ttl = secret_ttl
        self._predicate_types = predicate_types
        self._clock = clock
        # Both keyed by what a Pod spec names (pull secrets, their credentials), so both are
        # bounded, least recently used first out.
        self._clients: OrderedDict[str, RegistryClient] = OrderedDict()
        self._creds: OrderedDict[tuple[str, str], tuple[float, dict[str, Credentials]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def choices(self, namespace: str, secret_names: Sequence[str]) -> dict[str, list[Credentials]]:
        """Every distinct credential the named pull secrets hold for each registry host, in the
        order the workload lists its secrets (the order the kubelet tries them in)."""
        merged: dict[str, list[Credentials]] = {}
        if self._secrets is None:
            return merged
        now = self._clock()
        for name in secret_names:
            key = (namespace, name)
            with self._lock:
                cached = self._creds.get(key)
            if cached is not None and cached[0] > now:
                creds = cached[1]
            else:
                secret = self._secrets.read_secret(namespace, name)
                creds = (
                    secret_credentials(secret, where=f"{namespace}/{name}")
                    if secret is not None
                    else {}
                )
                with self._lock:
                    self._creds[key] = (now + self._secret_ttl, creds)
                    self._creds.move_to_end(key)
                    while len(self._creds) > MAX_SECRETS:
                        self._creds.popitem(last=False)
            for host, c in creds.items():
                found = merged.setdefault(host, [])
                if c not in found:
                    found.append(c)
        return merged

    def client(self, credentials: Mapping[str, Credentials]) -> RegistryClient:
        """A pooled registry client for this set of credentials."""
        fingerprint = hashlib.sha256(
            json.dumps(
                sorted(
                    (h, c.username, c.password, c.identity_token) for h, c in credentials.items()
                )
            ).encode()
        ).hexdigest()
        with self._lock:
            found = self._clients.get(fingerprint)
            if found is None:
                found = RegistryClient(
                    insecure_hosts=self._insecure_hosts,
                    ca_bundle=self._ca_bundle,
                    credentials=credentials,
                    timeout=self._timeout,
                    allowed_hosts=self.trust.allowed,
                )
                self._clients[fingerprint] = found
                while len(self._clients) > MAX_CLIENTS:
                    # not closed: a request may still be using it; its sockets close with it
                    self._clients.popitem(last=False)
            self._clients.move_to_end(fingerprint)
            return found

    def lookup(
        self,
        image: str,
        signers: Sequence[TrustedSigner],
        *,
        namespace: str,
        pull_secrets: Sequence[str] = (),
    ) -> Lookup:
        """Resolve ``image`` to its digest and return its (cached) verified evidence.

        Raises ``RegistryError``/``InputError`` when the image cannot be resolved or fetched;
        those are never cached.
        """
        choices = self.choices(namespace, pull_secrets)
        credentials = {host: found[0] for host, found in choices.items()}
        if self._trust_roots is not None:
            signers = self._trust_roots.resolve(signers) or []
        host = registry_host(image)
        refusal: RegistryAccessError | None = None
        # As the kubelet pulls: the workload's credentials for the image's registry in the order
        # it lists them, the next one where the registry refuses or throttles the last one.
        tries: list[Credentials | None] = [*choices.get(host, [])[:MAX_CREDENTIALS_PER_HOST]]
        for alternative in tries or [None]:
            if alternative is not None:
                credentials[host] = alternative
            try:
                found = self.cache.lookup(
                    self.client(credentials),
                    image,
                    signers,
                    predicate_types=self._predicate_types,
                    access=access_of(credentials.get(host)),
                )
            except RegistryAccessError as e:
                refusal = refusal or e
                continue
            return Lookup(image, found.digest, found.evidence, found.result)
        assert refusal is not None
        raise refusal

    def cached(
        self,
        image: str,
        signers: Sequence[TrustedSigner],
        *,
        index: PolicyIndex,
        namespace: str,
        pull_secrets: Sequence[str] = (),
    ) -> Lookup | None:
        """What ``outcome`` would answer from the cache alone, or None when it needs I/O.

        Only for an image pinned by digest, on a registry the webhook contacts, whose pull
        secrets (if any) are cached and whose evidence is cached and fresh: then ``outcome``
        contacts nothing either, and the request need not queue for a lookup thread.
        """
        try:
            ref = ImageReference.parse(image)
        except InputError:
            return None
        if ref.digest is None or not self.trust.permits(ref.registry, index):
            return None
        first: Credentials | None = None  # the lookup's first try for the image's registry
        if pull_secrets:
            now = self._clock()
            with self._lock:
                for name in pull_secrets:
                    cached = self._creds.get((namespace, name))
                    if cached is None or cached[0] <= now:
                        return None
                    if first is None:
                        first = cached[1].get(ref.registry)
        if self._trust_roots is not None:
            resolved = self._trust_roots.resolve(signers, io=False)
            if resolved is None:
                return None
            signers = resolved
        key = self.cache.key(ref.digest, signers, self._predicate_types, ref.name)
        evidence = self.cache.get(key, count_miss=False)
        if evidence is None or not self.cache.read_by(key, access_of(first)):
            return None  # a reader not yet shown to the registry asks it (``EvidenceCache``)
        if evidence.image != image:
            evidence = replace(evidence, image=image)
        return Lookup(image, ref.digest, evidence, "hit" if evidence.verified else "negative_hit")

    def outcome(
        self,
        image: str,
        signers: Sequence[TrustedSigner],
        *,
        index: PolicyIndex,
        namespace: str,
        pull_secrets: Sequence[str] = (),
    ) -> Outcome:
        """``lookup`` for an untrusted request: the evidence, ``Missing`` or ``Unavailable``.

        A registry that neither a policy nor the allow-list names is never contacted.
        """
        try:
            host = registry_host(image)
        except InputError as e:
            return Missing(image, e.message, "write the image as REGISTRY/REPOSITORY[:TAG]")
        if not self.trust.permits(host, index):
            return Missing(
                image,
                f"registry {host} is not one the webhook contacts (no AccountabilityPolicy's "
                "match.images names it and registry.allowedHosts does not list it)",
                "deploy the image from a registry a policy names, or add the registry to "
                "registry.allowedHosts",
            )
        try:
            return self.lookup(image, signers, namespace=namespace, pull_secrets=pull_secrets)
        except RegistryUnavailableError as e:
            log.warning("registry of %s unavailable: %s", image, e.message)
            return Unavailable(image, host)
        except BudgetExceededError as e:
            return Missing(image, e.message, "retry", late=True)
        except AffidavitError as e:
            log.info("evidence for %s is missing: %s", image, e.message)
            return Missing(
                image,
                e.message,
                e.hint or "check the image reference and the workload's imagePullSecrets",
            )
        except Exception as e:  # a bug or the API server: fail closed, never fail open
            log.exception("evidence lookup for %s crashed", image)
            return Missing(
                image,
                f"the lookup failed ({type(e).__name__})",
                "retry; the webhook's log has the detail",
            )
