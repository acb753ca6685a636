"""CLI: ``affidavit attest``, ``affidavit verify`` and ``affidavit trace``.

The pipeline's half of Affidavit (with ``affidavit keygen``): sign a predicate about an image
digest and push it beside the image (both layouts), and check what is there the way the admission
webhook will. ``verify`` exits 4 with the one specific reason when nothing verifies, so a pipeline
step fails with something a person can act on. Its work is ``cli/verify.py``'s ``run_verify``,
which a plain ``affidavit verify`` argument list reaches without building this typer command.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from affidavit.attestations.registry import DEFAULT_MAX_BYTES, ImageReference
from affidavit.cli.options import (
    CaBundleOpt,
    InsecureRegistryOpt,
    PeopleOpt,
    RegistryConfigOpt,
    RevealKeyOpt,
    TrustedKeysOpt,
    deprecated,
    revealer,
)
from affidavit.cli.verify import client, run_verify, signers
from affidavit.errors import InputError, UsageError

# Signing, the predicate models (pydantic), the store's writer and the trace are imported by the
# commands that use them: ``verify`` starts without them (tests/integration/attest/
# test_attest_cli_imports.py).

MaxBytesOpt = Annotated[
    int, typer.Option("--max-bytes", min=1, help="Largest envelope or attestation layer accepted.")
]
KeylessRegexpOpt = Annotated[
    str | None,
    typer.Option(
        "--keyless-identity-regexp", help="A regexp the certificate identity matches whole."
    ),
]
KeylessRefOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--keyless-source-ref",
        help="A ref the keyless signer's CI run may have been for, as its certificate's Source "
        "Repository Ref names it (refs/heads/main; repeatable; default: any).",
    ),
]
KeylessTriggerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--keyless-build-trigger",
        help="An event that may have started the keyless signer's CI run, as its certificate's "
        "Build Trigger names it (push; repeatable; default: any).",
    ),
]
KeylessRootOpt = Annotated[
    Path | None,
    typer.Option(
        "--trusted-root",
        help="trusted_root.json for keyless bundles (a private Sigstore; default: public).",
    ),
]


def _read_predicate(path: Path, predicate_type: str, max_bytes: int) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read predicate file {path}: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise InputError(
            f"predicate file {path} is {len(data)} bytes, over the {max_bytes}-byte limit",
            hint="verifiers refuse larger attestations; raise --max-bytes on both sides if needed",
        )
    try:
        predicate = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"predicate file {path} is not valid JSON: {e}") from e
    if not isinstance(predicate, dict):
        raise InputError(
            f"predicate file {path} holds a JSON {type(predicate).__name__}, not an object"
        )
    from pydantic import BaseModel, ValidationError

    from affidavit.attestations.predicates import (
        AI_PROVENANCE_V1,
        CODE_REVIEW_V1,
        AiProvenance,
        CodeReview,
    )

    models: dict[str, type[BaseModel]] = {
        AI_PROVENANCE_V1: AiProvenance,
        CODE_REVIEW_V1: CodeReview,
    }
    model = models.get(predicate_type)
    if model is not None:
        try:
            model.model_validate(predicate)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise InputError(
                f"predicate file {path} is not a valid {predicate_type} predicate: "
                f"{where}: {first['msg']}",
                hint="produce it with `affidavit collect`",
            ) from e
    return predicate


def _check_type_uri(value: str) -> None:
    """in-toto's predicateType is a TypeURI: a scheme and the rest (``https://…``, ``urn:…``)."""
    from urllib.parse import urlsplit

    from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1

    parts = urlsplit(value)
    if not (parts.scheme and (parts.netloc or parts.path)) or " " in value:
        raise UsageError(
            f"--type {value!r} is not a URI; in-toto predicate types are URIs",
            hint=f"for example --type {AI_PROVENANCE_V1} or --type {CODE_REVIEW_V1}",
        )


