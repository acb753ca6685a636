"""``free_port`` hands each port to one caller, in any process, and never from the ephemeral range.

The services of both test lanes (and of the subprocesses they start) choose their ports before
they bind them; a port handed twice, or taken by an outgoing connection meanwhile, fails a
start. Here the random choice is made to repeat itself, across two processes, and the second
caller still gets another port.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import affidavit.envtest.ports as ports
from affidavit.envtest.ports import free_port


@pytest.fixture
def own_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own record of handed ports (the suite's other callers keep theirs)."""
    monkeypatch.setattr(ports.tempfile, "gettempdir", lambda: str(tmp_path))
    yield tmp_path


def _ephemeral() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def _choose_first(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """Make the random choice ``port`` first, then random again."""
    first = [port]
    real = random.randrange
    monkeypatch.setattr(ports.random, "randrange", lambda *a: first.pop() if first else real(*a))


def test_ports_come_from_below_the_ephemeral_range_each_once(own_file: Path) -> None:
    low, _ = _ephemeral()
    handed = [free_port() for _ in range(50)]
    assert len(set(handed)) == 50
    assert all(ports.LOWEST <= p < low for p in handed)


def test_a_port_handed_in_another_process_is_not_handed_again(
    own_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = (
        "import tempfile, affidavit.envtest.ports as p\n"
        f"tempfile.tempdir = {str(own_file)!r}\n"
        "print(p.free_port())\n"
    )
    other = int(subprocess.run([sys.executable, "-c", script], check=True,
                               capture_output=True, text=True).stdout)  # fmt: skip
    _choose_first(monkeypatch, other)
    assert free_port() != other


def test_a_port_someone_listens_on_is_not_handed(
    own_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        _choose_first(monkeypatch, taken.getsockname()[1])
        assert free_port() != taken.getsockname()[1]


def test_a_record_cut_short_is_started_again(own_file: Path) -> None:
    record = own_file / f"affidavit-ports-{os.getuid()}.json"
    record.write_text('{"20001": 17')
    assert free_port() >= ports.LOWEST
    assert record.read_text().startswith("{")


def test_a_link_planted_where_the_record_goes_is_not_followed(own_file: Path) -> None:
    target = own_file / "elsewhere"
    target.write_text("untouched")
    (own_file / f"affidavit-ports-{os.getuid()}.json").symlink_to(target)
    assert ports.LOWEST <= free_port() < _ephemeral()[0]
    assert target.read_text() == "untouched"
