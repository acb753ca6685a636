"""What-ifs read Sigstore bundles too, with the source their certificate names.

``affidavit explain --evidence`` and ``affidavit test`` assume their evidence (no signature is
checked). Reading predicates alone, they could never show ``source.certified``: a policy
repository could not test the rule its cluster applies by default. A bundle as ``attest
--sigstore`` pushes it is now read as its Statement, with its certificate's source; the
certificate here is self-made (nothing in a what-if is verified).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding

from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.attestations.sigstore_identity import (
    SOURCE_REPOSITORY_DIGEST,
    SOURCE_REPOSITORY_URI,
)
from affidavit.cli.main import main
from fulcio_certs import cert, utf8
from policy_builders import DIGEST, IMAGE, REV, approval, policy, provenance, review


def bundle(predicate_type: str, predicate: dict[str, object], repository: str) -> str:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": IMAGE.split("@")[0], "digest": {"sha256": DIGEST.split(":")[1]}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    der = cert({SOURCE_REPOSITORY_URI: utf8(repository), SOURCE_REPOSITORY_DIGEST: utf8(REV)})
    return json.dumps({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": base64.b64encode(der.public_bytes(Encoding.DER)).decode()}
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": "AA=="}],
        },
    })  # fmt: skip


@pytest.mark.parametrize(
    ("repository", "code", "rules"),
    [
        ("https://github.com/example/shop", 0, []),
        ("https://github.com/example/scratch", 1, ["provenance.present", "source.certified"]),
    ],
)
def test_explain_judges_a_bundle_by_its_certificates_source(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    repository: str,
    code: int,
    rules: list[str],
) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "provenance.sigstore.json").write_text(
        bundle(AI_PROVENANCE_V1, provenance(), repository)
    )
    (evidence / "review.sigstore.json").write_text(
        bundle(CODE_REVIEW_V1, review(approval("rita")), "https://github.com/example/shop")
    )
    policies = tmp_path / "p.yaml"
    policies.write_text(yaml.safe_dump(policy()))
    argv = ["explain", IMAGE, "--policy", str(policies), "--evidence", str(evidence),
            "--at", "2026-11-29T12:00:00Z", "--json"]  # fmt: skip
    assert main(argv) == code
    decision = json.loads(capsys.readouterr().out)["decision"]
    assert sorted(v["rule"] for v in decision["violations"]) == rules


def test_a_bundle_whose_envelope_does_not_read_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "bad.sigstore.json").write_text(json.dumps({"dsseEnvelope": {"payload": "%%"}}))
    policies = tmp_path / "p.yaml"
    policies.write_text(yaml.safe_dump(policy()))
    assert main(["explain", IMAGE, "--policy", str(policies), "--evidence", str(evidence)]) == 2
    err = capsys.readouterr().err
    assert (
        f"evidence file {evidence / 'bad.sigstore.json'}: a Sigstore bundle whose envelope " in err
    )
