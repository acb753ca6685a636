"""Decision ids: random (version 4) UUIDs cut from a buffer of the kernel's randomness.

Why not ``uuid.uuid4()``: it asks the kernel for 16 bytes on every call, and ``os.urandom``
releases the GIL around that system call. On the webhook's event loop every admission then gave
the GIL away, and whichever thread took it (the ledger's writer, back from its commit) kept it
until it blocked or its switch interval ran out: a lone call costs 0.5 µs, but beside a busy
thread the calls averaged 40–55 µs, with single waits of milliseconds. Here the kernel is asked
for 4 KiB at a time (256 ids a call); the bytes are the same CSPRNG output, so the ids are as
unpredictable and as unique as ``uuid4``'s, in the same format. A forked child never reuses its
parent's buffer.
"""

from __future__ import annotations

import os
import threading
import uuid

__all__ = ["new_id"]

_CHUNK = 4096
_lock = threading.Lock()
_buffer = b""
_used = 0


def _forget() -> None:
    global _buffer, _used
    _buffer, _used = b"", 0


os.register_at_fork(after_in_child=_forget)


def new_id() -> str:
    """A random version-4 UUID in its usual text form (``uuid.uuid4()``'s)."""
    global _buffer, _used
    with _lock:
        if _used + 16 > len(_buffer):
            _buffer, _used = os.urandom(_CHUNK), 0
        raw = _buffer[_used : _used + 16]
        _used += 16
    return str(uuid.UUID(bytes=raw, version=4))
