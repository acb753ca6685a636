"""Decision ids cut from a buffer of kernel randomness (``affidavit.ids``): what ``uuid4`` gave,
unique across refills, threads and a fork."""

from __future__ import annotations

import os
import threading
import uuid

from affidavit import ids


def test_an_id_is_a_version_4_uuid_in_text_form() -> None:
    text = ids.new_id()
    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122


def test_ids_stay_distinct_across_many_refills_of_the_buffer() -> None:
    n = 20 * (ids._CHUNK // 16)  # twenty buffers' worth
    made = [ids.new_id() for _ in range(n)]
    assert len(set(made)) == n


def test_threads_drawing_at_once_never_get_the_same_id() -> None:
    got: list[list[str]] = [[] for _ in range(8)]

    def draw(out: list[str]) -> None:
        out.extend(ids.new_id() for _ in range(2000))

    threads = [threading.Thread(target=draw, args=(out,)) for out in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in got for i in out]
    assert len(set(every)) == len(every) == 16_000


def test_a_forked_child_does_not_reuse_its_parents_buffer() -> None:
    ids.new_id()  # the buffer now holds bytes the next id would be cut from
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out
        try:
            os.write(write, ids.new_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    assert uuid.UUID(child).version == 4
    assert ids.new_id() != child  # without the at-fork reset both would cut the same 16 bytes
