"""Which registries the webhook may contact: the ones the policies name, and an allow-list.

The image reference in a Pod spec is written by whoever submits the Pod. If the webhook dialled
every host it names, any namespace could make it probe internal addresses (a port scanner whose
answer is the denial text) or point it at a registry that answers slowly on purpose. So a host
is contacted only when an ``AccountabilityPolicy``'s ``match.images`` names it literally (or as
``*.DOMAIN``), or the cluster's ``registry.allowedHosts`` lists it. A glob that starts with a
wildcard (``*/team/*``) names no registry; one without a host (``team/*``) names Docker Hub, as
the reference grammar reads it. An image on any other host gets *missing evidence*,
never *registry unavailable*, so it can never take a fail-open path.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from affidavit.attestations.reference import GLOB_CHARS, ImageReference, canonical_glob
from affidavit.attestations.registry_transport import allowed_patterns, host_matches
from affidavit.policy.index import PolicyIndex


def registry_host(image: str) -> str:
    """The host the allow-list compares: the image's canonical registry (lower case, no
    ``:443``, Docker Hub's aliases folded into ``docker.io``)."""
    return ImageReference.parse(image).registry


def named_host(glob: str) -> str | None:
    """The registry host a ``match.images`` glob names, or None when it names none.

    The glob is read with the reference grammar (``canonical_glob``), as the index reads it:
    ``team/*`` means ``docker.io/team/*`` and so names Docker Hub.
    """
    host, sep, _ = canonical_glob(glob).partition("/")
    if not sep or not host:
        return None
    if host.startswith("[[]"):  # an IPv6 literal, its bracket escaped for fnmatch
        return "[" + host[3:]
    if host.startswith("*.") and not (GLOB_CHARS & set(host[2:])):
        return host.lower().removesuffix(":443")
    if GLOB_CHARS & set(host):
        return None
    return host


class RegistryTrust:
    """The hosts one policy index and the allow-list permit; cached per index digest."""

    def __init__(self, allowed_hosts: Sequence[str] = ()) -> None:
        self.allowed = allowed_patterns(allowed_hosts) or frozenset()
        self._lock = threading.Lock()
        self._cached: tuple[str, tuple[frozenset[str], frozenset[str], tuple[str, ...]]] | None = (
            None
        )

    def policy_hosts(self, index: PolicyIndex) -> frozenset[str]:
        return self._patterns(index)[0]

    def _patterns(
        self, index: PolicyIndex
    ) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
        """The policies' hosts; and of those and the allow-list, the exact hosts and the
        ``*.DOMAIN`` patterns (every review asks: worked out once per index)."""
        with self._lock:
            if self._cached is not None and self._cached[0] == index.digest:
                return self._cached[1]
        hosts = frozenset(
            h
            for p in index.policies
            for glob in p.spec.match.images
            if (h := named_host(glob)) is not None
        )
        patterns = self.allowed | hosts
        wildcards = tuple(sorted(p for p in patterns if p.startswith("*.")))
        exact = frozenset(p.lower() for p in patterns if not p.startswith("*."))
        found = (hosts, exact, wildcards)
        with self._lock:
            self._cached = (index.digest, found)
        return found

    def permits(self, host: str, index: PolicyIndex) -> bool:
        _, exact, wildcards = self._patterns(index)
        return host.lower() in exact or any(host_matches(host, p) for p in wildcards)
