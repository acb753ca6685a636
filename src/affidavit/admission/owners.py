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

A controller's Pod is pinned (``affidavit.admission.pin``): it runs ``X:T@sha256:D`` where the
template says ``X:T``. Such an image matches the template's ``X:T`` only when the ledger shows
``D`` was judged and admitted for ``X:T`` in the namespace (``JudgedDigests``); a digest the tag
moved to later was not, so that Pod is judged. A decision that admitted ``D`` despite
violations (an AccountabilityException, Warn or Audit mode) counts only for the workload it was
about: the owner, or the owner's own controller (a ReplicaSet's Deployment) once the API server
confirms it like an owner. Images that are not pinned compare exactly.

A Pod may run more than its template: a service mesh's injector (Istio, Linkerd) adds its proxy
and init containers, ``kubectl debug`` an ephemeral one. Judging such a Pod whole refused every
new replica of an admitted workload once a policy tightened (the template's images no longer
pass), so a scale or a restart broke a meshed workload. Such a Pod matches with ``extras``: the
template's images (all of them, as written or pinned to a judged digest) are its owner's, and
only the images the template does not run are judged. Other kinds (a ReplicaSet, a Job) must
run exactly their owner's images: no controller adds to a template.

A StatefulSet's Pods are not all made from its template: during a rollout, and below a
partition, the controller makes them from the revision ``status.currentRevision`` names (a
ControllerRevision). A Pod that matches that revision, read from the API server and owned by the
same StatefulSet, is the StatefulSet's too (its pins confirmed the same way).

Owner snapshots are cached (bounded in entries and time); a snapshot that does not match the
child is read again once, so a cached old template never refuses a new child. Reads run in a
small pool of their own with a timeout, so a slow API server costs a request at most the time it
is given and never holds the evidence lookups' workers.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any, Protocol

from affidavit import defaults
from affidavit.admission.judged import JudgedDigests
from affidavit.admission.review import MalformedReview
from affidavit.admission.workloads import extract_images
from affidavit.errors import AffidavitError
from affidavit.kubeconfig import CREATORS
from affidavit.printable import printable

log = logging.getLogger("affidavit.admission")

#: How an owner check of a child with a controller ends: its owner's child (``owners``), not
#: shown to be (``not-owners``: another template, another UID, no such owner), or given up:
#: the API server past the check's time (``timeout``), every read busy (``busy``), or an API
#: error (``error``). Each but ``owners`` leaves the child judged on its own.
OUTCOMES = ("owners", "not-owners", "timeout", "busy", "error")

#: ``NAME[:TAG]@sha256:<hex>``, as the pinning webhook writes a tag it pinned.
_PINNED = re.compile(r"^(?P<name>[^@]+)@(?P<digest>sha256:[0-9a-f]{64})$")


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
class OwnerMatch:
    """A child shown to run its verified owner's images, and the images it runs beyond them
    (only a Pod may: a mesh's proxy, a debug container), which are judged on their own.

    ``confirmed`` False: the owner checks out (it exists with the child's UID, its template
    runs the child's images) but a digest its tag is pinned to is not shown admitted (no
    ledger, a ledger that cannot answer, or a digest the tag moved to). The child is judged,
    and ``lineage`` names the workloads the API server shows it belongs to (its owner, and that
    owner's verified controller), so an AccountabilityException naming one reaches it."""

    owner: OwnerRef
    extras: tuple[str, ...] = ()
    confirmed: bool = True
    lineage: tuple[tuple[str, str], ...] = ()


#: The child kinds that may run images beyond their owner's template (injected, not templated).
EXTRAS_KINDS = frozenset({"Pod"})


@dataclass(frozen=True)
class _Snapshot:
    uid: str
    images: frozenset[str]
    #: The owner's own controller reference, as the API server keeps the owner (a claim until
    #: checked): a ReplicaSet's Deployment, a Job's CronJob.
    controller: OwnerRef | None = None
    #: A StatefulSet's images at its current revision, while a rollout or a partition keeps
    #: Pods there (``_current_revision``); None when every Pod is made from the template.
    current: frozenset[str] | None = None


