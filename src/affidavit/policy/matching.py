"""How a policy or an exception matches a request: image globs, namespace selectors.

Matching is where a bypass would hide (another spelling of an image, a label that is present but
empty), so it lives in one small module the index, the unmatched-image rule and the operator's
health checks share, read with the image reference grammar on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from affidavit.attestations.reference import (
    GLOB_CHARS,
    ImageReference,
    canonical_glob,
    canonical_host,
)
from affidavit.errors import InputError
from affidavit.policy.model import NamespaceSelector


def glob_any(globs: Sequence[str], value: str) -> bool:
    """Whether ``value`` matches any of the shell-style ``globs`` (case-sensitive)."""
    return any(fnmatchcase(value, g) for g in globs)


def one_repository(glob: str) -> bool:
    """Whether an image glob covers the images of one repository at most: its registry and
    repository written out, a wildcard only in the tag or the digest (``exceptions.
    repositoryOnly``). Read as the index reads globs (``canonical_glob``: ``nginx*`` is
    ``docker.io/library/nginx*``, a wildcard in the repository's name)."""
    text = canonical_glob(glob)
    host, sep, rest = text.partition("/")
    if host.startswith("[[]"):  # an IPv6 host, its bracket escaped for fnmatch
        host = host[3:].replace("]", "", 1)
    if not sep or not rest or GLOB_CHARS.intersection(host):
        return False
    path, at, _digest = rest.partition("@")
    if not at:  # the tag is what follows a colon in the last path component
        head, slash, last = path.rpartition("/")
        path = head + slash + last.partition(":")[0]
    return bool(path) and not GLOB_CHARS.intersection(path)


def covers(patterns: Sequence[str], ref: ImageReference, *, pinned_tags: bool = False) -> bool:
    """``image_matches`` for globs already in canonical form (the index reads them once).

    A reference with a digest is also read without its tag (``app:x@sha256:D`` as
    ``app@sha256:D``): the runtime pulls the digest, so a tag written beside it must not take
    the image out of a glob that names the digest."""
    if not patterns or glob_any(patterns, str(ref)) or glob_any(patterns, ref.name):
        return True
    if ref.digest and ref.tag and glob_any(patterns, f"{ref.name}@{ref.digest}"):
        return True
    return bool(pinned_tags and ref.digest and ref.tag) and glob_any(
        patterns, f"{ref.name}:{ref.tag}"
    )


def named_repository(glob: str) -> str | None:
    """The repository glob of a canonical image glob that names a tag (``reg/app:v*`` is
    ``reg/app``); None for one that names no tag, or names a digest."""
    host, sep, rest = glob.partition("/")
    if not sep or "@" in rest:
        return None
    head, slash, last = rest.rpartition("/")
    name, colon, _tag = last.partition(":")
    return f"{host}/{head}{slash}{name}" if colon and name else None


def covers_any_tag(patterns: Sequence[str], ref: ImageReference) -> bool:
    """Whether a glob names ``ref``'s repository with some tag, ``ref`` carrying a digest.

    The container runtime pulls a reference with a digest by its digest: its tag, if it has
    one, is whatever the requester wrote (``app:made-up@sha256:..``), and a digest alone is
    every tag's image there ever was. So for policy coverage, where matching more is stricter,
    such a reference that no glob matches otherwise is covered by every glob naming its
    repository with a tag (``app:*``, ``app:v*``, ``app:1.0``): a tag glob never lets a digest
    escape the policies of its repository (``PolicyIndex.effective``)."""
    if ref.digest is None:
        return False
    return any(
        (repository := named_repository(p)) is not None and fnmatchcase(ref.name, repository)
        for p in patterns
    )


def image_matches(globs: Sequence[str], ref: str, *, pinned_tags: bool = False) -> bool:
    """An empty list matches every image; a glob may match the full reference or the repository.

    Both sides are read with the reference grammar first (``canonical_glob``, and the canonical
    form of ``ref``), so no spelling of an image escapes a glob that names it.

    ``pinned_tags``: a glob naming a tag also covers that tag pinned by digest (``app:1.0``
    covers ``app:1.0@sha256:..``, as the pinning webhook writes it and as anyone may). Right for
    policy coverage, where matching more is stricter; not for exceptions, where it would admit
    every digest of the repository under a tag's name.
    """
    patterns = [canonical_glob(g) for g in globs]
    return covers(patterns, ImageReference.parse(ref), pinned_tags=pinned_tags)


def registry_glob(text: str) -> str:
    """A registry host glob as image references are compared: a plain host in canonical form
    (``REGISTRY.example:443`` is ``registry.example``, ``index.docker.io`` is ``docker.io``, an
    IPv6 literal compressed, its bracket escaped for fnmatch), a glob in lower case."""
    if text.startswith("["):
        try:
            return canonical_host(text).replace("[", "[[]", 1)
        except InputError:
            return text.lower().replace("[", "[[]", 1)
    if GLOB_CHARS.intersection(text):
        return text.lower()
    try:
        return canonical_host(text)
    except InputError:
        return text.lower()  # the model's pattern already refused what no host could be


def shown_registry(glob: str) -> str:
    """A ``registry_glob`` as its author wrote it (an IPv6 literal's bracket unescaped)."""
    return glob.replace("[[]", "[", 1)


def registry_matches(glob: str, registry: str) -> bool:
    """Whether the canonical ``registry`` host of an image is one ``registry_glob`` names."""
    return fnmatchcase(registry, glob)


def selector_matches(sel: NamespaceSelector | None, labels: Mapping[str, str]) -> bool:
    """Whether a namespace with ``labels`` is selected (no selector selects every namespace)."""
    if sel is None:
        return True
    if any(labels.get(k) != v for k, v in sel.match_labels.items()):
        return False
    for e in sel.match_expressions:
        present = e.key in labels
        ok = {
            "In": present and labels.get(e.key) in e.values,
            "NotIn": not present or labels.get(e.key) not in e.values,
            "Exists": present,
            "DoesNotExist": not present,
        }[e.operator]
        if not ok:
            return False
    return True
