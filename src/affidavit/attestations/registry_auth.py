"""Registry authentication: credentials from imagePullSecrets, Basic, and the Bearer token flow.

Registries answer 401 with a ``WWW-Authenticate`` challenge: Basic (send the user and password)
or Bearer (fetch a token for a scope from the realm, with the user and password if any). The
credentials come in the form Kubernetes and Docker keep them, a dockerconfigjson. Kept apart from
the distribution calls so the client reads as the spec's operations.
"""

from __future__ import annotations

import base64
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from affidavit.attestations.reference import ImageReference, canonical_host
from affidavit.attestations.registry_transport import (
    BudgetExceededError,
    ForbiddenHostError,
    HostRules,
    RegistryAccessError,
    RegistryUnavailableError,
    authority,
    connect_reason,
    request_timeout,
)
from affidavit.attestations.registry_wire import Wire, WireError
from affidavit.errors import AffidavitError, InputError, RegistryError

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Credentials:
    """A user name and password for one registry host, or an identity token: an OAuth2 refresh
    token the registry's token service exchanges for access (docker's ``identitytoken``)."""

    username: str
    password: str
    identity_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never a secret in a log line or a traceback
        return f"Credentials(username={self.username!r}, password=***)"


class CredentialLookup(ABC):
    """Credentials found per registry host when a registry asks (files, helpers), not a
    mapping filled in advance."""

    @abstractmethod
    def get(self, host: str) -> Credentials | None:
        """The credentials for ``host`` (canonical), or None."""


def host_of(key: str) -> str:
    """The registry host a config key names: ``https://HOST/v1/``, ``HOST``, ``HOST/REPO``;
    Docker Hub's names all as ``docker.io``."""
    host = re.sub(r"^https?://", "", key.strip()).split("/", 1)[0]
    try:
        return canonical_host(host)
    except AffidavitError:
        return host


def credentials_from_docker_config(
    config: bytes | str | Mapping[str, Any],
) -> dict[str, Credentials]:
    """Registry credentials from a dockerconfigjson document (an imagePullSecret's payload)."""
    try:
        document = json.loads(config) if isinstance(config, bytes | str) else dict(config)
        auths = document.get("auths", {})
        result: dict[str, Credentials] = {}
        for key, entry in auths.items():
            host = host_of(key)
            if entry.get("auth"):
                user, _, password = (
                    base64.b64decode(entry["auth"], validate=True).decode().partition(":")
                )
            else:
                user, password = entry.get("username", ""), entry.get("password", "")
            token = entry.get("identitytoken") or None
            if token is not None and not isinstance(token, str):
                raise TypeError(f"the identitytoken of {key} is not a string")
            if user or token:
                result[host] = Credentials(user, password, identity_token=token)
        return result
    except (ValueError, AttributeError, TypeError, UnicodeDecodeError) as e:
        raise InputError(
            f"the registry credentials are not a valid dockerconfigjson ({e})",
            hint='expected {"auths": {"HOST": {"auth": base64("user:password")}}}',
        ) from e


def authorization(
    http: Wire,
    ref: ImageReference,
    challenge: str,
    creds: Credentials | None,
    *,
    push: bool,
    rules: HostRules | None = None,
    timeout: float = 10.0,
) -> str:
    """The Authorization header that answers a 401's WWW-Authenticate ``challenge``.

    ``creds`` are the registry's own; they go to its token realm only when the realm is on the
    registry's host or on a host ``rules`` allow (a registry cannot send them elsewhere).
    """
    rules = rules or HostRules()
    scheme, _, params_text = challenge.partition(" ")
    basic = (
        "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        if creds and creds.username
        else None
    )
    if scheme.lower() == "basic":
        if basic is None:
            raise RegistryAccessError(
                f"registry {ref.registry} refused access to {ref.name}: it requires a user "
                "name and password and none were given",
                hint="docker login (or podman login) to it, or pass credentials as a "
                "dockerconfigjson (--registry-config FILE)",
            )
        return basic
    if scheme.lower() != "bearer":
        raise RegistryError(
            f"registry {ref.registry} asks for unsupported authentication {challenge!r}"
        )
    params = dict(_CHALLENGE_PARAM.findall(params_text))
    realm = params.get("realm")
    if not realm:
        raise RegistryError(f"registry {ref.registry} sent a Bearer challenge without a realm")
    try:
        realm_host = authority(realm)
        registry_host = authority(f"https://{ref.registry}/")
    except ValueError as e:
        raise RegistryError(f"registry {ref.registry} named an invalid token realm") from e
    realm_scheme = urlsplit(realm).scheme.lower()
    if realm_host != registry_host and not rules.permits(realm_host):
        import logging  # only when a registry misbehaves: the start of a verify

        logging.getLogger("affidavit.registry").warning(
            "registry %s named token realm %s, which is not allowed", ref.registry, realm
        )
        raise ForbiddenHostError(
            f"registry {ref.registry} named a token service on another host, which is not "
            "among the allowed registry hosts",
            hint="if that host is the registry's token service, add it to "
            "registry.allowedHosts (--registry-allowed-host)",
        )
    if realm_scheme != "https" and not rules.plain_http(realm_host):
        raise ForbiddenHostError(
            f"registry {ref.registry} named a token service over plain HTTP on {realm_host}, "
            "which must use TLS"
        )
    # A challenge may name several scopes, space-separated (a blob mount asks for pull on the
    # repository it mounts from too): each goes to the token service as a scope of its own.
    scope = params.get("scope") or f"repository:{ref.repository}:{'pull,push' if push else 'pull'}"
    query = [("scope", one) for one in scope.split()]
    if "service" in params:
        query.append(("service", params["service"]))
    wait, budget_bound = request_timeout(ref.registry, timeout)
    try:
        if creds is not None and creds.identity_token:
            # OAuth2: the refresh token is exchanged for an access token (distribution's
            # token service; what docker does with an identitytoken)
            form = [
                *query,
                ("grant_type", "refresh_token"),
                ("refresh_token", creds.identity_token),
                ("client_id", "affidavit"),
            ]
            request = http.stream(
                "POST",
                realm,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                content=urlencode(form).encode(),
                timeout=wait,
            )
        else:
            separator = "&" if urlsplit(realm).query else "?"
            request = http.stream(
                "GET",
                realm + separator + urlencode(query),
                headers={"Authorization": basic} if basic else {},
                timeout=wait,
            )
        with request as r:
            status, answer = r.status_code, r.read()
    except WireError as e:
        if e.timed_out and budget_bound:
            raise BudgetExceededError(
                f"the time budget ran out before registry {ref.registry} answered"
            ) from e
        raise RegistryUnavailableError(
            ref.registry,
            f"token service {realm} of registry {ref.registry} is unreachable: {connect_reason(e)}",
        ) from e
    if status >= 500:
        raise RegistryUnavailableError(
            ref.registry,
            f"token service {realm} of registry {ref.registry} answered HTTP {status}",
        )
    if status != 200:
        raise RegistryAccessError(
            f"registry {ref.registry} refused access to {ref.name}: its token service "
            f"answered HTTP {status}",
            hint="check the credentials (--registry-config) and that they may "
            f"{'push to' if push else 'pull from'} {ref.repository}",
        )
    try:
        body = json.loads(answer)
        token = body.get("token") or body.get("access_token")
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise RegistryError(f"token service {realm} answered with no token") from e
    if not isinstance(token, str) or not token:
        raise RegistryError(f"token service {realm} answered with no token")
    return f"Bearer {token}"
