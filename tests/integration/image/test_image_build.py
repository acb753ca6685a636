"""Affidavit's container image, as operator/build-image makes it without a container daemon:
reproducible (a second build of the same inputs has the same digest), configured to run as uid
65532 with an /etc/passwd entry and ENTRYPOINT affidavit, small, compiled to bytecode (hash-based, so
reproducible), free of build tools, and working on a read-only root file system as that user."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from dataclasses import dataclass

import pytest

from image_builds import (
    Layout,
    image_env,
    rebuild_layout,
    rootfs_argv,
    unpacked_rootfs,
)

pytestmark = pytest.mark.timeout(2400)  # the first session builds the image (minutes)


@dataclass(frozen=True)
class Layer:
    names: frozenset[str]
    passwd: str


@pytest.fixture(scope="module")
def layer(image_layout: Layout) -> Layer:
    """The image's one layer: its file names, and /etc/passwd."""
    (descriptor,) = image_layout.manifest["layers"]
    assert descriptor["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    data = gzip.decompress(image_layout.blob(descriptor["digest"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        passwd = tar.extractfile(members["etc/passwd"])
        assert passwd is not None
        return Layer(frozenset(members), passwd.read().decode())


def test_config_runs_affidavit_as_65532_on_a_read_only_root(image_layout: Layout) -> None:
    config = image_layout.config["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["affidavit"]
    assert config["WorkingDir"] == "/tmp"
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert env["PATH"].split(":")[0] == "/opt/affidavit/bin"
    assert image_layout.config["os"] == "linux"
    assert image_layout.config["architecture"] == "amd64"


def test_passwd_names_uid_65532(layer: Layer) -> None:
    assert "nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin" in layer.passwd.splitlines()


def test_every_module_has_unchecked_hash_bytecode(image_layout: Layout) -> None:
    """On a read-only root Python cannot cache bytecode: the build compiles every module (the
    standard library's too), hash-based and unchecked (no mtimes in the files, no source read
    at import), so a start only unmarshals."""
    (descriptor,) = image_layout.manifest["layers"]
    data = gzip.decompress(image_layout.blob(descriptor["digest"]))
    flags: dict[str, int] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.endswith(".pyc"):
                f = tar.extractfile(m)
                assert f is not None
                flags[m.name.removeprefix("./")] = int.from_bytes(f.read(8)[4:8], "little")
    sources = [n for n in layer_names(data) if n.endswith(".py")]
    missing = [
        n for n in sources
        if (n.startswith("opt/affidavit/") or n.startswith("usr/lib/python3.11/"))
        and _pyc(n) not in flags
    ]  # fmt: skip
    assert missing == []
    assert {f for f in flags.values()} == {0b01}  # hash-based, check_source off
    assert _pyc("opt/affidavit/lib/python3.11/site-packages/affidavit/cli/main.py") in flags


def _pyc(source: str) -> str:
    head, _, name = source.rpartition("/")
    return f"{head}/__pycache__/{name[:-3]}.cpython-311.pyc"


def layer_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()]


def test_no_pip_no_dev_dependencies(layer: Layer, image_layout: Layout) -> None:
    names = layer.names
    assert "opt/affidavit/bin/affidavit" in names
    assert "opt/affidavit/bin/pip" not in names
    site = "opt/affidavit/lib/python3.11/site-packages/"
    packages = {n[len(site) :].split("/")[0] for n in names if n.startswith(site)}
    assert {"affidavit", "kopf", "fastapi", "kubernetes", "sigstore"} <= packages
    assert {"pip", "pytest", "mypy", "ruff", "importlinter", "setuptools"} & packages == set()
    # The goal the issue sets: at most 100 MB to pull.
    assert image_layout.compressed_size() <= 100 * 1024 * 1024


def test_runs_read_only_as_nonroot(image_layout: Layout) -> None:
    rootfs = unpacked_rootfs(image_layout)
    env = image_env(image_layout)

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            rootfs_argv(rootfs, argv, env=env),
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    help_ = run("affidavit", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "Usage: affidavit" in help_.stdout
    who = run("sh", "-c", "id -u; id -un; python3 -c 'import getpass; print(getpass.getuser())'")
    assert who.stdout.splitlines() == ["65532", "nonroot", "nonroot"]
    python = run("python3", "-c", "import affidavit.cli.main, sys; print(sys.prefix)")
    assert python.stdout == "/opt/affidavit\n", python.stderr
    written = run("sh", "-c", "touch /opt/x; touch /tmp/x && echo tmp-writable")
    assert "touch: cannot touch '/opt/x': Read-only file system" in written.stderr
    assert written.stdout == "tmp-writable\n"


# Last in this file: the second build runs in the background (image_builds.BackgroundBuilds)
# while the tests above look at the first.
def test_a_second_build_of_the_same_inputs_has_the_same_digest(image_layout: Layout) -> None:
    again = rebuild_layout(image_layout)
    assert again.path != image_layout.path
    assert again.digest == image_layout.digest
