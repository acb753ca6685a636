"""Reading what a Fulcio certificate says: its OIDC issuer and the source the CI platform named.

The extensions are DER UTF8Strings (Fulcio's docs/oid-info.md). A source extension that is
present but does not read as one refuses the signature: a source that cannot be read must not
count as no source (which ``certifiedSource`` would not compare). Certificates a real Fulcio
issues are read in tests/e2e/admission/test_e2e_admission_certified_source.py.
"""

from __future__ import annotations

import pytest

from affidavit.attestations.evidence import CertifiedSource
from affidavit.attestations.sigstore_identity import (
    OIDC_ISSUER_V1,
    OIDC_ISSUER_V2,
    SOURCE_REPOSITORY_DIGEST,
    SOURCE_REPOSITORY_URI,
    certificate_issuer,
    certified_source,
)
from affidavit.errors import VerificationError
from fulcio_certs import cert, utf8

SHA = "ab" * 20


def test_the_source_the_platform_named_is_read() -> None:
    repo = "https://github.com/acme/" + "payments-" * 20  # a long (two-byte) length
    c = cert({SOURCE_REPOSITORY_URI: utf8(repo), SOURCE_REPOSITORY_DIGEST: utf8(SHA)})
    assert certified_source(c) == CertifiedSource(repo, SHA)
    only_repo = cert({SOURCE_REPOSITORY_URI: utf8(repo)})
    assert certified_source(only_repo) == CertifiedSource(repo, "")


def test_an_identity_naming_no_source_has_none() -> None:
    assert certified_source(cert({OIDC_ISSUER_V2: utf8("https://accounts.google.com")})) is None
    # a commit without a repository names no source to compare
    assert certified_source(cert({SOURCE_REPOSITORY_DIGEST: utf8(SHA)})) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"\x04\x03abc",  # an OCTET STRING, not a UTF8String
        b"\x0c\x05abc",  # shorter than its length
        b"\x0c\x02abc",  # longer than its length
        b"\x0c\x80",  # an indefinite length (not DER)
        b"\x0c\x02\xff\xfe",  # not UTF-8
        b"\x0c",
    ],
)
def test_a_source_that_does_not_read_refuses_the_signature(raw: bytes) -> None:
    for oid, what in (
        (SOURCE_REPOSITORY_URI, "Source Repository URI"),
        (SOURCE_REPOSITORY_DIGEST, "Source Repository Digest"),
    ):
        other = SOURCE_REPOSITORY_DIGEST if oid == SOURCE_REPOSITORY_URI else SOURCE_REPOSITORY_URI
        with pytest.raises(VerificationError) as e:
            certified_source(cert({oid: raw, other: utf8("x")}))
        assert e.value.message == (
            f"the certificate's {what} extension ({oid.dotted_string}) is not a DER UTF8String"
        )


def test_the_issuer_is_read_from_either_extension() -> None:
    issuer = "https://token.actions.githubusercontent.com"
    assert certificate_issuer(cert({OIDC_ISSUER_V2: utf8(issuer)})) == issuer
    assert certificate_issuer(cert({OIDC_ISSUER_V1: issuer.encode()})) == issuer
    # the v2 extension decides when both are there, and one that does not read names none
    both = cert({OIDC_ISSUER_V2: utf8(issuer), OIDC_ISSUER_V1: b"https://other.example"})
    assert certificate_issuer(both) == issuer
    assert certificate_issuer(cert({OIDC_ISSUER_V2: b"\x0c\x09short"})) is None
    assert certificate_issuer(cert({})) is None
