"""Tests `affidavit trace`: the four questions for an image, from its verified attestations only.

Images are named as users write them (``nginx:latest``, an upper-case host): trace resolves the
canonical name and reaches the registry's endpoint. Docker Hub is never contacted: a loopback
HTTP proxy stands in for the internet and records where the client wanted to go.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.predicates import AI_PROVENANCE_V1
from affidavit.attestations.registry import RegistryClient
from affidavit.cli.main import main
from affidavit.collect import collect_provenance
from affidavit.demo.github_records import Approval
from affidavit.demo.pipeline import attest_predicate, build_image, release
from affidavit.demo.sample import BO, make_sample_repo
from affidavit.demo.services import LocalRegistry


def _keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = generate_key_pair("ecdsa-p256")
    (tmp_path / "ci.key").write_bytes(private)
    (tmp_path / "ci.pub").write_bytes(public)
    return tmp_path / "ci.key", tmp_path / "ci.pub"


def test_trace_answers_for_a_released_image(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub = _keys(tmp_path)
    sample = make_sample_repo(tmp_path / "repo")
    with RegistryClient(insecure_hosts={registry.host}) as client:
        rel = release(
            client, registry.host, "trace/app", sample, sample.pushed_after_review,
            [Approval("bo", BO[0], sample.reviewed)], load_signer(key), tmp_path,
        )  # fmt: skip
    assert main(["trace", rel.image, "--key", str(pub)]) == 0
    out = capsys.readouterr().out
    assert f"  digest {rel.digest}, built from revision {sample.pushed_after_review}" in out
    assert "   yes: 3 of 4 commits were AI-assisted or generated" in out
    assert "   Claude Code, aider" in out
    assert (
        f"   - {sample.pushed_after_review[:12]} accepted by Ana Developer <ana@example.com>"
        " at 2026-11-04T08:30:00+00:00" in out
    )
    assert (
        "   https://github.com/acme/payments-api/pull/42: 0 approvals on the final revision, "
        "0 independent; reviewers: bo\n"
        f"   not counted: bo approved earlier revision {sample.reviewed[:12]}" in out
    )

    assert main(["trace", rel.image, "--key", str(pub), "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert (answers["digest"], answers["revision"]) == (rel.digest, sample.pushed_after_review)
    assert (answers["aiGenerated"], answers["commits"], len(answers["aiChanges"])) == (True, 4, 3)
    assert answers["tools"] == ["Claude Code", "aider"]
    assert answers["review"] == {
        "changeRequest": "https://github.com/acme/payments-api/pull/42",
        "approvalsOnFinalRevision": 0,
        "independentApprovals": 0,
        "reviewers": ["bo"],
        "notCounted": [f"bo approved earlier revision {sample.reviewed[:12]}"],
    }


def test_trace_refuses_an_image_without_verified_provenance(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, pub = _keys(tmp_path)
    with RegistryClient(insecure_hosts={registry.host}) as client:
        image = build_image(client, registry.host, "trace/bare", "ab" * 20)
    assert main(["trace", str(image), "--key", str(pub)]) == 4
    err = capsys.readouterr().err
    assert (
        f"error: {image}: no verified https://affidavit.dev/attestations/ai-provenance/v1 "
        "attestation (found: nothing verified)" in err
    )
    assert "hint: run `affidavit collect provenance` and `affidavit attest`" in err


def test_trace_reads_the_image_under_any_spelling(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub = _keys(tmp_path)
    sample = make_sample_repo(tmp_path / "repo")
    with RegistryClient(insecure_hosts={registry.host}) as client:
        rel = release(
            client, registry.host, "trace/spelled", sample, sample.reviewed,
            [Approval("bo", BO[0], sample.reviewed)], load_signer(key), tmp_path,
        )  # fmt: skip
    port = registry.host.rsplit(":", 1)[1]
    spelled = f"LOCALHOST:{port}/trace/spelled@{rel.digest}"  # localhost is this registry too
    assert main(["trace", spelled, "--key", str(pub)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        f"image localhost:{port}/trace/spelled@{rel.digest}",
        f"  digest {rel.digest}, built from revision {sample.reviewed}",
    ]


@pytest.fixture
def proxy() -> Iterator[list[str]]:
    """An HTTP proxy on loopback that refuses every tunnel and records the request lines."""
    seen: list[str] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                seen.append(head.split(b"\r\n", 1)[0].decode())
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    seen.append(f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        yield seen
    finally:
        stop.set()
        thread.join()
        server.close()


def test_trace_of_a_docker_hub_image_goes_to_docker_hubs_endpoint(
    proxy: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``nginx:latest`` is docker.io/library/nginx:latest, fetched from registry-1.docker.io."""
    _, pub = _keys(tmp_path)
    url = proxy.pop(0)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert main(["trace", "nginx:latest", "--key", str(pub)]) == 5
    err = capsys.readouterr().err
    assert err.startswith("error: registry docker.io is unreachable"), err
    assert proxy == ["CONNECT registry-1.docker.io:443 HTTP/1.1"]


def test_trace_shows_terminal_controls_from_the_repository_escaped(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tool names (free ``Assisted-by:`` text) and who accepted a change (a git author name) are
    written by whoever commits; trace printed them raw, so an escape sequence could move the
    cursor up and erase "yes: 1 of 2 commits were AI-assisted" from the auditor's terminal."""
    key, pub = _keys(tmp_path)
    repo = tmp_path / "repo"
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "Eve\x1b[2K",
        "GIT_AUTHOR_EMAIL": "eve@example.com",
        "GIT_COMMITTER_NAME": "Eve\x1b[2K",
        "GIT_COMMITTER_EMAIL": "eve@example.com",
        "PATH": os.environ["PATH"],
    }

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    repo.mkdir()
    git("init", "-q", "-b", "main")
    git("commit", "-q", "--allow-empty", "-m", "base")
    base = git("rev-parse", "HEAD")
    erase = "\x1b[3A\x1b[2K\r   no AI involvement declared"
    git("commit", "-q", "--allow-empty", "-m", f"fix\n\nAssisted-by: {erase}\n")
    head = git("rev-parse", "HEAD")
    with RegistryClient(insecure_hosts={registry.host}) as client:
        image = build_image(client, registry.host, "trace/controls", head)
        predicate = collect_provenance(repo, base, head).to_wire()
        attest_predicate(client, image, AI_PROVENANCE_V1, predicate, load_signer(key))
    assert main(["trace", str(image), "--key", str(pub)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    assert "   yes: 1 of 1 commit was AI-assisted or generated" in out
    assert "   \\x1b[3A\\x1b[2K\\r   no AI involvement declared\n" in out
    assert f"   - {head[:12]} accepted by Eve\\x1b[2K <eve@example.com> at " in out
