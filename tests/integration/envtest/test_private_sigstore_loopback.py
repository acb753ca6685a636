"""The private Sigstore's timestamp authority listens on 127.0.0.1 only, and several run at once.

Released timestamp-server v2 serves its metrics on ":2112" of every interface; the binary
``scripts/sigstore-binaries`` builds takes that address from ``TSA_METRICS_ADDR``. Here two
private Sigstores run in this process while a third runs in another (``python -m``), and each
TSA's listening sockets, read from ``/proc``, are its API port and its own metrics address, all
on 127.0.0.1. With the unpatched binary the first TSA listens on *:2112 and the second cannot
start.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from affidavit.envtest.sigstore import PrivateSigstore
from binary_builds import sigstore_binaries_or_skip

ISSUER = {"https://127.0.0.1:1/": "kubernetes"}


def _address(hex_address: str) -> tuple[str, int]:
    """A ``/proc/net/tcp{,6}`` local address (little-endian words) as (IP, port)."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(packed)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def _listening(pid: int) -> set[tuple[str, int]]:
    """The TCP addresses process ``pid`` listens on: its sockets' inodes in its network
    namespace's tables, state 0A (LISTEN)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                found.add(_address(fields[1]))
    return found


def _tsa_pid(workdir: Path) -> int:
    """The timestamp-server whose working directory is ``workdir`` (each service runs there)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry / "cwd").resolve() == workdir.resolve() and (
                (entry / "comm").read_text().strip() == "timestamp-serve"
            ):
                pids.append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    assert len(pids) == 1, f"timestamp-servers in {workdir}: {pids}"
    return pids[0]


def _metrics_addr(pid: int) -> tuple[str, int]:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    (value,) = [v for v in environ if v.startswith(b"TSA_METRICS_ADDR=")]
    host, _, port = value.decode().partition("=")[2].rpartition(":")
    return host, int(port)


def _assert_tsa_on_loopback(workdir: Path, tsa_url: str) -> None:
    pid = _tsa_pid(workdir)
    api = urlsplit(tsa_url)
    expected = {(api.hostname, api.port), _metrics_addr(pid)}
    assert _listening(pid) == expected
    assert {host for host, _ in expected} == {"127.0.0.1"}


def test_each_tsa_listens_on_loopback_only_with_three_at_once(tmp_path: Path) -> None:
    sigstore_binaries_or_skip()
    other = subprocess.Popen(
        [sys.executable, "-m", "affidavit.envtest.sigstore", str(tmp_path / "other"),
         "--issuer", "https://127.0.0.1:1/=kubernetes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with (
            PrivateSigstore(tmp_path / "first", ISSUER) as first,
            PrivateSigstore(tmp_path / "second", ISSUER) as second,
        ):
            assert other.stdout is not None
            printed = dict(other.stdout.readline().split() for _ in range(3))
            assert len({first.tsa_url, second.tsa_url, printed["tsa"]}) == 3
            _assert_tsa_on_loopback(first.workdir, first.tsa_url)
            _assert_tsa_on_loopback(second.workdir, second.tsa_url)
            _assert_tsa_on_loopback(tmp_path / "other", printed["tsa"])
    finally:
        other.send_signal(signal.SIGTERM)
        code = other.wait(timeout=60)
    assert code == 0, other.stderr.read() if other.stderr else ""
