"""Whether an object is exactly what its owner's admitted template asked for, asked of the API.

Controllers create ReplicaSets and Pods from templates the webhook has already judged: when the
Deployment was admitted, its images were. Judging the children again would refuse them once a
policy tightens (a scale, a restart or a rescheduled Pod would break a running workload), and an
AccountabilityException naming the Deployment would admit it but none of its Pods. So a child
whose controller owner checks out is admitted on the owner's admission.

The child's own claims prove nothing: whoever creates a Pod writes its ``ownerReferences``. So
this module asks the API server, never the child: the owner the child names exists, has the UID
the child names, is a kind that creates the child's kind, and its template runs exactly the
child's images (the same set). Only then is the child what was judged when the owner was
admitted; anything else (no owner, another kind, an API error, a slow API server) returns None
and the child is judged like any object (fail closed). A forged reference to an admitted
Deployment with another image is judged; a ReplicaSet with the Deployment's images is fine,
because those images were judged.

Owner snapshots are cached (bounded in entries and time); a snapshot that does not match the
child is read again once, so a cached old template never refuses a new child. Reads run in a
small pool of their own with a timeout, so a slow API server costs a request at most the time it
is given and never holds the evidence lookups' workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

from affidavit.admission.review import MalformedReview
from affidavit.admission.workloads import extract_images
from affidavit.errors import AffidavitError

log = logging.getLogger("affidavit.admission")

#: Which owner kinds (API group, kind) create which child kinds: the built-in controllers.
CREATORS: Mapping[str, frozenset[tuple[str, str]]] = {
    "Pod": frozenset(
        {
            ("apps", "ReplicaSet"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("", "ReplicationController"),
        }
    ),
    "ReplicaSet": frozenset({("apps", "Deployment")}),
    "Job": frozenset({("batch", "CronJob")}),
}


class OwnerReader(Protocol):
    def read_owner(
        self, group: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        """The owner object as JSON, or None when it does not exist (404)."""
        ...


@dataclass(frozen=True)
class OwnerRef:
    """The controller reference a child claims (unverified)."""

    group: str
    kind: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} (uid {self.uid})"


@dataclass(frozen=True)
class _Snapshot:
    uid: str
    images: frozenset[str]


def controller_ref(kind: str, obj: Mapping[str, Any]) -> OwnerRef | None:
    """The child's controller ownerReference, when it names a kind that creates ``kind``."""
    creators = CREATORS.get(kind)
    meta = obj.get("metadata")
    if creators is None or not isinstance(meta, Mapping):
        return None
    refs = meta.get("ownerReferences")
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if not isinstance(ref, Mapping) or ref.get("controller") is not True:
            continue
        api_version, ref_kind = ref.get("apiVersion"), ref.get("kind")
        name, uid = ref.get("name"), ref.get("uid")
        if not all(isinstance(v, str) and v for v in (api_version, ref_kind, name, uid)):
            return None
        assert isinstance(api_version, str)
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        if (group, ref_kind) not in creators:
            return None
        return OwnerRef(group, str(ref_kind), str(name), str(uid))
    return None


class OwnerChain:
    """Verifies a child against its controller owner on the API server, with a bounded cache."""

    def __init__(
        self,
        reader: OwnerReader,
        *,
        ttl: float = 30.0,
        max_entries: int = 1024,
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str, str, str], tuple[float, _Snapshot]] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(workers)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="affidavit-owners")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def verify(
        self,
        kind: str,
        namespace: str,
        obj: Mapping[str, Any],
        images: tuple[str, ...],
        *,
        timeout: float,
    ) -> OwnerRef | None:
        """The verified owner of ``obj`` (a ``kind`` in ``namespace`` running ``images``), or None.

        None means "not shown to be an admitted template's child": judge it. That includes an
        API server that does not answer within ``timeout`` seconds, or all reads busy.
        """
        ref = controller_ref(kind, obj)
        if ref is None or not images or timeout <= 0:
            return None
        if not self._slots.acquire(blocking=False):
            log.warning("owner check of %s in %s skipped: all reads busy", ref, namespace)
            return None
        try:
            job = self._pool.submit(self._verify, ref, namespace, frozenset(images))
        except RuntimeError:  # shut down
            self._slots.release()
            return None
        job.add_done_callback(lambda _job: self._slots.release())
        try:
            return ref if job.result(timeout=timeout) else None
        except FutureTimeout:
            log.warning("owner check of %s in %s timed out after %gs", ref, namespace, timeout)
        except AffidavitError as e:  # the API said no: judge the child
            log.warning("owner check of %s in %s failed: %s", ref, namespace, e.message)
        except Exception as e:  # the API broke: judge the child
            log.warning(
                "owner check of %s in %s failed: %s: %s", ref, namespace, type(e).__name__, e
            )
        return None

    def _verify(self, ref: OwnerRef, namespace: str, images: frozenset[str]) -> bool:
        key = (ref.group, ref.kind, namespace, ref.name)
        cached = self._cached(key)
        if cached is not None and _matches(cached, ref, images):
            return True
        fresh = self._read(key)
        return fresh is not None and _matches(fresh, ref, images)

    def _cached(self, key: tuple[str, str, str, str]) -> _Snapshot | None:
        now = self._clock()
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._cache[key]
                return None
            self._cache.move_to_end(key)
            return entry[1]

    def _read(self, key: tuple[str, str, str, str]) -> _Snapshot | None:
        group, kind, namespace, name = key
        obj = self._reader.read_owner(group, kind, namespace, name)
        if obj is None:
            with self._lock:
                self._cache.pop(key, None)
            return None
        meta = obj.get("metadata")
        uid = meta.get("uid") if isinstance(meta, Mapping) else None
        if not isinstance(uid, str) or not uid:
            return None
        try:
            owned = extract_images(kind, obj)
        except MalformedReview:
            return None
        snapshot = _Snapshot(uid, frozenset(owned.images))
        with self._lock:
            self._cache[key] = (self._clock() + self._ttl, snapshot)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return snapshot


def _matches(owner: _Snapshot, ref: OwnerRef, images: frozenset[str]) -> bool:
    return owner.uid == ref.uid and owner.images == images
