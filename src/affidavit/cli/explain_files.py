"""The files ``affidavit explain`` and ``affidavit test`` are given: policy objects and evidence.

Both commands judge what a person hands them (policy YAML, predicates or in-toto Statements
saved as JSON) with the webhook's engine; reading and checking those files is one job, kept
here so the two commands read them alike and say the same thing about a bad file. Evidence read
this way is *assumed* (``AssumedAttestation``): nothing here checks a signature, and what-if
evaluation says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from affidavit.attestations.evidence import AssumedAttestation, CertifiedSource, ImageEvidence
from affidavit.attestations.predicates import (
    AI_PROVENANCE_V1,
    CODE_REVIEW_V1,
    SLSA_PROVENANCE_V1,
    AiProvenance,
    CodeReview,
)
from affidavit.attestations.reference import ImageReference
from affidavit.errors import InputError, UsageError


def load_objects(files: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """The policies, region policies and exceptions in ``files`` (YAML, ``List`` unwrapped)."""
    from affidavit.policy.model import KIND_EXCEPTION, KIND_POLICY, KIND_REGION

    found: dict[str, list[dict[str, Any]]] = {
        k: [] for k in (KIND_POLICY, KIND_REGION, KIND_EXCEPTION)
    }
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except OSError as e:
            raise InputError(f"cannot read policy file {path}: {e.strerror}") from e
        except UnicodeDecodeError as e:
            raise InputError(
                f"policy file {path} is not UTF-8 text (byte {e.start}: {e.object[e.start]:#04x})",
                hint="save it as UTF-8; Kubernetes objects are UTF-8 YAML or JSON",
            ) from e
        except yaml.YAMLError as e:
            raise InputError(f"policy file {path} is not valid YAML: {e}") from e
        queue = [d for d in docs if d is not None]
        if not queue:
            raise InputError(
                f"policy file {path} is empty: no policy, region policy or exception in it",
                hint="check the path; an empty file would leave every image unmatched",
            )
        while queue:
            doc = queue.pop(0)
            if not isinstance(doc, dict):
                raise InputError(
                    f"policy file {path}: found a {type(doc).__name__}, expected an object"
                )
            if doc.get("kind") == "List":
                queue += doc.get("items") or []
            elif doc.get("kind") in found:
                found[str(doc["kind"])].append(doc)
            else:
                raise InputError(
                    f"policy file {path}: found kind {doc.get('kind')!r}; expected one of "
                    + ", ".join(found)
                )
    return found


def predicate_type(data: dict[str, Any]) -> str | None:
    """Which predicate a bare JSON object is (by its shape); None when none fits."""
    try:
        AiProvenance.model_validate(data)
        return AI_PROVENANCE_V1
    except ValidationError:
        pass
    try:
        CodeReview.model_validate(data)
        return CODE_REVIEW_V1
    except ValidationError:
        pass
    return SLSA_PROVENANCE_V1 if "buildDefinition" in data else None


def read_evidence_file(path: Path) -> tuple[Any, CertifiedSource | None]:
    """An evidence file's JSON. A Sigstore bundle (what ``attest --sigstore`` pushes) is read as
    the Statement in its envelope, with the source its certificate names (``certifiedSource``):
    neither is verified here, as nothing in a what-if is."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"evidence file {path} is not readable JSON: {e}") from e
    if not (isinstance(data, dict) and isinstance(data.get("dsseEnvelope"), dict)):
        return data, None
    import base64
    import binascii

    from cryptography import x509

    from affidavit.attestations.sigstore_identity import certified_source
    from affidavit.errors import VerificationError

    material = data.get("verificationMaterial") or {}
    chain = (material.get("x509CertificateChain") or {}).get("certificates") or [{}]
    raw = (material.get("certificate") or {}).get("rawBytes") or chain[0].get("rawBytes")
    try:
        statement = json.loads(base64.b64decode(data["dsseEnvelope"]["payload"], validate=True))
        cert = x509.load_der_x509_certificate(base64.b64decode(raw, validate=True)) if raw else None
        return statement, certified_source(cert) if cert is not None else None
    except (KeyError, TypeError, ValueError, binascii.Error, VerificationError) as e:
        raise InputError(
            f"evidence file {path}: a Sigstore bundle whose envelope or certificate cannot be "
            f"read: {e}"
        ) from e


def load_evidence(directory: Path, image: str, signer: str) -> ImageEvidence:
    """Predicates (or in-toto Statements) in ``directory``, assumed (unchecked) from ``signer``."""
    ref = ImageReference.parse(image)
    digest = ref.digest
    assumed = []
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        raise UsageError(f"--evidence {directory}: no *.json files found")
    for path in files:
        data, certified = read_evidence_file(path)
        subject = digest
        ptype: str | None
        if isinstance(data, dict) and "predicateType" in data:
            ptype = str(data["predicateType"])
            subjects = data.get("subject") or [{}]
            sha = subjects[0].get("digest", {}).get("sha256")
            subject = f"sha256:{sha}" if sha else digest
            data = data.get("predicate", {})
        else:
            ptype = predicate_type(data) if isinstance(data, dict) else None
        if ptype is None:
            raise InputError(
                f"evidence file {path}: not an ai-provenance/v1, code-review/v1 or SLSA "
                "provenance predicate, nor an in-toto Statement"
            )
        if subject is None:
            raise UsageError(
                f"cannot tell which digest {path} is about",
                hint="give the image by digest (REPOSITORY@sha256:...)",
            )
        assumed.append(
            AssumedAttestation(
                predicate_type=ptype,
                subject_name=ref.name,
                subject_digest=subject,
                predicate=data,
                envelope_digest=f"file:{path.name}",
                signer=signer,
                storage="local",
                certified_source=certified,
            )
        )
    return ImageEvidence(image, digest or assumed[0].subject_digest, assumed=tuple(assumed))
