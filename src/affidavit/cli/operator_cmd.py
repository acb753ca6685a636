"""CLI: ``affidavit operator run``, the cluster-side operator (in a pod or against a kubeconfig).

The options map one to one onto ``affidavit.operator.main.OperatorSettings``; every one can also
come from an ``AFFIDAVIT_*`` environment variable, which is how the Helm chart configures it.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Annotated

import typer

from affidavit.errors import UsageError

operator_app = typer.Typer(
    name="operator",
    help="The operator: compiles policies into the index, manages webhook certificates, "
    "expires exceptions and turns denials into Kubernetes Events.",
    no_args_is_help=True,
)


@operator_app.command("run")
def run(
    namespace: Annotated[
        str, typer.Option(envvar="AFFIDAVIT_NAMESPACE", help="the release namespace")
    ],
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            envvar="AFFIDAVIT_KUBECONFIG",
            help="kubeconfig file; default: the pod's service account",
        ),
    ] = None,
    cluster_name: Annotated[
        str, typer.Option(envvar="AFFIDAVIT_CLUSTER_NAME", help="this cluster's name")
    ] = "",
    region: Annotated[
        str, typer.Option(envvar="AFFIDAVIT_REGION", help="this cluster's region")
    ] = "",
    ledger: Annotated[
        str | None,
        typer.Option(
            envvar="AFFIDAVIT_LEDGER",
            help="decision ledger URL (sqlite:///PATH or postgresql+psycopg://...); "
            "enables Events for denials and warnings",
        ),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            envvar="AFFIDAVIT_WEBHOOK_URL",
            help="URL of a webhook run outside the cluster; its host goes into the certificate",
        ),
    ] = None,
    service: Annotated[
        str, typer.Option(envvar="AFFIDAVIT_SERVICE", help="the webhook's Service name")
    ] = "affidavit",
    webhook_configuration: Annotated[
        str,
        typer.Option(
            envvar="AFFIDAVIT_WEBHOOK_CONFIGURATION",
            help="ValidatingWebhookConfiguration whose caBundle is kept current",
        ),
    ] = "affidavit",
    cert_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="AFFIDAVIT_CERT_DIR",
            help="also write tls.crt, tls.key and ca.crt here (for a webhook run locally)",
        ),
    ] = None,
    manage_certificates: Annotated[
        bool,
        typer.Option(envvar="AFFIDAVIT_MANAGE_CERTIFICATES", help="issue and rotate certificates"),
    ] = True,
    cert_lifetime: Annotated[
        float,
        typer.Option(envvar="AFFIDAVIT_CERT_LIFETIME_SECONDS", help="serving certificate lifetime"),
    ] = 90 * 86400.0,
    cert_renew_fraction: Annotated[
        float,
        typer.Option(
            envvar="AFFIDAVIT_CERT_RENEW_FRACTION",
            help="renew when less than this fraction of the lifetime is left",
        ),
    ] = 1 / 3,
    resync_seconds: Annotated[
        float, typer.Option(envvar="AFFIDAVIT_RESYNC_SECONDS", help="full reconcile period")
    ] = 300.0,
    exception_max_days: Annotated[
        int,
        typer.Option(
            envvar="AFFIDAVIT_EXCEPTION_MAX_DAYS",
            help="longest AccountabilityException in this cluster (days), whatever policies say",
        ),
    ] = 7,
    liveness: Annotated[
        str | None,
        typer.Option(help="serve kopf's liveness probe here, e.g. http://0.0.0.0:8080/healthz"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    """Run the operator until SIGTERM."""
    from affidavit.operator.main import OperatorSettings
    from affidavit.operator.main import run as run_operator

    if cert_lifetime <= 0:
        raise UsageError(
            f"--cert-lifetime must be a positive number of seconds; found {cert_lifetime:g}",
            hint="the default is 7776000 (90 days)",
        )
    if not 0 < cert_renew_fraction < 1:
        raise UsageError(
            f"--cert-renew-fraction must be between 0 and 1; found {cert_renew_fraction:g}",
            hint="0.33 renews the certificate when a third of its lifetime is left",
        )
    if exception_max_days < 1:
        raise UsageError(
            f"--exception-max-days must be at least 1; found {exception_max_days}",
            hint="break-glass exceptions are bounded; the default is 7 days",
        )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # one line per watch event is noise; failures are still logged
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings = OperatorSettings(
        namespace=namespace,
        kubeconfig=kubeconfig,
        cluster_name=cluster_name,
        region=region,
        ledger_url=ledger,
        webhook_url=webhook_url,
        service_name=service,
        webhook_configuration=webhook_configuration,
        cert_dir=cert_dir,
        manage_certificates=manage_certificates,
        cert_lifetime=datetime.timedelta(seconds=cert_lifetime),
        cert_renew_fraction=cert_renew_fraction,
        cert_check_interval=min(60.0, max(1.0, cert_lifetime / 20)),
        resync=datetime.timedelta(seconds=resync_seconds),
        exception_max_days=exception_max_days,
        liveness_endpoint=liveness,
    )
    settings.certificate_names()  # validate --webhook-url before anything starts
    run_operator(settings)


def register(root: typer.Typer) -> None:
    """Add ``affidavit operator ...`` to the root app."""
    root.add_typer(operator_app)
