"""The CLI's way into a cluster with nothing but a kubeconfig: the decisions API and a few reads.

Why: a release manager's laptop has a kubeconfig, not the webhook's database. Every read here
goes through the kube-apiserver with the user's own credentials, so RBAC decides who may read:
decisions through the service proxy of the webhook's Service (the chart's ClusterRole
``affidavit-decision-reader``: all of them, every namespace's, since the proxy passes the
webhook no identity to filter by), and policies, exceptions and workloads with ordinary ``get``
and ``list``. Errors name the permission or object that is missing, never a stack trace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affidavit.errors import ClusterError, UsageError
from affidavit.names import GROUP, VERSION

#: Where the chart's webhook Service lives by default (release ``affidavit``).
DEFAULT_SERVICE = "affidavit-system/affidavit"


class NotFoundError(UsageError):
    """The object or decision asked for does not exist (exit 2: the name is wrong)."""


@dataclass(frozen=True)
class ServiceRef:
    """The webhook's Service (``NAMESPACE/NAME``), reached on its port named ``https``."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, value: str) -> ServiceRef:
        namespace, sep, name = value.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise UsageError(
                f"--service {value!r} is not NAMESPACE/NAME",
                hint=f"the webhook's Service, e.g. --service {DEFAULT_SERVICE}",
            )
        return cls(namespace, name)

    def proxy_path(self, path: str) -> str:
        return f"/api/v1/namespaces/{self.namespace}/services/https:{self.name}:https/proxy{path}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class Cluster:
    """A kube-apiserver reached with a kubeconfig (``None``: ``$KUBECONFIG`` or ~/.kube/config)."""

    def __init__(self, kubeconfig: Path | None = None, context: str | None = None) -> None:
        from kubernetes import config

        try:
            self._api: Any = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None, context=context
            )
        except Exception as e:  # the client raises ConfigException, OSError, TypeError...
            where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
            raise ClusterError(
                f"cannot use the kubeconfig {where}: {e}",
                hint="pass --kubeconfig FILE (and --context NAME); `affidavit explain "
                "--decision` also reads a ledger database directly with --ledger URL",
            ) from e

    def get(self, path: str, query: list[tuple[str, str]] | None = None) -> Any:
        """GET ``path`` on the apiserver; the decoded JSON body."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            status, body = self._request(path, query or [])
        except ApiException as e:
            status, body = e.status or 0, e.body
            if not status:  # TLS and the like: no HTTP answer at all
                raise self._unreachable(e.reason) from e
        except HTTPError as e:
            raise self._unreachable(e) from e
        if not 200 <= status < 300:
            raise _api_error(path, status, body)
        try:
            return json.loads(body)
        except ValueError as e:
            raise ClusterError(f"GET {path}: the answer is not JSON") from e

    def _request(self, path: str, query: list[tuple[str, str]]) -> tuple[int, Any]:
        """One authenticated GET; (status, body). The client's API changed at version 35:
        ``param_serialize`` + ``call_api`` there, one ``call_api`` before."""
        headers = {"Accept": "application/json"}
        if hasattr(self._api, "param_serialize"):
            method, url, headers, _body, _post = self._api.param_serialize(
                "GET", path, query_params=query, header_params=headers,
                auth_settings=["BearerToken"],
            )  # fmt: skip
            response = self._api.call_api(method, url, header_params=headers, _request_timeout=30)
            return int(response.status), response.read()
        response = self._api.call_api(
            path, "GET", query_params=query, header_params=headers,
            auth_settings=["BearerToken"], _preload_content=False,
            _return_http_data_only=True, _request_timeout=30,
        )  # fmt: skip
        return 200, response.data

    def _unreachable(self, detail: object) -> ClusterError:
        return ClusterError(
            f"the Kubernetes API server {self._api.configuration.host} is unreachable: {detail}",
            hint="check the kubeconfig's server and your network",
        )

    # -- decisions (through the webhook Service's proxy) -------------------------------------

    def decision(self, service: ServiceRef, decision_id: str) -> dict[str, Any]:
        """``{"seq", "hash", "decision"}`` for one decision id."""
        return dict(self._proxy(service, f"/decisions/{decision_id}", []))

    def decisions(
        self, service: ServiceRef, *, namespace: str, kind: str | None, names: list[str],
        limit: int = 20,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Recorded decisions for these workloads, newest first."""
        query = [("namespace", namespace), ("limit", str(limit))]
        query += [("kind", kind)] if kind else []
        query += [("name", n) for n in names]
        return list(self._proxy(service, "/decisions", query).get("items") or [])

    def _proxy(self, service: ServiceRef, path: str, query: list[tuple[str, str]]) -> Any:
        try:
            return self.get(service.proxy_path(path), query)
        except _Forbidden as e:
            raise ClusterError(
                f"you may not read decisions through the Service {service}: {e.message}",
                hint="ask for the ClusterRole affidavit-decision-reader (`kubectl create "
                "clusterrolebinding NAME --clusterrole affidavit-decision-reader --user YOU`)",
            ) from e
        except ApiNotFound as e:
            if e.from_webhook:
                raise NotFoundError(e.message) from e
            raise ClusterError(
                f"the webhook Service {service} was not found: {e.message}",
                hint="pass --service NAMESPACE/NAME of the chart's webhook Service",
            ) from e
        except _Unavailable as e:
            raise ClusterError(
                f"the decisions API behind the Service {service} did not answer: {e.message}",
                hint="the webhook must run with --decisions-api (chart: "
                "webhook.decisionsApi.enabled=true) and have a ready Pod",
            ) from e

    # -- objects ------------------------------------------------------------------------------

    def custom(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every ``affidavit.dev`` object of a kind (in ``namespace``, or cluster-wide)."""
        where = f"/namespaces/{namespace}" if namespace else ""
        body = self.get(f"/apis/{GROUP}/{VERSION}{where}/{plural}")
        return list(body.get("items") or [])

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        body = self.get(f"/api/v1/namespaces/{namespace}")
        return dict((body.get("metadata") or {}).get("labels") or {})


class _ApiError(ClusterError):
    def __init__(self, message: str, *, from_webhook: bool = False) -> None:
        super().__init__(message)
        self.from_webhook = from_webhook


class _Forbidden(_ApiError):
    pass


class ApiNotFound(_ApiError):
    """The apiserver (or the webhook behind the proxy) answered 404."""


class _Unavailable(_ApiError):
    pass


def _api_error(path: str, status: int, body: Any) -> ClusterError:
    """The apiserver's Status (or the webhook's ``{"error"}``) as one error of the family."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    from_webhook = "error" in doc and doc.get("kind") != "Status"
    message = str(doc.get("error") or doc.get("message") or text.strip() or f"HTTP {status}")
    if status == 403:
        return _Forbidden(message)
    if status == 404:
        return ApiNotFound(message, from_webhook=from_webhook)
    if status in (502, 503):
        return _Unavailable(message)
    if status == 401:
        return ClusterError(
            f"the API server did not accept your credentials: {message}",
            hint="log in again (your kubeconfig's token or certificate)",
        )
    return ClusterError(f"GET {path} failed (HTTP {status}): {message}")
