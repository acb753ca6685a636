"""Every cache the webhook keys by what a request names is bounded: the effective-policy cache
(count, and no key longer than a real image and namespace), namespace labels, pull secrets, and
registry clients per credential set. Under varied input (the fuzz run) memory stays flat."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest

from affidavit.admission import resolve
from affidavit.admission.policy_source import NamespaceLabels
from affidavit.admission.resolve import EvidenceResolver
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.attestations.registry import Credentials
from affidavit.policy import PolicyIndex

_PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAtest\n-----END PUBLIC KEY-----\n"


def _index() -> PolicyIndex:
    spec = {
        "match": {"images": ["*/shop/*"]},
        "signers": {"keys": [{"name": "ci", "publicKey": _PEM}]},
        "require": {"provenance": {"required": True}},
    }
    meta = {"name": "shop", "generation": 1}
    kind = {"apiVersion": "affidavit.dev/v1alpha1", "kind": "AccountabilityPolicy"}
    return PolicyIndex.from_objects([{**kind, "metadata": meta, "spec": spec}], [], [])


def _effective(ix: PolicyIndex, namespace: str, image: str) -> Any:
    return ix.effective(
        cluster="c", region="r", namespace=namespace, namespace_labels={}, image=image
    )


def test_the_effective_policy_cache_keeps_at_most_4096_keys_of_ordinary_size() -> None:
    ix = _index()
    for n in range(5000):
        _effective(ix, f"ns{n}", f"reg.example/shop/app{n}:1")
    assert len(ix._cache) == 4096
    fresh = _index()
    # Image names are capped at 255 characters by the reference grammar; the namespace (and
    # its labels) are the request's other strings in the key.
    assert _effective(fresh, "n" * 2000, "reg.example/shop/app:1") is not None
    assert len(fresh._cache) == 0  # computed, never kept


class _Namespaces:
    def read_namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        return {"team": namespace[:8]}


def test_namespace_labels_keep_the_most_recent_namespaces() -> None:
    labels = NamespaceLabels(_Namespaces(), max_entries=10)
    for n in range(100):
        labels.labels(f"ns{n}")
    assert list(labels._cache) == [f"ns{n}" for n in range(90, 100)]


class _Secrets:
    def read_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        config = {"auths": {"reg.example": {"username": name, "password": "p"}}}
        data = base64.b64encode(json.dumps(config).encode()).decode()
        return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": data}}


def test_pull_secrets_and_registry_clients_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "MAX_CLIENTS", 4)  # each client builds a TLS context: slow
    resolver = EvidenceResolver(cache=EvidenceCache(), secrets=_Secrets())
    try:
        for n in range(resolve.MAX_SECRETS + 50):
            resolver.choices("shop", [f"secret-{n}"])
        assert len(resolver._creds) == resolve.MAX_SECRETS
        assert ("shop", f"secret-{resolve.MAX_SECRETS + 49}") in resolver._creds
        for n in range(resolve.MAX_CLIENTS + 10):
            resolver.client({"reg.example": Credentials(f"user-{n}", "p")})
        assert len(resolver._clients) == resolve.MAX_CLIENTS
    finally:
        resolver.close()


def test_credentials_differing_only_in_their_identity_token_get_their_own_clients() -> None:
    """Two workloads' identity tokens (docker's ``identitytoken``, user ``<token>``, no password)
    must not share one pooled client: the second would be looked up with the first's token."""
    resolver = EvidenceResolver(cache=EvidenceCache())
    try:
        first = resolver.client({"reg.example": Credentials("<token>", "", identity_token="a")})
        second = resolver.client({"reg.example": Credentials("<token>", "", identity_token="b")})
        assert first is not second
        again = resolver.client({"reg.example": Credentials("<token>", "", identity_token="a")})
        assert again is first
    finally:
        resolver.close()
