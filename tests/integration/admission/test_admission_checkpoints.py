"""A real `affidavit webhook serve` with a ledger key signs checkpoints of the ledger head every N
decisions into a directory outside the database, each answer's audit annotations carry the
decision's place in the chain, and `affidavit decisions verify-chain` checks the rows against
the published checkpoints with the public key; the ConfigMap trail on a real apiserver keeps
the newest checkpoints and, dumped with kubectl's YAML, catches a rewound head offline."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import yaml
from admission_support import Images, Tls, review, start_webhook
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from kubernetes import client
from sqlalchemy import create_engine, text

from affidavit.admission.checkpoint_trail import ConfigMapTrail
from affidavit.admission.kube import api_client
from affidavit.ledger import Ledger
from affidavit.ledger.checkpoint import Checkpointer, CheckpointTrail
from control_planes import started_control_plane


def _affidavit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "affidavit.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _decision(n: int) -> dict[str, object]:
    return {
        "id": f"d-{n}",
        "time": "2026-03-01T10:00:00Z",
        "outcome": "allowed",
        "namespace": "shop",
        "kind": "Deployment",
        "name": f"web-{n}",
        "images": [{"ref": "registry.example/shop/web:1.0", "digest": None}],
    }


def test_the_webhook_signs_and_publishes_checkpoints(
    workdir: Path, tls: Tls, images: Images
) -> None:
    keys = workdir / "ledger-key"
    assert _affidavit("keygen", "--ledger-key", "--output", str(keys)).returncode == 0
    trail = workdir / "checkpoints"
    url = f"sqlite:///{workdir / 'signed-ledger.db'}"
    proc = start_webhook(
        workdir,
        tls.ca.cert_pem,
        tls.cert,
        tls.key,
        args=[
            "--ledger",
            url,
            "--policy-dir",
            str(workdir / "policies"),
            "--registry-allowed-host",
            images.host,
            "--ledger-key",
            str(keys.with_suffix(".key")),
            "--checkpoint-dir",
            str(trail),
            "--checkpoint-every",
            "2",
            "--checkpoint-interval",
            "3600",
        ],
    )
    try:
        answers = [proc.validate(review(images.good)).json()["response"] for _ in range(3)]
    finally:
        proc.stop()
    ledger = Ledger(url, read_only=True)
    for answer in answers:
        record = ledger.get(answer["auditAnnotations"]["decision"])
        assert record is not None
        assert answer["auditAnnotations"]["ledger"] == f"seq={record.seq} hash={record.hash}"
    assert [p.name for p in sorted(trail.iterdir())] == ["checkpoint.0000000000000002"]

    # The note is a C2SP checkpoint: origin, size, base64 hash, blank line, one signature line
    # whose key id is SHA-256(name || "\n" || 0x01 || public key)[:4].
    second = ledger.after(1, 1)[0]
    body, sig = (trail / "checkpoint.0000000000000002").read_text().split("\n\n")
    assert body == (
        f"affidavit.dev/ledger/prod-1\n2\n{base64.b64encode(bytes.fromhex(second.hash)).decode()}"
    )
    dash, name, blob_b64 = sig.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", "affidavit.dev/ledger/prod-1")
    public = serialization.load_pem_public_key(keys.with_suffix(".pub").read_bytes())
    assert isinstance(public, ed25519.Ed25519PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = base64.b64decode(blob_b64)
    assert blob[:4] == hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]
    public.verify(blob[4:], (body + "\n").encode())

    verified = _affidavit(
        "decisions",
        "verify-chain",
        "--ledger",
        url,
        "--ledger-public-key",
        str(keys.with_suffix(".pub")),
        "--checkpoints",
        str(trail),
    )
    assert (verified.returncode, verified.stdout) == (
        0,
        "ok: 3 decisions, chain intact up to seq 3, consistent with the signed checkpoint "
        "at size 2\n",
    )


def test_the_configmap_trail_keeps_the_newest_checkpoints_for_an_offline_check(
    tmp_path: Path,
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    public = tmp_path / "ledger.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with started_control_plane(tmp_path / "cp", with_controller_manager=False) as info:
        api = api_client(info.kubeconfig)
        trail = ConfigMapTrail(api, "default", "affidavit-checkpoints", keep=2)
        signer = Checkpointer(
            key, CheckpointTrail(tmp_path / "dir"), origin="test", every=1, mirrors=[trail]
        )
        url = f"sqlite:///{tmp_path / 'l.db'}"
        led = Ledger(url, checkpointer=signer)
        recs = [led.append(_decision(i)) for i in range(3)]
        signer.wait_for_mirrors()  # published from a thread of its own
        obj = client.CoreV1Api(api).read_namespaced_config_map("affidavit-checkpoints", "default")
        dumped = tmp_path / "cm.yaml"
        dumped.write_text(yaml.safe_dump(api.sanitize_for_serialization(obj)))
    assert obj.data is not None
    assert sorted(obj.data) == ["checkpoint.0000000000000002", "checkpoint.0000000000000003"]
    flags = ["--ledger", url, "--ledger-public-key", str(public), "--checkpoints", str(dumped)]
    ok = _affidavit("decisions", "verify-chain", *flags)
    assert (ok.returncode, ok.stdout) == (
        0,
        "ok: 3 decisions, chain intact up to seq 3, consistent with the signed checkpoint "
        "at size 3\n",
    )
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_images WHERE seq = 3"))
        conn.execute(text("DELETE FROM decisions WHERE seq = 3"))
        conn.execute(text("UPDATE ledger_head SET seq = 2, hash = :h"), {"h": recs[1].hash})
    engine.dispose()
    rewound = _affidavit("decisions", "verify-chain", *flags)
    assert rewound.returncode == 6
    assert rewound.stderr.startswith(
        f"error: ledger hash chain is broken at seq 3: checkpoint {dumped}:"
        "checkpoint.0000000000000003 signs size 3 but the ledger ends at seq 2: decisions "
        "3..3 were removed and the head rewound (truncation) (2 decisions verified before it)\n"
    )
