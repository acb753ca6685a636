"""A minimal registry token service (the distribution spec's Bearer flow) for the auth tests.

docker-registry's ``auth: token`` mode sends clients to a token endpoint; this is a real, small
implementation of that endpoint: it checks basic credentials, and issues an ES256 JWT signed by
a key whose self-signed certificate is the registry's ``rootcertbundle`` (``x5c`` header).
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "affidavit-test-issuer"
SERVICE = "affidavit-test-registry"
#: The identity token (OAuth2 refresh token) the test token service accepts.
REFRESH_TOKEN = "affidavit-test-refresh-token"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_signing_cert(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, bytes, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "affidavit test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = directory / "token-root.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER), bundle


@contextmanager
def token_server(
    key: ec.EllipticCurvePrivateKey,
    cert_der: bytes,
    user: str,
    password: str,
    refresh_token: str | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Serve ``/token`` on 127.0.0.1; yields (realm URL, scopes granted so far). With
    ``refresh_token``, also the OAuth2 form (POST ``grant_type=refresh_token``, what docker
    sends for an identity token), answering ``access_token``."""
    granted: list[str] = []
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            self._grant(query, "token")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if (
                refresh_token is None
                or form.get("grant_type") != ["refresh_token"]
                or (form.get("refresh_token") != [refresh_token])
            ):
                self.send_response(401)
                self.end_headers()
                return
            granted.append("grant:refresh_token")
            self._grant(form, "access_token")

        def _grant(self, query: dict[str, list[str]], field: str) -> None:
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
                granted.append(scope)
            now = int(time.time())
            header = {"alg": "ES256", "typ": "JWT", "x5c": [base64.b64encode(cert_der).decode()]}
            claims = {
                "iss": ISSUER,
                "sub": user,
                "aud": query.get("service", [SERVICE])[0],
                "exp": now + 300,
                "nbf": now - 10,
                "iat": now,
                "jti": str(uuid.uuid4()),
                "access": access,
            }
            signing_input = (
                _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
            )
            r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            token = signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
            body = json.dumps({field: token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", granted
    finally:
        server.shutdown()
        server.server_close()
