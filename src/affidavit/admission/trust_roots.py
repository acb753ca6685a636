"""Private Sigstore trusted roots for keyless signers, read from ConfigMaps of Affidavit's namespace.

An air-gapped cluster verifies keyless bundles against its own Sigstore's ``trusted_root.json``,
which a policy names (``signers.keyless[].trustedRoot.configMapRef``) and the chart (or the
platform team) puts in Affidavit's own namespace: only that namespace, so no tenant can hand the
webhook a root of trust. The webhook reads each one through the Kubernetes API it already talks
to, keeps it ``ttl`` seconds, and never fetches TUF metadata or anything else from the network to
verify. A root that cannot be read leaves its signer without one, which verifies nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from affidavit.attestations.evidence import KeylessSigner, TrustedSigner

log = logging.getLogger("affidavit.admission")


class ConfigMapReader(Protocol):
    """Reads a ConfigMap object, or None when it does not exist."""

    def get_config_map(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...


class TrustRoots:
    """Fills in ``KeylessSigner.trusted_root`` from the ConfigMap its ``trusted_root_ref`` names."""

    def __init__(
        self,
        api: ConfigMapReader,
        namespace: str,
        *,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self.namespace = namespace
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, str | None]] = {}

    def _read(self, ref: str) -> str | None:
        name, _, key = ref.partition("/")
        try:
            cm = self._api.get_config_map(self.namespace, name)
        except Exception as e:  # the API's own errors: the signer stays without a root
            log.warning("cannot read trusted root ConfigMap %s/%s: %s", self.namespace, name, e)
            return None
        data = (cm or {}).get("data") or {}
        text = data.get(key) if isinstance(data, Mapping) else None
        if not isinstance(text, str):
            log.warning("ConfigMap %s/%s has no key %s", self.namespace, name, key)
            return None
        return text

    def root(self, ref: str, *, io: bool = True) -> tuple[bool, str | None]:
        """(known, text): ``known`` is False only when ``io`` is off and nothing is cached."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(ref)
        if cached is not None and cached[0] > now:
            return True, cached[1]
        if not io:
            return False, None
        text = self._read(ref)
        with self._lock:
            self._cache[ref] = (now + self._ttl, text)
            if len(self._cache) > 256:  # refs come from policies, not requests: a bound anyway
                self._cache.pop(next(iter(self._cache)))
        return True, text

    def resolve(
        self, signers: Sequence[TrustedSigner], *, io: bool = True
    ) -> list[TrustedSigner] | None:
        """``signers`` with their trusted roots read; None when ``io`` is off and one is not
        cached (the caller then takes the path that may do I/O)."""
        out: list[TrustedSigner] = []
        for s in signers:
            if isinstance(s, KeylessSigner) and s.trusted_root_ref:
                known, text = self.root(s.trusted_root_ref, io=io)
                if not known:
                    return None
                s = replace(s, trusted_root=text)
            out.append(s)
        return out
