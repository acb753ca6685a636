"""Image references, parsed once into their one canonical name.

A container runtime reads ``nginx``, ``docker.io/library/nginx:latest`` and
``INDEX.DOCKER.IO/library/nginx`` as the same image; a policy that compared the strings as
written could be walked around by spelling the image another way. So every image Affidavit
meets (a Pod's containers, a policy's globs, a CLI argument, a ledger query) goes through
``ImageReference`` first, which applies the distribution reference grammar and its Docker
normalisation:

- the first path component is a registry host when it contains ``.`` or ``:``, is ``localhost``,
  or has upper-case letters (a repository never does); otherwise the registry is ``docker.io``;
- the host is lower-cased, an IPv6 address written in its compressed form, and the HTTPS default
  port ``:443`` dropped (except on loopback hosts, which this client speaks plain HTTP to, so
  there ``:443`` is a different endpoint);
- Docker Hub's aliases ``index.docker.io`` and ``registry-1.docker.io`` become ``docker.io``, and
  a one-component Docker Hub repository gets ``library/`` (an official image);
- repositories are lower-case (an upper-case repository is an error, not something to fold),
  digests are ``sha256``, and a reference with neither tag nor digest means ``:latest``.

The canonical *name* is not where the registry is reached: Docker Hub's name is ``docker.io``, its
endpoint ``registry-1.docker.io`` (``endpoint``). ``localhost:5000`` and ``127.0.0.1:5000`` stay
two names: they are the same socket only on this machine, and which one a policy means is the
policy author's call (the webhook warns about images no policy matches, so the other spelling is
visible).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from affidavit.errors import InputError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
OFFICIAL_NAMESPACE = "library"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[^:]*))?")
#: The characters that make a glob (fnmatch) of an image reference.
GLOB_CHARS = frozenset("*?[")
_MAX_NAME = 255  # distribution's limit on host + repository

_REF_HINT = (
    "write it as [HOST[:PORT]/]REPOSITORY[:TAG][@sha256:<64 hex>], e.g. "
    "127.0.0.1:5000/app@sha256:<hex> or nginx:1.27 (Docker Hub)"
)


def _bad(text: str, what: str) -> InputError:
    return InputError(f"image reference {text!r} {what}", hint=_REF_HINT)


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def canonical_host(host: str, *, text: str | None = None) -> str:
    """``HOST[:PORT]`` in canonical form: lower case, compressed IPv6, no ``:443``, Hub aliases
    folded into ``docker.io``. Raises ``InputError`` for something that is not a host."""
    where = text if text is not None else host
    m = _HOST_PORT.fullmatch(host.lower())
    if m is None or not m.group("host"):
        raise _bad(where, f"has an invalid registry host {host!r}")
    name, port = m.group("host"), m.group("port")
    if name.startswith("["):
        try:
            address = ipaddress.IPv6Address(name[1:-1])
        except ValueError as e:
            raise _bad(where, f"has an invalid IPv6 registry host {host!r}") from e
        name = f"[{address.compressed}]"
    elif not _HOSTNAME.fullmatch(name):
        raise _bad(where, f"has an invalid registry host {host!r}")
    if port is not None:
        # ASCII digits only: str.isdigit() also says yes to '²' (int() then raises ValueError)
        # and to '٥٠٠٠' (which int() reads as 5000, a port no runtime would parse).
        if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise _bad(where, f"has an invalid registry port {port!r}")
        port = str(int(port))
        if port == "443" and not _is_loopback_host(name):
            port = None
    canonical = f"{name}:{port}" if port is not None else name
    return DOCKER_HUB if canonical in DOCKER_HUB_ALIASES else canonical


def _is_host(component: str) -> bool:
    """The reference grammar's test: is the first path component a registry host?"""
    return (
        "." in component
        or ":" in component
        or component == "localhost"
        or component.lower() != component
    )


