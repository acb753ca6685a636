"""Which registries the webhook may contact: the ones the policies name, and an allow-list.

The image reference in a Pod spec is written by whoever submits the Pod. If the webhook dialled
every host it names, any namespace could make it probe internal addresses (a port scanner whose
answer is the denial text) or point it at a registry that answers slowly on purpose. So a host
is contacted only when an ``AccountabilityPolicy``'s ``match.images`` names it literally (or as
``*.DOMAIN``), or the cluster's ``registry.allowedHosts`` lists it. A glob that starts with a
wildcard (``*/team/*``) names no registry. An image on any other host gets *missing evidence*,
never *registry unavailable*, so it can never take a fail-open path.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from affidavit.attestations.reference import ImageReference
from affidavit.attestations.registry_transport import allowed_patterns, host_matches
from affidavit.policy.index import PolicyIndex

_GLOB = frozenset("*?[")


def registry_host(image: str) -> str:
    """The host the allow-list compares: the image's registry, lower-case.

    Seam for the canonical reference grammar (default registry, Docker Hub aliases, default
    port): once images reach the webhook in canonical form this stays a plain lookup.
    """
    return ImageReference.parse(image).registry.lower().removesuffix(":443")


def named_host(glob: str) -> str | None:
    """The registry host a ``match.images`` glob names, or None when it names none."""
    host, sep, _ = glob.partition("/")
    if not sep or not host:
        return None
    host = host.lower().removesuffix(":443")
    if host.startswith("*.") and not (_GLOB & set(host[2:])):
        return host
    if _GLOB & set(host):
        return None
    if "." not in host and ":" not in host and host != "localhost":
        return None  # `team/*` is a repository path on the default registry, not a host
    return host


class RegistryTrust:
    """The hosts one policy index and the allow-list permit; cached per index digest."""

    def __init__(self, allowed_hosts: Sequence[str] = ()) -> None:
        self.allowed = allowed_patterns(allowed_hosts) or frozenset()
        self._lock = threading.Lock()
        self._cached: tuple[str, frozenset[str]] | None = None

    def policy_hosts(self, index: PolicyIndex) -> frozenset[str]:
        with self._lock:
            if self._cached is not None and self._cached[0] == index.digest:
                return self._cached[1]
        hosts = frozenset(
            h
            for p in index.policies
            for glob in p.spec.match.images
            if (h := named_host(glob)) is not None
        )
        with self._lock:
            self._cached = (index.digest, hosts)
        return hosts

    def permits(self, host: str, index: PolicyIndex) -> bool:
        patterns = self.allowed | self.policy_hosts(index)
        return any(host_matches(host, p) for p in patterns)
