"""CLI: ``affidavit operator run``, the cluster-side operator (in a pod or against a kubeconfig).

The options map one to one onto ``affidavit.operator.main.OperatorSettings``; every one can also
come from an ``AFFIDAVIT_*`` environment variable, which is how the Helm chart configures it.
With ``--recheck-seconds`` this is also where the webhook's judgement
(``affidavit.admission.recheck``) is built and handed to the operator: the CLI sits above both
packages, which never import each other. The registry options are the webhook's, with the same
names and environment variables, so the chart gives both containers the same values.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from affidavit import defaults
from affidavit.cli.options import (
    BudgetSecondsOpt,
    InsecureRegistryOpt,
    RegistryAllowedHostOpt,
    RegistryCaOpt,
    UnmatchedImagesOpt,
)
from affidavit.errors import UsageError

if TYPE_CHECKING:
    from affidavit.policy.presets import UnmatchedImages

operator_app = typer.Typer(
    name="operator",
    help="The operator: compiles policies into the index, manages webhook certificates, "
    "expires exceptions, turns denials into Kubernetes Events and re-checks running workloads.",
    short_help="Run the operator: policies, certificates, exceptions, re-checks.",
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
        typer.Option(
            envvar="AFFIDAVIT_CERT_LIFETIME_SECONDS",
            help="serving certificate lifetime in seconds (default: 90 days)",
            show_default=False,
        ),
    ] = 90 * 86400.0,
    cert_renew_fraction: Annotated[
        float,
        typer.Option(
            envvar="AFFIDAVIT_CERT_RENEW_FRACTION",
            help="renew when less than this fraction of the lifetime is left (default: 1/3)",
            show_default=False,
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
    readiness_url: Annotated[
        str | None,
        typer.Option(
            "--readiness",
            help="serve /readyz here (200 once the policy index is published and current), "
            "e.g. http://0.0.0.0:8081/readyz",
        ),
    ] = None,
    crds_hold_start: Annotated[
        bool,
        typer.Option(
            "--crds-hold-start/--crds-do-not-hold-start",
            envvar="AFFIDAVIT_CRDS_HOLD_START",
            help="older CRDs than this operator's fail /startz as well as /readyz (a rollout "
            "stops while old Pods serve); turn off under a Recreate rollout, where no old Pod "
            "serves meanwhile",
        ),
    ] = True,
    own_webhook_configurations: Annotated[
        bool,
        typer.Option(
            "--own-webhook-configurations",
            envvar="AFFIDAVIT_OWN_WEBHOOK_CONFIGURATIONS",
            help="make Affidavit's namespace the owner of both webhook configurations, so "
            "deleting the namespace removes them (enforcement off) instead of leaving them "
            "failing closed",
        ),
    ] = False,
    webhook_failure_policy: Annotated[
        str | None,
        typer.Option(
            "--webhook-failure-policy",
            envvar="AFFIDAVIT_WEBHOOK_FAILURE_POLICY",
            help="the failurePolicy the webhook configurations were installed with (Fail or "
            "Ignore): a live webhook that differs is logged and exported as "
            "affidavit_webhook_configuration_drift",
        ),
    ] = None,
    recheck_seconds: Annotated[
        float,
        typer.Option(
            envvar="AFFIDAVIT_RECHECK_SECONDS",
            help="re-check running workloads this often (and when a policy or exception "
            "changes) with the webhook's judgement, and publish PolicyReports; 0: off",
        ),
    ] = 0.0,
    expiry_warning_seconds: Annotated[
        float,
        typer.Option(
            envvar="AFFIDAVIT_EXPIRY_WARNING_SECONDS",
            help="a workload running on an exception that expires within this is reported as warn",
        ),
    ] = 3 * 86400.0,
    exclude_namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-namespace",
            help="a namespace the webhook does not judge, so neither does the re-check (repeat; "
            "the release namespace and kube-system always are)",
        ),
    ] = None,
    insecure_registry: InsecureRegistryOpt = None,
    registry_ca: RegistryCaOpt = None,
    registry_allowed_host: RegistryAllowedHostOpt = None,
    budget_seconds: BudgetSecondsOpt = defaults.BUDGET_SECONDS,
    unmatched_images: UnmatchedImagesOpt = "Warn",
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
    if recheck_seconds < 0 or expiry_warning_seconds < 0:
        raise UsageError(
            "--recheck-seconds and --expiry-warning-seconds must not be negative; found "
            f"{recheck_seconds:g} and {expiry_warning_seconds:g}",
            hint="--recheck-seconds 300 re-checks every 5 minutes; 0 turns the re-check off",
        )
    if unmatched_images not in ("Allow", "Warn", "Deny"):
        raise UsageError(
            f"--unmatched-images must be Allow, Warn or Deny; found {unmatched_images!r}",
            hint="give the webhook's value (the chart's unmatchedImages)",
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
        readiness_endpoint=readiness_url,
        crds_hold_start=crds_hold_start,
        webhook_failure_policy=webhook_failure_policy,
        own_webhook_configurations=own_webhook_configurations,
        recheck_period=datetime.timedelta(seconds=recheck_seconds or 300.0),
        recheck_warn_within=datetime.timedelta(seconds=expiry_warning_seconds),
        recheck_exclude_namespaces=tuple(exclude_namespace or ()),
    )
    settings.certificate_names()  # validate --webhook-url before anything starts
    if webhook_failure_policy not in (None, "Fail", "Ignore"):
        raise UsageError(
            f"--webhook-failure-policy {webhook_failure_policy!r} is not Fail or Ignore"
        )
    if readiness_url is not None:
        from affidavit.operator.readiness import parse_endpoint

        parse_endpoint(readiness_url)
    judge = None
    if recheck_seconds > 0:
        from affidavit.admission.recheck import RecheckSettings, build_running_judge

        judge = build_running_judge(
            RecheckSettings(
                cluster_name=cluster_name,
                region=region,
                kubeconfig=kubeconfig,
                insecure_registries=tuple(insecure_registry or ()),
                registry_ca=registry_ca,
                registry_allowed_hosts=tuple(registry_allowed_host or ()),
                budget_seconds=budget_seconds,
                unmatched_images=cast("UnmatchedImages", unmatched_images),
            )
        )
    run_operator(settings, judge)


def register(root: typer.Typer) -> None:
    """Add ``affidavit operator ...`` to the root app."""
    root.add_typer(operator_app)