def shown(ref: object) -> str:
    """An owner reference for the log: its name is the object's author's, not checked as a
    name by the API server (a newline in it would begin a log line of their choosing)."""
    return printable(str(ref)[:300])


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
        judged: JudgedDigests | None = None,
        check_seconds: float = defaults.OWNER_CHECK_SECONDS,
    ) -> None:
        self._reader = reader
        #: How long a review waits for an owner at most (``Webhook`` also keeps it within half
        #: the remaining budget).
        self.check_seconds = check_seconds
        self._judged = judged  # None: a pinned child never matches a template's tag
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
        outcome: Callable[[str], None] | None = None,
    ) -> OwnerRef | None:
        """The verified owner of ``obj`` (a ``kind`` in ``namespace`` running exactly its
        owner's ``images``), or None: judge it."""
        found = self.match(kind, namespace, obj, images, timeout=timeout, outcome=outcome)
        return found.owner if found is not None and found.confirmed and not found.extras else None

    def match(
        self,
        kind: str,
        namespace: str,
        obj: Mapping[str, Any],
        images: tuple[str, ...],
        *,
        timeout: float,
        outcome: Callable[[str], None] | None = None,
    ) -> OwnerMatch | None:
        """The verified owner of ``obj`` (a ``kind`` in ``namespace`` running ``images``) and the
        images beyond its owner's (a Pod's only), or None.

        None means "not shown to be an admitted template's child": judge it. That includes an
        API server that does not answer within ``timeout`` seconds, or all reads busy.
        ``outcome`` hears how a check of a child with a controller ended (one of
        :data:`OUTCOMES`), so an operator sees checks that gave up, not only their log lines.
        """
        ref = controller_ref(kind, obj)
        if ref is None or not images or timeout <= 0:
            return None
        said = outcome or (lambda _result: None)
        # A slot is waited for within the check's time, not given up on at once: a controller
        # makes its Pods in bursts (1, 2, 4, ... 500 at a time), and a Pod whose check was
        # skipped was judged whole, without its owner's lineage: a scale-up after a policy
        # tightened, or of a workload an exception names, was refused Pod by Pod.
        deadline = time.monotonic() + timeout
        if not self._slots.acquire(timeout=timeout):
            log.warning("owner check of %s in %s skipped: all reads busy", shown(ref), namespace)
            said("busy")
            return None
        try:
            job = self._pool.submit(
                self._verify, ref, namespace, frozenset(images), kind in EXTRAS_KINDS
            )
        except RuntimeError:  # shut down
            self._slots.release()
            said("error")
            return None
        job.add_done_callback(lambda _job: self._slots.release())
        try:
            found = job.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            log.warning(
                "owner check of %s in %s timed out after %gs", shown(ref), namespace, timeout
            )
            said("timeout")
        except AffidavitError as e:  # the API said no: judge the child
            log.warning(
                "owner check of %s in %s failed: %s", shown(ref), namespace, printable(e.message)
            )
            said("error")
        except Exception as e:  # the API broke: judge the child
            log.warning(
                "owner check of %s in %s failed: %s: %s",
                shown(ref),
                namespace,
                type(e).__name__,
                printable(str(e)),
            )
            said("error")
        else:
            if found is None or not found.confirmed:
                said("not-owners")
                return found
            said("owners")
            return replace(found, extras=tuple(image for image in images if image in found.extras))
        return None

    def _verify(
        self, ref: OwnerRef, namespace: str, images: frozenset[str], extras_allowed: bool
    ) -> OwnerMatch | None:
        """The match (its ``extras`` as a set of the images beyond the owner's), one whose
        pins are not confirmed (``confirmed`` False, with its ``lineage``), or None: not the
        owner's child."""
        key = (ref.group, ref.kind, namespace, ref.name)
        cached = self._cached(key)
        found = _matches(cached, ref, images, extras_allowed) if cached is not None else None
        fresh = None
        if found is None:
            fresh = self._read(key)
            found = _matches(fresh, ref, images, extras_allowed) if fresh is not None else None
        if found is None:
            return None
        pins, extras = found
        matched = OwnerMatch(ref, tuple(extras))
        if not pins:
            return matched
        owner = fresh or cached
        assert owner is not None
        workloads = [(ref.kind, ref.name)]
        judged = self._judged

        def admitted() -> bool:
            return judged is not None and all(
                judged.admitted(namespace, *p, workloads=workloads) for p in pins
            )

        if admitted():
            return matched
        # A lenient decision (an exception, Warn, Audit) may be about the owner's own controller
        # (a ReplicaSet's Deployment): it counts when that controller is the owner's as the API
        # server says (same UID, the same images in its template), never on the owner's claim.
        above = self._controller(owner, namespace)
        if above is not None:
            workloads.append((above.kind, above.name))
            if admitted():
                return matched
        return replace(matched, confirmed=False, lineage=tuple(workloads))

    def _controller(self, owner: _Snapshot, namespace: str) -> OwnerRef | None:
        """The owner's own controller, verified like an owner: exists with the UID the owner
        names and runs the owner's images; None otherwise."""
        above = owner.controller
        if above is None:
            return None
        key = (above.group, above.kind, namespace, above.name)

        def confirms(found: _Snapshot | None) -> bool:
            return found is not None and found.uid == above.uid and found.images == owner.images

        return above if confirms(self._cached(key)) or confirms(self._read(key)) else None

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
        current = self._current_revision(obj, namespace, uid) if kind == "StatefulSet" else None
        snapshot = _Snapshot(uid, frozenset(owned.images), controller_ref(kind, obj), current)
        with self._lock:
            self._cache[key] = (self._clock() + self._ttl, snapshot)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return snapshot

    def _current_revision(
        self, obj: Mapping[str, Any], namespace: str, uid: str
    ) -> frozenset[str] | None:
        """The images of a StatefulSet's current revision where it is not its update revision.

        The StatefulSet controller makes a Pod below a rollout's partition, or not yet rolled,
        from the current revision's template, which ``spec.template`` no longer holds: without
        it such a Pod, recreated by a drain or a deletion, was judged alone, and refused once a
        policy had tightened. The revision is the one ``status.currentRevision`` names (status
        is the controller's to write, not the Pod's), read as a ControllerRevision whose
        controller is this StatefulSet (its UID): never a revision the child names, nor an older
        one of the history. None when there is none, or it cannot be read as such."""
        status = obj.get("status")
        if not isinstance(status, Mapping):
            return None
        name, update = status.get("currentRevision"), status.get("updateRevision")
        if not isinstance(name, str) or not name or name == update:
            return None
        try:
            revision = self._reader.read_owner("apps", "ControllerRevision", namespace, name)
        except Exception as e:  # the template still counts; the current revision cannot
            log.warning(
                "current revision %s of a StatefulSet in %s unread: %s: %s",
                printable(name[:300]),
                namespace,
                type(e).__name__,
                printable(str(getattr(e, "message", None) or e)),
            )
            return None
        if revision is None or controller_uid(revision) != uid:
            return None
        data = revision.get("data")
        try:
            images = extract_images("StatefulSet", data if isinstance(data, Mapping) else {})
        except MalformedReview:
            return None
        return frozenset(images.images)


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The UID of ``obj``'s controller ownerReference, as the API server keeps ``obj``."""
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            uid = ref.get("uid")
            return uid if isinstance(uid, str) else None
    return None


