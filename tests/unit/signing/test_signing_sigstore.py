"""Sigstore: offline verification of a real public-good DSSE bundle (and its rejections), and
the keyless-signing paths that need no OIDC identity or network.

A successful keyless signature needs an OIDC identity and a Sigstore: tests/e2e/keyless signs
against a private one on loopback, with the control plane's service-account identity.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from affidavit.attestations.sigstore import NO_IDENTITY, sign_dsse_keyless, verify_bundle
from affidavit.attestations.statement import make_statement
from affidavit.errors import KeyMaterialError, SigningError, VerificationError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sigstore"
BUNDLE = (FIXTURES / "gcb_attestation_test-0.0.0.tar.gz.sigstore.json").read_bytes()
ROOT = FIXTURES / "trusted_root.json"
IDENTITY = "919436158236-compute@developer.gserviceaccount.com"
ISSUER = "https://accounts.google.com"


def test_real_bundle_verifies_offline_with_given_root() -> None:
    result = verify_bundle(BUNDLE, issuer=ISSUER, identity=IDENTITY, trusted_root=ROOT)
    statement = json.loads(result.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["digest"]["sha256"] == (
        "461317362419124b6012e855423a9078d6de8aed3e74fa78cc74d669b23dc6cf"
    )
    assert result.payload_type == "application/vnd.in-toto+json"
    assert result.signer == IDENTITY
    assert result.keyid == ""


def test_real_bundle_verifies_with_bundled_root_and_a_name() -> None:
    result = verify_bundle(BUNDLE, issuer=ISSUER, identity=IDENTITY, name="gcb-builder")
    assert result.signer == "gcb-builder"


def test_wrong_identity() -> None:
    with pytest.raises(VerificationError) as info:
        verify_bundle(BUNDLE, issuer=ISSUER, identity="mallory@example.com", trusted_root=ROOT)
    assert info.value.message == (
        f"the certificate's identity is {IDENTITY}, not the trusted identity mallory@example.com"
        f" (issuer {ISSUER})"
    )


def test_identity_regexp_matches_whole_subject() -> None:
    result = verify_bundle(
        BUNDLE, issuer=ISSUER, identity_regexp=r"[0-9]+-compute@developer\.gserviceaccount\.com",
        trusted_root=ROOT,
    )  # fmt: skip
    assert result.signer == r"/[0-9]+-compute@developer\.gserviceaccount\.com/"
    with pytest.raises(VerificationError) as info:
        verify_bundle(BUNDLE, issuer=ISSUER, identity_regexp="[0-9]+-compute", trusted_root=ROOT)
    assert info.value.message == (
        f"the certificate's identity is {IDENTITY}, not the trusted identity /[0-9]+-compute/"
        f" (issuer {ISSUER})"
    )
    with pytest.raises(VerificationError) as info:
        verify_bundle(BUNDLE, issuer=ISSUER, identity_regexp="(", trusted_root=ROOT)
    assert info.value.message == (
        "subjectRegExp '(' is not a regular expression: missing ), unterminated subpattern at "
        "position 0"
    )


def test_trusted_root_as_text() -> None:
    result = verify_bundle(BUNDLE, issuer=ISSUER, identity=IDENTITY, trusted_root=ROOT.read_text())
    assert result.signer == IDENTITY
    with pytest.raises(KeyMaterialError) as info:
        verify_bundle(BUNDLE, issuer=ISSUER, identity=IDENTITY, trusted_root="{}")
    assert info.value.message.startswith("cannot load the Sigstore trusted root: ")


def test_wrong_issuer() -> None:
    github = "https://token.actions.githubusercontent.com"
    with pytest.raises(VerificationError) as info:
        verify_bundle(BUNDLE, issuer=github, identity=IDENTITY, trusted_root=ROOT)
    assert info.value.message == (
        f"the certificate's OIDC issuer is {ISSUER}, not the trusted issuer {github}"
    )


def _tampered(change: object) -> bytes:
    document = json.loads(BUNDLE)
    change(document)  # type: ignore[operator]
    return json.dumps(document).encode()


def _other_subject(document: dict[str, dict[str, str]]) -> None:
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()


def test_tampered_payload() -> None:
    with pytest.raises(VerificationError) as info:
        verify_bundle(
            _tampered(_other_subject), issuer=ISSUER, identity=IDENTITY, trusted_root=ROOT
        )
    assert info.value.message == (
        f"Sigstore bundle did not verify for {IDENTITY} (issuer {ISSUER}): DSSE: invalid signature"
    )


def test_untrusted_root_rejects(tmp_path: Path) -> None:
    root = json.loads(ROOT.read_text())
    root["certificateAuthorities"] = root["certificateAuthorities"][:1]  # only the 2021 CA
    path = tmp_path / "root.json"
    path.write_text(json.dumps(root))
    with pytest.raises(VerificationError, match=r"^Sigstore bundle did not verify for "):
        verify_bundle(BUNDLE, issuer=ISSUER, identity=IDENTITY, trusted_root=path)


def test_malformed_and_oversized_bundles(tmp_path: Path) -> None:
    with pytest.raises(VerificationError) as info:
        verify_bundle(b"{}", issuer=ISSUER, identity=IDENTITY, trusted_root=ROOT)
    assert info.value.message.startswith("bundle is not a valid Sigstore bundle: ")
    with pytest.raises(VerificationError) as info:
        verify_bundle(BUNDLE, issuer=ISSUER, identity=IDENTITY, trusted_root=ROOT, max_bytes=100)
    assert info.value.message == f"bundle is {len(BUNDLE)} bytes, over the 100-byte limit"
    with pytest.raises(KeyMaterialError) as key_info:
        verify_bundle(BUNDLE, issuer=ISSUER, identity=IDENTITY, trusted_root=tmp_path / "no.json")
    assert key_info.value.message == f"trusted root {tmp_path / 'no.json'} does not exist"


AMBIENT = (
    "GITHUB_ACTIONS",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "SIGSTORE_ID_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_NAME",
    "BUILDKITE",
    "GITLAB_CI",
    "CIRCLECI",
)


def test_keyless_without_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AMBIENT:
        monkeypatch.delenv(name, raising=False)
    statement = make_statement("reg.example/app", "sha256:" + "1" * 64, "https://x.example/p", {})
    with pytest.raises(SigningError) as info:
        sign_dsse_keyless(statement)
    assert info.value.message == NO_IDENTITY
    assert NO_IDENTITY == (
        "no ambient OIDC identity: run in GitHub Actions with id-token: write, or pass"
        " --identity-token"
    )


def test_keyless_rejects_bad_statement_and_bad_token() -> None:
    sha1 = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a", "digest": {"sha1": "0" * 40}}],
            "predicateType": "https://x.example/p",
            "predicate": {},
        }
    ).encode()
    with pytest.raises(SigningError) as info:
        sign_dsse_keyless(sha1, identity_token="x")
    assert info.value.message.startswith("Sigstore refuses the statement: ")
    statement = make_statement("reg.example/app", "sha256:" + "1" * 64, "https://x.example/p", {})
    with pytest.raises(SigningError) as info:
        sign_dsse_keyless(statement, identity_token="not-a-jwt")
    assert info.value.message.startswith("Sigstore keyless signing failed: ")


def test_an_unusable_trusted_root_fails_its_signer_only() -> None:
    # one keyless signer's root is broken (a malformed ConfigMap): the next signer, whose root
    # is sound, still checks the bundle's signature; alone, the broken one refuses it by name
    from affidavit.attestations.evidence import KeylessSigner
    from affidavit.attestations.reference import ImageReference
    from affidavit.attestations.store import BUNDLE_MEDIA_TYPE, FetchedAttestation
    from affidavit.attestations.verify import verify_fetched

    digest = "sha256:461317362419124b6012e855423a9078d6de8aed3e74fa78cc74d669b23dc6cf"
    image = ImageReference.parse(f"registry.example/gcb@{digest}")
    item = FetchedAttestation("referrer", BUNDLE_MEDIA_TYPE, "sha256:" + "1" * 64, None, BUNDLE)
    broken = KeylessSigner("broken", ISSUER, identity=IDENTITY, trusted_root="{}")
    sound = KeylessSigner("sound", ISSUER, identity=IDENTITY, trusted_root=ROOT.read_text())
    # the signature verifies with the sound root: what is left is the statement (this PEP 740
    # attestation's predicate is not an object, so it is not evidence Affidavit uses)
    [rejected] = verify_fetched([item], image, [broken, sound]).rejected
    assert rejected.reason == (
        "statement is not an in-toto Statement v1: predicate: Input should be a valid dictionary"
    )
    [rejected] = verify_fetched([item], image, [broken]).rejected
    assert rejected.reason.startswith(
        "the trusted root of keyless signer broken cannot be used: cannot load the Sigstore"
        " trusted root: "
    )
