"""A GitHub Actions-shaped OIDC issuer on loopback, for the private Fulcio's ``github-workflow``
issuer type.

FAKE, and the only one here: no test can reach token.actions.githubusercontent.com, and only
GitHub's token service mints tokens whose ``repository`` and ``sha`` a certificate then carries
(Fulcio's Source Repository URI and Digest). This issuer serves the two documents Fulcio reads
(OpenID discovery and the JWKS) over HTTPS with a CA of its own, and signs RS256 ID tokens with
the claims Fulcio's GitHub principal requires, named and shaped as GitHub's docs give them.
Everything downstream is real: Fulcio discovers this issuer and certifies what the token says.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from affidavit.pki import build_ca, build_leaf, key_pem, new_key, subject_name


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _number(text: str) -> str:
    """A stable numeric id for ``text`` (GitHub's ids are numbers)."""
    return str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big"))


def _uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class Workflow:
    """Where a GitHub Actions job ran: ``owner/repo``, the commit, the workflow file, the
    reusable workflow the job called (``uses: OWNER/REPO/.github/workflows/F@REF``), if any,
    and the event that started it."""

    repository: str
    sha: str
    workflow: str = ".github/workflows/release.yml"
    ref: str = "refs/heads/main"
    reusable: str | None = None  # "OWNER/REPO/.github/workflows/F@REF"
    event: str = "push"  # what started the run (a pull request's: pull_request)

    @property
    def job_workflow_ref(self) -> str:
        """What GitHub names the job's instructions: the reusable workflow, else the caller's."""
        return self.reusable or f"{self.repository}/{self.workflow}@{self.ref}"

    @property
    def subject(self) -> str:
        """The SAN Fulcio writes: the job's workflow ref as a github.com URL."""
        return f"https://github.com/{self.job_workflow_ref}"


class GitHubActionsIssuer:
    """``url`` serves discovery and keys; ``token(workflow)`` mints an ID token for audience
    ``sigstore``; ``ca_file`` is the PEM Fulcio must trust to discover it."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.UTC)
        ca_key, tls_key = new_key(), new_key()
        ca_name = subject_name("affidavit test github-actions issuer CA")
        ca = build_ca(
            ca_key, ca_name, now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
        )
        leaf = build_leaf(
            ca_name, ca_key, tls_key, subject_name("127.0.0.1"),
            now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1),
            usages=[ExtendedKeyUsageOID.SERVER_AUTH], ip_sans=["127.0.0.1"],
        )  # fmt: skip
        self.ca_file = workdir / "issuer-ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (workdir / "tls.crt").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (workdir / "tls.key").write_bytes(key_pem(tls_key))
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(workdir / "tls.crt", workdir / "tls.key")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._served = self._documents()

    def _documents(self) -> dict[str, bytes]:
        numbers = self._key.public_key().public_numbers()
        jwk = {"kty": "RSA", "kid": "test", "use": "sig", "alg": "RS256",
               "n": _uint(numbers.n), "e": _uint(numbers.e)}  # fmt: skip
        discovery = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "repository", "sha"],
        }
        return {
            "/.well-known/openid-configuration": json.dumps(discovery).encode(),
            "/.well-known/jwks": json.dumps({"keys": [jwk]}).encode(),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = issuer._served.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def token(self, job: Workflow) -> str:
        """An ID token for ``job``, as GitHub's token service writes one (audience sigstore)."""
        owner = job.repository.split("/")[0]
        now = int(time.time())
        workflow_ref = f"{job.repository}/{job.workflow}@{job.ref}"
        claims = {
            "iss": self.url,
            "aud": "sigstore",
            "sub": f"repo:{job.repository}:ref:{job.ref}",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
            "jti": _b64url(job.sha.encode())[:16],
            "repository": job.repository,
            "repository_id": _number(job.repository),
            "repository_owner": owner,
            "repository_owner_id": _number(owner),
            "repository_visibility": "private",
            "sha": job.sha,
            "ref": job.ref,
            "ref_type": "branch",
            "event_name": job.event,
            "workflow": "release",
            "workflow_ref": workflow_ref,
            "workflow_sha": job.sha,
            "job_workflow_ref": job.job_workflow_ref,
            "job_workflow_sha": job.sha,
            "runner_environment": "github-hosted",
            "run_id": "4242",
            "run_attempt": "1",
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": "test"}
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def __enter__(self) -> GitHubActionsIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


__all__ = ["GitHubActionsIssuer", "Workflow"]