def _matches(
    owner: _Snapshot, ref: OwnerRef, images: frozenset[str], extras_allowed: bool = False
) -> tuple[list[tuple[str, str]], frozenset[str]] | None:
    """``_matches_template`` of the owner's template, or else of a StatefulSet's current
    revision (``OwnerChain._current_revision``)."""
    if owner.uid != ref.uid:
        return None
    found = _matches_template(owner.images, images, extras_allowed)
    if found is None and owner.current is not None:
        found = _matches_template(owner.current, images, extras_allowed)
        if found is not None:
            # A revision is no template anyone submitted: anyone who may create one (with
            # the StatefulSet as its controller) and write the StatefulSet's status could make
            # it current and run a digest never judged. Its digests count only where an
            # admission of this StatefulSet admitted them, as a pinned tag's do.
            pins, extras = found
            exact = [
                (image, pinned["digest"])
                for image in images
                if image in owner.current and (pinned := _PINNED.match(image)) is not None
            ]
            found = ([*pins, *exact], extras)
    return found


def _matches_template(
    template: frozenset[str], images: frozenset[str], extras_allowed: bool
) -> tuple[list[tuple[str, str]], frozenset[str]] | None:
    """None when ``images`` are not the owner's; else the ``(tag, digest)`` pins to confirm and
    the images beyond the owner's (empty unless ``extras_allowed``).

    An image is the owner's as written, or pinned (``X:T@sha256:D``) from a tag ``X:T`` of the
    owner's that the child does not also run as written; the pins are then confirmed against
    the ledger. The owner's images must all be accounted for: a child that drops one of them
    is not the template's.
    """
    pins: list[tuple[str, str]] = []
    owned: set[str] = set()
    extras: set[str] = set()
    for image in images:
        if image in template:
            owned.add(image)
        elif (pinned := _PINNED.match(image)) is not None and (name := pinned["name"]) in (
            template
        ):
            pins.append((name, pinned["digest"]))
            owned.add(name)
        elif extras_allowed:
            extras.add(image)
        else:
            return None
    return (pins, frozenset(extras)) if owned == template else None
