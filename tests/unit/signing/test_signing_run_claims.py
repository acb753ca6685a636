"""A keyless signer trusted only for some refs and triggers (Fulcio's Source Repository Ref and
Build Trigger).

A reusable release workflow's subject is the same whether a push to main or a pull request's
run called it, so a signer that trusts the subject alone trusts a pull request's run to sign.
Certificates a real Fulcio issues from a GitHub-Actions-shaped token are read in
tests/e2e/admission/test_e2e_admission_certified_source.py.
"""

from __future__ import annotations

import pytest
from cryptography import x509

from affidavit.attestations.sigstore_identity import (
    BUILD_TRIGGER,
    OIDC_ISSUER_V2,
    SOURCE_REPOSITORY_REF,
    IdentityPolicy,
)
from affidavit.errors import VerificationError
from fulcio_certs import cert, utf8

ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "https://github.com/acme/release/.github/workflows/attest.yml@refs/heads/main"


def _run(ref: str | None, trigger: str | None) -> x509.Certificate:
    claims = {OIDC_ISSUER_V2: utf8(ISSUER)}
    if ref is not None:
        claims[SOURCE_REPOSITORY_REF] = utf8(ref)
    if trigger is not None:
        claims[BUILD_TRIGGER] = utf8(trigger)
    return cert(claims, uri=SUBJECT)


MAIN_ONLY = IdentityPolicy(ISSUER, SUBJECT, refs=("refs/heads/main",), triggers=("push",))


def test_a_push_to_main_is_trusted() -> None:
    MAIN_ONLY.verify(_run("refs/heads/main", "push"))


def test_a_pull_requests_run_of_the_same_workflow_is_refused() -> None:
    with pytest.raises(VerificationError) as caught:
        MAIN_ONLY.verify(_run("refs/pull/7/merge", "pull_request"))
    assert caught.value.message == (
        "the certificate's Source Repository Ref is refs/pull/7/merge, not one the signer "
        f"{SUBJECT} is trusted for: refs/heads/main"
    )
    with pytest.raises(VerificationError, match="Build Trigger is pull_request_target, not"):
        MAIN_ONLY.verify(_run("refs/heads/main", "pull_request_target"))


def test_a_certificate_that_names_no_ref_is_refused_by_a_signer_that_asks() -> None:
    with pytest.raises(VerificationError) as caught:
        MAIN_ONLY.verify(_run(None, "push"))
    assert caught.value.message == (
        "the certificate's Source Repository Ref is missing (1.3.6.1.4.1.57264.1.14), not one "
        f"the signer {SUBJECT} is trusted for: refs/heads/main"
    )


def test_an_unreadable_claim_is_refused_not_taken_as_missing() -> None:
    broken = cert(
        {
            OIDC_ISSUER_V2: utf8(ISSUER),
            SOURCE_REPOSITORY_REF: b"\x04\x03abc",
            BUILD_TRIGGER: utf8("push"),
        },
        uri=SUBJECT,
    )
    with pytest.raises(VerificationError, match=r"Source Repository Ref extension .* is not a DER"):
        MAIN_ONLY.verify(broken)


def test_a_signer_that_names_neither_trusts_any_run() -> None:
    IdentityPolicy(ISSUER, SUBJECT).verify(_run("refs/pull/7/merge", "pull_request"))
    IdentityPolicy(ISSUER, SUBJECT).verify(_run(None, None))


def test_one_of_several_triggers_is_enough() -> None:
    either = IdentityPolicy(ISSUER, SUBJECT, triggers=("push", "workflow_dispatch"))
    either.verify(_run("refs/heads/feature", "workflow_dispatch"))
