"""Options that more than one command takes, defined once so their flags and help agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
