"""The webhook's ledger settings: the lock wait stays well inside the request budget (so a held
lock buffers the decision instead of outliving the apiserver's timeout), and buffered decisions
get a file by default beside a SQLite ledger. The owner check's time is a positive setting of
its own (``--owner-check-seconds``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affidavit.admission.server import WebhookSettings
from affidavit.errors import UsageError


def _settings(tmp_path: Path, **kw: object) -> WebhookSettings:
    return WebhookSettings(
        tls_cert=tmp_path / "tls.crt",
        tls_key=tmp_path / "tls.key",
        cluster_name="c",
        region="r",
        policy_dir=tmp_path,
        **kw,  # type: ignore[arg-type]
    )


def test_the_ledger_waits_at_most_a_second_or_an_eighth_of_the_budget(tmp_path: Path) -> None:
    assert _settings(tmp_path).ledger_wait == 1.0
    assert _settings(tmp_path, budget_seconds=4).ledger_wait == 0.5
    assert _settings(tmp_path, ledger_wait_seconds=0.25).ledger_wait == 0.25
    with pytest.raises(UsageError) as e:
        _settings(tmp_path, ledger_wait_seconds=8)
    assert e.value.message == "--ledger-wait 8 is outside (0, --budget-seconds 8)"


def test_the_buffer_file_defaults_beside_a_sqlite_ledger(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    assert _settings(tmp_path, ledger_url=f"sqlite:///{db}").ledger_buffer_path == Path(
        f"{db}-buffer.jsonl"
    )
    pg = "postgresql+psycopg://affidavit@127.0.0.1:5432/ledger"
    assert _settings(tmp_path, ledger_url=pg).ledger_buffer_path is None
    given = tmp_path / "buffer.jsonl"
    assert _settings(tmp_path, ledger_url=pg, ledger_buffer_file=given).ledger_buffer_path == given
    assert _settings(tmp_path, ledger_url=None).ledger_buffer_path is None


def test_the_owner_check_time_is_positive_and_reaches_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _settings(tmp_path).owner_check_seconds == 2.0
    assert _settings(tmp_path, owner_check_seconds=5).owner_check_seconds == 5
    with pytest.raises(UsageError) as e:
        _settings(tmp_path, owner_check_seconds=0)
    assert e.value.message == "--owner-check-seconds 0 must be more than 0"
    from affidavit.cli.main import main

    code = main(
        ["webhook", "serve", "--tls-cert", str(tmp_path / "c"), "--tls-key", str(tmp_path / "k"),
         "--cluster-name", "c", "--region", "r", "--policy-dir", str(tmp_path),
         "--owner-check-seconds", "-1"]
    )  # fmt: skip
    assert code != 0
    assert "--owner-check-seconds -1 must be more than 0" in capsys.readouterr().err
