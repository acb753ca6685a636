"""The cluster's copy of the ledger checkpoints: a ConfigMap the webhook keeps the newest ones in.

The directory trail lives on the webhook's volume; a ConfigMap puts the signed heads where the
database credentials cannot reach and where an auditor with read access to the cluster can fetch
them (``kubectl get configmap NAME -o yaml > cp.yaml``; ``affidavit decisions verify-chain
--checkpoints cp.yaml``). A ConfigMap holds at most 1 MiB, so only the newest ``keep`` notes
stay (verification checks against the newest). Publishing never fails a decision: an error
(the API server's, or none reached) is logged and the next checkpoint tries again. ``notes`` reads
them back, so a restarted webhook continues what it signed last (``Checkpointer``).
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from affidavit.ledger.checkpoint import checkpoint_key

log = logging.getLogger("affidavit.ledger")


class ConfigMapTrail:
    """Publishes checkpoint notes as keys ``checkpoint.<size>`` of one ConfigMap."""

    def __init__(
        self, api: Any, namespace: str, name: str, *, keep: int = 64, timeout: float = 5.0
    ) -> None:
        self._core = client.CoreV1Api(api)
        self.namespace, self.name, self.keep, self._timeout = namespace, name, keep, timeout

    def __str__(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    def notes(self) -> list[tuple[str, str]]:
        """``(source, note)`` of every checkpoint the ConfigMap holds (none if it is absent)."""
        try:
            current = self._core.read_namespaced_config_map(
                self.name, self.namespace, _request_timeout=self._timeout
            )
        except ApiException as e:
            if e.status == 404:
                return []
            raise
        data = current.data or {}
        return [
            (f"{self}:{k}", str(v)) for k, v in sorted(data.items()) if k.startswith("checkpoint.")
        ]

    def publish(self, size: int, note: str) -> None:
        try:
            self._publish(size, note)
        except ApiException as e:
            log.warning("cannot publish checkpoint %d to the ConfigMap: %s", size, e.reason)
        except Exception as e:  # the API server unreachable (urllib3's errors are no ApiException)
            log.warning("cannot publish checkpoint %d to the ConfigMap: %s", size, e)

    def _publish(self, size: int, note: str) -> None:
        key = checkpoint_key(size)
        try:
            current = self._core.read_namespaced_config_map(
                self.name, self.namespace, _request_timeout=self._timeout
            )
        except ApiException as e:
            if e.status != 404:
                raise
            current = None
        if current is None:
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                data={key: note},
            )
            self._core.create_namespaced_config_map(
                self.namespace, body, _request_timeout=self._timeout
            )
            return
        keys = sorted(k for k in {*(current.data or {}), key} if k.startswith("checkpoint."))
        patch: dict[str, str | None] = {old: None for old in keys[: -self.keep]}
        patch[key] = note
        self._core.patch_namespaced_config_map(
            self.name, self.namespace, {"data": patch}, _request_timeout=self._timeout
        )
