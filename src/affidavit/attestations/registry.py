"""A small OCI distribution client: the one place Affidavit talks to a container registry.

Attestations live beside the image in its registry, so signing, verification, the admission
webhook and the demo all need the same handful of distribution-spec calls: resolve a tag, get and
put manifests and blobs, list tags, ask the referrers API. Doing them here (over ``registry_wire``,
rather than shelling out to a registry tool) lets every caller get the same safety rules: plain HTTP only for
loopback or explicitly insecure hosts, redirects and token realms only where the caller allows
(``registry_transport``), a size limit enforced while the body streams, a digest check on
everything fetched by digest, and registry failures that name the registry, the image and the
fix instead of a stack trace.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import ssl
import threading
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from affidavit.attestations.reference import ImageReference, canonical_host, is_digest
from affidavit.attestations.registry_auth import (
    CredentialLookup,
    Credentials,
    authorization,
    credentials_from_docker_config,
)
from affidavit.attestations.registry_transport import (
    BodyTooLargeError,
    BudgetExceededError,
    ContentError,
    DefaultTrust,
    ForbiddenHostError,
    HostRules,
    RegistryAccessError,
    RegistryUnavailableError,
    Response,
    allowed_patterns,
    open_body,
    send,
)
from affidavit.attestations.registry_wire import Response as WireResponse
from affidavit.attestations.registry_wire import Streamed, Wire, WireError
from affidavit.errors import AffidavitError, InputError, RegistryError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "BodyTooLargeError",
    "BudgetExceededError",
    "ContentError",
    "Credentials",
    "ForbiddenHostError",
    "ImageReference",
    "Manifest",
    "RegistryAccessError",
    "RegistryClient",
    "RegistryUnavailableError",
    "credentials_from_docker_config",
    "sha256_digest",
]

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
ERROR_BODY_BYTES = 64 * 1024  # of an error answer to a streamed blob, read for its message
MAX_TOKENS = 1024  # bearer tokens a client keeps, by (registry, repository)
#: Pages of one referrers list read at most (``Link: <URL>; rel="next"``).
MAX_REFERRER_PAGES = 16
_NEXT_PAGE = re.compile(r'<([^<>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)


def sha256_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes, its media type and its digest."""

    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.data)
        except ValueError as e:
            raise RegistryError(f"manifest {self.digest} is not valid JSON ({e})") from e
        if not isinstance(value, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return value


def _canonical(host: str) -> str:
    """A configured host under its canonical name (references are canonical: INDEX.DOCKER.IO's
    credentials are docker.io's); left as written when it is no host at all."""
    try:
        return canonical_host(host)
    except AffidavitError:
        return host


def ca_context(ca_bundle: str | Path) -> ssl.SSLContext:
    """A TLS context trusting the CA certificates in the PEM file ``ca_bundle``, or an
    ``InputError`` naming the file (a missing file, a directory, no certificate in it)."""
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise InputError(
            f"CA bundle {ca_bundle} cannot be used: {reason}",
            hint="give a PEM file of the registry's CA certificates (--ca-bundle, --registry-ca)",
        ) from e


class RegistryClient:
    """Distribution-spec calls with auth, TLS rules, size limits and digest checks."""

    def __init__(
        self,
        *,
        insecure_hosts: Collection[str] = (),
        insecure: bool = False,
        ca_bundle: str | Path | None = None,
        credentials: Mapping[str, Credentials] | CredentialLookup | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 10.0,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        """``allowed_hosts``: the hosts a redirect or a token realm may lead to besides the
        registry itself (``HOST[:PORT]`` or ``*.DOMAIN``); None allows any host. Credentials
        only ever go to the host they are for."""
        verify: ssl.SSLContext = DefaultTrust() if ca_bundle is None else ca_context(ca_bundle)
        self._http = Wire(verify)
        self._timeout = timeout
        self._rules = HostRules(
            allowed=allowed_patterns(allowed_hosts),
            insecure_hosts=frozenset(_canonical(h) for h in insecure_hosts),
            insecure=insecure,
        )
        self._credentials: CredentialLookup | dict[str, Credentials] = (
            credentials
            if isinstance(credentials, CredentialLookup)
            else {_canonical(h): c for h, c in (credentials or {}).items()}
        )
        self._tokens: dict[tuple[str, str], str] = {}
        self._exchanges: dict[tuple[str, str], threading.Lock] = {}
        self.max_bytes = max_bytes

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- manifests -------------------------------------------------------------------------

    def resolve(self, ref: ImageReference) -> str:
        """The manifest digest ``ref`` names (a tag is resolved; a digest is checked to exist)."""
        return self.head_manifest(ref)[0]

    def head_manifest(self, ref: ImageReference) -> tuple[str, str, int]:
        """``(digest, media type, size)`` of the manifest ``ref`` names; missing -> RegistryError."""
        r = self._request("HEAD", ref, f"manifests/{ref.reference}", accept=MANIFEST_TYPES)
        if r.status == 404:
            raise self._missing(ref)
        self._check(r, "HEAD", ref)
        digest = r.headers.get("docker-content-digest")
        media_type = r.headers.get("content-type", "").split(";")[0]
        length = r.headers.get("content-length", "0")
        if not digest:
            manifest = self.get_manifest(ref)
            return manifest.digest, manifest.media_type, len(manifest.data)
        # the registry's own text (a HEAD has no body to check it against): a malformed one is
        # the registry's error, not a crash and not the user's reference
        for field, value, valid in (
            ("Docker-Content-Digest", digest, is_digest(digest)),
            ("Content-Length", length, length.isascii() and length.isdigit()),
        ):
            if not valid:
                raise RegistryError(
                    f"registry {ref.registry} answered HEAD {ref} with an invalid {field} "
                    f"{value[:80]!r}"
                )
        size = int(length)
        if ref.digest and digest != ref.digest:
            raise RegistryError(f"registry {ref.registry} answered digest {digest} for {ref}")
        return digest, media_type, size

    def get_manifest(self, ref: ImageReference, *, max_bytes: int | None = None) -> Manifest:
        manifest = self.find_manifest(ref, max_bytes=max_bytes)
        if manifest is None:
            raise self._missing(ref)
        return manifest

    def find_manifest(
        self, ref: ImageReference, *, max_bytes: int | None = None
    ) -> Manifest | None:
        """The manifest ``ref`` names, or None when the registry has none; digest-checked.
        ``max_bytes``: a smaller limit than the client's (a manifest that lists, not holds)."""
        r = self._request(
            "GET",
            ref,
            f"manifests/{ref.reference}",
            accept=MANIFEST_TYPES,
            limit=self.max_bytes if max_bytes is None else max_bytes,
            what=f"manifest {ref}",
        )
        if r.status == 404:
            return None
        self._check(r, "GET", ref)
        digest = sha256_digest(r.body)
        if ref.digest and digest != ref.digest:
            raise ContentError(
                f"manifest {ref} has digest {digest}, not the {ref.digest} that was asked for; "
                "the registry returned other content"
            )
        media_type = r.headers.get("content-type", "").split(";")[0]
        with contextlib.suppress(ValueError, AttributeError):
            media_type = json.loads(r.body).get("mediaType") or media_type
        return Manifest(data=r.body, media_type=media_type, digest=digest)

    def put_manifest(self, ref: ImageReference, data: bytes, media_type: str) -> tuple[str, bool]:
        """Store a manifest under ``ref``'s tag or digest; returns (digest, registry set OCI-Subject)."""
        r = self._request(
            "PUT",
            ref,
            f"manifests/{ref.reference}",
            content=data,
            headers={"Content-Type": media_type},
            push=True,
        )
        self._check(r, "PUT", ref)
        digest = sha256_digest(data)
        return digest, "oci-subject" in r.headers

    # -- blobs ------------------------------------------------------------------------------

    def has_blob(self, ref: ImageReference, digest: str) -> bool:
        r = self._request("HEAD", ref, f"blobs/{digest}")
        if r.status == 404:
            return False
        self._check(r, "HEAD", ref)
        return True

    def get_blob(self, ref: ImageReference, digest: str, *, max_bytes: int | None = None) -> bytes:
        """The blob's bytes, refused while streaming beyond ``max_bytes``, and digest-checked."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        r = self._request("GET", ref, f"blobs/{digest}", limit=limit, what=f"blob {digest}")
        if r.status == 404:
            raise ContentError(
                f"blob {digest} not found in {ref.name}",
                hint="the manifest refers to a blob the registry does not have; push it again",
            )
        self._check(r, "GET", ref)
        actual = sha256_digest(r.body)
        if actual != digest:
            raise ContentError(
                f"blob {digest} from {ref.name} has digest {actual}; the registry returned "
                "other content than asked for"
            )
        return r.body

    def put_blob(self, ref: ImageReference, data: bytes) -> str:
        """Upload ``data`` (monolithic POST + PUT) unless the registry has it; returns its digest."""
        digest = sha256_digest(data)
        if self.has_blob(ref, digest):
            return digest
        r = self._request(
            "PUT",
            ref,
            _completed(self._upload(ref), digest),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
            push=True,
        )
        self._check(r, "PUT", ref)
        return digest

    def stream_blob(self, src: ImageReference, dst: ImageReference, digest: str, size: int) -> None:
        """Copy blob ``digest`` of ``size`` bytes (as its descriptor declares) from ``src``'s
        repository into ``dst``'s as it arrives, holding one read at a time, never the blob.

        Both ends check it: its length and SHA-256 are counted as it passes (a mismatch ends the
        upload unfinished, so the destination keeps nothing), and the destination refuses an
        upload whose content is not ``digest``. An upload left unfinished is cancelled; one that
        had taken part of the blob (a digest found wrong at its last read) cannot be, on
        distribution, and is left to the registry's purge of stale uploads, never completed.

        Raises:
            ContentError: the source lacks the blob, or sent another length or other bytes.
            RegistryError: either registry refused or is unreachable (which one is named).
        """
        if not digest.startswith("sha256:"):
            raise ContentError(f"blob {digest} is not a SHA-256 digest, which copy can check")
        upload = self._upload(dst)
        finished = False
        try:
            with self._open_blob(src, digest) as body:
                declared = body.headers.get("content-length")
                if declared is not None and declared != str(size):
                    raise ContentError(
                        f"blob {digest} in {src.name} is {declared} bytes; the manifest that "
                        f"lists it says {size}"
                    )
                r = self._request(
                    "PUT",
                    dst,
                    _completed(upload, digest),
                    content=Streamed(self._checked(src, digest, size, body), size),
                    headers={"Content-Type": "application/octet-stream"},
                    push=True,
                )
            self._check(r, "PUT", dst)
            finished = True
        finally:
            if not finished:  # the upload session is of no use to anyone: end it
                with contextlib.suppress(RegistryError):
                    self._request("DELETE", dst, upload, push=True)

    @contextlib.contextmanager
    def _open_blob(self, ref: ImageReference, digest: str) -> Iterator[WireResponse]:
        """The GET of a blob whose body is read inside the context (redirects followed; a 401
        answered with a pull token and the GET sent again, as ``_request`` does)."""
        key = (ref.registry, ref.repository)
        auth = self._tokens.get(key)
        challenge = ""
        for attempt in range(2):
            with open_body(
                self._http,
                self._base(ref) + f"blobs/{digest}",
                registry=ref.registry,
                rules=self._rules,
                timeout=self._timeout,
                headers={"Authorization": auth} if auth else {},
            ) as r:
                if r.status_code == 401 and not attempt:
                    challenge = r.headers.get("www-authenticate", "")
                else:
                    if r.status_code != 200:
                        raise self._blob_refused(ref, digest, r)
                    yield r
                    return
            auth = self._token(key, auth, ref, challenge, False)

    def _blob_refused(self, ref: ImageReference, digest: str, r: WireResponse) -> RegistryError:
        """The error for a blob's GET answered with anything but 200."""
        error = Response(r.status_code, r.headers, _error_body(r), "")
        if r.status_code == 404:
            return ContentError(
                f"blob {digest} not found in {ref.name}",
                hint="the manifest refers to a blob the registry does not have; push it again",
            )
        if r.status_code in (401, 403):
            return self._refused(ref, error)
        try:
            self._check(error, "GET", ref)
        except RegistryError as e:
            return e
        return RegistryError(f"registry {ref.registry} answered HTTP {r.status_code}")

    def _checked(
        self, ref: ImageReference, digest: str, size: int, body: WireResponse
    ) -> Iterator[bytes]:
        """``body``'s bytes as they arrive, refused past ``size`` or when they are not
        ``digest`` (raised before the upload's last byte is sent)."""
        hasher = hashlib.sha256()
        seen = 0
        try:
            for chunk in body.iter_bytes():
                seen += len(chunk)
                if seen > size:
                    raise ContentError(
                        f"blob {digest} from {ref.name} is over the {size} bytes its manifest says"
                    )
                hasher.update(chunk)
                if seen == size:  # checked before the last read goes on
                    _same_digest(ref, digest, hasher)
                yield chunk
        except WireError as e:  # the source failed mid-blob, not the destination
            raise RegistryUnavailableError(
                ref.registry, f"registry {ref.registry} failed while sending blob {digest}: {e}"
            ) from e
        if seen != size:
            raise ContentError(
                f"blob {digest} from {ref.name} ended at {seen} of the {size} bytes its manifest "
                "says"
            )
        if size == 0:  # no read to check it at
            _same_digest(ref, digest, hasher)

    def _upload(self, ref: ImageReference) -> str:
        """A new upload session's URL in ``ref``'s repository."""
        r = self._request("POST", ref, "blobs/uploads/", push=True, content=b"")
        self._check(r, "POST", ref)
        location = r.headers.get("location")
        if not location:
            raise RegistryError(f"registry {ref.registry} started an upload without a Location")
        return urljoin(self._base(ref), location)

    def mount_blob(self, ref: ImageReference, digest: str, source_repository: str) -> bool:
        """Ask ``ref``'s registry to link ``digest`` from another of its repositories into
        ``ref``'s (no bytes move); False when it would not (the upload it started is cancelled)."""
        path = f"blobs/uploads/?mount={digest}&from={source_repository}"
        r = self._request("POST", ref, path, push=True, content=b"")
        if r.status == 201:
            return True
        self._check(r, "POST", ref)
        if location := r.headers.get("location"):  # 202: an upload session nobody will use
            self._request("DELETE", ref, urljoin(self._base(ref), location), push=True)
        return False

    def referrers(self, ref: ImageReference, digest: str) -> dict[str, Any] | None:
        """The referrers index for ``digest``, or None when the registry has no referrers API.

        A registry may split the list into pages (``Link: <…>; rel="next"``, OCI distribution
        1.1): each page's ``manifests`` are joined, for at most ``MAX_REFERRER_PAGES`` pages and
        ``max_bytes`` in all.
        A next page on another host is not asked for (the request would carry this registry's
        credentials there). Either way what was read is returned: a referrer not in it is
        evidence not found, which denies, never an outage that ``failurePolicy`` could admit.
        """
        url = f"{self._base(ref)}referrers/{digest}"
        document: dict[str, Any] | None = None
        manifests: list[Any] = []
        read = 0
        for _page in range(MAX_REFERRER_PAGES):
            r = self._request("GET", ref, url, accept=(OCI_INDEX,), limit=self.max_bytes - read)
            if document is None and r.status in (404, 400, 405):
                return None
            if document is not None and r.status != 200:
                break  # a later page that fails ends the list: nothing read is an outage
            self._check(r, "GET", ref)
            read += len(r.body)
            value = (
                _json_or_none(r.body)
                if r.headers.get("content-type", "").startswith(OCI_INDEX)
                else None
            )
            if not isinstance(value, dict):
                break  # not an index: no API on the first page, the end of the list after it
            document = document if document is not None else value
            listed = value.get("manifests")
            manifests += listed if isinstance(listed, list) else []
            following = _NEXT_PAGE.search(r.headers.get("link", ""))
            if following is None:
                break
            url, here = urljoin(url, following.group(1)), url
            if urlsplit(url)[:2] != urlsplit(here)[:2] or read >= self.max_bytes:
                break
        return None if document is None else {**document, "manifests": manifests}

    # -- transport --------------------------------------------------------------------------

    def _base(self, ref: ImageReference) -> str:
        secure = not self._rules.plain_http(ref.registry)
        return f"{'https' if secure else 'http'}://{ref.endpoint}/v2/{ref.repository}/"

    def _request(
        self,
        method: str,
        ref: ImageReference,
        path: str,
        *,
        accept: Collection[str] = (),
        headers: Mapping[str, str] | None = None,
        content: bytes | Streamed | None = None,
        limit: int | None = None,
        what: str | None = None,
        push: bool = False,
    ) -> Response:
        url = path if "://" in path else self._base(ref) + path
        send_headers = dict(headers or {})
        if accept:
            send_headers["Accept"] = ", ".join(accept)
        key = (ref.registry, ref.repository)
        auth = self._tokens.get(key)
        for attempt in range(2):
            if auth:
                send_headers["Authorization"] = auth
            response = self._send(method, url, ref, send_headers, content, limit, what)
            if response.status != 401 or attempt or isinstance(content, Streamed):
                break  # a streamed body is gone once sent: its 401 is final
            challenge = response.headers.get("www-authenticate", "")
            auth = self._token(key, auth, ref, challenge, push)
        if response.status in (401, 403):
            raise self._refused(ref, response)
        return response

    def _send(
        self,
        method: str,
        url: str,
        ref: ImageReference,
        headers: Mapping[str, str],
        content: bytes | Streamed | None,
        limit: int | None,
        what: str | None,
    ) -> Response:
        return send(
            self._http,
            method,
            url,
            registry=ref.registry,
            rules=self._rules,
            timeout=self._timeout,
            headers=headers,
            content=content,
            limit=limit,
            what=what,
        )

    def _token(
        self,
        key: tuple[str, str],
        sent: str | None,
        ref: ImageReference,
        challenge: str,
        push: bool,
    ) -> str:
        """The Authorization to retry with after a 401 to a request that sent ``sent``: one
        exchange per repository at a time (a fetch's parallel first requests all meet the 401).
        A pull that waited takes the token another request got; a push exchanges its own."""
        with self._exchanges.setdefault(key, threading.Lock()):
            current = self._tokens.get(key)
            if not push and current is not None and current != sent:
                return current
            creds = self._credentials.get(ref.registry)
            auth = authorization(
                self._http, ref, challenge, creds, push=push, rules=self._rules,
                timeout=self._timeout,
            )  # fmt: skip
            self._tokens[key] = auth
            # Keyed by repository, which a request names freely: the oldest go first.
            for stale in list(self._tokens)[: max(0, len(self._tokens) - MAX_TOKENS)]:
                self._tokens.pop(stale, None)
                self._exchanges.pop(stale, None)
            return auth

    def _refused(self, ref: ImageReference, r: Response) -> RegistryError:
        return RegistryAccessError(
            f"registry {ref.registry} refused access to {ref.name} (HTTP {r.status}"
            f"{': ' + _error_text(r.body) if _error_text(r.body) else ''})",
            hint="pass credentials with pull and push access as a dockerconfigjson "
            "(--registry-config FILE)",
        )

    def _missing(self, ref: ImageReference) -> RegistryError:
        return RegistryError(
            f"image {ref} not found in the registry",
            hint="check the repository and digest, or push the image first",
        )

    def _check(self, r: Response, method: str, ref: ImageReference) -> None:
        if r.status < 300:
            return
        detail = _error_text(r.body)
        message = f"registry {ref.registry} answered HTTP {r.status} to {method} for {ref.name}"
        message += f": {detail}" if detail else ""
        if r.status >= 500:  # the registry's own trouble, not the request's
            raise RegistryUnavailableError(ref.registry, message)
        if r.status == 429:
            # Up and answering, throttling an account, which the request may choose (its pull
            # secrets): were it an outage, a spent account listed first would be a way to the
            # fail-open path of a policy with failurePolicy: Ignore.
            raise RegistryAccessError(
                message + " (throttled: an answer, not an outage, so no policy's "
                "failurePolicy: Ignore admits on it)",
                hint="retry once the registry's limit resets, or pull with an account (an "
                "imagePullSecret) whose limit is not spent",
            )
        raise RegistryError(message)


def _same_digest(ref: ImageReference, digest: str, hasher: Any) -> None:
    """Refuse a blob whose bytes, hashed into ``hasher``, are not ``digest``."""
    actual = "sha256:" + hasher.hexdigest()
    if actual != digest:
        raise ContentError(
            f"blob {digest} from {ref.name} has digest {actual}; the registry returned other "
            "content than asked for"
        )


def _completed(upload: str, digest: str) -> str:
    """The URL that completes upload session ``upload`` as ``digest``."""
    return upload + ("&" if "?" in upload else "?") + f"digest={digest}"


def _error_body(r: WireResponse) -> bytes:
    """An error answer's body, read up to ``ERROR_BODY_BYTES`` (the rest is left unread)."""
    body = b""
    for chunk in r.iter_bytes():
        body += chunk
        if len(body) >= ERROR_BODY_BYTES:
            break
    return body[:ERROR_BODY_BYTES]


def _json_or_none(body: bytes) -> Any:
    """``body`` parsed, or None when it is not JSON (a registry's garbage is no index)."""
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error_text(body: bytes) -> str:
    """The distribution-spec ``errors[].message`` texts of an error body, if any."""
    try:
        errors = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors)
    except (ValueError, AttributeError):
        return ""
