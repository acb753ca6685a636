"""One name for one image: the canonical mapping of image references and of policy globs.

Every spelling a container runtime reads as the same image must come out as the same string,
because policies, the ledger, ``explain`` and ``trace`` compare these strings. The table follows
the distribution reference grammar and Docker's normalisation (default registry ``docker.io``,
``library/`` for official images, Hub aliases folded, lower-case host, ``:443`` dropped).
Nothing here contacts a registry: the endpoint is only named.
"""

from __future__ import annotations

import pytest

from affidavit.attestations.reference import (
    ImageReference,
    canonical_glob,
    canonical_host,
    canonical_image,
)
from affidavit.errors import InputError

D = "sha256:" + "ab" * 32
HINT = (
    "write it as [HOST[:PORT]/]REPOSITORY[:TAG][@sha256:<64 hex>], e.g. "
    "127.0.0.1:5000/app@sha256:<hex> or nginx:1.27 (Docker Hub)"
)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        # Docker Hub: default registry, official images, aliases, case, default port
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:latest", "docker.io/library/nginx:latest"),
        ("nginx:1.27-alpine", "docker.io/library/nginx:1.27-alpine"),
        ("library/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/library/nginx:latest", "docker.io/library/nginx:latest"),
        ("acme/app:1.0", "docker.io/acme/app:1.0"),
        ("docker.io/acme/app:1.0", "docker.io/acme/app:1.0"),
        ("index.docker.io/acme/app", "docker.io/acme/app:latest"),
        ("registry-1.docker.io/acme/app", "docker.io/acme/app:latest"),
        ("DOCKER.IO/acme/app", "docker.io/acme/app:latest"),
        ("Index.Docker.IO/acme/app", "docker.io/acme/app:latest"),
        ("docker.io:443/acme/app", "docker.io/acme/app:latest"),
        ("registry-1.docker.io:443/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
        ("acme/team/app:v2", "docker.io/acme/team/app:v2"),
        # other registries: case and the HTTPS default port of the host, nothing else
        ("registry.example.com/x", "registry.example.com/x:latest"),
        ("registry.example.com:443/x", "registry.example.com/x:latest"),
        ("REGISTRY.EXAMPLE.COM/x", "registry.example.com/x:latest"),
        ("Registry.Example.Com:0443/x:V1", "registry.example.com/x:V1"),
        ("registry.example.com:5000/x", "registry.example.com:5000/x:latest"),
        ("registry.example.com/nginx", "registry.example.com/nginx:latest"),  # no library/
        ("ghcr.io/org/app:v1", "ghcr.io/org/app:v1"),
        # loopback and ports: :443 on loopback is plain HTTP on port 443, so it stays
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("LOCALHOST:5000/x", "localhost:5000/x:latest"),
        ("localhost/x", "localhost/x:latest"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"),
        ("127.0.0.1:443/x", "127.0.0.1:443/x:latest"),
        # IPv6 hosts: compressed, lower case
        ("[::1]:5000/x", "[::1]:5000/x:latest"),
        ("[0:0:0:0:0:0:0:1]:5000/x", "[::1]:5000/x:latest"),
        ("[2001:DB8::1]/x", "[2001:db8::1]/x:latest"),
        ("[2001:db8::1]:443/x:v1", "[2001:db8::1]/x:v1"),
        # digests: the tag is kept when both are written, no :latest with a digest
        (f"nginx@{D}", f"docker.io/library/nginx@{D}"),
        (f"nginx:1.27@{D}", f"docker.io/library/nginx:1.27@{D}"),
        (f"index.docker.io/acme/app@{D}", f"docker.io/acme/app@{D}"),
        (f"127.0.0.1:5000/team/app@{D}", f"127.0.0.1:5000/team/app@{D}"),
        (f"REGISTRY.EXAMPLE.COM:443/x:v1@{D}", f"registry.example.com/x:v1@{D}"),
        ("  nginx  ", "docker.io/library/nginx:latest"),
    ],
)
def test_canonical_mapping(written: str, canonical: str) -> None:
    assert canonical_image(written) == canonical
    assert canonical_image(canonical) == canonical  # idempotent


def test_canonical_name_is_not_the_endpoint() -> None:
    hub = ImageReference.parse("nginx:latest")
    assert (hub.registry, hub.repository, hub.tag, hub.digest) == (
        "docker.io",
        "library/nginx",
        "latest",
        None,
    )
    assert (hub.name, hub.endpoint, hub.reference) == (
        "docker.io/library/nginx",
        "registry-1.docker.io",
        "latest",
    )
    other = ImageReference.parse("REGISTRY.EXAMPLE.COM:443/x")
    assert (other.name, other.endpoint, other.reference) == (
        "registry.example.com/x",
        "registry.example.com",
        "latest",
    )


