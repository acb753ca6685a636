"""``affidavit verify`` without the CLI framework: what the command does, and a plain start.

A pipeline step runs ``affidavit verify IMAGE --key K`` once per image, so the process's start is
most of its cost: building the typer app (and the pydantic type adapters it makes for every
parameter) cost more than fetching and checking an attestation. ``plain_main`` reads the
argument lists a pipeline writes (``IMAGE`` and the command's own options, ``--opt VALUE`` or
``--opt=VALUE``) and runs the command with the same code, output and exit codes; anything else
(``--help``, a misspelt or repeated option, a missing image, shell completion) returns None and
the typer command parses it, so every usage message stays click's. The typer command in
``cli/attest.py`` calls ``run_verify`` here as well: one implementation, two ways in.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from affidavit.attestations.evidence import ImageEvidence, KeylessSigner, KeySigner, TrustedSigner
from affidavit.attestations.registry import (
    DEFAULT_MAX_BYTES,
    ImageReference,
    RegistryClient,
    credentials_from_docker_config,
)
from affidavit.errors import (
    AffidavitError,
    InputError,
    KeyMaterialError,
    UsageError,
    VerificationError,
)
from affidavit.printable import printable, printable_lines

Echo = Callable[[str], None]

#: The options ``verify`` takes that carry a value, and whether each repeats (a list).
VALUE_OPTIONS = {
    "--key": True,
    "--keyless-identity": False,
    "--keyless-issuer": False,
    "--keyless-identity-regexp": False,
    "--keyless-source-ref": True,
    "--keyless-build-trigger": True,
    "--trusted-root": False,
    "--type": True,
    "--insecure-registry": True,
    "--registry-config": False,
    "--ca-bundle": False,
    "--max-bytes": False,
}


def client(
    insecure: list[str] | None,
    registry_config: Path | None,
    ca_bundle: Path | None,
    *,
    timeout: float = 10.0,
) -> RegistryClient:
    """The registry client of a CLI command: --registry-config first, then docker's and podman's
    files and credential helpers (read only when a registry asks); ``timeout`` per request."""
    credentials = None
    if registry_config is not None:
        try:
            credentials = credentials_from_docker_config(registry_config.read_bytes())
        except OSError as e:
            raise InputError(f"cannot read registry credentials {registry_config}: {e}") from e
    from affidavit.attestations.docker_config import DockerCredentials

    return RegistryClient(
        insecure_hosts=set(insecure or ()),
        ca_bundle=ca_bundle,
        credentials=DockerCredentials(credentials),
        timeout=timeout,
    )


def signers(
    keys: list[Path],
    identity: str | None,
    issuer: str | None,
    identity_regexp: str | None = None,
    runs: tuple[list[str] | None, list[str] | None] = (None, None),
) -> list[TrustedSigner]:
    """The trusted signers a command names: public keys, and at most one keyless identity,
    trusted for the refs and triggers ``runs`` names (none: any run)."""
    found: list[TrustedSigner] = []
    for path in keys:
        try:
            found.append(KeySigner(name=str(path), public_key_pem=path.read_text()))
        except OSError as e:
            raise KeyMaterialError(f"cannot read public key {path}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise KeyMaterialError(
                f"public key {path} is not a PEM public key (not text)",
                hint="pass the .pub file `affidavit keygen` or `cosign generate-key-pair` wrote",
            ) from e
    if identity is not None and identity_regexp is not None:
        raise UsageError("give one of --keyless-identity and --keyless-identity-regexp")
    if identity_regexp is not None:
        identity = identity_regexp
    if (identity is None) != (issuer is None):
        raise UsageError("--keyless-identity and --keyless-issuer go together")
    refs, triggers = (tuple(given or ()) for given in runs)
    if (refs or triggers) and identity is None:
        raise UsageError("--keyless-source-ref and --keyless-build-trigger need --keyless-identity")
    if identity is not None and issuer is not None:
        found.append(
            KeylessSigner(
                name=identity if identity_regexp is None else f"/{identity}/",
                issuer=issuer,
                identity=identity if identity_regexp is None else "",
                identity_regexp=identity_regexp or "",
                refs=refs,
                triggers=triggers,
            )
        )
    if not found:
        raise UsageError(
            "no trusted signer given",
            hint="pass --key PUB and/or --keyless-identity/--keyless-issuer",
        )
    return found


def as_json(evidence: ImageEvidence) -> str:
    import json

    document = {
        "image": evidence.image,
        "digest": evidence.digest,
        "verified": [
            {
                "predicateType": a.predicate_type,
                "signer": a.signer,
                "storage": a.storage,
                "envelopeDigest": a.envelope_digest,
                "subject": f"{a.subject_name}@{a.subject_digest}",
                **(
                    {"certifiedSource": {"repository": c.repository, "revision": c.revision}}
                    if (c := a.certified_source) is not None
                    else {}
                ),
            }
            for a in evidence.verified
        ],
        "rejected": [
            {
                "predicateType": r.predicate_type,
                "storage": r.storage,
                "envelopeDigest": r.envelope_digest,
                "reason": r.reason,
            }
            for r in evidence.rejected
        ],
    }
    return json.dumps(document, indent=2)


def failure(evidence: ImageEvidence, ref: str, types: list[str]) -> VerificationError:
    if not evidence.rejected:
        kind = f" of type {', '.join(types)}" if types else ""
        return VerificationError(
            f"no attestations{kind} found for {ref}",
            hint="attach one with `affidavit attest IMAGE@DIGEST --predicate FILE "
            "--type URI --key KEY`",
        )
    reasons = list(dict.fromkeys(r.reason for r in evidence.rejected))
    return VerificationError(f"no attestation for {ref} verified: {'; '.join(reasons)}")


def run_verify(
    echo: Echo,
    image: str,
    key: list[Path] | None = None,
    keyless_identity: str | None = None,
    keyless_issuer: str | None = None,
    keyless_identity_regexp: str | None = None,
    trusted_root: Path | None = None,
    types: list[str] | None = None,
    json_output: bool = False,
    insecure_registry: list[str] | None = None,
    registry_config: Path | None = None,
    ca_bundle: Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    runs: tuple[list[str] | None, list[str] | None] = (None, None),
) -> None:
    """List the attestations beside IMAGE, which verified and by which signer (``echo`` prints
    a line); raises VerificationError (exit 4) when none verified."""
    from affidavit.attestations.fetch import digest_and_subject
    from affidavit.attestations.verify import verify_digest

    trusted = signers(
        list(key or []), keyless_identity, keyless_issuer, keyless_identity_regexp, runs
    )
    ref = ImageReference.parse(image)
    with client(insecure_registry, registry_config, ca_bundle) as registry:
        # a tag is resolved once (its HEAD also gives the subject a bundle names); a digest's
        # HEAD goes out with the attestation listings and checks that the image exists
        digest, subject = digest_and_subject(registry, ref)
        pinned = ImageReference(ref.registry, ref.repository, digest=digest)
        evidence = verify_digest(
            registry,
            pinned,
            trusted,
            image=str(pinned),
            predicate_types=types or None,
            max_layer_bytes=max_bytes,
            sigstore_trusted_root=trusted_root,
            subject=subject,
            check_image=subject is None,
        )
    if json_output:
        echo(as_json(evidence))
    else:
        if ref.digest is None:
            echo(f"{ref} resolved to {digest}")
        echo(f"image {pinned}")
        # A rejected layer's type is its unsigned annotation (anyone who can push writes it) and
        # a reason may quote the statement: shown printable, neither can forge a "verified" line.
        for a in evidence.verified:
            echo(
                printable(
                    f"  verified  {a.predicate_type}  signer {a.signer}  "
                    f"({a.storage} {a.envelope_digest})"
                )
            )
            if a.certified_source is not None:  # what the CI platform vouched for
                echo(printable(f"            certified source {a.certified_source}"))
        for r in evidence.rejected:
            echo(
                printable(
                    f"  rejected  {r.predicate_type or '(unknown type)'}  ({r.storage} "
                    f"{r.envelope_digest}): {r.reason}"
                )
            )
        echo(f"{len(evidence.verified)} verified, {len(evidence.rejected)} rejected")
    if not evidence.verified:
        raise failure(evidence, str(pinned), list(types or []))


def parse(argv: Sequence[str]) -> dict[str, Any] | None:
    """``run_verify``'s arguments from ``argv`` (after ``verify``), or None for anything but an
    image and well-formed options given once each (repeatable ones any number of times)."""
    values: dict[str, Any] = {}
    image: str | None = None
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("-"):
            if image is not None or not arg:
                return None  # click: an unexpected extra argument
            image = arg
            continue
        name, eq, value = arg.partition("=")
        if name == "--json" and not eq:
            if "json_output" in values:
                return None
            values["json_output"] = True
            continue
        repeats = VALUE_OPTIONS.get(name)
        if repeats is None:
            return None  # --help, an unknown or short option, "--", "-"
        if not eq:
            if not args:
                return None
            value = args.pop(0)
        if not value or value.startswith("-"):
            return None
        field = name[2:].replace("-", "_")
        if repeats:
            values.setdefault(field, []).append(value)
        elif field in values:
            return None
        else:
            values[field] = value
    if image is None:
        return None
    for field in ("key",):
        if field in values:
            values[field] = [Path(v) for v in values[field]]
    for field in ("trusted_root", "registry_config", "ca_bundle"):
        if field in values:
            values[field] = Path(values[field])
    if "max_bytes" in values:
        text = values["max_bytes"]
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            return None  # click refuses it (min=1)
        values["max_bytes"] = int(text)
    values["types"] = values.pop("type", None)
    refs, triggers = (
        values.pop("keyless_source_ref", None),
        values.pop("keyless_build_trigger", None),
    )
    if refs is not None or triggers is not None:
        values["runs"] = (refs, triggers)
    return {"image": image, **values}


def _writer(stream: IO[str]) -> Echo:
    """``typer.echo`` to ``stream``: a line, flushed. (typer.echo also drops ANSI sequences
    off a terminal; every line here is printable first, so none reaches it.)"""

    def echo(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return echo


def plain_main(argv: Sequence[str], prog_name: str = "affidavit") -> int | None:
    """Run ``verify`` on ``argv`` (after the command name) and return the exit code, or None
    when ``argv`` is for the typer command to parse (help, usage errors, completion)."""
    if f"_{prog_name.replace('-', '_').upper()}_COMPLETE" in os.environ:
        return None
    arguments = parse(argv)
    if arguments is None:
        return None
    try:
        run_verify(_writer(sys.stdout), **arguments)
    except AffidavitError as e:
        _writer(sys.stderr)(f"error: {printable_lines(e.diagnostic)}")
        return e.exit_code
    except KeyboardInterrupt:
        return 130  # as click's Exit(130)
    except BrokenPipeError:  # as click on EPIPE: exit 1, and no second error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
