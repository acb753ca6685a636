"""Which registry hosts the webhook may contact: the hosts policies' image globs name literally
(or as *.DOMAIN), plus the allow-list; a glob that starts with a wildcard names none."""

from __future__ import annotations

import pytest

from affidavit.admission.registries import RegistryTrust, named_host, registry_host
from affidavit.attestations.keys import generate_key_pair
from affidavit.policy.index import PolicyIndex


@pytest.mark.parametrize(
    ("glob", "host"),
    [
        ("registry.example.com/team/*", "registry.example.com"),
        ("REGISTRY.example.com:443/team/*", "registry.example.com"),
        ("127.0.0.1:5000/*", "127.0.0.1:5000"),
        ("localhost/app", "localhost"),
        ("*.example.com/app/*", "*.example.com"),
        ("*/team/*", None),
        ("reg*.example.com/app", None),
        ("registry.example.?om/app", None),
        ("team/app", None),  # a repository path, not a host
        ("*", None),
    ],
)
def test_named_host(glob: str, host: str | None) -> None:
    assert named_host(glob) == host


PEM = generate_key_pair("ecdsa-p256")[1].decode()


def _index(*globs: str) -> PolicyIndex:
    policy = {
        "apiVersion": "affidavit.dev/v1alpha1",
        "kind": "AccountabilityPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "match": {"images": list(globs)},
            "signers": {"keys": [{"name": "k", "publicKey": PEM}]},
        },
    }
    ix = PolicyIndex.from_objects([policy], [], [])
    assert ix.errors == {}
    return ix


def test_policy_hosts_and_the_allow_list() -> None:
    trust = RegistryTrust(["mirror.example.net", "*.cdn.example.org"])
    ix = _index("registry.example.com/team/*", "*/other/*", "*.corp.example/app")
    assert trust.policy_hosts(ix) == {"registry.example.com", "*.corp.example"}
    assert trust.permits("registry.example.com", ix)
    assert trust.permits("eu.corp.example", ix)
    assert trust.permits("mirror.example.net", ix)
    assert trust.permits("blobs.cdn.example.org", ix)
    assert not trust.permits("corp.example", ix)  # *.DOMAIN is sub-domains only
    assert not trust.permits("registry.example.com:5000", ix)  # another port, another server
    assert not trust.permits("10.0.0.1:6379", ix)
    assert not trust.permits("evil.example", ix)


def test_registry_host_is_lower_case_without_the_default_port() -> None:
    assert registry_host("Registry.Example.com:443/team/app:1") == "registry.example.com"
