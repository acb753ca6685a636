"""Registry credentials the way people have them, through the real CLI against real registries:
docker-registry with htpasswd (basic auth) and one behind a real token service.

``docker login``'s ``~/.docker/config.json`` (or ``$DOCKER_CONFIG``), podman's
``$REGISTRY_AUTH_FILE``, ``auths`` entries (``auth``, ``username``/``password``,
``identitytoken``), and ``credHelpers``/``credsStore`` naming a ``docker-credential-NAME``
program: here a real helper script the test writes on PATH, which logs every server it is asked
about — so the tests also show a helper is only asked about the registry that wants credentials.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from attest_token_server import REFRESH_TOKEN

from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import Credentials, ImageReference, RegistryClient
from affidavit.cli.main import main

TYPE = "https://example.com/custom/v1"
HELPER = """#!/bin/sh
[ "$1" = get ] || exit 3
read -r server
echo "$server" >> {log}
case "$server" in
{cases}
*) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own, with none of the machine's credential settings."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "COSIGN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert main(["keygen", "-o", str(tmp_path / "ci")]) == 0
    return home


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _image(host: str, name: str) -> ImageReference:
    repository = ImageReference.parse(f"{host}/{name}")
    with RegistryClient(credentials={host: Credentials("ci", "s3cret")}) as client:
        return repository.with_digest(push_sample_image(client, repository, {"a": b"1"}, "v1"))


def _helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> Path:
    """``docker-credential-affidavit-test`` on PATH; returns the log of servers asked about."""
    bin_dir, log = tmp_path / "bin", tmp_path / "helper.log"
    bin_dir.mkdir(exist_ok=True)
    cases = "\n".join(
        f"'{server}') printf '%s' '{json.dumps({'ServerURL': server, **answer})}' ;;"
        for server, answer in ((s, json.loads(a)) for s, a in answers.items())
    )
    script = bin_dir / "docker-credential-affidavit-test"
    script.write_text(HELPER.format(log=log, cases=cases))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log.write_text("")
    return log


def _attest_and_verify(image: ImageReference, tmp_path: Path, predicate: Path) -> tuple[int, int]:
    attested = main(["attest", str(image), "--predicate", str(predicate), "--type", TYPE,
                     "--key", str(tmp_path / "ci.key")])  # fmt: skip
    verified = main(["verify", str(image), "--key", str(tmp_path / "ci.pub")])
    return attested, verified


@pytest.fixture
def predicate(tmp_path: Path) -> Path:
    path = tmp_path / "predicate.json"
    path.write_text('{"anything": 1}')
    return path


def test_docker_login_in_the_home_directory(
    auth_registry: str, home: Path, tmp_path: Path, predicate: Path
) -> None:
    image = _image(auth_registry, "home-config")
    assert _attest_and_verify(image, tmp_path, predicate) == (5, 5)  # no credentials yet
    _write(home / ".docker" / "config.json", {"auths": {auth_registry: _auth("ci", "s3cret")}})
    assert _attest_and_verify(image, tmp_path, predicate) == (0, 0)


