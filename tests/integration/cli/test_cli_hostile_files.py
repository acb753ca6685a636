"""A file or a flag that is not what the option takes gets the CLI's own error (what is wrong,
with which file, and what to give instead) and exit code, never a traceback; nothing half-made
is left behind. Each case here once ended in a Python traceback, a wrong message, a silently
wrapped value (port 70000 served on 4464) or a private key without its public half."""

from __future__ import annotations

from pathlib import Path

import pytest

from affidavit.cli.main import main

DIGEST = "sha256:" + "ab" * 32
BINARY = bytes(range(256)) * 4


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "binary"
    path.write_bytes(BINARY)
    return path


@pytest.fixture
def public_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    capsys.readouterr()
    return tmp_path / "k.pub"


@pytest.mark.parametrize("kind", ["binary", "directory", "missing", "empty"])
def test_a_ca_bundle_that_is_no_pem_bundle_is_named(
    kind: str, tmp_path: Path, public_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "ca.pem"
    if kind == "binary":
        bundle.write_bytes(BINARY)
    elif kind == "directory":
        bundle.mkdir()
    elif kind == "empty":
        bundle.write_text("")
    image = f"127.0.0.1:1/app@{DIGEST}"  # never reached: the bundle is refused first
    code, err = run(["verify", image, "--key", str(public_key), "--ca-bundle", str(bundle)], capsys)
    assert code == 2
    assert err.startswith(f"error: CA bundle {bundle} cannot be used: ")
    assert "hint: give a PEM file of the registry's CA certificates" in err


def test_a_public_key_file_that_is_not_text_is_named(
    binary: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["verify", f"127.0.0.1:1/app@{DIGEST}", "--key", str(binary)], capsys)
    assert (code, err.splitlines()[0]) == (
        2,
        f"error: public key {binary} is not a PEM public key (not text)",
    )


@pytest.mark.parametrize("as_directory", [False, True])
def test_a_checkpoint_file_that_is_no_signed_note_is_named(
    as_directory: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "--ledger-key", "-o", str(tmp_path / "ledger")]) == 0
    capsys.readouterr()
    trail = tmp_path / "checkpoints"
    trail.mkdir()
    bad = trail / "checkpoint.0000000000000005"
    if as_directory:
        bad.mkdir()
    else:
        bad.write_bytes(BINARY)
    argv = ["decisions", "verify-chain", "--ledger", f"sqlite:///{tmp_path}/l.db",
            "--ledger-public-key", str(tmp_path / "ledger.pub"), "--checkpoints", str(trail)]  # fmt: skip
    code, err = run(argv, capsys)
    assert code == 6
    assert err.startswith(f"error: checkpoint {bad} cannot be read as a signed note: ")
    # a ConfigMap export that is not text, given in place of the directory
    (tmp_path / "cm.yaml").write_bytes(BINARY)
    code, err = run([*argv[:-1], str(tmp_path / "cm.yaml")], capsys)
    assert code == 6
    assert err.startswith(f"error: cannot read the checkpoint ConfigMap {tmp_path / 'cm.yaml'}: ")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "70000"], "error: --port 70000 is not a TCP port (1-65535)"),
        (["--port", "-5"], "error: --port -5 is not a TCP port (1-65535)"),
        (["--metrics-port", "0"], "error: --metrics-port 0 is not a TCP port (1-65535)"),
        (["--log-level", "bogus"], "error: --log-level 'bogus' is not a log level"),
    ],
)
def test_webhook_flags_out_of_range_are_refused_before_serving(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # port 70000 was served on 4464 (70000 - 65536) while the log said 70000
    argv = [
        "webhook",
        "serve",
        "--cluster-name",
        "c",
        "--region",
        "r",
        "--policy-dir",
        str(tmp_path),
        "--tls-cert",
        str(tmp_path / "none.crt"),
        "--tls-key",
        str(tmp_path / "none.key"),
        *flags,
    ]
    code, err = run(argv, capsys)
    assert (code, err.splitlines()[0]) == (2, message)


def test_a_bad_registry_ca_stops_the_webhook_before_it_serves(
    binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # it used to start, report ready, and deny every covered image as "the lookup failed"
    argv = ["webhook", "serve", "--cluster-name", "c", "--region", "r", "--policy-dir", str(tmp_path),
            "--registry-ca", str(binary),
            "--tls-cert", str(tmp_path / "none.crt"), "--tls-key", str(tmp_path / "none.key")]  # fmt: skip
    code, err = run(argv, capsys)
    assert code == 2
    assert err.startswith(f"error: CA bundle {binary} cannot be used: ")


@pytest.mark.parametrize("content", [BINARY, b"[1, 2]\n", b"just a string\n"])
def test_a_kubeconfig_that_is_not_one_is_named(
    content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(content)
    code, err = run(
        ["operator", "run", "--namespace", "ns", "--kubeconfig", str(kubeconfig)], capsys
    )
    assert code == 7
    assert err.startswith(f"error: cannot load Kubernetes credentials from {kubeconfig}: ")


@pytest.mark.parametrize("output", ["", ".", ".."])
def test_keygen_refuses_an_output_that_names_no_file(
    output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["keygen", "-o", output], capsys)
    assert code == 2
    assert err.startswith(f"error: -o/--output {str(Path(output))!r} names a directory, not a key")


def test_keygen_leaves_no_private_key_without_its_public_half(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.pub").mkdir()  # the public half cannot be written
    code, err = run(["keygen", "-o", str(tmp_path / "x"), "--force"], capsys)
    assert code == 2 and err.startswith(f"error: cannot write the key pair to {tmp_path / 'x'}")
    assert not (tmp_path / "x.key").exists()


def test_a_limit_larger_than_a_list_holds_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["decisions", "list", "--ledger", f"sqlite:///{tmp_path}/l.db",
            "--limit", "9223372036854775807"]  # fmt: skip
    code, err = run(argv, capsys)
    assert (code, err.splitlines()[0]) == (
        2,
        "error: --limit 9223372036854775807 is more than a list can hold (1,000,000,000)",
    )


def test_attest_names_a_bad_key_before_it_reaches_the_registry(
    binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predicate = tmp_path / "p.json"
    predicate.write_text("{}")
    argv = ["attest", f"127.0.0.1:1/app@{DIGEST}", "--predicate", str(predicate),
            "--type", "https://example.com/p/v1", "--key", str(binary)]  # fmt: skip
    code, err = run(argv, capsys)
    assert code == 2
    assert "127.0.0.1:1" not in err and str(binary) in err.splitlines()[0]


def test_a_max_bytes_below_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--max-bytes", "0"], ["--max-bytes=0"]):  # the fast parse, and click's
        code, err = run(["verify", f"127.0.0.1:1/app@{DIGEST}", "--key", "k.pub", *argv], capsys)
        assert code == 2 and "Invalid value for '--max-bytes'" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ledger", "sqlite:///{binary}"],
         "error: --ledger sqlite:///{binary}: {binary} is not a SQLite database"),
        (["--ledger", "sqlite:///{tmp}"],
         "error: --ledger sqlite:///{tmp}: {tmp} is a directory, not a SQLite database file"),
        (["--ledger", "sqlite:///{tmp}/l.db", "--ledger-key", "{binary}", "--checkpoint-dir",
          "{binary}"], "error: --checkpoint-dir {binary} is a file, not a directory"),
        (["--ledger", "notaurl"],
         "error: --ledger 'notaurl' is not a database URL: Could not parse SQLAlchemy URL from"
         " given URL string"),
        (["--ledger", "", "--ledger-key", "{binary}"],
         "error: --ledger-key, --checkpoint-dir and --checkpoint-configmap sign the ledger's"
         " head, and --ledger is off"),
    ],
)  # fmt: skip
def test_ledger_mistakes_are_refused_at_start(
    flags: list[str], message: str, binary: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # each used to start and report ready, then buffer every decision as if the database were
    # away ("file is not a database"), or log a failed checkpoint every time, for as long as
    # it ran
    fill = {"binary": binary, "tmp": tmp_path}
    argv = ["webhook", "serve", "--cluster-name", "c", "--region", "r",
            "--policy-dir", str(tmp_path), "--tls-cert", str(tmp_path / "none.crt"),
            "--tls-key", str(tmp_path / "none.key"), *(f.format(**fill) for f in flags)]  # fmt: skip
    code, err = run(argv, capsys)
    assert (code, err.splitlines()[0]) == (2, message.format(**fill))


@pytest.mark.parametrize("kind", ["file", "used"])
def test_demo_wants_a_new_or_empty_workdir(
    kind: str, binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a file ended in FileExistsError; a directory of an earlier run in "remote origin
    # already exists", exit 3, after starting servers
    workdir = binary
    if kind == "used":
        workdir = tmp_path / "earlier"
        workdir.mkdir()
        (workdir / "repo").mkdir()
    code, err = run(["demo", "--workdir", str(workdir)], capsys)
    assert (code, err.splitlines()[0]) == (
        2,
        f"error: --workdir {workdir} is not a new or empty directory",
    )