@dataclass(frozen=True)
class ImageReference:
    """A canonical image reference: registry host, repository, and a tag and/or a digest.

    Constructing one canonicalises it (``ImageReference("DOCKER.IO", "nginx")`` is
    ``docker.io/library/nginx``), so every instance is in canonical form.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        text = f"{self.registry}/{self.repository}"
        registry = canonical_host(self.registry, text=text)
        if not ("." in registry or ":" in registry or registry == "localhost"):
            raise _bad(
                text,
                f"has registry host {self.registry!r}, which the reference grammar reads as a "
                "repository (a host has a dot or a port, or is localhost)",
            )
        repository = self.repository
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"{OFFICIAL_NAMESPACE}/{repository}"
        if not _REPOSITORY.fullmatch(repository):
            raise _bad(
                text,
                f"has an invalid repository {self.repository!r} (lowercase letters, digits and "
                "separators . _ - /)",
            )
        if len(registry) + 1 + len(repository) > _MAX_NAME:
            raise _bad(text, f"is longer than {_MAX_NAME} characters")
        if self.tag is not None and not _TAG.fullmatch(self.tag):
            raise _bad(text, f"has an invalid tag {self.tag!r}")
        if self.digest is not None and not _DIGEST.fullmatch(self.digest):
            raise _bad(text, f"has digest {self.digest!r}, which is not sha256:<64 lowercase hex>")
        object.__setattr__(self, "registry", registry)
        object.__setattr__(self, "repository", repository)

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse ``[host[:port]/]repo[:tag][@sha256:...]`` into its canonical form.

        Pure and asked about the same few images on every admission: answers are cached
        (bounded; an invalid reference is refused every time, never cached)."""
        return _parse(text) if cls is ImageReference else cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> ImageReference:
        ref = text.strip()
        if not ref:
            raise InputError("the image reference is empty", hint=_REF_HINT)
        if any(c.isspace() for c in ref):
            raise _bad(text, "contains white space")
        rest, digest = ref, None
        if "@" in ref:
            rest, digest = ref.split("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise _bad(text, f"has digest {digest!r}, which is not sha256:<64 lowercase hex>")
        host, sep, path = rest.partition("/")
        if not sep or not _is_host(host):
            host, path = DOCKER_HUB, rest
        elif not ("." in host or ":" in host or host.lower() == "localhost"):
            # Upper case alone makes ``Acme/app`` a host for Docker; lower-cased it would read
            # as Docker Hub's acme/app, so no canonical form round-trips: refuse it.
            path = rest
        tag = None
        if ":" in path.rsplit("/", 1)[-1]:
            path, tag = path.rsplit(":", 1)
            if not _TAG.fullmatch(tag):
                raise _bad(text, f"has an invalid tag {tag!r}")
        if not _REPOSITORY.fullmatch(path):
            raise _bad(
                text,
                f"has an invalid repository {path!r} (lowercase letters, digits and separators "
                ". _ - /)",
            )
        return cls(
            registry=canonical_host(host, text=text), repository=path, tag=tag, digest=digest
        )

    @property
    def name(self) -> str:
        """``host/repository``: the canonical repository name, and the subject name of
        statements about this image."""
        return f"{self.registry}/{self.repository}"

    @property
    def endpoint(self) -> str:
        """``host[:port]`` to connect to: the registry itself, except Docker Hub's API host."""
        return DOCKER_HUB_ENDPOINT if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when known, else the tag (``latest``)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> ImageReference:
        return replace(self, digest=digest)

    def with_tag(self, tag: str) -> ImageReference:
        return replace(self, tag=tag, digest=None)

    def __str__(self) -> str:
        """The canonical reference: ``host/repository[:tag][@digest]``, ``:latest`` when the
        reference names neither a tag nor a digest."""
        text = self.name
        if self.tag or not self.digest:
            text += f":{self.tag or 'latest'}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def canonical_image(text: str) -> str:
    """The canonical form of an image reference as written (``nginx`` ->
    ``docker.io/library/nginx:latest``); ``InputError`` when it is not a reference."""
    return str(ImageReference.parse(text))


def canonical_glob(pattern: str) -> str:
    """A policy's image glob, read with the reference grammar (``acme/*`` ->
    ``docker.io/acme/*``, ``INDEX.DOCKER.IO/nginx`` -> ``docker.io/library/nginx``).

    A glob whose registry part is itself a wildcard (``*``, ``*/acme/app``) spans registries and
    is kept as written; ``docker.io/*`` keeps meaning all of Docker Hub (``library/`` is added
    only when the repository part starts with a literal name and has no ``/``). The bracket of
    an IPv6 host is escaped (``[[]::1]:5000/x``) so that fnmatch does not read a character class.
    """
    text = pattern.strip()
    host, sep, rest = text.partition("/")
    if sep and host.startswith("["):  # an IPv6 host, not a character class
        try:
            return canonical_host(host).replace("[", "[[]", 1) + f"/{rest}"
        except InputError:
            return text
    if not text or GLOB_CHARS.intersection(host if sep else text[:1]):
        return text
    if sep and _is_host(host):
        try:
            host = canonical_host(host)
        except InputError:
            return text  # not a host after all: left to match as written
    else:
        host, rest = DOCKER_HUB, text
    if host == DOCKER_HUB and "/" not in rest and rest[:1] not in GLOB_CHARS:
        rest = f"{OFFICIAL_NAMESPACE}/{rest}"
    return f"{host}/{rest}"


@lru_cache(maxsize=4096)
def _parse(text: str) -> ImageReference:
    return ImageReference._parse(text)


def is_digest(text: str) -> bool:
    """Whether ``text`` is a digest as a reference writes it (``sha256:<64 lowercase hex>``)."""
    return _DIGEST.fullmatch(text) is not None