def test_docker_config_then_registry_auth_file_come_first(
    auth_registry: str,
    home: Path,
    tmp_path: Path,
    predicate: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = _image(auth_registry, "env-config")
    _write(home / ".docker" / "config.json", {"auths": {auth_registry: _auth("ci", "guess")}})
    assert _attest_and_verify(image, tmp_path, predicate) == (5, 5)
    docker = _write(tmp_path / "docker" / "config.json",
                    {"auths": {f"http://{auth_registry}/v2/": {"username": "ci",
                                                              "password": "s3cret"}}})  # fmt: skip
    monkeypatch.setenv("DOCKER_CONFIG", str(docker.parent))
    assert _attest_and_verify(image, tmp_path, predicate) == (0, 0)
    podman = _write(tmp_path / "auth.json", {"auths": {auth_registry: _auth("ci", "guess")}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(podman))
    capsys.readouterr()
    assert main(["verify", str(image), "--key", str(tmp_path / "ci.pub")]) == 5
    assert capsys.readouterr().err.startswith(f"error: registry {auth_registry} refused access")


def test_a_credential_helper_is_run_for_its_host_only(
    auth_registry: str,
    registry: Any,
    home: Path,
    tmp_path: Path,
    predicate: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = _helper(tmp_path, monkeypatch, {auth_registry: '{"Username": "ci", "Secret": "s3cret"}'})
    _write(home / ".docker" / "config.json", {"credHelpers": {auth_registry: "affidavit-test"}})
    image = _image(auth_registry, "helper")
    assert _attest_and_verify(image, tmp_path, predicate) == (0, 0)
    assert log.read_text().splitlines() == [auth_registry, auth_registry]  # once per command

    open_image = _image(registry.host, "no-auth-needed")  # asks for no credentials
    assert main(["verify", str(open_image), "--key", str(tmp_path / "ci.pub")]) == 4
    assert log.read_text().splitlines() == [auth_registry, auth_registry]


def test_an_identity_token_from_a_helper_or_auths(
    token_registry: Any,
    auth_registry: str,
    home: Path,
    tmp_path: Path,
    predicate: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docker's identity token (an OAuth2 refresh token) goes to the registry's token service in
    the OAuth2 form; a credsStore that holds nothing for a host falls back to ``auths``."""
    host = token_registry.host
    token = json.dumps({"Username": "<token>", "Secret": REFRESH_TOKEN})
    log = _helper(tmp_path, monkeypatch, {host: token})
    config = home / ".docker" / "config.json"
    _write(config, {"credHelpers": {host: "affidavit-test"}})
    image = _image(host, "identity-token")
    before = token_registry.granted.count("grant:refresh_token")
    assert _attest_and_verify(image, tmp_path, predicate) == (0, 0)
    assert token_registry.granted.count("grant:refresh_token") > before

    _write(config, {"credsStore": "affidavit-test",
                    "auths": {auth_registry: _auth("ci", "s3cret"),
                              host: {"identitytoken": REFRESH_TOKEN}}})  # fmt: skip
    log = _helper(tmp_path, monkeypatch, {})  # the store now holds nothing
    assert main(["verify", str(image), "--key", str(tmp_path / "ci.pub")]) == 0
    stored = _image(auth_registry, "store-fallback")
    assert _attest_and_verify(stored, tmp_path, predicate) == (0, 0)
    assert log.read_text().splitlines() == [host, auth_registry, auth_registry]


def test_a_helper_that_is_not_installed_is_named(
    auth_registry: str, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write(home / ".docker" / "config.json", {"credsStore": "desktop"})
    image = _image(auth_registry, "no-helper")
    capsys.readouterr()
    assert main(["verify", str(image), "--key", str(tmp_path / "ci.pub")]) == 2
    assert capsys.readouterr().err == (
        f"error: {config} names the credential helper docker-credential-desktop for "
        f"{auth_registry}, and it is not on PATH\n"
        f"  hint: install docker-credential-desktop, or remove it from {config}\n"
    )


def test_where_credentials_are_looked_for_and_that_secrets_stay_out_of_logs() -> None:
    from affidavit.attestations.docker_config import config_files
    from affidavit.attestations.registry import credentials_from_docker_config

    env = {"HOME": "/h", "REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/user/1",
           "DOCKER_CONFIG": "/d"}  # fmt: skip
    assert config_files(env) == [Path("/a.json"), Path("/run/user/1/containers/auth.json"),
                                 Path("/h/.config/containers/auth.json"),
                                 Path("/d/config.json")]  # fmt: skip
    assert config_files({"HOME": "/h"})[-1] == Path("/h/.docker/config.json")
    found = credentials_from_docker_config(
        {"auths": {"https://index.docker.io/v1/": {"identitytoken": "refresh-me"}}}
    )
    assert found == {"docker.io": Credentials("", "", identity_token="refresh-me")}
    assert "refresh-me" not in repr(found) and "s3cret" not in repr(Credentials("ci", "s3cret"))


def test_the_gitlab_template_hands_the_job_token_to_its_registry_only(tmp_path: Path) -> None:
    import subprocess

    import yaml

    from affidavit.attestations.docker_config import DockerCredentials

    root = Path(__file__).resolve().parents[3]
    template = yaml.safe_load((root / "attestations/templates/gitlab/affidavit.gitlab-ci.yml")
                              .read_text())  # fmt: skip
    [snippet] = [s for s in template[".affidavit-attest"]["script"] if "REGISTRY_AUTH_FILE" in s]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           "CI_REGISTRY": "registry.gitlab.example", "CI_REGISTRY_USER": "gitlab-ci-token",
           "CI_REGISTRY_PASSWORD": "job-token"}  # fmt: skip
    done = subprocess.run(["bash", "-ec", snippet + '\necho "$REGISTRY_AUTH_FILE"'], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    auth_file = Path(done.stdout.strip())
    assert auth_file.stat().st_mode & 0o777 == 0o600
    found = DockerCredentials(env={"HOME": str(tmp_path), "REGISTRY_AUTH_FILE": str(auth_file)})
    assert found.get("registry.gitlab.example") == Credentials("gitlab-ci-token", "job-token")
    assert found.get("registry.other.example") is None
