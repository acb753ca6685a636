"""CLI: ``affidavit keygen``, the key pair a pipeline signs with (or the webhook's ledger key).

The private key is written the way cosign writes one (``ENCRYPTED SIGSTORE PRIVATE KEY``, scrypt
and NaCl secretbox, the password in ``$COSIGN_PASSWORD``), so ``cosign sign --key`` and ``cosign
attest --key`` use the file directly and a team keeps one key for both tools. A key written
without a password is warned about: anyone who reads the file can sign as the pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from affidavit.attestations.keys import generate_key_pair
from affidavit.cli.options import ForceOpt, deprecated, refuse_overwrite
from affidavit.errors import UsageError


def keygen(
    kind: Annotated[str, typer.Option("--kind", help="ecdsa-p256 or ed25519.")] = "ecdsa-p256",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PREFIX",
            help="Writes PREFIX.key and PREFIX.pub (default: affidavit, or affidavit-ledger "
            "with --ledger-key).",
        ),
    ] = None,
    force: ForceOpt = False,
    cosign: Annotated[
        bool,
        typer.Option(
            "--cosign",
            help="Write the private key in cosign's encrypted format (cosign sign/attest --key "
            "read it) even without a password; the default whenever $COSIGN_PASSWORD is set.",
        ),
    ] = False,
    ledger_key: Annotated[
        bool,
        typer.Option(
            "--ledger-key",
            help="The webhook's ledger checkpoint key: Ed25519, never encrypted (keep it in a "
            "Secret).",
        ),
    ] = False,
    output_prefix: Annotated[
        Path | None,
        typer.Option("--output-prefix", hidden=True, help="Deprecated: use -o/--output."),
    ] = None,
) -> None:
    """Make a signing key pair. The private key is in cosign's encrypted format when
    $COSIGN_PASSWORD is set (its password) or with --cosign; otherwise it is an unencrypted
    PKCS#8 key, which Affidavit signs with but cosign does not read."""
    if output_prefix is not None:
        if output is not None:
            raise UsageError("give -o/--output, not also --output-prefix")
        deprecated("--output-prefix", "use -o/--output PREFIX")
        output = output_prefix
    if ledger_key:
        if cosign:
            raise UsageError("--ledger-key makes an unencrypted Ed25519 key; drop --cosign")
        kind = "ed25519"
    if output is None:
        output = Path("affidavit-ledger" if ledger_key else "affidavit")
    if kind not in ("ecdsa-p256", "ed25519"):
        raise UsageError(f"--kind {kind!r} is not supported; use ecdsa-p256 or ed25519")
    if output.name in ("", ".", ".."):
        raise UsageError(
            f"-o/--output {str(output)!r} names a directory, not a key file prefix",
            hint="give a prefix such as ci or keys/ci (writes ci.key and ci.pub)",
        )
    private_path = output.with_name(output.name + ".key")
    public_path = output.with_name(output.name + ".pub")
    refuse_overwrite(force, private_path, public_path)
    password = None if ledger_key else os.environ.get("COSIGN_PASSWORD")
    private_pem, public_pem = generate_key_pair("ed25519" if kind == "ed25519" else "ecdsa-p256")
    if password or cosign:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        from affidavit.attestations.cosign_keys import write_cosign_key

        loaded = load_pem_private_key(private_pem, password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        private_pem = write_cosign_key(loaded, (password or "").encode())
    for path in (private_path, public_path):
        if not path.parent.is_dir():
            raise UsageError(
                f"cannot write {path}: the directory {path.parent} does not exist",
                hint="create it first, or choose another -o/--output",
            )
    try:
        private_path.write_bytes(b"")
        private_path.chmod(0o600)
        private_path.write_bytes(private_pem)
        try:
            public_path.write_bytes(public_pem)
        except OSError:
            private_path.unlink()  # no private key left behind without its public half
            raise
    except OSError as e:
        raise UsageError(
            f"cannot write the key pair to {output}: {e.strerror or e}",
            hint="choose a writable -o/--output",
        ) from e
    if not password and not ledger_key:
        typer.echo(
            f"warning: {private_path} is not protected by a password; set $COSIGN_PASSWORD "
            "to encrypt it (anyone who reads the file can sign as you)",
            err=True,
        )
    typer.echo(f"private key {private_path}")
    typer.echo(f"public key  {public_path}")


def register(root: typer.Typer) -> None:
    """Add ``keygen`` to the root app."""
    root.command("keygen", short_help="Make a signing key pair (cosign's key format).")(keygen)
