"""Options that more than one command takes, defined once so their flags and help agree, and
the checks of their values that more than one command makes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from affidavit.errors import UsageError

LedgerPublicKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--ledger-public-key",
        envvar="AFFIDAVIT_LEDGER_PUBLIC_KEY",
        help="Ed25519 public key (PEM) the ledger's checkpoints are signed with.",
    ),
]
CheckpointsOpt = Annotated[
    Path | None,
    typer.Option(
        "--checkpoints",
        envvar="AFFIDAVIT_CHECKPOINTS",
        help="Directory of signed checkpoints (the webhook's --checkpoint-dir trail), or a file "
        "with the checkpoint ConfigMap (kubectl get configmap NAME -o yaml).",
    ),
]

#: What a decision's outcome can be (``Decision.outcome``).
OUTCOMES = ("allowed", "denied", "warned", "audited", "excepted")


def check_order(start: datetime | None, end: datetime | None) -> None:
    """--since must come before --until: a reversed period would silently select nothing."""
    if start is not None and end is not None:
        a = (start if start.tzinfo else start.replace(tzinfo=UTC)).astimezone(UTC)
        b = (end if end.tzinfo else end.replace(tzinfo=UTC)).astimezone(UTC)
        if a >= b:
            when = "%Y-%m-%dT%H:%M:%SZ"
            raise UsageError(
                f"--since {a.strftime(when)} is not before --until {b.strftime(when)}: the "
                "period is empty",
                hint="--since is inclusive and --until exclusive; swap them if reversed",
            )


#: Shown under every command's --help; the README's table says the same.
EXIT_CODES = (
    "Exit codes: 0 success; 1 denied, or a failed check or test case; "
    "2 usage or input error (a bad flag, file, policy or key); 3 collecting or signing failed; "
    "4 no attestation verified; 5 registry unreachable or image missing; 6 ledger "
    "unavailable or its chain broken (a report over it is still written); 7 Kubernetes "
    "unreachable or refused."
)

InsecureRegistryOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--insecure-registry",
        metavar="HOST",
        help="Registry HOST[:PORT] reached over plain HTTP (repeatable).",
    ),
]
#: The registry options of the commands that talk to one registry at a user's request (attest,
#: verify, trace, copy); the webhook's and the operator's trust is configured apart.
RegistryConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--registry-config",
        help="Registry credentials as a dockerconfigjson (imagePullSecret), before those of "
        "docker login and podman login (~/.docker/config.json, $DOCKER_CONFIG, "
        "$REGISTRY_AUTH_FILE, credential helpers).",
    ),
]
CaBundleOpt = Annotated[
    Path | None, typer.Option("--ca-bundle", help="CA certificates (PEM) for the registry's TLS.")
]
RegistryCaOpt = Annotated[
    Path | None,
    typer.Option(
        "--registry-ca",
        envvar="AFFIDAVIT_REGISTRY_CA",
        help="PEM bundle of the CAs registries' TLS certificates are checked against.",
    ),
]
RegistryAllowedHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--registry-allowed-host",
        envvar="AFFIDAVIT_REGISTRY_ALLOWED_HOSTS",
        help="HOST[:PORT] or *.DOMAIN contacted besides the registries policies name, and "
        "allowed as redirect (blob storage) or token realm host (repeat; env: space-separated).",
    ),
]
BudgetSecondsOpt = Annotated[
    float,
    typer.Option(
        "--budget-seconds",
        envvar="AFFIDAVIT_BUDGET_SECONDS",
        help="The time one workload's evidence lookup may take; past it the review fails closed.",
    ),
]
UnmatchedImagesOpt = Annotated[
    str,
    typer.Option(
        "--unmatched-images",
        envvar="AFFIDAVIT_UNMATCHED_IMAGES",
        help="What an image no AccountabilityPolicy matches gets: Allow, Warn (recorded and "
        "warned about) or Deny. Presets such as pci-dss may demand Deny.",
    ),
]
PseudonymKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--pseudonym-key",
        envvar="AFFIDAVIT_PSEUDONYM_KEY_FILE",
        metavar="FILE",
        help="Name every person by a keyed pseudonym (psn:KEYID:...), never by name, email or "
        "login: evidence that leaves the region then carries no personal data (the eu preset's "
        "evidence.pseudonymousIdentities). Make the key with `affidavit pseudonym key`.",
    ),
]
RevealKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--pseudonym-key",
        envvar="AFFIDAVIT_PSEUDONYM_KEY_FILE",
        metavar="FILE",
        help="With --people: the key the evidence's pseudonyms were made with.",
    ),
]
PeopleOpt = Annotated[
    Path | None,
    typer.Option(
        "--people",
        metavar="FILE",
        help="Show who a pseudonym is, for the people listed (a login, an email, a name or "
        "'Name <email>' a line; e.g. git log --format='%an <%ae>' | sort -u), with "
        "--pseudonym-key.",
    ),
]


def revealer(
    key: Path | None, people: Path | None, *, json_text: bool = False
) -> Callable[[str], str] | None:
    """A text's pseudonyms of the ``people`` file's people shown as who they are (escaped for
    a JSON document's strings with ``json_text``), or None when neither option is given.

    Raises:
        UsageError: one option without the other, or a people file that cannot be read.
        InputError: the key cannot be read or is too short.
    """
    if key is None and people is None:
        return None
    if key is None or people is None:
        raise UsageError(
            "--people and --pseudonym-key go together",
            hint="give the key the pipeline collected with and the file of people to look for",
        )
    from affidavit.attestations.pseudonyms import load_key, reveal

    pseudonym_key = load_key(key)
    try:
        listed = people.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read --people {people}: {reason}") from e
    if json_text:
        import json

        return lambda text: reveal(text, pseudonym_key, listed, lambda v: json.dumps(v)[1:-1])
    return lambda text: reveal(text, pseudonym_key, listed)


ForceOpt = Annotated[
    bool, typer.Option("--force", help="Overwrite the output files if they exist.")
]
TrustedKeysOpt = Annotated[
    list[Path] | None,
    typer.Option("--key", metavar="KEY", help="Trusted signer's public key, PEM (repeatable)."),
]


def refuse_overwrite(force: bool, *paths: Path) -> None:
    """Outputs are never overwritten without --force, in every command that writes one."""
    if force:
        return
    for path in paths:
        if path.exists():
            raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")


def deprecated(old: str, instead: str) -> None:
    """Warn (on stderr, so pipelines keep their output) that a spelling will go away."""
    typer.echo(f"warning: {old} is deprecated and will be removed; {instead}", err=True)
