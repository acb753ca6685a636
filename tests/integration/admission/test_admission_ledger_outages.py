"""Ledger outages under a real `affidavit webhook serve`: the ledger's volume full, its write lock
held under load, PostgreSQL restarted, and the webhook SIGKILLed mid-load.

Each asserts the same three things (see ``fault_support``): every review is answered before the
apiserver's timeout (a little above the webhook's budget), every answered decision is in the
ledger once the fault is over, and the chain verifies. A full disk is real: the webhook runs in a
mount namespace of its own (``unshare --mount``; ``--map-root-user`` too when not root) where
the ledger's directory is a 2 MiB tmpfs, filled by the test (through ``/proc/PID/root``) until
the kernel says ENOSPC. SQLite resolves ``/proc/PID/root`` to ``/``, so the ledger there is read
(and locked) from inside the webhook's namespaces (``nsenter``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from admission_support import Images, Tls, WebhookProcess, review, start_webhook
from fault_support import BUDGET_ARGS, Apiserver, TimedOut, assert_all_recorded

from affidavit.envtest import wait_for
from affidavit.ledger import BUFFERED_NOTE, Ledger
from ledger_databases import PostgresServer


def _hook(
    tmp_path: Path,
    tls: Tls,
    images: Images,
    workdir: Path,
    *extra: str,
    wrap: list[str] | None = None,
) -> WebhookProcess:
    args = [
        "--policy-dir",
        str(workdir / "policies"),
        "--registry-allowed-host",
        images.host,
        *BUDGET_ARGS,
        *extra,
    ]
    return start_webhook(tmp_path, tls.ca.cert_pem, tls.cert, tls.key, args=args, wrap=wrap)


def _buffered(response: dict[str, Any]) -> bool:
    """Whether the answer says its decision was buffered (the ledger could not take it)."""
    decision = response["auditAnnotations"]["decision"]
    return bool(response.get("warnings", [""])[-1] == f"{BUFFERED_NOTE} (decision {decision})")


@contextlib.contextmanager
def _write_lock(db: Path) -> Iterator[None]:
    """Another process's view of the ledger: a connection holding SQLite's write lock."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


# -- a full volume ---------------------------------------------------------------------------


@pytest.fixture
def small_volume(tmp_path: Path) -> tuple[Path, list[str]]:
    """A directory, and the command prefix that runs a process with a 2 MiB tmpfs mounted on it."""
    volume = tmp_path / "volume"
    volume.mkdir()
    # Root needs no user namespace to mount, and one may be refused where a mount namespace is
    # not (user.max_user_namespaces=0 in some CI sandboxes); anyone else maps itself to root.
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    wrap = ["unshare", "--mount", *user, "--propagation", "private", "--", "sh", "-c",
            'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"', str(volume)]  # fmt: skip
    probe = subprocess.run([*wrap, "true"], capture_output=True, text=True, check=False)
    if shutil.which("unshare") is None or probe.returncode != 0:
        message = f"cannot mount a tmpfs in a mount namespace of its own: {probe.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return volume, wrap