def test_construction_canonicalises_too() -> None:
    assert ImageReference("INDEX.DOCKER.IO:443", "nginx") == ImageReference.parse("nginx")
    assert str(ImageReference("DOCKER.IO", "nginx", digest=D)) == f"docker.io/library/nginx@{D}"
    assert ImageReference.parse("nginx").with_digest(D) == ImageReference.parse(f"nginx@{D}")
    assert str(ImageReference.parse(f"nginx:1@{D}").with_tag("2")) == "docker.io/library/nginx:2"
    with pytest.raises(InputError) as caught:
        ImageReference("Acme", "app")
    assert caught.value.message == (
        "image reference 'Acme/app' has registry host 'Acme', which the reference grammar reads "
        "as a repository (a host has a dot or a port, or is localhost)"
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"digest": D + "\n"},
            f"image reference 'reg.example/app' has digest {D + chr(10)!r}, which is not "
            "sha256:<64 lowercase hex>",
        ),
        ({"tag": "v1\n"}, "image reference 'reg.example/app' has an invalid tag 'v1\\n'"),
    ],
)
def test_a_constructed_reference_with_a_trailing_newline_is_refused(
    fields: dict[str, str], message: str
) -> None:
    """A reference built from a registry's answer (a descriptor's digest, a tag list) is checked
    whole: ``$`` let a trailing newline through, to be refused later, if at all, as something
    else (a malformed request to the registry, a subject that never matches)."""
    with pytest.raises(InputError) as caught:
        ImageReference("reg.example", "app", **fields)
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the image reference is empty"),
        (
            "127.0.0.1:5000/App",
            "image reference '127.0.0.1:5000/App' has an invalid repository 'App' (lowercase "
            "letters, digits and separators . _ - /)",
        ),
        (
            "acme/App:1.0",
            "image reference 'acme/App:1.0' has an invalid repository 'acme/App' (lowercase "
            "letters, digits and separators . _ - /)",
        ),
        (  # Docker reads an upper-case first component as a host; lower-cased, it would not be
            "Acme/app",
            "image reference 'Acme/app' has an invalid repository 'Acme/app' (lowercase "
            "letters, digits and separators . _ - /)",
        ),
        (
            "Nginx",
            "image reference 'Nginx' has an invalid repository 'Nginx' (lowercase letters, "
            "digits and separators . _ - /)",
        ),
        (
            "127.0.0.1:5000/app@sha256:abc",
            "image reference '127.0.0.1:5000/app@sha256:abc' has digest 'sha256:abc', which is "
            "not sha256:<64 lowercase hex>",
        ),
        (
            f"nginx@sha512:{'a' * 128}",
            f"image reference 'nginx@sha512:{'a' * 128}' has digest 'sha512:{'a' * 128}', "
            "which is not sha256:<64 lowercase hex>",
        ),
        (
            "127.0.0.1:5000/app:-x",
            "image reference '127.0.0.1:5000/app:-x' has an invalid tag '-x'",
        ),
        ("nginx:", "image reference 'nginx:' has an invalid tag ''"),
        (
            "registry.example.com:99999/x",
            "image reference 'registry.example.com:99999/x' has an invalid registry port '99999'",
        ),
        (
            "registry.example.com:http/x",
            "image reference 'registry.example.com:http/x' has an invalid registry port 'http'",
        ),
        (  # str.isdigit() says yes; int() raised ValueError (a crash, not a refusal)
            "registry.example.com:\u00b2/x",
            "image reference 'registry.example.com:\u00b2/x' has an invalid registry port '\u00b2'",
        ),
        (  # int() reads it as 5000, a port no container runtime parses
            "registry.example.com:\u0665\u0660\u0660\u0660/x",
            "image reference 'registry.example.com:\u0665\u0660\u0660\u0660/x' has an "
            "invalid registry port '\u0665\u0660\u0660\u0660'",
        ),
        (
            "[::g]:5000/x",
            "image reference '[::g]:5000/x' has an invalid IPv6 registry host '[::g]:5000'",
        ),
        (
            "bad_host.example/x",
            "image reference 'bad_host.example/x' has an invalid registry host 'bad_host.example'",
        ),
        ("nginx latest", "image reference 'nginx latest' contains white space"),
        (
            "docker.io/" + "a" * 250,
            f"image reference 'docker.io/{'a' * 250}' is longer than 255 characters",
        ),
    ],
)
def test_bad_references(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        ImageReference.parse(text)
    assert (caught.value.message, caught.value.hint) == (message, HINT)


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io:443", "docker.io"),
        ("REGISTRY.EXAMPLE.COM:443", "registry.example.com"),
        ("localhost:443", "localhost:443"),
        ("[::1]:443", "[::1]:443"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_canonical_host(host: str, canonical: str) -> None:
    assert canonical_host(host) == canonical


@pytest.mark.parametrize(
    ("glob", "canonical"),
    [
        ("*", "*"),  # every image, every registry
        ("*/acme/app", "*/acme/app"),  # the registry part is a wildcard: as written
        ("acme/*", "docker.io/acme/*"),
        ("nginx", "docker.io/library/nginx"),
        ("nginx*", "docker.io/library/nginx*"),
        ("nginx:1.*", "docker.io/library/nginx:1.*"),
        ("docker.io/*", "docker.io/*"),  # all of Docker Hub, not only official images
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        ("INDEX.DOCKER.IO/acme/*", "docker.io/acme/*"),
        ("registry.example.com:443/x*", "registry.example.com/x*"),
        ("REGISTRY.EXAMPLE.COM/x", "registry.example.com/x"),
        ("127.0.0.1:5000/team/*", "127.0.0.1:5000/team/*"),
        ("[0:0::1]:5000/x", "[[]::1]:5000/x"),  # escaped: not a character class
        ("registry.example:\u00b2/x", "registry.example:\u00b2/x"),  # no host: as written
    ],
)
def test_policy_globs_are_read_with_the_grammar(glob: str, canonical: str) -> None:
    assert canonical_glob(glob) == canonical


def test_an_ipv6_glob_matches_its_host_only() -> None:
    from fnmatch import fnmatchcase

    pattern = canonical_glob("[0:0::1]:5000/*")
    assert fnmatchcase(canonical_image("[::1]:5000/app"), pattern)
    assert not fnmatchcase(canonical_image("127.0.0.1:5000/app"), pattern)
