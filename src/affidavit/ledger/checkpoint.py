"""Signed checkpoints of the ledger head, published outside the database.

The hash chain alone proves nothing to an auditor if the attacker can write the database: they
can rewrite a row and recompute every later hash, or cut the tail and move the head back. So the
writer signs ``(size, head hash)`` with a ledger key the database never sees, in the C2SP
signed-note checkpoint format (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note)::

    <origin>
    <tree size>
    <base64 of the 32-byte head hash>

    — <key name> <base64(4-byte key id || Ed25519 signature)>

and publishes each note to a trail (a directory: one file per checkpoint) that the database
credentials cannot reach. A verifier with the public key checks the rows against every signed
size: a row whose hash differs from the signed one means history was rewritten; a head below a
signed size means the tail was truncated and the head rewound.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from affidavit.errors import KeyMaterialError, LedgerError, UsageError

log = logging.getLogger("affidavit.ledger")

DEFAULT_ORIGIN = "affidavit.dev/ledger"
#: Signature lines start with an em dash and a space (signed-note spec).
_DASH = "\u2014 "
_ED25519_ALG = b"\x01"
_PREFIX = "checkpoint."


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the ledger at ``origin`` had ``size`` decisions, head ``head_hash``"."""

    origin: str
    size: int
    head_hash: str  # lowercase hex, as stored in the ledger
    source: str = ""  # where it was read from (a file path), for messages

    def body(self) -> str:
        raw = bytes.fromhex(self.head_hash)
        return f"{self.origin}\n{self.size}\n{base64.b64encode(raw).decode()}\n"


def key_id(name: str, public: ed25519.Ed25519PublicKey) -> bytes:
    """The signed-note key id: first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519_ALG + raw).digest()[:4]


def load_private_key(path: Path) -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise KeyMaterialError(f"cannot read ledger key {path}: {e.strerror or e}") from e
    except (ValueError, TypeError) as e:
        raise KeyMaterialError(
            f"ledger key {path} is not an unencrypted PEM private key: {e}",
            hint="make one with `affidavit keygen --ledger-key`",
        ) from e
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyMaterialError(
            f"ledger key {path} is not an Ed25519 key",
            hint="make one with `affidavit keygen --ledger-key`",
        )
    return key


def load_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as e:
        raise KeyMaterialError(f"cannot read ledger public key {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise KeyMaterialError(f"ledger public key {path} is not a PEM public key: {e}") from e
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise KeyMaterialError(f"ledger public key {path} is not an Ed25519 key")
    return key


def sign_checkpoint(cp: Checkpoint, key: ed25519.Ed25519PrivateKey, key_name: str) -> str:
    """The signed note: the checkpoint body, a blank line, one signature line."""
    body = cp.body()
    blob = key_id(key_name, key.public_key()) + key.sign(body.encode())
    return f"{body}\n{_DASH}{key_name} {base64.b64encode(blob).decode()}\n"


def open_checkpoint(text: str, public: ed25519.Ed25519PublicKey, source: str) -> Checkpoint:
    """Parse a signed note and verify its signature; raise ``LedgerError`` naming the fault."""
    body, sep, sigs = text.partition("\n\n")
    lines = body.split("\n")
    if not sep or len(lines) < 3:
        raise LedgerError(f"checkpoint {source} is not a signed note (origin, size, hash, sigs)")
    origin, size_text, hash_b64 = lines[0], lines[1], lines[2]
    try:
        size = int(size_text)
        raw = base64.b64decode(hash_b64, validate=True)
    except (ValueError, binascii.Error) as e:
        raise LedgerError(f"checkpoint {source} has a malformed size or hash: {e}") from e
    if size < 0 or len(raw) != 32 or size_text != str(size):
        raise LedgerError(f"checkpoint {source} has a malformed size or hash")
    signed = (body + "\n").encode()
    for line in sigs.splitlines():
        if not line.startswith(_DASH):
            continue
        name, _, blob_b64 = line[len(_DASH) :].rpartition(" ")
        try:
            blob = base64.b64decode(blob_b64, validate=True)
        except binascii.Error:
            continue
        if len(blob) != 68 or blob[:4] != key_id(name, public):
            continue
        try:
            public.verify(blob[4:], signed)
        except InvalidSignature:
            raise LedgerError(
                f"checkpoint {source} (size {size}): its signature does not verify with the "
                "ledger public key (the checkpoint was forged or altered)"
            ) from None
        return Checkpoint(origin, size, raw.hex(), source)
    raise LedgerError(
        f"checkpoint {source} (size {size}) carries no signature by the ledger public key"
    )


class Publisher(Protocol):
    """Somewhere a signed checkpoint is published (a directory, a ConfigMap)."""

    def publish(self, size: int, note: str) -> object: ...

    def notes(self) -> list[tuple[str, str]]:
        """``(source, note)`` of the checkpoints published there (none if it cannot be read)."""
        ...


def checkpoint_key(size: int) -> str:
    """The file name / ConfigMap key of the checkpoint at ``size`` (sorts by size)."""
    return f"{_PREFIX}{size:016d}"


class CheckpointTrail:
    """A directory of checkpoint notes, one file per size (``checkpoint.<size>``).

    ``read`` also takes a file holding a ConfigMap trail as ``kubectl get configmap NAME -o
    yaml`` prints it, so an auditor checks the cluster's trail offline.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def publish(self, size: int, note: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / checkpoint_key(size)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(note, encoding="utf-8")
        os.replace(tmp, path)
        return path

    def notes(self) -> list[tuple[str, str]]:
        """``(path, note)`` of every checkpoint file of the directory (none if there is none)."""
        if not self.directory.is_dir():
            return []
        return [(str(p), _note_text(p)) for p in sorted(self.directory.glob(_PREFIX + "*"))]

    def read(self, public: ed25519.Ed25519PublicKey) -> list[Checkpoint]:
        """Every checkpoint in the trail, verified, oldest first; a bad one raises."""
        if self.directory.is_file():
            notes = _config_map_notes(self.directory)
        elif self.directory.is_dir():
            notes = self.notes()
        else:
            raise LedgerError(
                f"checkpoint directory {self.directory} does not exist",
                hint="pass the directory the webhook publishes to (--checkpoint-dir)",
            )
        out = [open_checkpoint(text, public, source) for source, text in notes]
        return sorted(out, key=lambda c: c.size)


