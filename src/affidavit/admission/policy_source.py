"""Where the webhook's policy index comes from, and how it stays current without restarts.

Two sources: a file or directory of policy YAMLs (local runs, benchmarks), re-read when a file
changes; and the ConfigMap the operator writes (``index.json`` = ``PolicyIndex.to_json()``),
watched through the Kubernetes API in a background thread. Both keep the last good index when
the new input is broken or the API is unreachable: the webhook keeps deciding on the policies it
last knew while the operator or the apiserver is down, and says so in its log.

A policy file with one invalid object (an unknown field such as ``ownerLabels:`` for
``ownerLabel:``) is a broken input as a whole: loading just the valid objects would silently drop
the broken policy, i.e. deploy a weaker policy than the one written. The last good index stays in
force and ``problem()`` names the object and field, which ``/readyz`` reports (503).

Namespace labels (for ``namespaceSelector``) come from a small cache in front of the API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from affidavit.errors import AffidavitError, PolicyError
from affidavit.names import INDEX_CONFIGMAP, INDEX_KEY
from affidavit.policy.index import PolicyIndex
from affidavit.policy.lifetime import DEFAULT_EXCEPTION_MAX_DAYS
from affidavit.policy.model import KIND_EXCEPTION, KIND_POLICY, KIND_REGION
from affidavit.policy.stored import object_key

log = logging.getLogger("affidavit.admission")

NAME_LABEL = "kubernetes.io/metadata.name"
#: How long ``stop`` waits for the policy watch thread to end.
STOP_SECONDS = 5.0


class PolicySource(Protocol):
    def current(self) -> PolicyIndex | None: ...
    def problem(self) -> str | None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


def load_policy_files(
    path: Path, *, exception_max_days: int = DEFAULT_EXCEPTION_MAX_DAYS
) -> PolicyIndex:
    """A PolicyIndex from a YAML file or every ``*.yaml``/``*.yml`` in a directory tree.

    Raises:
        PolicyError: a file is unreadable, a document is not one of the three kinds, or any
            object is invalid (every invalid object is named, with its file and field).
    """
    files = [path] if path.is_file() else sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
    if not path.exists():
        raise PolicyError(
            f"policy path {path} does not exist",
            hint="pass --policy-dir with a directory of AccountabilityPolicy YAML files",
        )
    buckets: dict[str, list[Mapping[str, Any]]] = {
        KIND_POLICY: [],
        KIND_REGION: [],
        KIND_EXCEPTION: [],
    }
    origin: dict[int, Path] = {}
    for file in files:
        try:
            docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except UnicodeDecodeError as e:
            raise PolicyError(
                f"cannot read policy file {file}: it is not UTF-8 text (byte {e.start})",
                hint="a policy directory holds AccountabilityPolicy YAML files only",
            ) from e
        except (OSError, yaml.YAMLError) as e:
            raise PolicyError(f"cannot read policy file {file}: {e}") from e
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            if not isinstance(doc, dict) or doc.get("kind") not in buckets:
                kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
                raise PolicyError(
                    f"{file} document {i + 1} has kind {kind!r}; expected one of "
                    f"{', '.join(buckets)}"
                )
            buckets[doc["kind"]].append(doc)
            origin[id(doc)] = file
    index = PolicyIndex.from_objects(
        buckets[KIND_POLICY],
        buckets[KIND_REGION],
        buckets[KIND_EXCEPTION],
        exception_max_days=exception_max_days,
    )
    if index.errors:
        files_of = {
            object_key(kind, doc): origin[id(doc)] for kind, docs in buckets.items() for doc in docs
        }
        raise PolicyError(
            "invalid policy objects: "
            + "; ".join(
                f"{key} in {files_of.get(key, path)}: {error}"
                for key, error in index.errors.items()
            ),
            hint="fix the named fields (an unknown field is an error, so that a typo never "
            "silently weakens a policy); the webhook keeps the last good policy index meanwhile",
        )
    return index


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
    else:
        return ()
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


class FilePolicySource:
    """Policies from YAML files, re-read (at most every ``interval`` seconds) when they change."""

    def __init__(
        self,
        path: Path,
        *,
        interval: float = 1.0,
        exception_max_days: int = DEFAULT_EXCEPTION_MAX_DAYS,
    ) -> None:
        self.path = path
        self.exception_max_days = exception_max_days
        self.interval = interval
        self.last_error: str | None = None
        self._index: PolicyIndex | None = None
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        self.current()

    def stop(self) -> None:
        pass

    def problem(self) -> str | None:
        """Why the files on disk are not what is in force (None: they are)."""
        self.current()
        return self.last_error

    def current(self) -> PolicyIndex | None:
        now = time.monotonic()
        if self._index is not None and now - self._checked < self.interval:
            return self._index
        with self._lock:
            self._checked = now
            seen = _fingerprint(self.path)
            if seen != self._seen:
                try:
                    self._index = load_policy_files(
                        self.path, exception_max_days=self.exception_max_days
                    )
                    self.last_error = None
                    log.info("policy index loaded from %s (%s)", self.path, self._index.digest)
                except AffidavitError as e:
                    self.last_error = e.message
                    log.error("policy reload failed, keeping the last index: %s", e.message)
                self._seen = seen
            return self._index


class ConfigMapApi(Protocol):
    """The calls the ConfigMap source needs (the app wires in the Kubernetes API)."""

    def get_config_map(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def watch_config_map(
        self, namespace: str, name: str, resource_version: str | None, timeout_seconds: int
    ) -> Iterator[tuple[str, Mapping[str, Any]]]: ...

    def stop_watches(self) -> None: ...


class ConfigMapPolicySource:
    """The operator's compiled index, kept current by a background list-then-watch loop."""

    def __init__(
        self,
        api: ConfigMapApi,
        namespace: str,
        name: str = INDEX_CONFIGMAP,
        *,
        retry_seconds: float = 2.0,
        watch_seconds: int = 60,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.retry_seconds = retry_seconds
        self.watch_seconds = watch_seconds
        self.last_error: str | None = None
        self._index: PolicyIndex | None = None
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._thread: threading.Thread | None = None
        self.loaded = threading.Event()

    def current(self) -> PolicyIndex | None:
        return self._index

    def problem(self) -> str | None:
        """Not ready only before the first index: later the last one stays in force while the
        API or the operator is away (a restart of either must not take admission down)."""
        if self._index is not None:
            return None
        return self.last_error or "no policy index loaded yet"

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="affidavit-policy-watch", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """End the watch thread (within ``STOP_SECONDS``). Open watches are interrupted again
        until it has ended: one opened just as the first interruption ran (the thread had
        passed its stop check; or the client's watch, not started yet, cleared its own stop
        flag when it did) would otherwise hold the thread to its server-side timeout."""
        self._stop.set()
        deadline = time.monotonic() + STOP_SECONDS
        while True:
            self.api.stop_watches()
            if self._thread is None:
                return
            self._thread.join(timeout=0.05)
            if not self._thread.is_alive() or time.monotonic() > deadline:
                return

    def apply(self, config_map: Mapping[str, Any]) -> None:
        """Load the index from a ConfigMap object; keep the last one if it is broken."""
        data = config_map.get("data") or {}
        text = data.get(INDEX_KEY) if isinstance(data, Mapping) else None
        where = f"ConfigMap {self.namespace}/{self.name}"
        if not isinstance(text, str):
            self._fail(f"{where} has no key {INDEX_KEY}")
            return
        try:
            index = PolicyIndex.from_json(text)
        except AffidavitError as e:
            self._fail(f"{where} key {INDEX_KEY} is not a policy index: {e.message}")
            return
        if self._index is None or index.digest != self._index.digest:
            log.info("policy index %s loaded from %s", index.digest, where)
        self._index = index
        self.last_error = None
        self.loaded.set()

    def _fail(self, message: str) -> None:
        self.last_error = message
        if self._index is not None:
            message += "; keeping the last known policy index"
        log.error(message)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._list_and_watch()
            except Exception as e:  # the API is down: keep the last index and retry
                self._fail(f"cannot read ConfigMap {self.namespace}/{self.name}: {e}")
            if self._sleep(self.retry_seconds):
                return

    def _list_and_watch(self) -> None:
        cm = self.api.get_config_map(self.namespace, self.name)
        if cm is None:
            self._fail(
                f"ConfigMap {self.namespace}/{self.name} does not exist (is the operator running?)"
            )
            return
        self.apply(cm)
        meta = cm.get("metadata") or {}
        version = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        while not self._stop.is_set():
            for kind, obj in self.api.watch_config_map(
                self.namespace, self.name, version, self.watch_seconds
            ):
                if self._stop.is_set():
                    return
                meta = obj.get("metadata") or {}
                version = (
                    meta.get("resourceVersion", version) if isinstance(meta, Mapping) else version
                )
                if kind in ("ADDED", "MODIFIED"):
                    self.apply(obj)
                elif kind == "DELETED":
                    self._fail(f"ConfigMap {self.namespace}/{self.name} was deleted")
                elif kind == "ERROR":
                    return  # e.g. 410 Gone: list again


class NamespaceReader(Protocol):
    def read_namespace_labels(self, namespace: str) -> Mapping[str, str] | None: ...


class NamespaceLabels:
    """Namespace labels for ``namespaceSelector`` matching, cached for ``ttl`` seconds.

    Without a reader (local runs) a namespace has only its ``kubernetes.io/metadata.name``
    label. When the API fails, a stale cached value is used; with none, the error propagates
    and the request fails closed.
    """

    def __init__(
        self,
        reader: NamespaceReader | None = None,
        *,
        ttl: float = 30.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._ttl = ttl
        self._clock = clock
        self.max_entries = max_entries
        # least recently used first; bounded: a review names any namespace it likes
        self._cache: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, namespace: str) -> Mapping[str, str] | None:
        """``labels`` when it would ask nothing of the API server, else None."""
        if self._reader is None:
            return {NAME_LABEL: namespace}
        with self._lock:
            cached = self._cache.get(namespace)
        return cached[1] if cached is not None and cached[0] > self._clock() else None

    def labels(self, namespace: str) -> Mapping[str, str]:
        base = {NAME_LABEL: namespace}
        if self._reader is None:
            return base
        now = self._clock()
        with self._lock:
            cached = self._cache.get(namespace)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            found = self._reader.read_namespace_labels(namespace)
        except Exception:
            if cached is not None:
                log.warning("namespace %s labels: API unavailable, using cached labels", namespace)
                return cached[1]
            raise
        labels = {**dict(found or {}), **base}
        with self._lock:
            self._cache[namespace] = (now + self._ttl, labels)
            self._cache.move_to_end(namespace)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return labels
