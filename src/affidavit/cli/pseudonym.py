"""CLI: ``affidavit pseudonym``, the key that pseudonymises evidence and the lookups it allows.

``collect --pseudonym-key`` names people by keyed pseudonyms, so evidence copied out of a region
carries no personal data. The key's holder (the data protection officer, an auditor) needs two
things back: a key to begin with, and the pseudonyms of named people, to list reviewers in a
policy's ``groups`` and to answer "who is ``psn:…``?" for the people in question. A pseudonym
cannot be reversed, only recomputed: that is what makes it one.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from affidavit.cli.options import ForceOpt, refuse_overwrite
from affidavit.errors import UsageError

pseudonym_app = typer.Typer(
    help="Pseudonyms for the people evidence names (GDPR pseudonymisation): make the key, "
    "compute the pseudonyms of named people.",
    short_help="Make a pseudonym key; compute the pseudonyms of named people.",
    no_args_is_help=True,
)

KeyOpt = Annotated[
    Path,
    typer.Option(
        "--key",
        envvar="AFFIDAVIT_PSEUDONYM_KEY_FILE",
        metavar="FILE",
        help="The pseudonym key the evidence was collected with.",
    ),
]


@pseudonym_app.command("key", short_help="Write a new pseudonym key (32 random bytes, hex).")
def key(
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Where to write the key.")
    ],
    force: ForceOpt = False,
) -> None:
    """Write a new pseudonym key, readable by its owner only; print its key id.

    Keep it where the pipeline's signing key is kept (a CI secret) and with whoever must
    re-identify people (the data protection officer): not in the cluster, which checks
    pseudonyms without it. A new key gives everyone new pseudonyms.
    """
    from affidavit.attestations.pseudonyms import PseudonymKey

    refuse_overwrite(force, output)
    secret = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret + b"\n")
    except OSError as e:
        raise UsageError(
            f"cannot write {output}: {e.strerror or e}", hint="choose another --output"
        ) from e
    typer.echo(f"wrote {output} (key id {PseudonymKey(secret).key_id})")


@pseudonym_app.command("of", short_help="Print the pseudonyms of logins, emails or names.")
def of(
    values: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[VALUE]...",
            help="Logins, emails or names; one per line on stdin when none is given.",
        ),
    ] = None,
    key_file: KeyOpt = Path("pseudonym.key"),
) -> None:
    """Print PSEUDONYM<TAB>VALUE for each value, as `collect --pseudonym-key` writes them.

    For a policy's groups, list the reviewers' pseudonyms (`affidavit pseudonym of alice bob`).
    To find who a pseudonym is, compute those of the people in question and compare
    (`affidavit pseudonym of < people.txt | grep psn:...`).
    """
    from affidavit.attestations.pseudonyms import load_key

    pseudonym_key = load_key(key_file)
    if values:
        given = values
    else:
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(
                "the values on stdin are not UTF-8 text", hint="convert them with iconv"
            ) from e
        given = [line for line in text.splitlines() if line.strip()]
    if not given:
        raise UsageError("no value to pseudonymise", hint="give logins or emails, or pipe them")
    for value in given:
        typer.echo(f"{pseudonym_key.of(value)}\t{value.strip()}")


def register(root: typer.Typer) -> None:
    """Add the ``pseudonym`` group to the root app."""
    root.add_typer(pseudonym_app, name="pseudonym")
