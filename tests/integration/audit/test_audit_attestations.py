"""`affidavit audit report --key`: AI-touched workloads counted from verified provenance in
the real registry (one image whose provenance declares an AI-generated change, one human-only,
one with no attestation at all), through the trace's own answer to "was any of it AI-generated"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from affidavit.attestations.dsse import sign_envelope
from affidavit.attestations.image import push_sample_image
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.predicates import AI_PROVENANCE_V1
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import attach
from affidavit.cli.main import main
from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision, EvidenceUsed, ImageRef

REV = "c0ffee" + "0" * 34


def _provenance(involvement: str) -> dict[str, Any]:
    person = {"name": "Alice", "email": "alice@example.com"}
    ai = involvement != "none"
    return {
        "source": {"repository": "https://github.com/example/shop", "revision": REV},
        "changes": [
            {
                "commit": REV,
                "author": person,
                "committer": person,
                "authoredAt": "2026-03-01T10:00:00Z",
                "committedAt": "2026-03-01T10:00:00Z",
                "aiInvolvement": involvement,
                "tools": [{"name": "Claude Code"}] if ai else [],
                "files": [{"path": "src/app.py", "tier": "standard", "linesAdded": 3}],
            }
        ],
        "summary": {
            "commits": 1,
            "aiTouchedCommits": int(ai),
            "undeclaredCommits": 0,
            "traceabilityCoverage": 1.0,
        },
        "collector": {"name": "affidavit", "version": "0.1.0"},
    }


def test_ai_touched_from_verified_provenance(
    registry: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    (tmp_path / "ci.key").write_bytes(private_pem)
    (tmp_path / "ci.pub").write_bytes(public_pem)
    signer = load_signer(tmp_path / "ci.key")
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(ledger_url)
    with RegistryClient(insecure_hosts=[registry.host]) as client:
        for n, (repo, involvement) in enumerate(
            (("audit/ai", "generated"), ("audit/human", "none"), ("audit/bare", None))
        ):
            ref = f"{registry.host}/{repo}:1.0"
            digest = push_sample_image(
                client, f"{registry.host}/{repo}", {"app.txt": repo.encode()}, tag="1.0"
            )
            if involvement is not None:
                image = ImageReference.parse(f"{registry.host}/{repo}@{digest}")
                statement = make_statement(
                    image.name, digest, AI_PROVENANCE_V1, _provenance(involvement)
                )
                envelope = sign_envelope(statement, signer).to_json()
                attach(client, image, AI_PROVENANCE_V1, envelope=envelope)
            ledger.append(
                Decision(
                    id=f"d-{n}",
                    time=f"2026-03-0{n + 1}T10:00:00Z",
                    cluster="prod-eu",
                    region="eu-west-1",
                    namespace="shop",
                    kind="Deployment",
                    name=repo.split("/")[1],
                    operation="CREATE",
                    user="alice",
                    outcome="allowed",
                    mode="Enforce",
                    images=(ImageRef(ref, digest),),
                    evidence=(EvidenceUsed(ref, AI_PROVENANCE_V1, "sha256:" + "e" * 64, "ci"),)
                    if involvement
                    else (),
                )
            )
    args = ["audit", "report", "--ledger", ledger_url, "--format", "json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["aiTouched"]["undetermined"]["admitted"] == 3
    keyed = [*args, "--key", str(tmp_path / "ci.pub"), "--insecure-registry", registry.host]
    assert main(keyed) == 0
    assert json.loads(capsys.readouterr().out)["aiTouched"] == {
        "source": "ledger and verified attestations",
        "ai": {"admitted": 1, "denied": 0},
        "human": {"admitted": 1, "denied": 0},
        "undetermined": {"admitted": 1, "denied": 0},
        "reviewOfAdmitted": {"independent": 0, "approved": 0, "none": 1},
    }
