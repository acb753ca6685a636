"""Image references (``host[:port]/repo[:tag][@sha256:...]``), parsed strictly.

Every command and the admission webhook name images the same way; parsing them in one place
gives one set of rules (a registry host is required, digests are sha256) and one error text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from affidavit.errors import InputError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST = re.compile(r"^(?:localhost|\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::\d+)?$")

_REF_HINT = "write it as HOST[:PORT]/REPOSITORY[:TAG][@sha256:<64 hex>], e.g. 127.0.0.1:5000/app@sha256:<hex>"


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference: registry host, repository, and a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse ``host[:port]/repo[:tag][@sha256:...]``; the registry host is required."""
        ref = text.strip()
        if not ref:
            raise InputError("the image reference is empty", hint=_REF_HINT)
        rest, digest = ref, None
        if "@" in ref:
            rest, digest = ref.split("@", 1)
            if not _DIGEST.match(digest):
                raise InputError(
                    f"image reference {text!r} has digest {digest!r}, which is not "
                    "sha256:<64 lowercase hex>",
                    hint=_REF_HINT,
                )
        host, sep, path = rest.partition("/")
        if (
            not sep
            or not _HOST.match(host)
            or not ("." in host or ":" in host or host == "localhost")
        ):
            raise InputError(
                f"image reference {text!r} does not start with a registry host", hint=_REF_HINT
            )
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, tag = path.rsplit(":", 1)
            if not _TAG.match(tag):
                raise InputError(
                    f"image reference {text!r} has an invalid tag {tag!r}", hint=_REF_HINT
                )
        if not _REPOSITORY.match(path):
            raise InputError(
                f"image reference {text!r} has an invalid repository {path!r} (lowercase letters, "
                "digits and separators . _ - /)",
                hint=_REF_HINT,
            )
        return cls(registry=host, repository=path, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """``host/repository``: the subject name of statements about this image."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when known, else the tag (``latest``)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> ImageReference:
        return replace(self, digest=digest)

    def with_tag(self, tag: str) -> ImageReference:
        return replace(self, tag=tag, digest=None)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
