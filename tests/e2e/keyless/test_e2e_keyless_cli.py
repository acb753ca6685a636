"""``affidavit attest --sigstore`` against a private Sigstore, ``affidavit verify`` offline.

The pipeline's identity is a Kubernetes service account of the real control plane; the
certificate comes from the private Fulcio, the entry from the private Rekor v2, the time from the
private TSA. Verification reads only the registry and the trusted_root.json: each refusal
(wrong identity, wrong issuer, a tampered bundle, an entry in a log the root does not name, a
statement the certificate's key signed that no log saw) names its reason.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.sigstore import private_trust_config, sign_dsse_keyless
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import attach
from affidavit.cli.main import main
from affidavit.demo.services import LocalRegistry
from affidavit.envtest import ControlPlaneInfo
from affidavit.envtest.sigstore import PrivateSigstore, SigstoreInfo
from keyless_sigstore import Identity, Kubectl, resign, service_account_token

TYPE = "https://example.com/keyless/v1"


@pytest.fixture(scope="module")
def ci(kubectl: Kubectl, control_plane: ControlPlaneInfo) -> Identity:
    return service_account_token(kubectl, control_plane, "release-pipeline")


@pytest.fixture
def image(registry: LocalRegistry, request: pytest.FixtureRequest) -> Iterator[ImageReference]:
    repo = ImageReference.parse(f"{registry.host}/keyless/{request.node.name.replace('_', '-')}")
    with RegistryClient(insecure_hosts={registry.host}) as client:
        digest = push_sample_image(client, repo, {"app/main.py": b"print('keyless')\n"}, "v1")
    yield repo.with_digest(digest)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def attest(
    capsys: pytest.CaptureFixture[str],
    image: ImageReference,
    sigstore: SigstoreInfo,
    identity: Identity,
    tmp_path: Path,
    signing_config: Path | None = None,
) -> tuple[int, str, str]:
    predicate = tmp_path / "predicate.json"
    predicate.write_text(json.dumps({"built": "keyless"}))
    return run(
        capsys,
        "attest",
        str(image),
        "--predicate", str(predicate),
        "--type", TYPE,
        "--sigstore",
        "--identity-token", identity.token,
        "--trusted-root", str(sigstore.trusted_root),
        "--signing-config", str(signing_config or sigstore.signing_config),
    )  # fmt: skip


def verify(
    capsys: pytest.CaptureFixture[str],
    image: ImageReference,
    sigstore: SigstoreInfo,
    *,
    issuer: str,
    subject: str | None = None,
    regexp: str | None = None,
) -> tuple[int, str, str]:
    who = ["--keyless-identity", subject] if subject else ["--keyless-identity-regexp", str(regexp)]
    return run(
        capsys,
        "verify", str(image),
        *who,
        "--keyless-issuer", issuer,
        "--trusted-root", str(sigstore.trusted_root),
    )  # fmt: skip


def test_keyless_attest_then_verify_offline(
    capsys: pytest.CaptureFixture[str],
    image: ImageReference,
    private_sigstore: SigstoreInfo,
    ci: Identity,
    tmp_path: Path,
) -> None:
    code, out, err = attest(capsys, image, private_sigstore, ci, tmp_path)
    assert (code, err) == (0, ""), err
    assert out.splitlines()[0] == f"attested {image} ({TYPE})"

    code, out, err = verify(capsys, image, private_sigstore, issuer=ci.issuer, subject=ci.subject)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"image {image}"
    assert lines[1].startswith(f"  verified  {TYPE}  signer {ci.subject}  (")
    assert lines[-1] == "1 verified, 0 rejected"

    regexp = r"https://kubernetes\.io/namespaces/keyless-ci/serviceaccounts/release-.*"
    code, out, err = verify(capsys, image, private_sigstore, issuer=ci.issuer, regexp=regexp)
    assert (code, err) == (0, "")
    assert out.splitlines()[1].startswith(f"  verified  {TYPE}  signer /{regexp}/  (")


def refusal(
    capsys: pytest.CaptureFixture[str],
    image: ImageReference,
    sigstore: SigstoreInfo,
    issuer: str,
    subject: str,
) -> str:
    """``affidavit verify`` exits 4; the one line of its error, for exact comparison."""
    code, out, err = verify(capsys, image, sigstore, issuer=issuer, subject=subject)
    assert code == 4, out + err
    assert out.splitlines()[-1] == "0 verified, 1 rejected"
    return err


def test_keyless_refusals_name_their_reason(
    capsys: pytest.CaptureFixture[str],
    image: ImageReference,
    private_sigstore: SigstoreInfo,
    ci: Identity,
    kubectl: Kubectl,
    control_plane: ControlPlaneInfo,
    tmp_path: Path,
) -> None:
    code, _, err = attest(capsys, image, private_sigstore, ci, tmp_path)
    assert (code, err) == (0, "")
    intruder = service_account_token(kubectl, control_plane, "intruder")
    err = refusal(capsys, image, private_sigstore, ci.issuer, intruder.subject)
    assert err == (
        f"error: no attestation for {image} verified: the certificate's identity is "
        f"{ci.subject}, not the trusted identity {intruder.subject} (issuer {ci.issuer})\n"
    )
    github = "https://token.actions.githubusercontent.com"
    err = refusal(capsys, image, private_sigstore, github, ci.subject)
    assert err == (
        f"error: no attestation for {image} verified: the certificate's OIDC issuer is "
        f"{ci.issuer}, not the trusted issuer {github}\n"
    )


def test_entry_from_another_log(
    capsys: pytest.CaptureFixture[str],
    image: ImageReference,
    private_sigstore_instance: PrivateSigstore,
    ci: Identity,
    tmp_path: Path,
) -> None:
    """Signed through the same Fulcio, logged in a Rekor the trusted root does not name."""
    info = private_sigstore_instance.info
    other = private_sigstore_instance.other_signing_config
    assert other is not None
    code, _, err = attest(capsys, image, info, ci, tmp_path, signing_config=other)
    assert (code, err) == (0, "")
    err = refusal(capsys, image, info, ci.issuer, ci.subject)
    assert err == (
        f"error: no attestation for {image} verified: Sigstore bundle did not verify for "
        f"{ci.subject} (issuer {ci.issuer}): invalid log entry: checkpoint: invalid signature: "
        "keyring: invalid signature\n"
    )


def test_tampered_bundle(
    capsys: pytest.CaptureFixture[str],
    image: ImageReference,
    private_sigstore: SigstoreInfo,
    ci: Identity,
) -> None:
    statement = make_statement(image.name, str(image.digest), TYPE, {"built": "keyless"})
    bundle = json.loads(
        sign_dsse_keyless(
            statement,
            identity_token=ci.token,
            trusted_root=private_sigstore.trusted_root,
            signing_config=private_sigstore.signing_config,
        )
    )
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["built"] = "by hand"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with RegistryClient(insecure_hosts={image.registry}) as client:
        attach(client, image, TYPE, bundle=json.dumps(bundle).encode())
    err = refusal(capsys, image, private_sigstore, ci.issuer, ci.subject)
    assert err == (
        f"error: no attestation for {image} verified: Sigstore bundle did not verify for "
        f"{ci.subject} (issuer {ci.issuer}): DSSE: invalid signature\n"
    )


def test_a_signature_no_log_saw(
    capsys: pytest.CaptureFixture[str],
    image: ImageReference,
    registry: LocalRegistry,
    private_sigstore: SigstoreInfo,
    ci: Identity,
) -> None:
    """The certificate's key signs a statement after the fact (its certificate expires ten
    minutes after issue): without the log's entry and timestamp for that signature, refused."""
    from sigstore.dsse import Statement
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    config = private_trust_config(private_sigstore.trusted_root, private_sigstore.signing_config)
    statement = make_statement(image.name, str(image.digest), TYPE, {"built": "keyless"})
    with SigningContext.from_trust_config(config).signer(
        IdentityToken(ci.token), cache=True
    ) as signer:
        genuine = json.loads(signer.sign_dsse(Statement(statement)).to_json())
        key = signer._private_key  # the ephemeral key the certificate certifies
    later = make_statement(image.name, str(image.digest), TYPE, {"built": "after the fact"})
    with_old_entry = json.loads(json.dumps(genuine))
    resign(with_old_entry, key, later)
    without_entry = json.loads(json.dumps(with_old_entry))
    without_entry["verificationMaterial"].pop("tlogEntries")
    without_entry["verificationMaterial"].pop("timestampVerificationData", None)
    with RegistryClient(insecure_hosts={image.registry}) as client:
        attach(client, image, TYPE, bundle=json.dumps(with_old_entry).encode())
        other = ImageReference.parse(f"{registry.host}/keyless/no-log-saw-without-entry")
        other = other.with_digest(push_sample_image(client, other, {"b": b"2"}, "v1"))
        attach(client, other, TYPE, bundle=json.dumps(without_entry).encode())
    why = f"Sigstore bundle did not verify for {ci.subject} (issuer {ci.issuer})"
    # The log's entry and the TSA's timestamp are for the genuine signature, not this one.
    err = refusal(capsys, image, private_sigstore, ci.issuer, ci.subject)
    assert err == (
        f"error: no attestation for {image} verified: {why}: not enough sources of verified time\n"
    )
    err = refusal(capsys, other, private_sigstore, ci.issuer, ci.subject)
    assert err == (
        f"error: no attestation for {other} verified: the bundle has no transparency log entry: "
        "a keyless certificate is valid for minutes, and only the log's entry (with its time) "
        "shows the signature was made while it was\n"
    )