def _note_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise LedgerError(
            f"checkpoint {path} cannot be read as a signed note: {reason}",
            hint="a checkpoint file is the webhook's signed text; move aside what is not one",
        ) from e


def _config_map_notes(path: Path) -> list[tuple[str, str]]:
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise LedgerError(f"cannot read the checkpoint ConfigMap {path}: {e}") from e
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise LedgerError(f"{path} is not a ConfigMap of checkpoints (no data)")
    return [
        (f"{path}:{key}", str(text))
        for key, text in sorted(data.items())
        if str(key).startswith(_PREFIX)
    ]


class Checkpointer:
    """Signs the head every ``every`` decisions and every ``interval`` seconds, to a trail.

    It signs only a head that continues what it signed last: the newest checkpoint of its trail
    or its mirrors (read at start, so a restart forgets nothing), whose row must still have the
    signed hash (``hash_at``, the ledger's). A database whose history was rewritten, cut short,
    or restored to an earlier point would otherwise get its new history signed, and the
    checkpoints that caught the rewrite would be outnumbered (the ConfigMap keeps the newest)
    or overwritten (a new note at a size already signed). Then nothing is signed, ``problem``
    says why (logged as an error), and decisions are still recorded: an operator checks the
    chain (``affidavit decisions verify-chain``) and, for a restore they made, moves the old
    trail aside.

    Mirrors (the ConfigMap) are published from a thread of their own: a slow or failing API
    server never holds a decision's write, and its errors are logged, never raised.
    """

    def __init__(
        self,
        key: ed25519.Ed25519PrivateKey,
        trail: CheckpointTrail,
        *,
        origin: str = DEFAULT_ORIGIN,
        every: int = 1000,
        interval: float = 60.0,
        mirrors: Sequence[Publisher] = (),
    ) -> None:
        if every < 1 or interval <= 0:
            raise ValueError("checkpoint every/interval must be positive")
        self.key, self.trail, self.origin, self.mirrors = key, trail, origin, tuple(mirrors)
        self.every, self.interval = every, interval
        self.last_size = -1
        self._last_at = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: The hash of the ledger row at a seq (the ledger binds it: ``Ledger``); None: unbound.
        self.hash_at: Callable[[int], str | None] | None = None
        #: Why no checkpoint is signed now (history does not continue the signed one), or None.
        self.problem: str | None = None
        self.signed: Checkpoint | None = self._newest_signed()
        self._mirroring = ThreadPoolExecutor(1, thread_name_prefix="ledger-checkpoint-mirror")

    def _newest_signed(self) -> Checkpoint | None:
        """The newest checkpoint of this origin by this key in the trail and its mirrors."""
        public = self.key.public_key()
        newest: Checkpoint | None = None
        for place in (self.trail, *self.mirrors):
            try:
                notes = place.notes()
            except Exception as e:  # unreadable: what it holds cannot be compared
                log.warning("cannot read the checkpoints published to %s: %s", place, e)
                continue
            for source, text in notes:
                try:
                    found = open_checkpoint(text, public, source)
                except LedgerError:  # another key's (rotated) or damaged: not ours to continue
                    continue
                if found.origin == self.origin and (newest is None or found.size > newest.size):
                    newest = found
        return newest

    def _breaks_signed(self, size: int, head_hash: str) -> str | None:
        """Why ``(size, head_hash)`` does not continue the newest signed checkpoint, or None."""
        signed = self.signed
        if signed is None:
            return None
        if size < signed.size:
            return (
                f"the ledger's head is decision {size}, below the signed checkpoint at "
                f"{signed.size}: decisions were removed, or the database was restored to an "
                "earlier point"
            )
        if size == signed.size:
            found: str | None = head_hash
        elif self.hash_at is None:
            return None
        else:
            found = self.hash_at(signed.size)
        if found != signed.head_hash:
            return (
                f"decision {signed.size} of the ledger no longer has the hash its signed "
                f"checkpoint holds: history up to it was rewritten, or the database is not the "
                "one the checkpoints were signed for"
            )
        return None

    def checkpoint(self, size: int, head_hash: str) -> Path | None:
        """Sign and publish ``(size, head_hash)`` unless a checkpoint at that size exists, or
        the head does not continue the newest signed checkpoint (``problem``)."""
        with self._lock:
            if size <= self.last_size:
                return None
            problem = self._breaks_signed(size, head_hash)
            if problem is not None:
                if problem != self.problem:
                    log.error(
                        "ledger checkpoints stopped: %s; check the chain with `affidavit "
                        "decisions verify-chain`",
                        problem,
                    )
                self.problem, self._last_at = problem, time.monotonic()
                return None
            self.problem = None
            if self.signed is not None and size == self.signed.size:  # signed before a restart
                self.last_size, self._last_at = size, time.monotonic()
                return None
            note = sign_checkpoint(Checkpoint(self.origin, size, head_hash), self.key, self.origin)
            path = self.trail.publish(size, note)
            self.signed = Checkpoint(self.origin, size, head_hash, str(path))
            self.last_size, self._last_at = size, time.monotonic()
            for mirror in self.mirrors:
                with contextlib.suppress(RuntimeError):  # stopped: the next start publishes
                    self._mirroring.submit(self._mirror, mirror, size, note)
            return path

    @staticmethod
    def _mirror(mirror: Publisher, size: int, note: str) -> None:
        try:
            mirror.publish(size, note)
        except Exception as e:  # a mirror never fails a decision; the next checkpoint tries
            log.warning("cannot publish ledger checkpoint %d to %s: %s", size, mirror, e)

    def observe(self, size: int, head_hash: str) -> Path | None:
        """Called after each append: checkpoint when ``every`` rows or ``interval`` s passed."""
        due = (
            size // self.every > max(self.last_size, 0) // self.every
            or time.monotonic() - self._last_at >= self.interval
        )
        return self.checkpoint(size, head_hash) if due else None

    def start(self, head: Callable[[], tuple[int, str]]) -> threading.Thread:
        """A daemon thread that checkpoints the head every ``interval`` seconds."""

        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(*head())
                except Exception as e:  # the timer keeps going: the next tick tries again
                    log.warning("ledger checkpoint failed: %s", getattr(e, "message", None) or e)

        thread = threading.Thread(target=loop, name="ledger-checkpoints", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self._mirroring.shutdown(wait=False)

    def wait_for_mirrors(self) -> None:
        """Until every mirror publish submitted so far has run (tests; a clean stop)."""
        self._mirroring.submit(lambda: None).result()


def load_checkpoints(public_key: Path | None, directory: Path | None) -> list[Checkpoint]:
    """The verified checkpoints of a trail for ``--ledger-public-key`` and ``--checkpoints``."""
    if public_key is None and directory is None:
        return []
    if public_key is None or directory is None:
        raise UsageError(
            "--ledger-public-key and --checkpoints go together",
            hint="pass the ledger's public key and the directory its checkpoints are published to",
        )
    return CheckpointTrail(directory).read(load_public_key(public_key))
