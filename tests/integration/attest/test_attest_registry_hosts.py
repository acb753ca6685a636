"""Whom the registry client talks to: redirects, token realms and credentials, against hostile
registries on loopback (small HTTP servers that record what they receive).

A registry may redirect only to its own host or to a host the caller allows, and the
Authorization header never follows a redirect to another host; a token realm on another host is
refused unless allowed; credentials go only to the host they are for.
"""

from __future__ import annotations

import base64

import pytest

from affidavit.attestations.registry import (
    Credentials,
    ForbiddenHostError,
    ImageReference,
    RegistryClient,
)
from affidavit.errors import RegistryError
from hostile_registries import (
    Seen,
    hostile_registry,
    manifest,
    redirect_to,
    requires,
    token,
)

BASIC = "Basic " + base64.b64encode(b"ci:s3cret").decode()


def _ref(host: str) -> ImageReference:
    return ImageReference.parse(f"{host}/team/app:1")


def test_redirect_to_another_host_is_refused_unless_allowed() -> None:
    with (
        hostile_registry(manifest) as elsewhere,
        hostile_registry(redirect_to(elsewhere.url)) as registry,
    ):
        with RegistryClient(allowed_hosts=()) as client, pytest.raises(ForbiddenHostError) as e:
            client.get_manifest(_ref(registry.host))
        assert e.value.message == (
            f"registry {registry.host} redirected to another host, which is not among the "
            "allowed registry hosts"
        )
        assert elsewhere.seen == []
        with RegistryClient(allowed_hosts=[elsewhere.host]) as client:
            assert client.get_manifest(_ref(registry.host)).media_type.endswith("manifest.v1+json")
        assert [s.path for s in elsewhere.seen] == ["/v2/team/app/manifests/1"]


def test_authorization_never_follows_a_redirect_to_another_host() -> None:
    with hostile_registry(manifest) as blobs:
        behaviour = requires(BASIC, redirect_to(blobs.url), 'Basic realm="registry"')
        with hostile_registry(behaviour) as registry:
            credentials = {registry.host: Credentials("ci", "s3cret")}
            with RegistryClient(credentials=credentials, allowed_hosts=[blobs.host]) as client:
                client.get_manifest(_ref(registry.host))
            assert [s.authorization for s in registry.seen] == [None, BASIC]
            assert blobs.seen == [Seen("GET", "/v2/team/app/manifests/1", None)]


def test_token_realm_on_another_host_is_refused_unless_allowed() -> None:
    with hostile_registry(token("t0ken")) as realm:
        challenge = f'Bearer realm="{realm.url}/token",service="registry"'
        with hostile_registry(requires("Bearer t0ken", manifest, challenge)) as registry:
            credentials = {registry.host: Credentials("ci", "s3cret")}
            with (
                RegistryClient(credentials=credentials, allowed_hosts=()) as client,
                pytest.raises(ForbiddenHostError) as e,
            ):
                client.get_manifest(_ref(registry.host))
            assert e.value.message == (
                f"registry {registry.host} named a token service on another host, which is not "
                "among the allowed registry hosts"
            )
            assert realm.seen == []  # the credentials never left for the realm
            with RegistryClient(credentials=credentials, allowed_hosts=[realm.host]) as client:
                client.get_manifest(_ref(registry.host))
            assert [s.authorization for s in realm.seen] == [BASIC]
            assert [s.authorization for s in registry.seen][-1] == "Bearer t0ken"


def test_credentials_go_only_to_the_host_they_are_for() -> None:
    with (
        hostile_registry(requires(BASIC, manifest, 'Basic realm="x"')) as stranger,
        hostile_registry(manifest) as own,
    ):
        credentials = {own.host: Credentials("ci", "s3cret")}
        with (
            RegistryClient(credentials=credentials, allowed_hosts=()) as client,
            pytest.raises(RegistryError) as e,
        ):
            client.get_manifest(_ref(stranger.host))
        assert e.value.message == (
            f"registry {stranger.host} refused access to {stranger.host}/team/app: it "
            "requires a user name and password and none were given"
        )
        assert [s.authorization for s in stranger.seen] == [None]
        assert own.seen == []
