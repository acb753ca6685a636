"""Every process of the private Sigstore listens on 127.0.0.1 only, and several run at once.

Released timestamp-server v2 serves its metrics on ":2112" of every interface; the binary
``scripts/sigstore-binaries`` builds takes that address from ``TSA_METRICS_ADDR``. Released
Fulcio serves its metrics on ``--metrics-port`` of every interface; the binary built serves them
on ``--host``. Here two private Sigstores run in this process while a third runs in another
(``python -m``), and each service's listening sockets, read from ``/proc``, are all on 127.0.0.1:
each TSA's are its API port and its own metrics address, each Fulcio's include its metrics port.
With the unpatched timestamp-server the first listens on *:2112 and the second cannot start;
with the unpatched Fulcio each listens on *:<metrics port>.
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
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed since it was listed (a connection that ended)
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                found.add(_address(fields[1]))
    return found


#: The services a private Sigstore starts, by the name the kernel gives each process (``comm``,
#: at most 15 characters).
SERVICES = ("fulcio", "rekor-server", "timestamp-serve", "tesseract")


def _service_pids(workdir: Path) -> dict[str, int]:
    """The private Sigstore's processes whose working directory is ``workdir`` (each service
    runs there), by name: one of each."""
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry / "cwd").resolve() == workdir.resolve():
                comm = (entry / "comm").read_text().strip()
                found.setdefault(comm, []).append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    assert all(len(found.get(name, [])) == 1 for name in SERVICES), f"in {workdir}: {found}"
    return {name: found[name][0] for name in SERVICES}


def _metrics_addr(pid: int) -> tuple[str, int]:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    (value,) = [v for v in environ if v.startswith(b"TSA_METRICS_ADDR=")]
    host, _, port = value.decode().partition("=")[2].rpartition(":")
    return host, int(port)


def _flag(pid: int, name: str) -> str:
    """The value of ``--name=VALUE`` on process ``pid``'s command line."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    (value,) = [a.partition("=")[2] for a in argv if a.startswith(f"--{name}=")]
    return value


def _printed_urls(other: subprocess.Popen[str]) -> dict[str, str]:
    """The first three lines the other private Sigstore prints (service, URL); if it ends
    before printing them, what it wrote to stderr."""
    assert other.stdout is not None and other.stderr is not None
    lines = [other.stdout.readline() for _ in range(3)]
    if not all(lines):
        other.wait(timeout=60)
        raise AssertionError(
            f"the other Sigstore ended ({other.returncode}): {other.stderr.read()}"
        )
    return dict(line.split() for line in lines)


def _assert_on_loopback(workdir: Path, tsa_url: str) -> None:
    pids = _service_pids(workdir)
    for name, pid in pids.items():
        listening = _listening(pid)
        assert listening, f"{name} listens on nothing"
        assert {host for host, _ in listening} == {"127.0.0.1"}, f"{name}: {listening}"
    api = urlsplit(tsa_url)
    assert _listening(pids["timestamp-serve"]) == {
        (api.hostname, api.port),
        _metrics_addr(pids["timestamp-serve"]),
    }
    fulcio_metrics = ("127.0.0.1", int(_flag(pids["fulcio"], "metrics-port")))
    assert fulcio_metrics in _listening(pids["fulcio"])


def test_each_service_listens_on_loopback_only_with_three_at_once(tmp_path: Path) -> None:
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
            printed = _printed_urls(other)
            assert len({first.tsa_url, second.tsa_url, printed["tsa"]}) == 3
            _assert_on_loopback(first.workdir, first.tsa_url)
            _assert_on_loopback(second.workdir, second.tsa_url)
            _assert_on_loopback(tmp_path / "other", printed["tsa"])
    finally:
        other.send_signal(signal.SIGTERM)
        code = other.wait(timeout=60)
    assert code == 0, other.stderr.read() if other.stderr else ""


def test_a_port_taken_before_the_service_binds_it_starts_the_services_again(
    tmp_path: Path, first_port_taken: int
) -> None:
    """The first port chosen is taken (a listener holds it) before the timestamp server binds
    it, as when another process asks for a free port meanwhile: the services start again on
    fresh ports, and the one that found its port taken said so in its log."""
    sigstore_binaries_or_skip()
    with PrivateSigstore(tmp_path, ISSUER) as info:
        assert urlsplit(info.tsa_url).port != first_port_taken
        _assert_on_loopback(tmp_path, info.tsa_url)
    assert "address already in use" in (tmp_path / "timestamp-server.log").read_text()
