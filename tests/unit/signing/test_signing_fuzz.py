"""A seeded fuzz run over signed attestations through the verifier (``verify_fetched``, the path
the webhook and ``affidavit verify`` take): DSSE envelopes, key-hinted and keyless Sigstore
bundles, in-toto statements, mutated field by field and byte by byte (``attestation_fuzz``).

No case may crash the verifier (every failure is an ``AffidavitError``, which it turns into a
rejection with a reason), and no case may verify unless the trusted signer's signature over the
very bytes it signed is still there. ``make test`` runs a few hundred cases; ``make fuzz`` runs
AFFIDAVIT_FUZZ_CASES. Reproduce a run with AFFIDAVIT_FUZZ_SEED=<the printed seed>.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attestation_fuzz import (
    KEYLESS_IDENTITY,
    KEYLESS_ISSUER,
    KEYLESS_ROOT,
    Mutator,
    Original,
    Originals,
    forged,
)

from affidavit.attestations.evidence import KeylessSigner, KeySigner, TrustedSigner
from affidavit.attestations.reference import ImageReference
from affidavit.attestations.sigstore import verify_bundle
from affidavit.attestations.store import FetchedAttestation
from affidavit.attestations.verify import verify_fetched
from affidavit.errors import AffidavitError


def _keyless_signature(data: bytes) -> bool | str:
    """Whether the keyless bundle's signature verifies (sigstore-python, offline, the fixture's
    root), or what went wrong when the failure is not an ``AffidavitError`` with a message."""
    try:
        verify_bundle(data, issuer=KEYLESS_ISSUER, identity=KEYLESS_IDENTITY,
                      trusted_root=KEYLESS_ROOT)  # fmt: skip
    except AffidavitError as e:
        return False if e.message else "an error without a message"
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return True


def _verify_one(media_type: str, data: bytes, digest: str, signers: list[Any]) -> Any:
    item = FetchedAttestation(
        storage="cosign-tag",
        media_type=media_type,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        predicate_type=None,
        data=data,
    )
    ref = ImageReference.parse(f"registry.example/shop/web@{digest}")
    return verify_fetched([item], ref, signers, sigstore_trusted_root=KEYLESS_ROOT)


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (
            lambda o: json.dumps({**json.loads(o.data), "verificationMaterial": 1}).encode(),
            "Sigstore bundle's verificationMaterial is a JSON int, not an object",
        ),
        (
            lambda o: o.data[:-1] + b', "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            "Sigstore bundle is not valid JSON: it nests too deeply",
        ),
    ],
)
def test_what_earlier_runs_found_is_a_rejection_with_a_reason(
    tmp_path: Path, layer: Callable[[Original], bytes], reason: str
) -> None:
    """Each once escaped the verifier as a TypeError or RecursionError."""
    originals = Originals(tmp_path)
    bundle = originals.all[1]  # the key-hinted bundle
    signers: list[Any] = [KeySigner("ci", originals.public_pem.decode())]
    evidence = _verify_one(bundle.media_type, layer(bundle), bundle.digest, signers)
    assert evidence.verified == ()
    assert [r.reason for r in evidence.rejected] == [reason]


def test_mutated_attestations_never_verify_and_never_crash_the_verifier(tmp_path: Path) -> None:
    seed = int(os.environ.get("AFFIDAVIT_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    cases = int(os.environ.get("AFFIDAVIT_FUZZ_CASES") or 300)
    print(f"\nattestation fuzz: seed {seed} (AFFIDAVIT_FUZZ_SEED={seed} reproduces), {cases} cases")
    originals = Originals(tmp_path)
    signers: list[TrustedSigner] = [
        KeySigner("ci", originals.public_pem.decode()),
        KeylessSigner("gcb", KEYLESS_ISSUER, KEYLESS_IDENTITY),
    ]
    mutator = Mutator(seed, originals)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    for n in range(cases):
        case = mutator.case(n)
        item = FetchedAttestation(
            storage="cosign-tag",
            media_type=case.original.media_type,
            digest="sha256:" + hashlib.sha256(case.data).hexdigest(),
            predicate_type=None,
            data=case.data,
        )
        ref = ImageReference.parse(f"registry.example/shop/web@{case.original.digest}")
        where = f"case {n} ({case.original.name}, {case.mutation})"
        try:
            evidence = verify_fetched([item], ref, signers, sigstore_trusted_root=KEYLESS_ROOT)
        except Exception as e:
            outcomes["crashed"] += 1
            failures.append(f"{where}: {type(e).__name__}: {e}; data {case.data[:200]!r}")
            continue
        verified = bool(evidence.verified)
        if case.original.name == "keyless-bundle":
            # Its statement (PyPI's, "predicate": null) is one the verifier refuses, so the
            # signature itself is checked too: sigstore-python's verdict on the mutated bundle.
            signature = _keyless_signature(case.data)
            if isinstance(signature, str):
                outcomes["crashed"] += 1
                failures.append(f"{where}: verify_bundle: {signature}")
                continue
            verified = verified or signature
        outcomes["verified" if verified else "rejected"] += 1
        if case.mutation == "none" and not verified:
            failures.append(f"{where}: the unmutated original did not verify: {evidence.rejected}")
        if not verified and not all(r.reason for r in evidence.rejected):
            failures.append(f"{where}: a rejection without a reason")
        problem = forged(case, verified)
        if problem is not None:
            outcomes["forged"] += 1
            failures.append(f"{where}: {problem}; data {case.data[:200]!r}")
    print(f"attestation fuzz: {cases} cases, {dict(sorted(outcomes.items()))}")
    assert failures == [], f"seed {seed}:\n" + "\n".join(failures[:20])