def attest(
    image: Annotated[
        str | None,
        typer.Argument(help="REGISTRY/REPO@sha256:DIGEST, the image the predicate is about."),
    ] = None,
    predicate: Annotated[
        Path | None, typer.Option("--predicate", metavar="FILE", help="Predicate JSON file.")
    ] = None,
    predicate_type: Annotated[
        str | None, typer.Option("--type", help="Predicate type URI.")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="Signing key (PEM or cosign key file).")
    ] = None,
    use_sigstore: Annotated[
        bool, typer.Option("--sigstore", help="Sign keyless with Sigstore (ambient OIDC).")
    ] = False,
    identity_token: Annotated[
        str | None, typer.Option("--identity-token", help="OIDC token for --sigstore.")
    ] = None,
    trusted_root: Annotated[
        Path | None,
        typer.Option("--trusted-root", help="A private Sigstore's trusted_root.json (--sigstore)."),
    ] = None,
    signing_config: Annotated[
        Path | None,
        typer.Option(
            "--signing-config", help="Its signing config: Fulcio, Rekor, TSA URLs (--sigstore)."
        ),
    ] = None,
    insecure_registry: InsecureRegistryOpt = None,
    registry_config: RegistryConfigOpt = None,
    ca_bundle: CaBundleOpt = None,
    max_bytes: MaxBytesOpt = DEFAULT_MAX_BYTES,
    image_option: Annotated[
        str | None,
        typer.Option("--image", hidden=True, help="Deprecated: pass IMAGE as the argument."),
    ] = None,
) -> None:
    """Sign a predicate about IMAGE and push it beside the image (cosign tag, OCI referrer)."""
    if image_option is not None:
        if image is not None:
            raise UsageError("give the image once: as IMAGE, not also as --image")
        deprecated("--image IMAGE", "pass the image as the first argument: affidavit attest IMAGE")
        image = image_option
    if image is None or predicate is None or predicate_type is None:
        given = {"IMAGE": image, "--predicate FILE": predicate, "--type URI": predicate_type}
        missing = [what for what, value in given.items() if value is None]
        raise UsageError(
            f"missing {', '.join(missing)}",
            hint="affidavit attest IMAGE@sha256:DIGEST --predicate FILE --type URI --key KEY",
        )
    from affidavit.attestations.dsse import sign_envelope
    from affidavit.attestations.keys import load_signer
    from affidavit.attestations.statement import make_statement
    from affidavit.attestations.store import attach

    if (key is None) == (not use_sigstore):
        raise UsageError("give exactly one of --key KEY and --sigstore")
    if (trusted_root is None) != (signing_config is None) or (trusted_root and not use_sigstore):
        raise UsageError(
            "--trusted-root and --signing-config go together, with --sigstore",
            hint="both name the private Sigstore to sign against; omit both for the public one",
        )
    ref = ImageReference.parse(image)
    if ref.digest is None:
        raise UsageError(
            f"{image} names a tag; attestations are bound to a digest",
            hint="pass REGISTRY/REPO@sha256:<digest> (`affidavit verify REF` prints a tag's digest)",
        )
    _check_type_uri(predicate_type)
    body = _read_predicate(predicate, predicate_type, max_bytes)
    signer = load_signer(key) if key is not None else None  # a bad key is named, not the registry
    with client(insecure_registry, registry_config, ca_bundle) as registry:
        registry.resolve(ref)  # fail on a missing image before signing anything
        statement = make_statement(ref.name, ref.digest, predicate_type, body)
        if signer is not None:
            envelope = sign_envelope(statement, signer).to_json()
            bundle = None
        else:
            from affidavit.attestations.sigstore import sign_dsse_keyless

            bundle = sign_dsse_keyless(
                statement,
                identity_token=identity_token,
                trusted_root=trusted_root,
                signing_config=signing_config,
            )
            envelope = None
        size = len(envelope if envelope is not None else bundle or b"")
        if size > max_bytes:
            raise InputError(
                f"the signed attestation is {size} bytes, over the {max_bytes}-byte limit"
            )
        result = attach(registry, ref, predicate_type, envelope=envelope, bundle=bundle)
    typer.echo(f"attested {ref} ({predicate_type})")
    typer.echo(f"  envelope   {result.envelope_digest}")
    typer.echo(
        f"  cosign tag {ref.name}:{result.cosign_tag} (manifest {result.cosign_manifest_digest})"
    )
    typer.echo(f"  referrer   {ref.name}@{result.referrer_digest} (bundle {result.bundle_digest})")
    typer.echo(f"  tag index  {ref.name}:{result.index_tag}")