def _fill(directory: Path) -> Path:
    """Write zeros into ``directory`` until its filesystem has no byte left."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


class VolumeView:
    """The webhook's tmpfs as the webhook sees it: files through ``/proc/PID/root``, the SQLite
    ledger through a Python inside its namespaces."""

    def __init__(self, pid: int, volume: Path) -> None:
        self.pid, self.volume = pid, volume
        self.files = Path(f"/proc/{pid}/root") / volume.relative_to("/")

    def _python(self, code: str, *args: str, **kw: object) -> list[str]:
        user = [] if os.geteuid() == 0 else ["--user", "--preserve-credentials"]  # as small_volume
        enter = ["nsenter", f"--target={self.pid}", *user, "--mount"]
        return [*enter, sys.executable, "-c", code, *args]

    def ledger(self) -> tuple[list[str], bool]:
        """The decision ids in chain order, and whether the chain verifies."""
        code = (
            "import json, sys\nfrom affidavit.ledger import Ledger\n"
            "ledger = Ledger(sys.argv[1], read_only=True)\n"
            "print(json.dumps([[r.id for r in ledger.iter_all()], ledger.verify_chain().ok]))"
        )
        argv = self._python(code, f"sqlite:///{self.volume / 'ledger.db'}")
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        ids, ok = json.loads(out)
        return ids, ok

    def assert_all_recorded(self, answered: list[str]) -> None:
        wait_for(lambda: len(self.ledger()[0]) >= len(answered), "the answered decisions")
        assert self.ledger() == (answered, True)

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        code = (
            "import sqlite3, sys\nconn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "conn.execute('BEGIN EXCLUSIVE')\nprint('held', flush=True)\nsys.stdin.read()\n"
            "conn.execute('ROLLBACK')"
        )
        argv = self._python(code, str(self.volume / "ledger.db"))
        holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdin is not None
        try:
            assert holder.stdout.readline() == "held\n"
            yield
        finally:
            holder.stdin.close()
            holder.wait(30)


def test_a_full_ledger_volume_buffers_on_another_and_flushes_once_freed(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path, small_volume: tuple[Path, list[str]]
) -> None:
    volume, wrap = small_volume
    buffer = tmp_path / "buffer.jsonl"
    ledger_arg = f"sqlite:///{volume / 'ledger.db'}"
    hook = _hook(tmp_path, tls, images, workdir, "--ledger", ledger_arg,
                 "--ledger-buffer-file", str(buffer), wrap=wrap)  # fmt: skip
    seen = VolumeView(hook.proc.pid, volume)
    api = Apiserver(hook, tmp_path / "ca.pem")
    try:
        assert "warnings" not in api.send(review(images.good, uid="before"))
        filler = _fill(seen.files)
        for i in range(4):
            response = api.send(review(images.good if i % 2 else images.bare, uid=f"full-{i}"))
            assert response["allowed"] is (i % 2 == 1)
            assert _buffered(response)
        assert len(buffer.read_bytes().splitlines()) == 4
        filler.unlink()
        seen.assert_all_recorded(api.answered)
        wait_for(lambda: buffer.read_bytes() == b"", "the buffer file to be truncated")
        assert "warnings" not in api.send(review(images.good, uid="after"))
        seen.assert_all_recorded(api.answered)
    finally:
        api.close()
        hook.stop()


def test_a_full_volume_shared_with_the_buffer_fails_closed_and_keeps_no_refused_decision(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path, small_volume: tuple[Path, list[str]]
) -> None:
    volume, wrap = small_volume
    hook = _hook(tmp_path, tls, images, workdir, "--ledger",
                 f"sqlite:///{volume / 'ledger.db'}", wrap=wrap)  # fmt: skip
    seen = VolumeView(hook.proc.pid, volume)
    api = Apiserver(hook, tmp_path / "ca.pem")
    try:
        assert "warnings" not in api.send(review(images.good, uid="before"))
        filler = _fill(seen.files)
        refused = api.send(review(images.good, uid="full"))
        assert refused == {
            "uid": "full",
            "allowed": False,
            "status": {
                "code": 403,
                "message": f"ledger unavailable and its buffer file {volume}/ledger.db-buffer.jsonl "
                "cannot be written: No space left on device; denied because the decision cannot "
                "be recorded",
                "reason": "Forbidden",
            },
        }
        assert hook.metric("affidavit_ledger_write_failures_total") == 1  # what alerts fire on
        filler.unlink()
        # Buffered again (the ledger locked): the file holds that decision, not the refused one.
        with seen.write_lock():
            locked = api.send(review(images.good, uid="locked"))
            assert _buffered(locked)
            lines = (seen.files / "ledger.db-buffer.jsonl").read_bytes().splitlines()
            assert [json.loads(line)["id"] for line in lines] == [api.answered[-1]]
        seen.assert_all_recorded(api.answered)
    finally:
        api.close()
        hook.stop()


# -- a held lock, PostgreSQL restarted, a SIGKILL ---------------------------------------------


class Load:
    """``threads`` clients sending reviews back to back until stopped or the webhook dies."""

    def __init__(self, api: Apiserver, image: str, threads: int = 4) -> None:
        self.api, self.image = api, image
        self.stop = threading.Event()
        self.timeouts: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, t: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                self.api.send(review(self.image, uid=f"load-{t}-{n}"))
            except TimedOut as e:
                self.timeouts.append(str(e))
            except httpx.TransportError:
                return  # the webhook was killed: this review was never answered

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def test_a_write_lock_held_past_the_apiserver_timeout_never_holds_up_an_answer(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path
) -> None:
    db = tmp_path / "ledger.db"
    hook = _hook(tmp_path, tls, images, workdir, "--ledger", f"sqlite:///{db}")
    api = Apiserver(hook, tmp_path / "ca.pem")
    try:
        api.send(review(images.good, uid="before"))
        with _write_lock(db):
            load = Load(api, images.good)
            wait_for(lambda: api.answers >= 30, "30 answers while the lock is held")
            load.join()
        assert load.timeouts == []
        assert_all_recorded(Ledger(f"sqlite:///{db}"), api.answered, in_order=False)
    finally:
        api.close()
        hook.stop()


def test_a_restarted_postgresql_gets_the_backlog_then_every_decision_directly(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path, postgres_server: PostgresServer
) -> None:
    postgres = postgres_server
    hook = _hook(tmp_path, tls, images, workdir, "--ledger", postgres.url,
                 "--ledger-buffer-file", str(tmp_path / "buffer.jsonl"))  # fmt: skip
    api = Apiserver(hook, tmp_path / "ca.pem")
    ledger = Ledger(postgres.url)
    try:
        assert "warnings" not in api.send(review(images.good, uid="before"))
        postgres.stop()
        for i in range(4):
            assert _buffered(api.send(review(images.good, uid=f"down-{i}")))
        postgres.start()
        assert_all_recorded(ledger, api.answered)
        # the last row can be in before the flusher takes it off its list: until the buffer
        # file is truncated, a new decision still queues behind the backlog
        buffer = tmp_path / "buffer.jsonl"
        wait_for(lambda: buffer.read_bytes() == b"", "the buffer file to be truncated")
        for i in range(3):
            assert "warnings" not in api.send(review(images.good, uid=f"after-{i}"))
        assert_all_recorded(ledger, api.answered)
    finally:
        ledger.close()
        api.close()
        hook.stop()


def test_a_webhook_killed_mid_load_loses_no_answered_decision(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path
) -> None:
    db = tmp_path / "ledger.db"
    args = ("--ledger", f"sqlite:///{db}")  # the buffer file beside it: ledger.db-buffer.jsonl
    hook = _hook(tmp_path, tls, images, workdir, *args)
    api = Apiserver(hook, tmp_path / "ca.pem")
    load = Load(api, images.good)
    try:
        wait_for(lambda: api.answers >= 20, "20 answers stored")
        with _write_lock(db):  # the next ones go to the buffer file
            start = api.answers
            wait_for(lambda: api.answers >= start + 20, "20 answers buffered")
            hook.proc.kill()  # SIGKILL mid-load: no shutdown, no flush
            hook.proc.wait()
        load.join()
    finally:
        load.join()
        api.close()
        hook.client.close()
    assert load.timeouts == []
    assert Path(f"{db}-buffer.jsonl").read_bytes() != b""
    hook = _hook(tmp_path, tls, images, workdir, *args)
    try:
        ledger = Ledger(f"sqlite:///{db}")
        wait_for(lambda: ledger.count() >= len(api.answered), "the replayed buffer")
        recorded = [r.id for r in ledger.iter_all()]
        assert set(api.answered) <= set(recorded)
        # recorded but never answered: at most the reviews in flight when the webhook died
        assert len(recorded) - len(api.answered) <= len(load.threads)
        print(f"killed mid-load: {len(api.answered)} answered, all recorded "
              f"({len(recorded)} rows: {len(recorded) - len(api.answered)} in flight at the kill)")  # fmt: skip
        assert ledger.verify_chain().ok
        wait_for(lambda: Path(f"{db}-buffer.jsonl").read_bytes() == b"", "the buffer flushed")
    finally:
        hook.stop()


def test_decisions_still_buffered_at_shutdown_are_named_and_replayed_by_the_next_start(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path, postgres_server: PostgresServer
) -> None:
    """A drain or an upgrade while the database is away: the webhook stops with answered
    decisions buffered. It says how many and where they wait (lost with an emptyDir), and a
    webhook started on the same buffer file writes them once the database is back."""
    postgres = postgres_server
    buffer = tmp_path / "buffer.jsonl"
    args = ("--ledger", postgres.url, "--ledger-buffer-file", str(buffer))
    hook = _hook(tmp_path, tls, images, workdir, *args)
    api = Apiserver(hook, tmp_path / "ca.pem")
    try:
        postgres.stop()
        for i in range(2):
            assert _buffered(api.send(review(images.good, uid=f"draining-{i}")))
    finally:
        api.close()
        hook.stop()
    log = hook.log.read_text()
    assert "2 answered decision(s) not in the ledger at shutdown" in log
    assert f"they stay in {buffer} for the next start on this volume" in log
    postgres.start()
    (tmp_path / "again").mkdir()
    again = _hook(tmp_path / "again", tls, images, workdir, *args)
    ledger = Ledger(postgres.url)
    try:
        assert_all_recorded(ledger, api.answered)
    finally:
        ledger.close()
        again.stop()
