"""Who a Sigstore certificate says signed, checked against a keyless signer's identity policy.

A keyless signer is trusted by OIDC issuer plus either the exact subject (the certificate's
SAN: an email, a URI such as a workflow or a Kubernetes service account) or a regular
expression the subject must match whole, as policy-controller's ``keyless.identities`` and
cosign's ``--certificate-identity[-regexp]`` do. sigstore-python's own policies give only an
exact match and English that names neither side, so this policy is ours: each refusal names
what the certificate says and what was trusted, because a release manager acts on it.

The certificate also says which repository and commit the CI platform's token named
(``certified_source``); the policy holds a statement's own ``source`` to it (``certifiedSource``,
in ``affidavit.policy.certified``), so an identity trusted by a broad pattern cannot describe
another repository than the one it ran for.

A CI identity's subject names the workflow that ran, not why it ran: a reusable release
workflow called from a pull request's run has the same subject as when it is called from a push
to main, and a caller's workflow file names its own ref only where the platform puts it in the
subject. So a signer may also name the refs the run was for (Fulcio's Source Repository Ref) and
the events that may have started it (Build Trigger), as cosign's
``--certificate-github-workflow-ref`` and ``-trigger`` do; a certificate that names neither is
refused by a signer that asks for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from affidavit.attestations.evidence import CertifiedSource
from affidavit.errors import VerificationError

# Fulcio's certificate extensions (github.com/sigstore/fulcio docs/oid-info.md).
OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw bytes (deprecated)
OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
OTHERNAME_SAN = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
# The source the CI platform's token names (docs/oid-info.md): the repository's web address and
# the commit the workflow ran at, both DER UTF8Strings.
SOURCE_REPOSITORY_URI = ObjectIdentifier("1.3.6.1.4.1.57264.1.12")
SOURCE_REPOSITORY_DIGEST = ObjectIdentifier("1.3.6.1.4.1.57264.1.13")
# The ref the run was for (refs/heads/main, refs/pull/7/merge) and the event that started it
# (push, pull_request, workflow_dispatch), DER UTF8Strings too.
SOURCE_REPOSITORY_REF = ObjectIdentifier("1.3.6.1.4.1.57264.1.14")
BUILD_TRIGGER = ObjectIdentifier("1.3.6.1.4.1.57264.1.20")


def _der_utf8(raw: bytes) -> str | None:
    """The text of a DER UTF8String (tag 0x0c, a short or long length, exactly that many bytes),
    or None if ``raw`` is not one."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return None
    length, start = raw[1], 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or len(raw) < 2 + n:
            return None
        length, start = int.from_bytes(raw[2 : 2 + n], "big"), 2 + n
    if len(raw) != start + length:
        return None
    try:
        return raw[start:].decode()
    except UnicodeDecodeError:
        return None


def _extension_bytes(cert: x509.Certificate, oid: ObjectIdentifier) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    return ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio wrote into ``cert`` (the v2 extension, else the v1 one)."""
    raw = _extension_bytes(cert, OIDC_ISSUER_V2)
    if raw is not None:
        return _der_utf8(raw)
    raw = _extension_bytes(cert, OIDC_ISSUER_V1)
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def _claim(cert: x509.Certificate, oid: ObjectIdentifier, what: str) -> str | None:
    """One of Fulcio's DER UTF8String extensions, None when absent; one that is present and
    unreadable is refused (it must not count as absent)."""
    raw = _extension_bytes(cert, oid)
    if raw is None:
        return None
    text = _der_utf8(raw)
    if text is None:
        raise VerificationError(
            f"the certificate's {what} extension ({oid.dotted_string}) is not a DER UTF8String"
        )
    return text


def certified_source(cert: x509.Certificate) -> CertifiedSource | None:
    """The repository and commit the CI platform vouched for, as Fulcio wrote them from the
    identity token's claims (GitHub Actions, GitLab CI, Buildkite, ...), or None for an identity
    that names no source (an email, a Kubernetes service account).

    A certificate whose extension is present but is not a DER UTF8String is refused: a source
    that cannot be read must not count as no source."""
    repository = _claim(cert, SOURCE_REPOSITORY_URI, "Source Repository URI")
    revision = _claim(cert, SOURCE_REPOSITORY_DIGEST, "Source Repository Digest")
    if repository is None:
        return None
    return CertifiedSource(repository, revision or "")


def certificate_subjects(cert: x509.Certificate) -> list[str]:
    """The identities the certificate's SAN names (emails, URIs, Fulcio's othername)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out: list[str] = [*san.get_values_for_type(x509.RFC822Name)]
    out += san.get_values_for_type(x509.UniformResourceIdentifier)
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == OTHERNAME_SAN and len(other.value) > 2:
            out.append(other.value[2:].decode(errors="replace"))
    return out


@dataclass(frozen=True)
class IdentityPolicy:
    """Issuer plus exact ``subject`` or ``subject_regexp`` (a sigstore VerificationPolicy)."""

    issuer: str
    subject: str = ""
    subject_regexp: str = ""
    refs: tuple[str, ...] = ()  # the Source Repository Refs trusted (empty: any)
    triggers: tuple[str, ...] = ()  # the Build Triggers trusted (empty: any)

    def __post_init__(self) -> None:
        if bool(self.subject) == bool(self.subject_regexp):
            raise VerificationError(
                "a keyless signer needs exactly one of subject and subjectRegExp"
            )
        if self.subject_regexp:
            try:
                re.compile(self.subject_regexp)
            except re.error as e:
                raise VerificationError(
                    f"subjectRegExp {self.subject_regexp!r} is not a regular expression: {e}"
                ) from e

    @property
    def wanted(self) -> str:
        """The trusted subject as people read it."""
        return self.subject or f"/{self.subject_regexp}/"

    def verify(self, cert: x509.Certificate) -> None:
        """Raise VerificationError (a sigstore one, caught by the caller) when not matched."""
        issuer = certificate_issuer(cert)
        if issuer != self.issuer:
            raise VerificationError(
                f"the certificate's OIDC issuer is {issuer or 'missing'}, not the trusted "
                f"issuer {self.issuer}"
            )
        subjects = certificate_subjects(cert)
        if self.subject:
            ok = self.subject in subjects
        else:
            pattern = re.compile(self.subject_regexp)
            ok = any(pattern.fullmatch(s) for s in subjects)
        if not ok:
            raise VerificationError(
                f"the certificate's identity is {', '.join(subjects) or 'missing'}, not the "
                f"trusted identity {self.wanted} (issuer {self.issuer})"
            )
        for wanted, oid, what in (
            (self.refs, SOURCE_REPOSITORY_REF, "Source Repository Ref"),
            (self.triggers, BUILD_TRIGGER, "Build Trigger"),
        ):
            if not wanted:
                continue
            claim = _claim(cert, oid, what)
            if claim not in wanted:
                said = f"is {claim}" if claim is not None else f"is missing ({oid.dotted_string})"
                raise VerificationError(
                    f"the certificate's {what} {said}, not one the signer {self.wanted} is "
                    f"trusted for: {', '.join(wanted)}"
                )