def verify(
    image: Annotated[str, typer.Argument(help="REGISTRY/REPO@sha256:DIGEST or REPO:TAG.")],
    key: TrustedKeysOpt = None,
    keyless_identity: Annotated[
        str | None, typer.Option("--keyless-identity", help="Trusted certificate identity.")
    ] = None,
    keyless_issuer: Annotated[
        str | None, typer.Option("--keyless-issuer", help="OIDC issuer of that identity.")
    ] = None,
    keyless_identity_regexp: KeylessRegexpOpt = None,
    keyless_source_ref: KeylessRefOpt = None,
    keyless_build_trigger: KeylessTriggerOpt = None,
    trusted_root: KeylessRootOpt = None,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Only these predicate types (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    insecure_registry: InsecureRegistryOpt = None,
    registry_config: RegistryConfigOpt = None,
    ca_bundle: CaBundleOpt = None,
    max_bytes: MaxBytesOpt = DEFAULT_MAX_BYTES,
) -> None:
    """List the attestations beside IMAGE, which verified and by which signer."""
    run_verify(
        typer.echo,
        image,
        key,
        keyless_identity,
        keyless_issuer,
        keyless_identity_regexp,
        trusted_root,
        types,
        as_json,
        insecure_registry,
        registry_config,
        ca_bundle,
        max_bytes,
        (keyless_source_ref, keyless_build_trigger),
    )


def trace(
    image: Annotated[str, typer.Argument(help="REGISTRY/REPO@sha256:DIGEST or REPO:TAG.")],
    key: TrustedKeysOpt = None,
    keyless_identity: Annotated[
        str | None, typer.Option("--keyless-identity", help="Trusted certificate identity.")
    ] = None,
    keyless_issuer: Annotated[
        str | None, typer.Option("--keyless-issuer", help="OIDC issuer of that identity.")
    ] = None,
    keyless_identity_regexp: KeylessRegexpOpt = None,
    keyless_source_ref: KeylessRefOpt = None,
    keyless_build_trigger: KeylessTriggerOpt = None,
    trusted_root: KeylessRootOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answers as JSON.")] = False,
    insecure_registry: InsecureRegistryOpt = None,
    registry_config: RegistryConfigOpt = None,
    ca_bundle: CaBundleOpt = None,
    max_bytes: MaxBytesOpt = DEFAULT_MAX_BYTES,
    pseudonym_key: RevealKeyOpt = None,
    people: PeopleOpt = None,
) -> None:
    """Answer the four questions for IMAGE from its verified attestations: was it AI-generated,
    by which tool, who accepted it, what review it had. Where the evidence names people by
    pseudonyms, --pseudonym-key and --people show who the listed people's pseudonyms are."""
    from affidavit.attestations.verify import verify_image
    from affidavit.audit.trace import render_trace, trace_image

    shown = revealer(pseudonym_key, people, json_text=as_json) or (lambda text: text)
    trusted = signers(
        list(key or []),
        keyless_identity,
        keyless_issuer,
        keyless_identity_regexp,
        (keyless_source_ref, keyless_build_trigger),
    )
    ref = ImageReference.parse(image)
    with client(insecure_registry, registry_config, ca_bundle) as registry:
        pinned = ImageReference(ref.registry, ref.repository, digest=registry.resolve(ref))
        evidence = verify_image(
            registry,
            str(pinned),
            trusted,
            max_layer_bytes=max_bytes,
            sigstore_trusted_root=trusted_root,
        )
    answers = trace_image(evidence)
    typer.echo(shown(_trace_json(answers) if as_json else render_trace(answers)))


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): _camel(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_camel(v) for v in value]
    return value


def _trace_json(answers: Any) -> str:
    """The four answers as JSON, field for field the text's (camelCase, as in the predicates)."""
    document = _camel(dataclasses.asdict(answers))
    document["aiGenerated"] = answers.ai_generated
    return json.dumps(document, indent=2)


def register(root: typer.Typer) -> None:
    """Add ``attest``, ``verify`` and ``trace`` to the root app."""
    root.command("attest", short_help="Sign a predicate about IMAGE and push it beside the image.")(
        attest
    )
    root.command("verify", short_help="List the attestations beside IMAGE and which verified.")(
        verify
    )
    root.command("trace", short_help="Answer the four questions for IMAGE from its evidence.")(
        trace
    )
