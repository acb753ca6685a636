"""Registry credentials where people already keep them: docker's and podman's config files and
docker credential helpers, looked up one registry host at a time.

A pipeline that ran ``docker login`` (or ``podman login``, ``skopeo login``, a cloud's credential
helper) has its credentials in one of these places, in this order:

- ``$REGISTRY_AUTH_FILE`` (podman, skopeo, buildah)
- ``$XDG_RUNTIME_DIR/containers/auth.json``, then ``~/.config/containers/auth.json``
- ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (docker)

In each file, as docker reads it: ``credHelpers[HOST]`` names a helper for that host, else
``credsStore`` one for every host, else ``auths[HOST]`` holds ``auth`` (base64 user:password),
``username``/``password`` or an ``identitytoken`` (an OAuth2 refresh token for the registry's
token service). A helper is the program ``docker-credential-NAME``: it reads the server on stdin
after ``get`` and prints ``{"Username", "Secret"}``, the user ``<token>`` marking an identity
token. Nothing is read or run until a registry asks for credentials, and then only for that
registry's host: a helper is never asked about, and credentials never go to, another host.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from affidavit.attestations.registry_auth import (
    CredentialLookup,
    Credentials,
    credentials_from_docker_config,
    host_of,
)
from affidavit.errors import InputError

#: The user name a credential helper gives for an identity token (docker's convention).
TOKEN_USER = "<token>"  # noqa: S105 - a marker, not a secret
#: What docker's helpers print when they hold nothing for the server asked about.
_NOT_FOUND = "credentials not found"
#: The server docker asks helpers about for Docker Hub.
_HUB_SERVER = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 30.0


def config_files(env: Mapping[str, str] | None = None) -> list[Path]:
    """The credential files consulted, in order (whether or not they exist)."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    files: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(home / ".config" / "containers" / "auth.json")
    docker = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
    files.append(docker / "config.json")
    return files


def _by_host(entries: Any, where: Path, field: str) -> dict[str, Any]:
    if entries is None:
        return {}
    if not isinstance(entries, dict):
        raise InputError(f"registry credentials file {where}: {field} is not a JSON object")
    return {host_of(key): value for key, value in entries.items()}


class DockerCredentials(CredentialLookup):
    """Credentials by registry host, from ``explicit`` ones (``--registry-config``) first, then
    the config files and their helpers; each host looked up once, when first asked for."""

    def __init__(
        self,
        explicit: Mapping[str, Credentials] | None = None,
        *,
        files: list[Path] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._explicit = {host_of(h): c for h, c in (explicit or {}).items()}
        self._files = config_files(env) if files is None else files
        self._env = dict(os.environ if env is None else env)
        self._documents: list[tuple[Path, dict[str, Any]]] | None = None
        self._found: dict[str, Credentials | None] = {}

    def get(self, host: str) -> Credentials | None:
        if host not in self._found:
            self._found[host] = self._lookup(host)
        return self._found[host]

    def _load(self) -> list[tuple[Path, dict[str, Any]]]:
        if self._documents is None:
            self._documents = []
            for path in self._files:
                try:
                    text = path.read_text(encoding="utf-8")
                except FileNotFoundError:
                    continue
                except (OSError, UnicodeDecodeError) as e:
                    raise InputError(f"cannot read registry credentials file {path}: {e}") from e
                try:
                    document = json.loads(text) if text.strip() else {}
                except ValueError as e:
                    raise InputError(
                        f"registry credentials file {path} is not valid JSON: {e}",
                        hint="fix or remove it (docker login and podman login write it)",
                    ) from e
                if not isinstance(document, dict):
                    raise InputError(f"registry credentials file {path} is not a JSON object")
                self._documents.append((path, document))
        return self._documents

    def _lookup(self, host: str) -> Credentials | None:
        if host in self._explicit:
            return self._explicit[host]
        for path, document in self._load():
            helpers = _by_host(document.get("credHelpers"), path, "credHelpers")
            if host in helpers:
                return self._helper(str(helpers[host]), host, path)
            store = document.get("credsStore")
            if isinstance(store, str) and store:
                found = self._helper(store, host, path)
                if found is not None:
                    return found
            auths = _by_host(document.get("auths"), path, "auths")
            if host in auths:
                entry = credentials_from_docker_config({"auths": {host: auths[host]}}).get(host)
                if entry is not None:
                    return entry
        return None

    def _helper(self, name: str, host: str, path: Path) -> Credentials | None:
        import shutil  # only a helper needs them: a verify of a public image starts without
        import subprocess

        program = f"docker-credential-{name}"
        binary = shutil.which(program, path=self._env.get("PATH"))
        if binary is None:
            raise InputError(
                f"{path} names the credential helper {program} for {host}, and it is not on PATH",
                hint=f"install {program}, or remove it from {path}",
            )
        server = _HUB_SERVER if host == "docker.io" else host
        try:
            done = subprocess.run(
                [binary, "get"],
                input=server,
                capture_output=True,
                text=True,
                timeout=HELPER_TIMEOUT,
                env=self._env,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InputError(f"credential helper {program} failed for {host}: {e}") from e
        if done.returncode != 0:
            said = (done.stdout + done.stderr).strip()
            if _NOT_FOUND in said.lower():
                return None
            raise InputError(
                f"credential helper {program} failed for {host} (exit {done.returncode}): "
                f"{said[:200] or 'no message'}"
            )
        try:
            answer = json.loads(done.stdout)
            user, secret = answer["Username"], answer["Secret"]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(
                f"credential helper {program} answered for {host} with no Username and Secret"
            ) from e
        if not isinstance(user, str) or not isinstance(secret, str):
            raise InputError(f"credential helper {program} answered for {host} with non-strings")
        if user == TOKEN_USER:
            return Credentials("", "", identity_token=secret)
        return Credentials(user, secret)
