"""A real `affidavit webhook serve` with a ledger key signs checkpoints of the ledger head every N
decisions into a directory outside the database, each answer's audit annotations carry the
decision's place in the chain, and `affidavit decisions verify-chain` checks the rows against
the published checkpoints with the public key."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

from admission_support import Images, Tls, review, start_webhook
from cryptography.hazmat.primitives import serialization

from affidavit.ledger import Ledger


def _affidavit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "affidavit.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_webhook_signs_and_publishes_checkpoints(
    workdir: Path, tls: Tls, images: Images
) -> None:
    keys = workdir / "ledger-key"
    assert _affidavit("keygen", "--ledger-key", "--output-prefix", str(keys)).returncode == 0
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
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = base64.b64decode(blob_b64)
    assert blob[:4] == hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]
    public.verify(blob[4:], (body + "\n").encode())  # type: ignore[union-attr]

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
